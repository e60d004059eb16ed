"""Full-decode confirmation of draft-decoded near candidates (issue 14 item 3).

JPEGs are decoded in draft mode for speed (libjpeg scales by 1/2, 1/4 or 1/8), which moves
PDQ by up to 12 bits. So a hit is never decided on a draft value alone: after the scan's
main pass, every picture whose draft-decoded value (of any variant) lies within its
algorithm's threshold plus ``draft_margin`` (PDQ 16 bits) of a known value is decoded again
at full size, and matching then uses the full-decode values.

The second pass uses the same worker pool and protocol as the first: a candidate is an
ordinary task with ``full_decode`` set, for its top-level file (a picture inside an archive
is reached by expanding the archive again). The result replaces the draft result in one
transaction (the draft values are kept in ``hash_variants`` as variant ``draft``), so a scan
killed during the pass leaves each file either draft-decoded (and a candidate again on
resume) or confirmed, never half of each. A confirmation that fails (a timeout, a crash,
a full decode over the memory budget) changes nothing: the failure is recorded in the
errors table at stage ``confirm`` and the file's near hits stay "unconfirmed candidate".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashsets.algorithms import get
from hashsets.errors import HashSetFileError
from hashsets.matching import load_perceptual, near_matches
from hashsets.store import HashSetStore

from . import membudget
from .case import CHILD_ID_BASE, CHILD_SLOTS, Case
from .model import FileResult
from .pipeline import DEFAULT_TIMEOUT, WorkerPool
from .worker import Task, WorkerOptions

#: ``errors.stage`` of a confirmation that failed.
CONFIRM_STAGE = "confirm"


def top_level(file_id: int) -> int:
    """The id of the top-level file an item was found in (itself for a file)."""
    if file_id < CHILD_ID_BASE:
        return file_id
    return (file_id - CHILD_ID_BASE) // CHILD_SLOTS


def candidates(case: Case, store_path: Path, limits: dict[str, int]) -> dict[int, list[int]]:
    """Top-level file ids, by evidence id, whose draft-decoded perceptual values (any
    variant, past the quality gate) lie within threshold + ``draft_margin`` of a value in
    the store; files whose confirmation already failed in the case are left out."""
    from .matching import DECODE_DRAFT, MIN_QUALITY, near_queries

    if not store_path.exists():
        return {}
    queries = [q for q in near_queries(case) if q.decode == DECODE_DRAFT and q.algorithm in
               limits]
    queries = [q for q in queries if (gate := limits.get(q.algorithm + MIN_QUALITY)) is None
               or (q.quality is not None and q.quality >= gate)]
    if not queries:
        return {}
    failed = {int(r[0]) for r in case.conn.execute(
        "SELECT DISTINCT file_id FROM errors WHERE stage=? AND file_id IS NOT NULL",
        (CONFIRM_STAGE,))}
    found: set[int] = set()
    store = HashSetStore(store_path, readonly=True)
    try:
        sets, _ = store.readable_sets()
        if not sets:
            return {}
        for alg in sorted({q.algorithm for q in queries}):
            a = get(alg)
            mine = [q for q in queries if q.algorithm == alg]
            known = load_perceptual(store, alg, sets, [])
            hits = near_matches(store, [(i, alg, q.value) for i, q in enumerate(mine)],
                                min(limits[alg] + a.draft_margin, a.bits), known, [])
            found.update(top_level(mine[h.query].file_id) for h in hits)
    finally:
        store.close()
    out: dict[int, list[int]] = {}
    for fid in sorted(found - failed):
        row = case.conn.execute("SELECT evidence_id FROM files WHERE id=?", (fid,)).fetchone()
        if row is not None:
            out.setdefault(int(row[0]), []).append(fid)
    return out


@dataclass
class Outcome:
    """What one confirmation pass did."""

    confirmed: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"confirmed": self.confirmed, "failed": self.failed}


def confirm(case: Case, evidence_id: int, spec: tuple[str, Any], file_ids: list[int],
            worker: WorkerOptions, jobs: int, timeout: float, memory: membudget.MemoryPlan,
            record: Callable[[FileResult], None], run_id: int) -> Outcome:
    """Decode ``file_ids`` (top-level files of one evidence) again at full size in the
    worker pool; hand each result that ends as the draft one did to ``record``; record a
    failure at stage ``confirm`` for the others (see module doc)."""
    outcome = Outcome()
    if not file_ids:
        return outcome
    status = dict(case.conn.execute(
        f"SELECT id, status FROM files WHERE id IN ({', '.join('?' * len(file_ids))})",
        file_ids).fetchall())

    def tasks() -> Iterator[Task]:
        for p in case.entries_by_id(evidence_id, file_ids):
            yield Task(p.file_id, p.entry, p.display_path, p.extension,
                       attempt=max(1, p.attempts), crashes=0, full_decode=True)

    with WorkerPool(spec, worker, jobs, timeout, memory) as pool:
        for result in pool.run(tasks()):
            before = status.get(result.file_id)
            if result.status == before and result.status in ("done", "incomplete"):
                record(result)
                outcome.confirmed += 1
                continue
            outcome.failed += 1
            why = result.reason or f"ended {result.status}"
            case.record_error(run_id, CONFIRM_STAGE,
                              result.error_class or "ConfirmationFailed",
                              f"full-decode confirmation failed ({result.status} at "
                              f"{result.stage or 'unknown'}: {why}); the draft-decoded values "
                              "stand and their near hits stay unconfirmed candidates",
                              file_id=result.file_id)
    return outcome


def confirm_for_match(case: Case, run_id: int, store_path: Path,
                      limits: dict[str, int]) -> dict[str, int]:
    """``triage match``: re-open each evidence that holds draft-decoded near candidates,
    when it is reachable and still the evidence the case scanned (same identity), decode
    the candidates again at full size and record the results in one audited transaction
    (``match.confirm``). Candidates of evidence that cannot be re-opened stay draft values
    (their hits are "unconfirmed candidate"). Returns the counts for the summary."""
    import json
    import os

    from .datadigest import CONFIRM_ACTION, CONFIRM_REWRITES
    from .evidence_identity import differences
    from .pipeline import default_jobs
    from .scan import _evidence_facts
    from .sources import open_source

    try:
        todo = candidates(case, store_path, limits)
    except (HashSetFileError, sqlite3.Error):
        todo = {}  # an unusable store: matching names it (exit 6)
    counts = {"candidates": sum(len(v) for v in todo.values()), "confirmed": 0, "failed": 0,
              "not_reachable": 0}
    for evidence_id, ids in sorted(todo.items()):
        path_bytes, identity = case.conn.execute(
            "SELECT path_bytes, identity FROM evidence WHERE id=?", (evidence_id,)).fetchone()
        given = os.fsdecode(bytes(path_bytes))
        try:
            resolved = os.path.realpath(given)
            source = open_source(resolved)
        except Exception:  # gone, unmounted, unreadable: not reachable, said in the summary
            counts["not_reachable"] += len(ids)
            continue
        try:
            facts = _evidence_facts(source, given, resolved)
            if identity is None or differences(json.loads(identity), facts.identity):
                counts["not_reachable"] += len(ids)  # other evidence at that path now
                continue
            results: list[FileResult] = []
            jobs = min(default_jobs(), len(ids))
            outcome = confirm(case, evidence_id, source.spec(), ids, WorkerOptions(), jobs,
                              DEFAULT_TIMEOUT, membudget.plan(None, jobs), results.append,
                              run_id)
        finally:
            source.close()
        if results:
            with case.audited_change(CONFIRM_ACTION, {
                    "run": run_id, "evidence": evidence_id,
                    "files": [r.file_id for r in results]}, CONFIRM_REWRITES) as c:
                case.write_results_in(c, run_id, results)
        counts["confirmed"] += outcome.confirmed
        counts["failed"] += outcome.failed
    return counts
