"""Series clusters of the case's media and the ranked leads queue (issue 16 items 3, 4).

``triage leads CASE`` (:func:`leads`) is a run of its own (recorded in the audit trail like
``triage match``): it reads the case's perceptual hashes, video frames, metadata and the
hits of the report's match run, joins media into clusters, scores the clusters that hold
unknown media by explainable signals, and records both in the tables ``clusters`` and
``cluster_members`` (case schema 11). docs/leads.md states the rules; the constants below
are the numbers it quotes.

Joining (union-find over files; each edge found by :class:`hashsets.matching.NearIndex`,
the compiled multi-index search, never a pairwise loop):

* **PDQ**: two values within the PDQ match threshold (31), both of at least the PDQ
  quality gate (50). Values: every picture's PDQ as stored and its variants (rotations,
  mirror images, unletterboxed: a rotated copy joins its original), and video frames
  (vPDQ's quality gate).
* **pHash and dHash together**: the pair is within the pHash threshold (10) AND within
  the dHash threshold (10), in any form of either picture. Neither 64-bit hash joins alone:
  at 10 bits of 64 unrelated pictures meet too often for a graph whose components grow
  by every false edge. A picture whose PDQ is below PDQ's quality gate (flat: blank,
  one colour, tiny) joins by neither: its pHash/dHash are degenerate (all flat pictures
  share them).
* **Same content**: files with the same SHA-256 (copies of one picture).
* **Camera body serial**: files whose metadata give the same make and the same body
  serial (both normalised: case, spaces; serials such as ``0`` or ``unknown`` ignored).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .util import canonical_json

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .case import Case

#: The algorithms that join clusters, and how (see the module doc).
JOIN_PDQ = "pdq"
JOIN_PHASH_DHASH = "phash+dhash"
JOIN_SERIAL = "serial"
JOIN_SAME_CONTENT = "same_content"
#: Near-known search: a known entry farther than the threshold but within this many times
#: it (PDQ 31 -> 46) is "near a known series".
NEAR_FACTOR = 1.5
#: Capture times this close (seconds) follow each other.
CONSECUTIVE_SECONDS = 600
#: A folder "dense with hits" holds at least this many files with known hits.
DENSE_FOLDER_HITS = 3
#: Path components of camera folders (compared case-insensitively), and camera-made
#: subfolders of DCIM (``100APPLE``, ``101MSDCF``, ``100_FUJI``: DCF's three digits and
#: five characters).
CAMERA_FOLDERS = frozenset({"dcim", "camera", "camera roll"})
DCF_FOLDER = re.compile(r"^[1-9][0-9]{2}[0-9A-Za-z_]{5}$")
#: Serials that identify no camera.
NO_SERIAL = frozenset({"", "0", "none", "unknown", "na", "n/a", "null", "serial",
                       "serialnumber", "0000000000", "00000000", "000000", "0000"})

#: Points of each signal (docs/leads.md): a cluster's score is their sum.
POINTS = {
    "serial_of_known": 50,    # same camera body as known material in the case
    "near_known": 40,         # near a known series, beyond its threshold (<= 1.5x)
    "review_hit": 35,         # a member's hit is for review (not confirmed)
    "device": 30,             # made by a camera of the seized device's make/model
    "camera_folder": 10,      # members in camera folders (DCIM, Camera, 100APPLE)
    "consecutive": 10,        # capture times follow each other (<= 10 min)
    "dense_folder": 10,       # members in folders with several known hits
    "near_known_file": 5,     # joined by hashes to known files in the case
}
#: Size: one point per member beyond the first, at most this many.
SIZE_POINTS_MAX = 10
#: Grades of a hit that make a file known material.
KNOWN_GRADES = frozenset({"exact", "confirmed"})
#: ``cluster_members.known``.
MEMBER_UNKNOWN, MEMBER_KNOWN, MEMBER_REVIEW = 0, 1, 2


# -- union-find --------------------------------------------------------------------------
class UnionFind:
    """Disjoint sets over ``0 .. n-1`` (union by size, path halving)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def union_pairs(self, a: Sequence[int], b: Sequence[int]) -> None:
        for x, y in zip(a, b, strict=True):
            self.union(x, y)


def near_pairs(index_words: npt.NDArray[np.uint64], index_nodes: npt.NDArray[np.int64],
               query_words: npt.NDArray[np.uint64], query_nodes: npt.NDArray[np.int64],
               bits: int, threshold: int) -> npt.NDArray[np.int64]:
    """Node pairs ``(a, b)``, ``a < b``, unique, sorted, where a query value of node ``a``
    (or ``b``) lies within ``threshold`` of an indexed value of the other: one search of
    the compiled index (:class:`hashsets.matching.NearIndex`)."""
    import numpy as np

    from hashsets.matching import NearIndex

    if len(index_words) == 0 or len(query_words) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    qi, ki, _ = NearIndex(index_words, bits).search(query_words, threshold)
    a, b = query_nodes[qi], index_nodes[ki]
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    pairs = np.stack([lo, hi], axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def components(n: int, edges: Iterable[npt.NDArray[np.int64]]) -> list[int]:
    """The root of every node ``0 .. n-1`` after joining the edge arrays (``(m, 2)``)."""
    uf = UnionFind(n)
    for e in edges:
        if len(e):
            uf.union_pairs(e[:, 0].tolist(), e[:, 1].tolist())
    return [uf.find(i) for i in range(n)]


# -- what the case holds -----------------------------------------------------------------
def normalise_serial(make: str | None, serial: str | None) -> tuple[str, str] | None:
    """The join key of a camera body: make and serial, case and spaces ignored; None
    when the serial identifies nothing."""
    s = re.sub(r"\s+", "", serial or "").casefold()
    if s in NO_SERIAL or set(s) <= {"0"}:
        return None
    return (re.sub(r"\s+", " ", make or "").strip().casefold(), s)


def capture_time(text: str | None) -> datetime | None:
    """EXIF ``YYYY:MM:DD HH:MM:SS`` (as ``media_metadata.datetime_original`` keeps it)."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def camera_folder(display_path: str) -> bool:
    parts = [p for p in display_path.replace("!", "/").split("/") if p]
    folders = parts[:-1]
    return any(p.casefold() in CAMERA_FOLDERS for p in folders) or (
        any(p.casefold() == "dcim" for p in folders)
        and any(DCF_FOLDER.match(p) for p in folders))


def folder_of(display_path: str) -> str:
    return display_path.rsplit("/", 1)[0] if "/" in display_path else ""


@dataclass
class Member:
    file_id: int
    node: int
    sha256: str | None = None
    display_path: str = ""
    evidence_id: int | None = None
    make: str | None = None
    model: str | None = None
    serial: str | None = None
    captured: str | None = None
    status: int = MEMBER_UNKNOWN
    known_series: set[str] = field(default_factory=set)
    known_sets: set[str] = field(default_factory=set)
    review_series: set[str] = field(default_factory=set)
    nsrl_only: bool = False


@dataclass(frozen=True)
class NearKnown:
    """The closest known entry beyond the threshold of one file's value."""

    algorithm: str
    distance: int
    threshold: int
    set_name: str
    series: str | None


@dataclass(frozen=True)
class Lead:
    """One scored cluster (``rank`` None: not in the leads queue)."""

    cluster_id: str
    size: int
    known_members: int
    review_members: int
    score: int
    rank: int | None
    reasons: tuple[tuple[str, int, str], ...]
    series: tuple[str, ...]
    hit_sets: tuple[str, ...]
    first_capture: str | None
    last_capture: str | None
    cameras: tuple[tuple[str | None, str | None, str | None], ...]
    joined_by: dict[str, int]
    members: tuple[tuple[int, int], ...]  # (file id, known status)


@dataclass(frozen=True)
class LeadsSummary:
    """What a leads run found (its run row's summary; ``triage leads --json``). No
    metadata values (make, model, serial, times): those stay in the case."""

    run: int
    match_run: int | None
    store: str | None
    thresholds: dict[str, int]
    media: int
    clusters: int
    multi_member_clusters: int
    known_clusters: int
    leads: int
    joined_by: dict[str, int]
    notes: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# -- loading ---------------------------------------------------------------------------
def _load_members(case: Case) -> dict[int, Member]:
    fids: set[int] = {int(r[0]) for r in case.conn.execute(
        "SELECT DISTINCT file_id FROM hashes WHERE algorithm IN ('pdq', 'phash', 'dhash')")}
    fids.update(int(r[0]) for r in case.conn.execute(
        "SELECT DISTINCT file_id FROM video_frames"))
    meta: dict[int, tuple[Any, ...]] = {}
    for fid, make, model, serial, when in case.conn.execute(
            "SELECT file_id, make, model, serial, datetime_original FROM media_metadata"):
        meta[int(fid)] = (make, model, serial, when)
        if normalise_serial(make, serial) is not None:
            fids.add(int(fid))
    members = {fid: Member(fid, i) for i, fid in enumerate(sorted(fids))}
    for fid, display, ev, sha in case.conn.execute(
            "SELECT f.id, f.display_path, f.evidence_id, h.value FROM files f "
            "LEFT JOIN hashes h ON h.file_id = f.id AND h.algorithm = 'sha256'"):
        m = members.get(int(fid))
        if m is not None:
            m.display_path, m.evidence_id, m.sha256 = str(display), int(ev), sha
    for fid, (make, model, serial, when) in meta.items():
        m = members.get(fid)
        if m is not None:
            m.make, m.model, m.serial, m.captured = make, model, serial, when
    return members


def _load_hits(case: Case, members: Mapping[int, Member], match_run: int | None) -> None:
    if match_run is None:
        return
    seen_case_hit: set[int] = set()
    nsrl: set[int] = set()
    for fid, known, grade, mtype, series, set_name in case.conn.execute(
            "SELECT file_id, known, grade, match_type, series, set_name FROM matches "
            "WHERE run_id=? ORDER BY id", (match_run,)):
        m = members.get(int(fid))
        if m is None:
            continue
        if known:
            nsrl.add(m.file_id)
            continue
        seen_case_hit.add(m.file_id)
        if mtype == "exact" or grade in KNOWN_GRADES:
            m.status = MEMBER_KNOWN
            m.known_sets.add(str(set_name))
            if series:
                m.known_series.add(str(series))
        else:
            if m.status != MEMBER_KNOWN:
                m.status = MEMBER_REVIEW
            m.known_sets.add(str(set_name))
            if series:
                m.review_series.add(str(series))
    for fid in nsrl - seen_case_hit:
        members[fid].nsrl_only = True


@dataclass
class Values:
    """One algorithm's values as 64-bit words: ``index`` (the picture as stored, video
    frames) and ``query`` (those and every variant), each with its member node."""

    bits: int
    index: npt.NDArray[np.uint64]
    index_nodes: npt.NDArray[np.int64]
    query: npt.NDArray[np.uint64]
    query_nodes: npt.NDArray[np.int64]


#: Rows converted to words at a time (memory stays at the arrays, not Python tuples).
_CHUNK = 100_000


def _words(rows: Iterable[tuple[Any, ...]], members: Mapping[int, Member], bits: int,
           gate: int | None) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """``(file id, hex, quality)`` rows of members, of at least ``gate``, as words and
    nodes, converted :data:`_CHUNK` rows at a time."""
    import numpy as np

    from hashsets.matching import hex_to_words, n_words

    words: list[npt.NDArray[np.uint64]] = [np.zeros((0, n_words(bits)), dtype=np.uint64)]
    nodes: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)]
    values: list[str] = []
    chunk: list[int] = []
    for fid, value, quality in itertools.chain(rows, [(None, None, None)]):
        if fid is not None:
            m = members.get(int(fid))
            if m is None or (gate is not None and (quality is None or quality < gate)):
                continue
            values.append(value)
            chunk.append(m.node)
        if values and (fid is None or len(values) >= _CHUNK):
            words.append(hex_to_words(values, bits))
            nodes.append(np.array(chunk, dtype=np.int64))
            values, chunk = [], []
    return np.concatenate(words), np.concatenate(nodes)


def _values(case: Case, members: Mapping[int, Member], limits: Mapping[str, int],
            variants: bool = True) -> dict[str, Values]:
    """Per algorithm (PDQ, pHash, dHash): the values that join (see the module doc): the
    values of ``hashes`` (the picture as stored) and ``hash_variants`` (not the ``draft``
    values a confirmation replaced, nor variants of a file without the original, as
    :func:`triage.matching.near_queries`), each of at least the algorithm's quality gate;
    for PDQ also video frames of at least vPDQ's gate."""
    import numpy as np

    from hashsets.algorithms import get

    from .case import DRAFT_VARIANT
    from .matching import MIN_QUALITY

    # A picture too flat for PDQ's quality gate (a blank or one-colour picture, a tiny
    # sample) has degenerate pHash/dHash values too (all of them 8000000000000000 and 0):
    # every such picture would join every other. They join by neither hash; their PDQ is
    # already below its gate. Identical files stay a duplicate group (same SHA-256).
    pdq_gate = limits.get("pdq" + MIN_QUALITY)
    flat = {int(fid) for fid, in case.conn.execute(
        "SELECT file_id FROM hashes WHERE algorithm = 'pdq' AND quality < ?",
        (pdq_gate,))} if pdq_gate else set()
    textured = {fid: m for fid, m in members.items() if fid not in flat}
    out: dict[str, Values] = {}
    for alg in ("pdq", "phash", "dhash"):
        bits = get(alg).bits
        gate = limits.get(alg + MIN_QUALITY)
        joiners = members if alg == "pdq" else textured
        iw, inodes = _words(case.conn.execute(
            "SELECT file_id, value, quality FROM hashes WHERE algorithm = ? ORDER BY file_id",
            (alg,)), joiners, bits, gate)
        vw, vnodes = _words(case.conn.execute(
            "SELECT v.file_id, v.value, v.quality FROM hash_variants v WHERE v.algorithm = ? "
            "AND v.variant != ? AND EXISTS (SELECT 1 FROM hashes h WHERE h.file_id = "
            "v.file_id AND h.algorithm = v.algorithm) ORDER BY v.file_id, v.variant",
            (alg, DRAFT_VARIANT)) if variants else (), joiners, bits, gate)
        if alg == "pdq":
            fw, fnodes = _words(case.conn.execute(
                "SELECT file_id, pdq, quality FROM video_frames ORDER BY file_id, seq"),
                members, bits, limits.get("vpdq_min_quality", 0))
            iw, inodes = np.concatenate([iw, fw]), np.concatenate([inodes, fnodes])
        out[alg] = Values(bits, iw, inodes, np.concatenate([iw, vw]),
                          np.concatenate([inodes, vnodes]))
    return out


def join_edges(values: Mapping[str, Values], limits: Mapping[str, int]
               ) -> dict[str, npt.NDArray[np.int64]]:
    """The near edges by join rule (see the module doc)."""
    import numpy as np

    pairs: dict[str, npt.NDArray[np.int64]] = {}
    for alg in ("pdq", "phash", "dhash"):
        v = values[alg]
        pairs[alg] = near_pairs(v.index, v.index_nodes, v.query, v.query_nodes, v.bits,
                                limits[alg])
    ph, dh = pairs["phash"], pairs["dhash"]
    if len(ph) and len(dh):
        both = np.array(sorted({(int(x), int(y)) for x, y in ph.tolist()}
                               & {(int(x), int(y)) for x, y in dh.tolist()}),
                        dtype=np.int64).reshape(-1, 2)
    else:
        both = np.zeros((0, 2), dtype=np.int64)
    return {JOIN_PDQ: pairs["pdq"], JOIN_PHASH_DHASH: both}


def serial_edges(members: Iterable[Member]) -> npt.NDArray[np.int64]:
    import numpy as np

    first: dict[tuple[str, str], int] = {}
    out: list[tuple[int, int]] = []
    for m in sorted(members, key=lambda m: m.node):
        key = normalise_serial(m.make, m.serial)
        if key is None:
            continue
        if key in first:
            out.append((first[key], m.node))
        else:
            first[key] = m.node
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def same_content_edges(members: Iterable[Member]) -> npt.NDArray[np.int64]:
    """Files with the same SHA-256 are the same picture: always one cluster (their PDQ is
    equal, but a flat picture's is below the quality gate and joins nothing)."""
    import numpy as np

    first: dict[str, int] = {}
    out: list[tuple[int, int]] = []
    for m in sorted(members, key=lambda m: m.node):
        if not m.sha256:
            continue
        if m.sha256 in first:
            out.append((first[m.sha256], m.node))
        else:
            first[m.sha256] = m.node
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def cluster_id(shas: Iterable[str]) -> str:
    """``c`` and 16 hex digits of the SHA-256 of the members' sorted SHA-256 values (one
    per line): the same members give the same id in every run."""
    text = "\n".join(sorted(shas)) + "\n"
    return "c" + hashlib.sha256(text.encode("ascii", "backslashreplace")).hexdigest()[:16]


def near_known(case: Case, store_path: Path, members: Mapping[int, Member],
               values: Mapping[str, Values], limits: Mapping[str, int],
               notes: list[str]) -> dict[int, NearKnown]:
    """Per node: the closest known entry beyond the match threshold and within
    :data:`NEAR_FACTOR` times it. PDQ alone; pHash only with dHash on the same set entry,
    both within the wider radius and not both within the thresholds (see docs/leads.md).
    NSRL-style "known file" sets are not known material."""
    from hashsets.algorithms import get
    from hashsets.errors import HashSetFileError
    from hashsets.matching import NearIndex, _entries, load_perceptual
    from hashsets.store import HashSetStore

    if not store_path.exists():
        notes.append(f"no hash-set store at {store_path}: the signal 'near a known series' "
                     "was not searched")
        return {}
    try:
        store = HashSetStore(store_path, readonly=True)
    except HashSetFileError as e:
        notes.append(f"the hash-set store could not be read ({e}): the signal 'near a "
                     "known series' was not searched")
        return {}
    out: dict[int, NearKnown] = {}
    try:
        sets, damaged = store.readable_sets()
        for bad in damaged:
            notes.append(f"hash set {bad.set_name} could not be read: not searched for near "
                         "known series")
        sets = [s for s in sets if not s.known]
        if not sets:
            return {}
        found: dict[str, dict[tuple[int, int, int], int]] = {}
        kps = {}
        for alg in ("pdq", "phash", "dhash"):
            a = get(alg)
            kp = load_perceptual(store, alg, sets, [])
            kps[alg] = kp
            qw, qnodes = values[alg].query, values[alg].query_nodes
            t = limits[alg]
            wide = min(a.bits, int(t * NEAR_FACTOR))
            best: dict[tuple[int, int, int], int] = {}
            if len(kp.words) and len(qw):
                qi, ki, di = NearIndex(kp.words, a.bits).search(qw, wide)
                for q, k, d in zip(qi.tolist(), ki.tolist(), di.tolist(), strict=True):
                    key = (int(qnodes[q]), int(kp.set_index[k]), int(kp.refs[k]))
                    if d < best.get(key, 1 << 30):
                        best[key] = d
            found[alg] = best
        best_by_node: dict[int, tuple[float, str, int, int, int]] = {}

        def keep(node: int, alg: str, d: int, si: int, ref: int) -> None:
            rank = (d / limits[alg], alg, si, ref)
            held = best_by_node.get(node)
            if held is None or rank < (held[0], held[1], held[3], held[4]):
                best_by_node[node] = (d / limits[alg], alg, d, si, ref)

        within = {alg: {k for k, d in found[alg].items() if d <= limits[alg]}
                  for alg in found}
        for (node, si, ref), d in found["pdq"].items():
            if d > limits["pdq"]:
                keep(node, "pdq", d, si, ref)
        for key, d in found["phash"].items():
            d2 = found["dhash"].get(key)
            if d2 is None or (key in within["phash"] and key in within["dhash"]):
                continue
            if d > limits["phash"] or d2 > limits["dhash"]:
                keep(key[0], "phash", d, key[1], key[2])
        by_set: dict[int, set[int]] = defaultdict(set)
        for _, _, _, si, ref in best_by_node.values():
            by_set[si].add(ref)
        meta: dict[tuple[int, int], tuple[Any, ...]] = {}
        for si, refs in by_set.items():
            for ref, entry in _entries(store, sets[si], refs).items():
                meta[(si, ref)] = entry
        for node, (_, alg, d, si, ref) in best_by_node.items():
            got = meta.get((si, ref))
            series = got[2] if got else None
            out[node] = NearKnown(alg, d, limits[alg], sets[si].name, series)
    except (sqlite3.Error, HashSetFileError) as e:
        notes.append(f"the hash-set store could not be read ({type(e).__name__}): the "
                     "signal 'near a known series' was not searched")
        return {}
    finally:
        store.close()
    return out


# -- scoring ---------------------------------------------------------------------------
def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def score(members: Sequence[Member], joined_by: Mapping[str, int],
          near: Mapping[int, NearKnown], devices: Mapping[int, tuple[str, str]],
          dense: Mapping[str, int]) -> list[tuple[str, int, str]]:
    """The signals of one cluster: ``(signal, points, one-line reason)``, strongest first.
    Reasons name no metadata value, path or content: counts, series and set names only."""
    reasons: list[tuple[str, int, str]] = []
    unknown = [m for m in members if m.status != MEMBER_KNOWN]
    known = [m for m in members if m.status == MEMBER_KNOWN]
    if known:
        keys = {normalise_serial(m.make, m.serial) for m in known} - {None}
        same = [m for m in unknown if normalise_serial(m.make, m.serial) in keys]
        if same:
            series = sorted({s for m in known for s in m.known_series})
            reasons.append(("serial_of_known", POINTS["serial_of_known"],
                            f"{_plural(len(same), 'file')} without a known hit share the "
                            f"camera body serial of {_plural(len(known), 'known file')}"
                            + (f" (series {', '.join(series)})" if series else "")))
        elif unknown:
            reasons.append(("near_known_file", POINTS["near_known_file"],
                            f"joined by perceptual hashes to {_plural(len(known), 'file')} "
                            "with a known hit"))
    close = [(near[m.node], m) for m in unknown if m.node in near]
    if close:
        nk, _ = min(close, key=lambda p: (p[0].distance / p[0].threshold, p[0].set_name,
                                          p[0].series or ""))
        what = f"series {nk.series}" if nk.series else "an entry"
        reasons.append(("near_known", POINTS["near_known"],
                        f"{_plural(len(close), 'member')} near {what} of set {nk.set_name} "
                        f"beyond its threshold: closest {nk.algorithm.upper()} distance "
                        f"{nk.distance} (threshold {nk.threshold}, searched to "
                        f"{int(nk.threshold * NEAR_FACTOR)})"))
    review = [m for m in unknown if m.status == MEMBER_REVIEW]
    if review:
        series = sorted({s for m in review for s in m.review_series})
        reasons.append(("review_hit", POINTS["review_hit"],
                        f"{_plural(len(review), 'member')} with near hits for review (not "
                        "confirmed)" + (f" to series {', '.join(series)}" if series else "")))
    made = [m for m in members if m.file_id in devices]
    if made:
        reasons.append(("device", POINTS["device"],
                        f"{_plural(len(made), 'member')} made by a camera of the seized "
                        "device's make and model (given on scan)"))
    folders = [m for m in members if camera_folder(m.display_path)]
    if folders:
        reasons.append(("camera_folder", POINTS["camera_folder"],
                        f"{_plural(len(folders), 'member')} in camera folders (DCIM-like) "
                        "of the evidence"))
    times = sorted(t for t in (capture_time(m.captured) for m in members) if t)
    close_times = sum(1 for a, b in itertools.pairwise(times)
                      if (b - a).total_seconds() <= CONSECUTIVE_SECONDS)
    if close_times:
        reasons.append(("consecutive", POINTS["consecutive"],
                        f"{_plural(close_times, 'capture time')} within "
                        f"{CONSECUTIVE_SECONDS // 60} minutes of the one before "
                        f"({len(times)} members with a capture time)"))
    in_dense = [m for m in unknown if dense.get(folder_of(m.display_path), 0) >=
                DENSE_FOLDER_HITS]
    if in_dense:
        most = max(dense[folder_of(m.display_path)] for m in in_dense)
        reasons.append(("dense_folder", POINTS["dense_folder"],
                        f"{_plural(len(in_dense), 'member')} without a known hit in folders "
                        f"with known hits (up to {most} in one folder)"))
    if len(members) > 1:
        pts = min(SIZE_POINTS_MAX, len(members) - 1)
        how = ", ".join(f"{k}: {v}" for k, v in sorted(joined_by.items()) if v)
        reasons.append(("size", pts, f"{_plural(len(members), 'file')} in the cluster, "
                                     f"{len(unknown)} without a confirmed known hit "
                                     f"(joined by {how})"))
    reasons.sort(key=lambda r: (-r[1], r[0]))
    return reasons


def device_given(case: Case) -> dict[int, tuple[str, str]]:
    """Per evidence: the seized device's make and model (case-folded) given on the latest
    scan of it that gave one (``scan --device-make/--device-model``, in its run row)."""
    given: dict[int, tuple[str, str]] = {}
    for ev, *_ in case.evidence_list():
        for (text,) in case.conn.execute(
                "SELECT options FROM runs WHERE command = 'scan' AND id IN (SELECT run_id "
                "FROM files WHERE evidence_id = ? UNION SELECT added_run_id FROM evidence "
                "WHERE id = ?) ORDER BY id DESC", (ev, ev)):
            try:
                opts = json.loads(text or "{}")
            except ValueError:
                continue
            dev = opts.get("device") if isinstance(opts, dict) else None
            if not isinstance(dev, dict):
                continue
            make = str(dev.get("make") or "").strip().casefold()
            model = str(dev.get("model") or "").strip().casefold()
            if make or model:
                given[ev] = (make, model)
                break
    return given


def _devices(case: Case, members: Iterable[Member]) -> dict[int, tuple[str, str]]:
    """Members whose camera make (and model, when given) is the seized device's, as a scan
    of their evidence recorded it (:func:`device_given`)."""
    given = device_given(case)
    out: dict[int, tuple[str, str]] = {}
    for m in members:
        want = given.get(m.evidence_id or -1)
        if want is None:
            continue
        make = (m.make or "").strip().casefold()
        model = (m.model or "").strip().casefold()
        if (not want[0] or want[0] == make) and (not want[1] or want[1] == model) and \
                (make or model):
            out[m.file_id] = want
    return out


def build(case: Case, store_path: Path | None, limits: Mapping[str, int],
          notes: list[str], variants: bool = True) -> tuple[list[Lead], dict[str, Any]]:
    """Clusters and their scores (not recorded): see the module doc."""
    match_run, caveat = case.report_match_run()
    if match_run is None:
        notes.append("no match run: no member is known material, and known-material "
                     "signals are missing (run 'triage match' first)")
    elif caveat:
        notes.append(f"hits: {caveat}")
    members = _load_members(case)
    _load_hits(case, members, match_run)
    by_node = sorted(members.values(), key=lambda m: m.node)
    values = _values(case, members, limits, variants)
    edges = join_edges(values, limits)
    edges[JOIN_SERIAL] = serial_edges(by_node)
    edges[JOIN_SAME_CONTENT] = same_content_edges(by_node)
    roots = components(len(by_node), edges.values())
    joined: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for rule, e in edges.items():
        for a in e[:, 0].tolist():
            joined[roots[a]][rule] += 1
    groups: dict[int, list[Member]] = defaultdict(list)
    for m in by_node:
        groups[roots[m.node]].append(m)
    near = near_known(case, store_path, members, values, limits, notes) \
        if store_path is not None else {}
    devices = _devices(case, by_node)
    dense: dict[str, int] = defaultdict(int)
    for (path,) in case.conn.execute(
            "SELECT DISTINCT f.display_path FROM matches m JOIN files f ON f.id = m.file_id "
            "WHERE m.run_id IS ? AND m.known = 0", (match_run,)):
        dense[folder_of(str(path))] += 1
    leads: list[Lead] = []
    used: set[str] = set()
    for root, group in groups.items():
        cid = cluster_id(m.sha256 or f"file:{m.file_id}" for m in group)
        n = 2
        base = cid
        while cid in used:  # never for content-identical members (they join); stay total
            cid, n = f"{base}-{n}", n + 1
        used.add(cid)
        how = {k: int(v) for k, v in sorted(joined[root].items())}
        reasons = score(group, how, near, devices, dense)
        unknown = [m for m in group if m.status != MEMBER_KNOWN]
        is_lead = bool(unknown) and not all(m.nsrl_only for m in group) and bool(reasons)
        times = sorted(m.captured for m in group if m.captured and capture_time(m.captured))
        cameras = sorted({(m.make, m.model, m.serial) for m in group
                          if m.make or m.model or m.serial},
                         key=lambda c: tuple(x or "" for x in c))
        leads.append(Lead(
            cluster_id=cid, size=len(group),
            known_members=sum(m.status == MEMBER_KNOWN for m in group),
            review_members=sum(m.status == MEMBER_REVIEW for m in group),
            score=sum(r[1] for r in reasons) if is_lead else 0,
            rank=1 if is_lead else None, reasons=tuple(reasons) if is_lead else (),
            series=tuple(sorted({s for m in group for s in m.known_series | m.review_series})),
            hit_sets=tuple(sorted({s for m in group for s in m.known_sets})),
            first_capture=times[0] if times else None,
            last_capture=times[-1] if times else None, cameras=tuple(cameras),
            joined_by=how,
            members=tuple(sorted((m.file_id, m.status) for m in group))))
    ranked = sorted((x for x in leads if x.rank is not None),
                    key=lambda x: (-x.score, -x.size, x.cluster_id))
    rank_of = {x.cluster_id: i for i, x in enumerate(ranked, 1)}
    from dataclasses import replace

    leads = sorted((replace(x, rank=rank_of.get(x.cluster_id)) for x in leads),
                   key=lambda x: (x.rank is None, x.rank or 0, x.cluster_id))
    facts = {"match_run": match_run, "media": len(by_node),
             "joined_by": {k: len(v) for k, v in sorted(edges.items())}}
    return leads, facts


def record(case: Case, run_id: int, leads: Sequence[Lead]) -> None:
    """The clusters and members of one run (one transaction; the run's end records the
    digest)."""
    with case.transaction() as c:
        c.execute("DELETE FROM cluster_members WHERE run_id=?", (run_id,))
        c.execute("DELETE FROM clusters WHERE run_id=?", (run_id,))
        c.executemany(
            "INSERT INTO clusters(run_id, cluster_id, size, known_members, review_members, "
            "series, hit_sets, first_capture, last_capture, cameras, joined_by, score, "
            "lead_rank, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, x.cluster_id, x.size, x.known_members, x.review_members,
              canonical_json(list(x.series)), canonical_json(list(x.hit_sets)),
              x.first_capture, x.last_capture, canonical_json([list(c) for c in x.cameras]),
              canonical_json(x.joined_by), x.score, x.rank,
              canonical_json([list(r) for r in x.reasons])) for x in leads])
        c.executemany(
            "INSERT INTO cluster_members(run_id, file_id, cluster_id, known) "
            "VALUES (?, ?, ?, ?)",
            [(run_id, fid, x.cluster_id, status) for x in leads for fid, status in x.members])


def leads(case_dir: str | os.PathLike[str], *, store: str | Path | None = None,
          variants: bool = True, argv: Sequence[str] = ()
          ) -> tuple[LeadsSummary, list[Lead]]:
    """``triage leads``: compute and record the clusters and the leads queue as a new run
    of the case. Returns the summary and every cluster (leads first, in rank order).
    ``variants`` False: only the pictures as stored (and video frames) are searched, not
    their rotations, mirror images and unletterboxed forms (up to 9 times fewer values)."""
    from hashsets.store import default_store_path

    from .matching import effective_thresholds
    from .runs import case_run

    limits = effective_thresholds(None)
    path = Path(store) if store else default_store_path()
    options = {"store": str(store) if store else None, "thresholds": limits,
               "variants": variants}
    with case_run(case_dir, "leads", argv=argv, options=options) as run:
        notes: list[str] = []
        pending = run.case.pending_count()
        if pending:
            notes.append(f"{pending} entries of this case are not scanned yet: clusters "
                         "cover what was scanned")
        found, facts = build(run.case, path, limits, notes, variants)
        record(run.case, run.run_id, found)
        summary = LeadsSummary(
            run=run.run_id, match_run=facts["match_run"], store=str(path),
            thresholds={k: limits[k] for k in ("pdq", "phash", "dhash", "pdq_min_quality")},
            media=facts["media"], clusters=len(found),
            multi_member_clusters=sum(x.size > 1 for x in found),
            known_clusters=sum(x.known_members > 0 for x in found),
            leads=sum(x.rank is not None for x in found),
            joined_by=facts["joined_by"], notes=tuple(notes))
        run.summary = summary.record()
    return summary, found


def stored_leads(case: Case, run_id: int) -> list[dict[str, Any]]:
    """The leads of a recorded run, in rank order (reports)."""
    out = []
    for row in case.conn.execute(
            "SELECT cluster_id, size, known_members, review_members, score, lead_rank, "
            "reasons, series, first_capture, last_capture, cameras, joined_by FROM clusters "
            "WHERE run_id=? AND lead_rank IS NOT NULL ORDER BY lead_rank", (run_id,)):
        out.append({"cluster_id": row[0], "size": row[1], "known_members": row[2],
                    "review_members": row[3], "score": row[4], "rank": row[5],
                    "reasons": json.loads(row[6]), "series": json.loads(row[7]),
                    "first_capture": row[8], "last_capture": row[9],
                    "cameras": json.loads(row[10]), "joined_by": json.loads(row[11])})
    return out
