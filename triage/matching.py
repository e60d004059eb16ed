"""The case-level matching step: the case's hashes against the hash-set store.

``match_case`` is used by ``triage scan`` (after hashing) and by ``triage match`` (re-run
against newer sets without rescanning). For one run it records the sets used
(``hash_sets_used``), writes one ``matches`` row per hit (exact: MD5/SHA-1/SHA-256; near:
pHash/dHash/PDQ within the run's thresholds), appends to the audit trail and returns a
summary grouped by category and set, with "known" (NSRL-style) hits separate. Which
algorithm is matched how (exact, near with which default threshold, behind which quality
gate) comes from the algorithm registry (:mod:`hashsets.algorithms`).

Rules: digests of the empty file are never matched; a hash whose quality is below its
algorithm's gate (PDQ: 50 by default) is not matched, and the summary says how many were
skipped. A damaged set is skipped and named in ``damaged_sets`` while the other sets
still match (the CLI then exits 6). Re-running for the same run replaces that run's rows;
output order is deterministic.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hashsets.algorithms import ALGORITHMS, EMPTY_DIGESTS, gated, near_algorithms
from hashsets.algorithms import get as get_algorithm
from hashsets.errors import HashSetFileError
from hashsets.matching import Hit, exact_matches, load_perceptual, near_matches
from hashsets.store import HashSetStore, SetInfo, default_store_path
from hashsets.video import THRESHOLD_DEFAULTS as VIDEO_THRESHOLDS

from . import videomatch
from .case import DRAFT_STEP, DRAFT_VARIANT, Case
from .errors import HashSetError
from .model import (
    GRADES,
    DamagedSet,
    KnownHits,
    MatchHit,
    MatchSummary,
    SetHits,
    SetUsed,
    to_dict,
)
from .util import canonical_json

NO_CATEGORY = "(none)"
#: Suffix of a quality-gate key (``pdq_min_quality``) and of its skip counter
#: (``pdq_low_quality``).
MIN_QUALITY = "_min_quality"
LOW_QUALITY = "_low_quality"
#: Quality is a percentage (PDQ's own scale, Meta's PDQ paper).
MAX_QUALITY = 100


def effective_thresholds(overrides: dict[str, int] | None) -> dict[str, int]:
    """Default near-match thresholds per near-matching algorithm (key: its name, value: the
    largest Hamming distance) and quality gates (key: ``NAME_min_quality``), from the
    registry, with overrides applied. Unknown keys are refused (a typo must not silently
    fall back to a default)."""
    out: dict[str, int] = {}
    limit: dict[str, int] = {}
    for alg in near_algorithms():
        if alg.default_threshold is not None:
            out[alg.name], limit[alg.name] = alg.default_threshold, alg.bits
    for alg in gated():
        key = alg.name + MIN_QUALITY
        out[key], limit[key] = int(alg.min_quality or 0), MAX_QUALITY
    for key, (default, top) in VIDEO_THRESHOLDS.items():  # vPDQ's rule (issue 15)
        out[key], limit[key] = default, top
    for key, value in (overrides or {}).items():
        if key not in out:
            raise HashSetError(f"unknown threshold {key!r} (known: {', '.join(sorted(out))})")
        if not 0 <= int(value) <= limit[key]:
            raise HashSetError(f"threshold {key}={value} is outside 0..{limit[key]}")
        out[key] = int(value)
    return out


def _set_used(s: SetInfo) -> SetUsed:
    return SetUsed(set_id=s.set_id, name=s.name, version=s.version, format=s.format,
                   source_sha256=s.source_sha256, entries=s.accepted, known=s.known)


def match_case(case: Case, run_id: int, store_path: str | Path | None = None,
               thresholds: dict[str, int] | None = None,
               confirmation: dict[str, int] | None = None) -> MatchSummary:
    """Match every hash of the case against the store; record and summarise (see module doc).

    Raises :class:`~triage.errors.HashSetError` when the store is unusable. A missing store
    is not an error: nothing is matched and the summary says so.
    """
    limits = effective_thresholds(thresholds)
    path = Path(store_path) if store_path is not None else default_store_path()
    if not path.exists():
        case.audit("match.nostore", {"run": run_id, "store": str(path)})
        return MatchSummary(store=str(path), thresholds=limits, notes=(
            f"no hash-set store at {path}: nothing matched (import sets with "
            "'triage hashset import')",))
    try:
        store = HashSetStore(path, readonly=True)
    except HashSetFileError as e:
        raise HashSetError(str(e)) from e
    try:
        return _match(case, run_id, store, str(path), limits, confirmation)
    except HashSetFileError as e:
        raise HashSetError(str(e)) from e
    finally:
        store.close()


#: Decode states of a perceptual value (``matches.decode``).
DECODE_FULL, DECODE_CONFIRMED, DECODE_DRAFT = "full", "confirmed", "draft"
ORIGINAL = "original"


@dataclass(frozen=True, slots=True)
class NearQuery:
    """One perceptual value of a file to match: which form of the picture (``variant``),
    its quality and how the picture was decoded."""

    file_id: int
    algorithm: str
    value: str
    variant: str
    quality: int | None
    decode: str


def near_queries(case: Case) -> list[NearQuery]:
    """Every perceptual value of the case to match: ``hashes`` (the picture as stored,
    variant ``original``) and ``hash_variants`` (rotations, mirror images, unletterboxed;
    not the ``draft`` values a confirmation replaced), each with its file's decode state:
    ``draft`` while the value comes from a JPEG draft decode, ``confirmed`` once a draft
    candidate was decoded again at full size, ``full`` otherwise. In file, algorithm,
    variant order."""
    near = [a.name for a in near_algorithms()]
    if not near:
        return []
    marks = ", ".join("?" * len(near))
    decode: dict[tuple[int, str], str] = {}
    out: list[NearQuery] = []
    for fid, alg, value, quality, how in case.conn.execute(
            f"SELECT file_id, algorithm, value, quality, preprocessing FROM hashes "
            f"WHERE algorithm IN ({marks}) ORDER BY file_id, algorithm", near):
        state = DECODE_DRAFT if how and DRAFT_STEP in how else DECODE_FULL
        decode[(fid, alg)] = state
        out.append(NearQuery(fid, alg, value, ORIGINAL, quality, state))
    for fid, alg in case.conn.execute(
            f"SELECT file_id, algorithm FROM hash_variants WHERE variant=? AND algorithm IN "
            f"({marks})", (DRAFT_VARIANT, *near)):
        if decode.get((fid, alg)) == DECODE_FULL:
            decode[(fid, alg)] = DECODE_CONFIRMED
    for i, q in enumerate(out):
        if decode[(q.file_id, q.algorithm)] != q.decode:
            out[i] = replace(q, decode=decode[(q.file_id, q.algorithm)])
    for fid, alg, value, quality, variant in case.conn.execute(
            f"SELECT file_id, algorithm, value, quality, variant FROM hash_variants "
            f"WHERE variant != ? AND algorithm IN ({marks}) "
            f"ORDER BY file_id, algorithm, variant", (DRAFT_VARIANT, *near)):
        held = decode.get((fid, alg))
        if held is not None:  # a variant without its original is not matched
            out.append(NearQuery(fid, alg, value, variant, quality, held))
    return out


def _variant_order(variant: str | None) -> tuple[int, str]:
    """Which variant's hit is kept when several forms of a picture match one set value
    at the same distance: the picture as stored first, then the dihedral order, then the
    unletterboxed forms."""
    from hashsets.algorithms.variants import DIHEDRAL, UNLETTERBOXED

    if variant is None or variant == ORIGINAL:
        return (0, "")
    base, _, rest = variant.partition("+")
    offset, name = (len(DIHEDRAL), rest or ORIGINAL) if base == UNLETTERBOXED else (0, variant)
    rank = DIHEDRAL.index(name) if name in DIHEDRAL else 2 * len(DIHEDRAL)
    return (1 + offset + rank, variant)


def _match(case: Case, run_id: int, store: HashSetStore, store_name: str,
           limits: dict[str, int], confirmation: dict[str, int] | None = None
           ) -> MatchSummary:
    sets, damaged = store.readable_sets()
    exact_q: list[tuple[int, str, str]] = []
    skipped = {"empty_file_digests": 0, **{a.name + LOW_QUALITY: 0 for a in gated()}}
    for file_id, alg, value in case.conn.execute(
            "SELECT file_id, algorithm, value FROM hashes ORDER BY file_id, algorithm"):
        a = ALGORITHMS.get(alg)
        if a is None or a.match != "exact":
            continue
        if value in EMPTY_DIGESTS:
            skipped["empty_file_digests"] += 1
            continue
        exact_q.append((file_id, alg, value))
    near_q: dict[str, list[NearQuery]] = defaultdict(list)
    for q in near_queries(case):
        if q.algorithm not in limits:
            continue
        gate = limits.get(q.algorithm + MIN_QUALITY)
        if gate is not None and (q.quality is None or q.quality < gate):
            if q.variant == ORIGINAL:
                skipped[q.algorithm + LOW_QUALITY] += 1
            continue
        near_q[q.algorithm].append(q)
    found: list[Hit] = exact_matches(store, exact_q, sets, damaged) if sets else []
    near_found: list[tuple[Hit, NearQuery]] = []
    if sets:
        for alg in sorted(near_q):
            known = load_perceptual(store, alg, sets, damaged)
            queries = near_q[alg]
            margin = get_algorithm(alg).draft_margin
            # Draft-decoded values are searched wider: within the margin they are
            # candidates a full decode would decide (issue 14 item 3).
            for wide, threshold in ((False, limits[alg]), (True, limits[alg] + margin)):
                chosen = [(i, q) for i, q in enumerate(queries)
                          if (q.decode == DECODE_DRAFT) == wide]
                if not chosen:
                    continue
                for h in near_matches(store, [(i, alg, q.value) for i, q in chosen],
                                      min(threshold, get_algorithm(alg).bits), known,
                                      damaged):
                    q = queries[h.query]
                    near_found.append((replace(h, query=q.file_id, threshold=limits[alg]), q))
    # One row per file, set and known value: the closest form of the picture wins.
    best: dict[tuple[int, str, str, str], tuple[Hit, NearQuery]] = {}
    for h, q in near_found:
        key = (h.query, h.set_id, h.algorithm, h.known_value)
        held = best.get(key)
        if held is None or (h.distance, _variant_order(q.variant)) < (
                held[0].distance, _variant_order(held[1].variant)):
            best[key] = (h, q)
    near_meta = {id(h): q for h, q in best.values()}
    found.extend(h for h, _ in best.values())
    video = videomatch.find(case, store, sets, limits, damaged)  # issue 15
    if damaged:
        # No partial results from a damaged set: a hit list missing some of its entries
        # would read as complete. The set is named; the other sets' hits stand.
        bad = {d.set_id for d in damaged}
        found = [h for h in found if h.set_id not in bad]
        video.drop_sets(bad)
        # Nor is it "used": listed with 0 hits it would read as matched and clean.
        sets = [s for s in sets if s.set_id not in bad]
    damaged_sets = tuple(DamagedSet(set_id=d.set_id, name=d.set_name, error=str(d))
                         for d in damaged)
    by_id = {s.set_id: s for s in sets}
    order = {s.set_id: i for i, s in enumerate(sets)}
    found.sort(key=lambda h: (h.query, order[h.set_id], h.algorithm, h.known_value))
    video_hits = video.match_hits()
    hits = _graded([_match_hit(h, by_id[h.set_id], near_meta.get(id(h))) for h in found]
                   + video_hits,
                   [h.ref for h in found] + [-1 - i for i in range(len(video_hits))])
    with case.transaction() as c:
        c.execute("DELETE FROM matches WHERE run_id=?", (run_id,))
        c.execute("DELETE FROM hash_sets_used WHERE run_id=?", (run_id,))
        c.executemany(
            "INSERT INTO hash_sets_used(run_id, set_id, name, version, format, source_sha256, "
            "entry_count, category_map, known) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, s.set_id, s.name, s.version, s.format, s.source_sha256, s.accepted,
              canonical_json(s.category_map) if s.category_map is not None else None,
              int(s.known)) for s in sets])
        c.executemany(
            "INSERT INTO matches(run_id, file_id, set_id, set_name, set_version, algorithm, "
            "match_type, file_value, known_value, distance, threshold, category, category_raw, "
            "series, victim_identified, offender_identified, known, entry_ref, variant, "
            "quality, grade, decode, files_same_value, entry_name, entry_fields) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, h.file_id, h.set_id, h.set_name, h.set_version, h.algorithm,
              h.match_type, h.file_value, h.known_value, h.distance, h.threshold, h.category,
              h.category_raw, h.series, _int(h.victim_identified),
              _int(h.offender_identified), int(h.known), h.entry_ref, h.variant, h.quality,
              h.grade, h.decode, h.files_same_value, h.entry_name,
              canonical_json(h.entry_fields) if h.entry_fields else None) for h in hits])
        video.record(c, run_id)
    summary = summarise(store_name, limits, [_set_used(s) for s in sets], hits, skipped,
                        damaged_sets, confirmation)
    case.audit("match", {"run": run_id, "store": summary.store,
                         "sets": [[s.set_id, s.name, s.version, s.source_sha256] for s in sets],
                         "thresholds": limits, "hits": summary.hits,
                         "by_grade": summary.by_grade,
                         "skipped": summary.skipped,
                         "damaged_sets": [to_dict(d) for d in damaged_sets]})
    return summary


#: The rule of the ``confirmed`` grade (issue 14 item 4): a near hit of the anchor
#: algorithm (PDQ) and a near hit of one of the corroborating algorithms (pHash, dHash) on
#: the same set entry, from the same form of the picture (equal ``variant``), neither from
#: a draft decode. pHash with dHash alone, or PDQ on one variant with pHash on another,
#: stay ``review``.
CONFIRM_ANCHOR = "pdq"
CONFIRM_CORROBORATORS = frozenset({"phash", "dhash"})


def _graded(hits: list[MatchHit], refs: list[int]) -> list[MatchHit]:
    """Each hit with its grade (:data:`GRADES`, rule of ``confirmed``: see
    :data:`CONFIRM_ANCHOR`) and the number of files whose hit is on the same set value
    (``files_same_value``). ``refs`` are the hits' set entries."""
    same: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    algorithms_on_form: dict[tuple[int, str, int, str | None], set[str]] = defaultdict(set)
    for h, ref in zip(hits, refs, strict=True):
        same[(h.set_id, h.algorithm, h.known_value)].add(h.file_id)
        if h.match_type == "near" and h.decode != DECODE_DRAFT:
            algorithms_on_form[(h.file_id, h.set_id, ref, h.variant)].add(h.algorithm)
    out = []
    for h, ref in zip(hits, refs, strict=True):
        on_form = algorithms_on_form.get((h.file_id, h.set_id, ref, h.variant), set())
        if h.match_type == "exact":
            grade = "exact"
        elif h.decode == DECODE_DRAFT:
            grade = "unconfirmed"
        elif (h.algorithm in CONFIRM_CORROBORATORS | {CONFIRM_ANCHOR}
              and CONFIRM_ANCHOR in on_form and on_form & CONFIRM_CORROBORATORS):
            grade = "confirmed"
        else:
            grade = "review"
        out.append(replace(h, grade=grade,
                           files_same_value=len(same[(h.set_id, h.algorithm, h.known_value)])))
    return out


def _int(flag: bool | None) -> int | None:
    return None if flag is None else int(flag)


def _match_hit(h: Hit, s: SetInfo, q: NearQuery | None = None) -> MatchHit:
    return MatchHit(file_id=h.query, set_id=h.set_id, set_name=s.name, set_version=s.version,
                    algorithm=h.algorithm, match_type=h.match_type, file_value=h.file_value,
                    known_value=h.known_value, distance=h.distance, threshold=h.threshold,
                    category=h.category, category_raw=h.category_raw, series=h.series,
                    victim_identified=h.victim_identified,
                    offender_identified=h.offender_identified, known=s.known,
                    entry_ref=h.entry_ref if h.entry_ref is not None else str(h.ref),
                    variant=q.variant if q is not None else None,
                    quality=q.quality if q is not None else None,
                    decode=q.decode if q is not None else None,
                    entry_name=h.name, entry_fields=entry_fields(h))


def entry_fields(h: Hit) -> dict[str, Any]:
    """The matched entry's fields for the case: the source's own columns (JSON text in the
    store), the entry's flags that have no column of their own, and ``record``: its line or
    record number in the source (an entry id need not be unique: HashKeeper's is not)."""
    out: dict[str, Any] = {}
    if h.fields:
        try:
            extra = json.loads(h.fields)
        except ValueError:
            extra = {"fields": h.fields}  # kept as stored, never guessed
        out.update(extra if isinstance(extra, dict) else {"fields": extra})
    for key, value in (("is_distributed", h.is_distributed), ("baseline", h.baseline)):
        if value is not None:
            out[key] = value
    out["record"] = h.ref
    return out


def summarise(store: str, thresholds: dict[str, int], sets: list[SetUsed],
              hits: list[MatchHit], skipped: dict[str, int],
              damaged: tuple[DamagedSet, ...] = (),
              confirmation: dict[str, int] | None = None) -> MatchSummary:
    """The summary of one match run: hits grouped by category and by set, known-file sets
    apart, and notes on what was not matched."""
    files: set[int] = set()
    known_files: set[int] = set()
    cat_files: dict[str, set[int]] = defaultdict(set)
    counts: dict[str, dict[str, int]] = {}  # label -> exact/near counts
    known_labels: set[str] = set()
    set_files: dict[str, set[int]] = defaultdict(set)
    totals = {"exact": 0, "near": 0}
    known_hits = 0
    for h in hits:
        label = f"{h.set_name} ({h.set_id})"
        st = counts.setdefault(label, {"exact": 0, "near": 0})
        st[h.match_type] += 1
        set_files[label].add(h.file_id)
        if h.known:
            known_labels.add(label)
            known_files.add(h.file_id)
            known_hits += 1
        else:
            files.add(h.file_id)
            cat_files[h.category or NO_CATEGORY].add(h.file_id)
            totals[h.match_type] += 1
    by_set = {label: SetHits(exact=st["exact"], near=st["near"], files=len(set_files[label]))
              for label, st in sorted(counts.items())}
    notes: list[str] = []
    for alg in gated():
        if n := skipped.get(alg.name + LOW_QUALITY):
            notes.append(f"{n} {alg.label} hashes below quality "
                         f"{thresholds[alg.name + MIN_QUALITY]} were not matched (too "
                         "unreliable)")
    for d in damaged:
        notes.append(f"hash set {d.name} ({d.set_id}) could not be read and was NOT "
                     f"matched: {d.error}")
    if skipped.get("empty_file_digests"):
        notes.append(f"{skipped['empty_file_digests']} empty-file digests were not matched "
                     "(they say nothing about content)")
    by_grade = dict.fromkeys(GRADES, 0)
    for h in hits:
        if h.grade in by_grade:
            by_grade[h.grade] += 1
    if by_grade["unconfirmed"]:
        notes.append(f"{by_grade['unconfirmed']} near hits are unconfirmed candidates: their "
                     "values come from a reduced (draft) decode that could not be checked "
                     "at full size (evidence not reachable, the full decode failed, or the "
                     "content re-read was not the content scanned)")
    if known_files:
        notes.append(f"{len(known_files)} files are in known-file sets (NSRL means known, "
                     "not good; nothing is hidden)")
    return MatchSummary(
        store=store, thresholds=thresholds, sets=tuple(sets),
        hits=totals["exact"] + totals["near"], exact=totals["exact"], near=totals["near"],
        files_matched=len(files),
        by_category={k: len(v) for k, v in sorted(cat_files.items())},
        by_set={k: v for k, v in by_set.items() if k not in known_labels},
        known=KnownHits(files=len(known_files), hits=known_hits,
                        by_set={k: v for k, v in by_set.items() if k in known_labels}),
        skipped=dict(skipped), damaged_sets=tuple(damaged), notes=tuple(notes),
        by_grade=by_grade, confirmation=dict(confirmation or {}))
