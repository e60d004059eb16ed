"""The case-level matching step: the case's hashes against the hash-set store.

``match_case`` is used by ``triage scan`` (after hashing) and by ``triage match`` (re-run
against newer sets without rescanning). For one run it records the sets used
(``hash_sets_used``), writes one ``matches`` row per hit (exact: MD5/SHA-1/SHA-256; near:
pHash/dHash/PDQ within the run's thresholds), appends to the audit trail and returns a
summary grouped by category and set, with "known" (NSRL-style) hits separate.

Rules: digests of the empty file are never matched; a PDQ hash whose quality is below the
minimum (50 by default) is not matched, and the summary says how many were skipped.
Re-running for the same run replaces that run's rows; output order is deterministic.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from hashsets.algorithms import CRYPTOGRAPHIC, EMPTY_DIGESTS, PERCEPTUAL
from hashsets.algorithms import get as get_algorithm
from hashsets.errors import HashSetFileError
from hashsets.matching import Hit, exact_matches, load_perceptual, near_matches
from hashsets.store import HashSetStore, SetInfo, default_store_path

from .case import Case
from .errors import HashSetError
from .util import canonical_json

#: Option key for the PDQ quality floor (the default comes from hashsets.algorithms).
PDQ_QUALITY_KEY = "pdq_min_quality"
NO_CATEGORY = "(none)"


def effective_thresholds(overrides: dict[str, int] | None) -> dict[str, int]:
    """Default near-match thresholds per perceptual algorithm, with overrides applied.

    Keys: ``phash``, ``dhash``, ``pdq`` (max Hamming distance) and ``pdq_min_quality``.
    Unknown keys are refused (a typo must not silently fall back to a default)."""
    out: dict[str, int] = {}
    for alg in PERCEPTUAL:
        if alg.default_threshold is not None:
            out[alg.name] = alg.default_threshold
    pdq = get_algorithm("pdq")
    out[PDQ_QUALITY_KEY] = int(pdq.min_quality or 0)
    for key, value in (overrides or {}).items():
        if key not in out:
            raise HashSetError(f"unknown threshold {key!r} (known: {', '.join(sorted(out))})")
        bits = pdq.bits if key == PDQ_QUALITY_KEY else get_algorithm(key).bits
        limit = 100 if key == PDQ_QUALITY_KEY else bits
        if not 0 <= int(value) <= limit:
            raise HashSetError(f"threshold {key}={value} is outside 0..{limit}")
        out[key] = int(value)
    return out


def _set_row(s: SetInfo) -> dict[str, Any]:
    return {"set_id": s.set_id, "name": s.name, "version": s.version, "format": s.format,
            "source_sha256": s.source_sha256, "entries": s.accepted, "known": s.known}


def match_case(case: Case, run_id: int, store_path: str | Path | None = None,
               thresholds: dict[str, int] | None = None) -> dict[str, Any]:
    """Match every hash of the case against the store; record and summarise (see module doc).

    Raises :class:`~triage.errors.HashSetError` when the store is unusable. A missing store
    is not an error: nothing is matched and the summary says so.
    """
    limits = effective_thresholds(thresholds)
    path = Path(store_path) if store_path is not None else default_store_path()
    summary: dict[str, Any] = {"store": str(path), "thresholds": limits, "sets": [],
                               "hits": 0, "exact": 0, "near": 0, "files_matched": 0,
                               "by_category": {}, "by_set": {},
                               "known": {"files": 0, "hits": 0, "by_set": {}},
                               "skipped": {"empty_file_digests": 0, "pdq_low_quality": 0},
                               "notes": []}
    if not path.exists():
        summary["notes"].append(f"no hash-set store at {path}: nothing matched (import sets "
                                "with 'triage hashset import')")
        case.audit("match.nostore", {"run": run_id, "store": str(path)})
        return summary
    try:
        store = HashSetStore(path, readonly=True)
    except HashSetFileError as e:
        raise HashSetError(str(e)) from e
    try:
        return _match(case, run_id, store, limits, summary)
    except HashSetFileError as e:
        raise HashSetError(str(e)) from e
    finally:
        store.close()


def _match(case: Case, run_id: int, store: HashSetStore, limits: dict[str, int],
           summary: dict[str, Any]) -> dict[str, Any]:
    sets = store.sets()
    summary["sets"] = [_set_row(s) for s in sets]
    crypto = {a.name for a in CRYPTOGRAPHIC}
    perceptual = {a.name for a in PERCEPTUAL}
    exact_q: list[tuple[int, str, str]] = []
    near_q: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for file_id, alg, value, quality in case.conn.execute(
            "SELECT file_id, algorithm, value, quality FROM hashes ORDER BY file_id, algorithm"):
        if alg in crypto:
            if value in EMPTY_DIGESTS:
                summary["skipped"]["empty_file_digests"] += 1
                continue
            exact_q.append((file_id, alg, value))
        elif alg in perceptual and alg in limits:
            if alg == "pdq" and (quality is None or quality < limits[PDQ_QUALITY_KEY]):
                summary["skipped"]["pdq_low_quality"] += 1
                continue
            near_q[alg].append((file_id, alg, value))
    hits: list[Hit] = exact_matches(store, exact_q, sets) if sets else []
    if sets:
        for alg in sorted(near_q):
            known = load_perceptual(store, alg, sets)
            hits.extend(near_matches(store, near_q[alg], limits[alg], known))
    by_id = {s.set_id: s for s in sets}
    order = {s.set_id: i for i, s in enumerate(sets)}
    hits.sort(key=lambda h: (h.query, order[h.set_id], h.algorithm, h.known_value))
    rows = [(run_id, h.query, h.set_id, by_id[h.set_id].name, by_id[h.set_id].version,
             h.algorithm, h.match_type, h.file_value, h.known_value, h.distance, h.threshold,
             h.category, h.category_raw, h.series,
             None if h.victim_identified is None else int(h.victim_identified),
             None if h.offender_identified is None else int(h.offender_identified),
             int(by_id[h.set_id].known), h.entry_ref if h.entry_ref is not None else str(h.ref))
            for h in hits]
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
            "series, victim_identified, offender_identified, known, entry_ref) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    _summarise(summary, hits, by_id)
    case.audit("match", {"run": run_id, "store": summary["store"],
                         "sets": [[s.set_id, s.name, s.version, s.source_sha256] for s in sets],
                         "thresholds": limits, "hits": summary["hits"],
                         "skipped": summary["skipped"]})
    return summary


def _summarise(summary: dict[str, Any], hits: list[Hit], by_id: dict[str, SetInfo]) -> None:
    files: set[int] = set()
    known_files: set[int] = set()
    cat_files: dict[str, set[int]] = defaultdict(set)
    set_stats: dict[str, dict[str, Any]] = {}
    known_stats: dict[str, dict[str, Any]] = {}
    set_files: dict[str, set[int]] = defaultdict(set)
    for h in hits:
        s = by_id[h.set_id]
        label = f"{s.name} ({s.set_id})"
        target = known_stats if s.known else set_stats
        st = target.setdefault(label, {"exact": 0, "near": 0, "files": 0})
        st[h.match_type] += 1
        set_files[label].add(h.query)
        if s.known:
            known_files.add(h.query)
            summary["known"]["hits"] += 1
        else:
            files.add(h.query)
            cat_files[h.category or NO_CATEGORY].add(h.query)
            summary[h.match_type] += 1
            summary["hits"] += 1
    for label, st in (*set_stats.items(), *known_stats.items()):
        st["files"] = len(set_files[label])
    summary["files_matched"] = len(files)
    summary["by_category"] = {k: len(v) for k, v in sorted(cat_files.items())}
    summary["by_set"] = dict(sorted(set_stats.items()))
    summary["known"]["files"] = len(known_files)
    summary["known"]["by_set"] = dict(sorted(known_stats.items()))
    if summary["skipped"]["pdq_low_quality"]:
        summary["notes"].append(
            f"{summary['skipped']['pdq_low_quality']} PDQ hashes below quality "
            f"{summary['thresholds'][PDQ_QUALITY_KEY]} were not matched (too unreliable)")
    if summary["skipped"]["empty_file_digests"]:
        summary["notes"].append(f"{summary['skipped']['empty_file_digests']} empty-file "
                                "digests were not matched (they say nothing about content)")
    if known_files:
        summary["notes"].append(f"{len(known_files)} files are in known-file sets (NSRL "
                                "means known, not good; nothing is hidden)")
