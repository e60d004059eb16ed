"""Video matching for a case (issue 15): part of :func:`triage.matching.match_case`.

Three kinds of hit, each one ``matches`` row with algorithm ``vpdq`` (so every report,
export and summary counts it with its set, category, closest frame distance and threshold,
and explains it with its text, ``entry_ref``) plus one ``video_matches`` row with the
detail:

* ``video``: a scanned video against each known video of the store's vPDQ sets, by Meta's
  rule (:mod:`hashsets.video`): both percentages, the thresholds, and
  the matched time ranges of both videos; ``file_value``/``known_value`` are the closest
  frame pair.
* ``frame``: a scanned video's frames against the PDQ values of picture sets: one row per
  known picture a frame matches, naming the first matching frame's
  timestamp and every matching time range.
* ``picture``: a scanned picture's PDQ against the frames of known videos: one row per
  known video, naming the closest frame and its timestamp.

Frames follow the frame rule (distance <= ``vpdq``, quality >= ``vpdq_min_quality`` on both
sides; a picture set's values carry no quality and are taken as they are).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashsets.errors import DamagedSetError
from hashsets.store import HashSetStore, SetInfo
from hashsets.video import (
    PDQ_BITS,
    FrameHit,
    FrameTable,
    Rule,
    VideoMatch,
    match_frames,
    match_videos,
    sampling_step,
    time_ranges,
    unpack,
)

from .case import Case
from .model import MatchHit

#: Time ranges written out in a hit's text (all of them are in ``video_matches``).
RANGES_SHOWN = 8


@dataclass
class _Known:
    """Where a known video or picture value came from."""

    set: SetInfo
    ref: int
    name: str | None
    category: str | None
    category_raw: str | None
    series: str | None
    victim: bool | None
    offender: bool | None
    entry_ref: str | None


@dataclass
class VideoHits:
    """The hits of one match run, before and after they are written."""

    hits: list[tuple[MatchHit, dict[str, Any]]] = field(default_factory=list)

    def drop_sets(self, bad: set[str]) -> None:
        self.hits = [h for h in self.hits if h[0].set_id not in bad]

    def match_hits(self) -> list[MatchHit]:
        return [h for h, _ in self.hits]

    def record(self, c: sqlite3.Connection, run_id: int) -> None:
        """Write the ``video_matches`` rows (after their ``matches`` rows, same
        transaction)."""
        c.execute("DELETE FROM video_matches WHERE run_id=?", (run_id,))
        for h, d in self.hits:
            row = c.execute("SELECT id FROM matches WHERE run_id=? AND file_id=? AND set_id=? "
                            "AND algorithm=? AND known_value=?",
                            (run_id, h.file_id, h.set_id, h.algorithm, h.known_value)
                            ).fetchone()
            c.execute(
                "INSERT INTO video_matches(run_id, match_id, file_id, kind, set_id, "
                "known_video, query_percent, known_percent, query_frames, known_frames, "
                "query_matched, known_matched, distance, threshold, min_quality, "
                "query_threshold, known_threshold, compared_interval, query_ranges, "
                "known_ranges) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, row[0], h.file_id, d["kind"], h.set_id, d.get("known_video"),
                 d.get("query_percent"), d.get("known_percent"), d.get("query_frames"),
                 d.get("known_frames"), d.get("query_matched"), d.get("known_matched"),
                 h.distance, d["threshold"], d["min_quality"], d.get("query_threshold"),
                 d.get("known_threshold"), d.get("compared_interval"),
                 json.dumps(d["query_ranges"]),
                 json.dumps(d.get("known_ranges", []))))


def _ranges_text(ranges: Sequence[Sequence[float]]) -> str:
    shown = ", ".join(f"{a:.3f}-{b:.3f} s" if a != b else f"{a:.3f} s"
                      for a, b in ranges[:RANGES_SHOWN])
    more = len(ranges) - RANGES_SHOWN
    return shown + (f" and {more} more ranges" if more > 0 else "")


def case_videos(case: Case) -> FrameTable:
    """The case's hashed video frames, collapsed runs expanded again (each repeat at its
    own frame number and timestamp: time ranges need them)."""
    rows = case.conn.execute(
        "SELECT f.file_id, f.frame_number, f.timestamp, f.pdq, f.quality, f.repeats, "
        "v.seconds_per_hash, v.frame_rate FROM video_frames f JOIN videos v "
        "ON v.file_id = f.file_id ORDER BY f.file_id, f.seq").fetchall()
    ids: list[int] = []
    pdq: list[str] = []
    qual: list[int] = []
    num: list[int] = []
    ts: list[float] = []
    for fid, n, t, value, q, repeats, sph, fps in rows:
        step = max(1, int((sph or 0) * (fps or 0)))
        for i in range(int(repeats)):
            ids.append(int(fid))
            pdq.append(value)
            qual.append(int(q))
            num.append(int(n) + i * step)
            ts.append(float(t) + (i * step / fps if fps else 0.0))
    if not ids:
        return FrameTable.empty()
    from hashsets.matching import hex_to_words

    return FrameTable(np.array(ids, dtype=np.int64), hex_to_words(pdq, PDQ_BITS),
                      np.array(qual, dtype=np.int64), np.array(num, dtype=np.int64),
                      np.array(ts, dtype=np.float64))


def _entries(store: HashSetStore, s: SetInfo, refs: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    table = store.entry_table(s)
    if table is None:
        return {}
    wanted = sorted(set(refs))
    out: dict[int, tuple[Any, ...]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        for row in store.conn.execute(
                f"SELECT ref, name, category, category_raw, series, victim_identified, "
                f"offender_identified, entry_ref FROM {table} "
                f"WHERE ref IN ({', '.join('?' * len(chunk))})", chunk):
            out[int(row[0])] = row[1:]
    return out


def _known(s: SetInfo, ref: int, meta: tuple[Any, ...] | None) -> _Known:
    name, cat, raw, series, vic, off, eref = meta or (None,) * 7
    if cat is None and s.known:
        cat = "known"
    return _Known(s, ref, name, cat, raw, series, None if vic is None else bool(vic),
                  None if off is None else bool(off), eref)


def load_video_sets(store: HashSetStore, sets: Sequence[SetInfo],
                    damaged: list[DamagedSetError]) -> tuple[FrameTable, list[_Known]]:
    """Every frame of every known video (video id = index into the returned list)."""
    parts: list[FrameTable] = []
    known: list[_Known] = []
    for s in sets:
        table = store.video_table(s)
        if table is None:
            continue
        try:
            rows = store.conn.execute(f"SELECT ref, pdq, quality, frame_number, timestamp "
                                      f"FROM {table} ORDER BY ref").fetchall()
            meta = _entries(store, s, (r[0] for r in rows))
            tables = [unpack(len(known) + i, *r[1:]) for i, r in enumerate(rows)]
        except (sqlite3.Error, ValueError) as e:
            damaged.append(DamagedSetError(f"{store.path}: set {s.set_id} ({s.name}) is "
                                           f"damaged: table {table}: {e}", s.set_id, s.name))
            continue
        parts.extend(tables)
        known.extend(_known(s, int(r[0]), meta.get(int(r[0]))) for r in rows)
    return FrameTable.concat(parts), known


def _hit(file_id: int, k: _Known, algorithm: str, file_value: str, known_value: str,
         distance: int, threshold: int, text: str) -> MatchHit:
    return MatchHit(file_id=file_id, set_id=k.set.set_id, set_name=k.set.name,
                    set_version=k.set.version, algorithm=algorithm, match_type="near",
                    file_value=file_value, known_value=known_value, distance=distance,
                    threshold=threshold, category=k.category, category_raw=k.category_raw,
                    series=k.series, victim_identified=k.victim, offender_identified=k.offender,
                    known=k.set.known, entry_ref=text)


def find(case: Case, store: HashSetStore, sets: Sequence[SetInfo], limits: dict[str, int],
         damaged: list[DamagedSetError]) -> VideoHits:
    """All video hits of the case against ``sets`` under the run's thresholds (see the
    module doc); damaged video sets are added to ``damaged`` and left out."""
    rule = Rule.from_thresholds(limits)
    out = VideoHits()
    used: set[tuple[int, str, str, str]] = set()

    def add(h: MatchHit, detail: dict[str, Any]) -> None:
        key = (h.file_id, h.set_id, h.algorithm, h.known_value)
        if key in used:  # one row per known value (the matches table's key)
            return
        used.add(key)
        out.hits.append((h, {"threshold": rule.distance, "min_quality": rule.min_quality,
                             **detail}))

    videos = case_videos(case)
    pictures = case.conn.execute("SELECT 1 FROM hashes WHERE algorithm='pdq' LIMIT 1"
                                 ).fetchone() is not None
    if not len(videos) and not pictures:
        return out  # nothing in the case a video set could match: its frames stay unread
    known_frames, known = load_video_sets(store, sets, damaged)
    if len(videos) and len(known_frames):
        for m, interval in aligned_matches(videos, _case_rates(case), known_frames, rule):
            k = known[m.known]
            text = (f"{k.name}: {m.query_percent:.2f}% of this video's {m.query_frames} "
                    f"unique frames match, {m.known_percent:.2f}% of the known video's "
                    f"{m.known_frames} are matched (vPDQ rule: both >= "
                    f"{rule.query_percent:g}%/{rule.known_percent:g}%, frame distance <= "
                    f"{rule.distance}, quality >= {rule.min_quality}; compared at one "
                    f"frame per {interval:g} s); this video "
                    f"{_ranges_text(m.query_ranges)}; known video "
                    f"{_ranges_text(m.known_ranges)}")
            add(_hit(m.query, k, "vpdq", m.best_query_pdq, m.best_known_pdq, m.best_distance,
                     rule.distance, text),
                {"kind": "video", "known_video": k.name, "query_percent": m.query_percent,
                 "known_percent": m.known_percent, "query_frames": m.query_frames,
                 "known_frames": m.known_frames, "query_matched": m.query_matched,
                 "known_matched": m.known_matched, "query_threshold": rule.query_percent,
                 "known_threshold": rule.known_percent, "compared_interval": interval,
                 "query_ranges": [list(r) for r in m.query_ranges],
                 "known_ranges": [list(r) for r in m.known_ranges]})
    if len(videos):
        _frames_vs_pictures(store, sets, videos, rule, damaged, add)
    if len(known_frames):
        _pictures_vs_frames(case, known_frames, known, rule, add)
    return out


def _case_rates(case: Case) -> dict[int, tuple[float, float]]:
    """``{file id: (sampling interval in seconds, frame rate)}`` of the case's videos."""
    out: dict[int, tuple[float, float]] = {}
    for fid, sph, fps in case.conn.execute(
            "SELECT file_id, seconds_per_hash, frame_rate FROM videos WHERE frame_rate > 0"):
        step = max(1, int(float(sph) * float(fps)))
        out[int(fid)] = (round(step / float(fps), 3), float(fps))
    return out


def _known_rates(known: FrameTable) -> dict[int, tuple[float, float | None]]:
    """``{video: (sampling interval, frame rate or None)}`` of known videos, from their
    frame numbers and timestamps (timestamp = frame number / frame rate in vPDQ)."""
    out: dict[int, tuple[float, float | None]] = {}
    order = np.argsort(known.video, kind="stable")
    vids = known.video[order]
    cuts = np.flatnonzero(np.diff(vids)) + 1
    for rows in np.split(order, cuts):
        if not len(rows):
            continue
        ts, fn = known.timestamp[rows], known.frame_number[rows]
        ok = ts > 0
        fps = round(float(np.median(fn[ok] / ts[ok])), 2) if ok.any() else None
        out[int(known.video[rows[0]])] = (round(sampling_step(ts), 3), fps)
    return out


def _subsample(t: FrameTable, rates: dict[int, tuple[float, Any]], interval: float
               ) -> FrameTable:
    """The frames vPDQ would have hashed at one frame per ``interval`` seconds (Meta's rule:
    frame number divisible by ``int(interval x fps)``), of videos sampled at least as
    densely; other videos are left out."""
    keep = np.zeros(len(t), dtype=bool)
    for vid, (own, fps) in rates.items():
        if own > interval + 1e-6:
            continue
        rows = t.video == vid
        mod = max(1, int(interval * fps + 1e-9)) if fps else 1
        keep |= rows & (t.frame_number % mod == 0)
    return t.take(np.flatnonzero(keep))


def aligned_matches(videos: FrameTable, query_rates: dict[int, tuple[float, float]],
                    known: FrameTable, rule: Rule) -> list[tuple[VideoMatch, float]]:
    """:func:`hashsets.video.match_videos` with both videos of each pair compared at the
    sparser of their two samplings: a known video hashed at every frame (Meta's reference
    files) against a scan at one frame per second is first reduced to the frames vPDQ
    hashes at one per second (the same frame numbers), else most of its unique frames could
    never be matched and its percentage would mean nothing. Returns each match with the
    interval it was compared at."""
    k_rates = _known_rates(known)
    intervals = sorted({r[0] for r in query_rates.values()} | {r[0] for r in k_rates.values()})
    out: list[tuple[VideoMatch, float]] = []
    for interval in intervals:
        q = _subsample(videos, dict(query_rates), interval)
        k = _subsample(known, dict(k_rates), interval)
        if not len(q) or not len(k):
            continue
        for m in match_videos(q, k, rule):
            pair = max(query_rates[m.query][0], k_rates[m.known][0])
            if abs(pair - interval) < 1e-6:
                out.append((m, interval))
    out.sort(key=lambda x: (x[0].query, x[0].known))
    return out


def _frames_vs_pictures(store: HashSetStore, sets: Sequence[SetInfo], videos: FrameTable,
                        rule: Rule, damaged: list[DamagedSetError], add: Any) -> None:
    """The case's video frames against the PDQ values of picture sets."""
    from hashsets.matching import load_perceptual, words_to_hex

    kp = load_perceptual(store, "pdq", [s for s in sets if store.video_table(s) is None],
                         damaged)
    if not len(kp.words):
        return
    pictures = FrameTable(np.arange(len(kp.words), dtype=np.int64), kp.words,
                          np.full(len(kp.words), 100, dtype=np.int64),
                          np.zeros(len(kp.words), dtype=np.int64),
                          np.zeros(len(kp.words), dtype=np.float64))
    groups: dict[tuple[int, int], list[FrameHit]] = defaultdict(list)
    for fh in match_frames(videos, pictures, rule.distance, rule.min_quality):
        groups[(fh.query, fh.known)].append(fh)
    by_set: dict[int, list[int]] = defaultdict(list)
    for _, ki in groups:
        by_set[int(kp.set_index[ki])].append(ki)
    meta: dict[tuple[int, int], tuple[Any, ...] | None] = {}
    for si, kis in by_set.items():
        s = kp.sets[si]
        try:
            entries = _entries(store, s, (int(kp.refs[k]) for k in kis))
        except sqlite3.Error as e:
            damaged.append(DamagedSetError(f"{store.path}: set {s.set_id} ({s.name}) is "
                                           f"damaged: entry metadata: {e}", s.set_id, s.name))
            continue
        for k in kis:
            meta[(si, k)] = entries.get(int(kp.refs[k]))
    for (fid, ki), found in sorted(groups.items()):
        si = int(kp.set_index[ki])
        if (si, ki) not in meta:
            continue
        kn = _known(kp.sets[si], int(kp.refs[ki]), meta[(si, ki)])
        first = min(found, key=lambda h: (h.query_timestamp, h.distance))
        best = min(found, key=lambda h: (h.distance, h.query_timestamp))
        step = sampling_step(videos.timestamp[videos.video == fid])
        ranges = time_ranges([h.query_timestamp for h in found], step)
        label = kn.entry_ref or kn.name or f"{kn.set.name} record {kn.ref}"
        text = (f"frame {first.query_frame} at {first.query_timestamp:.3f} s of this video "
                f"matches {label} (distance {first.distance}; closest: frame "
                f"{best.query_frame} at {best.query_timestamp:.3f} s, distance "
                f"{best.distance}); matching frames at {_ranges_text(ranges)}")
        add(_hit(fid, kn, "vpdq", best.query_pdq, words_to_hex(kp.words[ki:ki + 1])[0],
                 best.distance, rule.distance, text),
            {"kind": "frame", "query_ranges": [list(r) for r in ranges],
             "query_frames": int((videos.video == fid).sum()),
             "query_matched": len(found)})


def _pictures_vs_frames(case: Case, known_frames: FrameTable, known: list[_Known],
                        rule: Rule, add: Any) -> None:
    """The case's pictures (their PDQ) against the frames of known videos."""
    rows = case.conn.execute("SELECT file_id, value, quality FROM hashes WHERE algorithm='pdq' "
                             "ORDER BY file_id").fetchall()
    if not rows:
        return
    from hashsets.matching import hex_to_words

    pictures = FrameTable(np.array([r[0] for r in rows], dtype=np.int64),
                          hex_to_words([r[1] for r in rows], PDQ_BITS),
                          np.array([r[2] if r[2] is not None else 0 for r in rows],
                                   dtype=np.int64),
                          np.zeros(len(rows), dtype=np.int64),
                          np.zeros(len(rows), dtype=np.float64))
    groups: dict[tuple[int, int], list[FrameHit]] = defaultdict(list)
    for fh in match_frames(pictures, known_frames, rule.distance, rule.min_quality):
        groups[(fh.query, fh.known)].append(fh)
    for (fid, vi), found in sorted(groups.items()):
        k = known[vi]
        best = min(found, key=lambda h: (h.distance, h.known_timestamp))
        ranges = time_ranges([h.known_timestamp for h in found], 1.0)
        text = (f"{k.name} frame {best.known_frame} at {best.known_timestamp:.3f} s "
                f"(distance {best.distance}); frames of the known video within the "
                f"threshold at {_ranges_text(ranges)}")
        add(_hit(fid, k, "vpdq", best.query_pdq, best.known_pdq, best.distance, rule.distance,
                 text),
            {"kind": "picture", "known_video": k.name, "query_ranges": [],
             "known_ranges": [list(r) for r in ranges], "known_matched": len(found)})
