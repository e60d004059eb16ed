"""Full-decode confirmation of draft-decoded near candidates (issue 14 item 3).

JPEGs are decoded in draft mode for speed (libjpeg scales by 1/2, 1/4 or 1/8), which moves
PDQ by up to 12 bits. So a hit is never decided on a draft value alone: after the scan's
main pass, every picture whose draft-decoded value (of any variant) lies within its
algorithm's threshold plus ``draft_margin`` (PDQ 16 bits) of a known value is decoded again
at full size, and matching then uses the full-decode values.

The second pass uses the same worker pool and protocol as the first: a candidate is an
ordinary task with ``full_decode`` set. A candidate is an item: a file, an item inside a
file (an archive member, an embedded picture), or a carved item. A carved item is read again
from exactly its recorded image bytes (its image offset and length, locator
:func:`~triage.carving.carved_item_locator`), not by carving its whole area again; any other
item through its top-level file, read and expanded again (the item found again by its
identity: ordinal and inner names). Each confirmed item's result replaces its draft result
(the draft values are kept in ``hash_variants`` as variant ``draft``), so a scan killed
during the pass leaves each item either draft-decoded (and a candidate again on resume) or
confirmed, never half of each. A confirmation that fails (a timeout, a crash, a full decode
over the memory budget, an item not found again) changes nothing: the failure is recorded
in the errors table at stage ``confirm`` against the item, and its near hits stay
"unconfirmed candidate".

A full decode is only used for the content the scan recorded: the re-read item's
cryptographic digests (MD5, SHA-1, SHA-256) must equal the item's own in the case (a carved
picture's or an archive member's, never its parent's). Otherwise (the evidence changed
between the passes, or another file is at the locator now) the result is refused the same
way, with a reason starting ``content_changed`` that names the recorded and the re-read
digest, and counted apart (``content_changed``). When no digest can be compared (none
recorded for the item, or none in common), the result is refused too, but with a reason
starting ``no_digest`` and counted apart again (``no_digest``): nothing says that content
changed.

``triage match`` confirms with the options of the scan that wrote each candidate's result
(draft size, perceptual hashes, variants, worker limits, jobs, timeout, memory budget), as
recorded in its run row (:func:`scan_options`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from hashsets.algorithms import ALGORITHMS, get
from hashsets.errors import HashSetFileError
from hashsets.matching import load_perceptual, near_matches
from hashsets.store import HashSetStore

from . import membudget
from .carving import carved_item_locator
from .case import CHILD_ID_BASE, CHILD_SLOTS, Case, child_identity
from .model import FILE, FileEntry, FileResult
from .pipeline import DEFAULT_TIMEOUT, WorkerPool
from .worker import Task, WorkerOptions

#: ``errors.stage`` of a confirmation that failed.
CONFIRM_STAGE = "confirm"
#: ``errors.error_class`` and start of the reason of a confirmation refused because the
#: re-read content's digests differ from the recorded ones.
CONTENT_CHANGED_CLASS = "ContentChanged"
CONTENT_CHANGED = "content_changed"
#: The same for a refusal because no cryptographic digest can be compared (none recorded
#: for the item, or none in common with the re-read): not evidence of a change.
NO_DIGEST_CLASS = "NoDigest"
NO_DIGEST = "no_digest"
#: The digest named first in a refusal (the strongest one both hold).
_DIGEST_ORDER = ("sha256", "sha1", "md5")


def top_level(file_id: int) -> int:
    """The id of the top-level file an item was found in (itself for a file)."""
    if file_id < CHILD_ID_BASE:
        return file_id
    return (file_id - CHILD_ID_BASE) // CHILD_SLOTS


def candidates(case: Case, store_path: Path, limits: dict[str, int]) -> dict[int, list[int]]:
    """Ids of the items (files, or items inside them: archive members, carved items), by
    evidence id, whose draft-decoded perceptual values (any variant, past the quality gate)
    lie within threshold + ``draft_margin`` of a value in the store; items whose
    confirmation already failed or was refused in the case are left out."""
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
            found.update(mine[h.query].file_id for h in hits)
    finally:
        store.close()
    out: dict[int, list[int]] = {}
    # A failure recorded against the top-level file (older cases) covers its items too.
    for fid in sorted(f for f in found if f not in failed and top_level(f) not in failed):
        row = case.conn.execute("SELECT evidence_id FROM files WHERE id=?", (fid,)).fetchone()
        if row is not None:
            out.setdefault(int(row[0]), []).append(fid)
    return out


@dataclass
class Outcome:
    """What one confirmation pass did (counts of candidate items)."""

    confirmed: int = 0
    failed: int = 0
    #: Refused: the re-read content's digests differ from the recorded ones.
    content_changed: int = 0
    #: Refused: no cryptographic digest both the case and the re-read hold, so the re-read
    #: content cannot be shown to be the one scanned (nothing says it changed either).
    no_digest: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"confirmed": self.confirmed, "failed": self.failed,
                "content_changed": self.content_changed, "no_digest": self.no_digest}

    def add(self, other: Outcome) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _crypto(algorithm: str) -> bool:
    a = ALGORITHMS.get(algorithm)
    return a is not None and a.match == "exact"


def recorded_digests(case: Case, file_ids: list[int]) -> dict[int, dict[str, str]]:
    """The cryptographic digests the case holds for ``file_ids``: {file id: {algorithm:
    value}}."""
    out: dict[int, dict[str, str]] = {}
    ids = sorted(set(file_ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for fid, alg, value in case.conn.execute(
                f"SELECT file_id, algorithm, value FROM hashes WHERE file_id IN "
                f"({', '.join('?' * len(chunk))})", chunk):
            if _crypto(alg):
                out.setdefault(int(fid), {})[alg] = value
    return out


def content_change(recorded: dict[str, str], result: FileResult) -> str | None:
    """Why a re-read result is not shown to be the content the scan recorded (None when it
    is): a cryptographic digest that differs (reason starting :data:`CONTENT_CHANGED`), or
    none that both hold to compare (reason starting :data:`NO_DIGEST`)."""
    reread = {h.algorithm: h.value for h in result.hashes if h.variant is None
              and _crypto(h.algorithm)}
    common = sorted(set(recorded) & set(reread),
                    key=lambda a: (_DIGEST_ORDER.index(a) if a in _DIGEST_ORDER
                                   else len(_DIGEST_ORDER), a))
    if not common:
        have = ", ".join(sorted(recorded)) or "none"
        got = ", ".join(sorted(reread)) or "none"
        return (f"{NO_DIGEST}: no digest to compare (recorded: {have}; re-read: {got}), so "
                "the re-read content cannot be shown to be the one scanned")
    for alg in common:
        if recorded[alg].lower() != reread[alg].lower():
            return (f"{CONTENT_CHANGED}: recorded {alg} {recorded[alg]}, re-read {alg} "
                    f"{reread[alg]}")
    return None


@dataclass(frozen=True)
class _Item:
    """A candidate item as the case records it."""

    file_id: int
    identity: str
    status: str | None
    #: (image offset, length, extension) of a carved item, else None.
    carved: tuple[int, int, str] | None


def _items(case: Case, file_ids: list[int]) -> dict[int, _Item]:
    out: dict[int, _Item] = {}
    ids = sorted(set(file_ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for fid, identity, status, offset, length, fmt in case.conn.execute(
                "SELECT f.id, f.identity, f.status, k.image_offset, k.length, k.format "
                "FROM files f LEFT JOIN carved k ON k.file_id = f.id "
                f"WHERE f.id IN ({', '.join('?' * len(chunk))})", chunk):
            carved = None if offset is None else (int(offset), int(length), str(fmt))
            out[int(fid)] = _Item(int(fid), identity, status, carved)
    return out


def _carved_tasks(case: Case, items: list[_Item]) -> Iterator[Task]:
    """One task per carved item: exactly its recorded image bytes (its area is not
    carved again)."""
    for it in items:
        assert it.carved is not None
        offset, length, ext = it.carved
        path, display, attempts = case.conn.execute(
            "SELECT path, display_path, attempts FROM files WHERE id=?",
            (it.file_id,)).fetchone()
        entry = FileEntry(identity=it.identity, path=bytes(path), kind=FILE, size=length,
                          locator=carved_item_locator(offset, length, ext))
        yield Task(it.file_id, entry, display, ext, attempt=max(1, attempts or 1), crashes=0,
                   full_decode=True)


def _reread_items(top: FileResult, identity: str, wanted: list[_Item]
                  ) -> dict[int, FileResult]:
    """The re-read results of ``wanted`` (the top-level file itself, or items inside it,
    found again by their identity: ordinal and inner names) in ``top``, with their ids;
    each alone (an item's result is recorded without the items inside it)."""
    ids = {it.identity: it.file_id for it in wanted}
    out: dict[int, FileResult] = {}
    if identity in ids:
        out[ids[identity]] = replace(top, children=())
    for ordinal, child in enumerate(top.children, start=1):
        fid = ids.get(child_identity(identity, ordinal, child.inner))
        if fid is not None:
            out[fid] = replace(child.result, file_id=fid, children=())
    return out


def confirm(case: Case, evidence_id: int, spec: tuple[str, Any], file_ids: list[int],
            worker: WorkerOptions, jobs: int, timeout: float, memory: membudget.MemoryPlan,
            record: Callable[[FileResult], None], run_id: int) -> Outcome:
    """Decode the candidate items ``file_ids`` (of one evidence; see :func:`candidates`)
    again at full size in the worker pool: a carved item from exactly its recorded image
    bytes, any other item through its top-level file, read and expanded again. Hand each
    item's result that ends as the draft one did, from the content the case recorded (the
    item's own cryptographic digests, not its parent's), to ``record``; record a failure
    or refusal at stage ``confirm`` against the others (see module doc)."""
    outcome = Outcome()
    if not file_ids:
        return outcome
    items = _items(case, file_ids)
    digests = recorded_digests(case, list(items))
    carved = [it for it in items.values() if it.carved is not None]
    by_top: dict[int, list[_Item]] = {}
    for it in items.values():
        if it.carved is None:
            by_top.setdefault(top_level(it.file_id), []).append(it)
    tops = {p.file_id: p for p in case.entries_by_id(evidence_id, sorted(by_top))}
    for top in sorted(set(by_top) - set(tops)):  # not an entry of this evidence (any more)
        for it in by_top.pop(top):
            outcome.failed += 1
            case.record_error(run_id, CONFIRM_STAGE, "ConfirmationFailed",
                              f"full-decode confirmation failed: its file (id {top}) is not "
                              "an entry of this evidence; the draft-decoded values stand "
                              "and their near hits stay unconfirmed candidates",
                              file_id=it.file_id)

    def tasks() -> Iterator[Task]:
        yield from _carved_tasks(case, carved)
        for p in tops.values():
            yield Task(p.file_id, p.entry, p.display_path, p.extension,
                       attempt=max(1, p.attempts), crashes=0, full_decode=True)

    def failed(it: _Item, result: FileResult) -> None:
        outcome.failed += 1
        why = result.reason or f"ended {result.status}"
        case.record_error(run_id, CONFIRM_STAGE,
                          result.error_class or "ConfirmationFailed",
                          f"full-decode confirmation failed ({result.status} at "
                          f"{result.stage or 'unknown'}: {why}); the draft-decoded values "
                          "stand and their near hits stay unconfirmed candidates",
                          file_id=it.file_id)

    with WorkerPool(spec, worker, jobs, timeout, memory) as pool:
        for result in pool.run(tasks()):
            if result.file_id in items and items[result.file_id].carved is not None:
                wanted = [items[result.file_id]]
                found = {result.file_id: result}
            else:
                wanted = by_top.get(result.file_id, [])
                found = _reread_items(result, tops[result.file_id].entry.identity, wanted)
            for it in wanted:
                got = found.get(it.file_id)
                if got is None:  # the top-level file failed, or its walk changed
                    failed(it, result if result.status not in ("done", "incomplete") else
                           replace(result, status="incomplete", stage="expand",
                                   error_class="ItemNotFound",
                                   reason="the item was not found again when its file "
                                   "was read and expanded again"))
                    continue
                if got.status != it.status or got.status not in ("done", "incomplete"):
                    failed(it, got)
                    continue
                changed = content_change(digests.get(it.file_id, {}), got)
                if changed is None:
                    record(got)
                    outcome.confirmed += 1
                    continue
                # Never a full decode of other content than the one scanned: the draft
                # values stand (they are of the content the digests recorded).
                if changed.startswith(NO_DIGEST):
                    outcome.no_digest += 1
                    error_class = NO_DIGEST_CLASS
                else:
                    outcome.content_changed += 1
                    error_class = CONTENT_CHANGED_CLASS
                case.record_error(run_id, CONFIRM_STAGE, error_class,
                                  f"{changed}; the full-decode values are not used: the "
                                  "draft-decoded values stand and their near hits stay "
                                  "unconfirmed candidates", file_id=it.file_id)
    return outcome


@dataclass(frozen=True)
class Settings:
    """How a confirmation pass runs: the worker options, jobs, per-file timeout and
    memory budget (``--memory-budget``: None from the machine, 0 none)."""

    worker: WorkerOptions
    jobs: int
    timeout: float
    memory_budget: int | None


def settings(recorded: dict[str, Any] | None) -> Settings:
    """The confirmation settings from a scan's recorded options (see
    :func:`triage.runs.scan_options`); an option the record lacks (an older triage) takes
    its default. As in the scan, expansion gives up at half the per-file timeout.

    The scan may have run on another machine (a lab server, a cluster): its jobs are
    capped at this machine's cores (how many files are decoded at once; no value
    changes). Its ``--memory-budget`` is kept as it was: a smaller budget here could refuse
    a picture whose decode the scan's budget admitted, and the outcome would depend on the
    memory free at the time."""
    from .pipeline import default_jobs

    recorded = recorded or {}
    names = {f.name for f in fields(WorkerOptions)} - {"confirming"}
    given: dict[str, Any] = {k: v for k, v in (recorded.get("worker") or {}).items()
                             if k in names}
    if given.get("algorithms") is not None:  # a JSON list; names this triage knows
        given["algorithms"] = tuple(a for a in given["algorithms"] if a in ALGORITHMS)
    worker = WorkerOptions(**given)
    jobs = min(int(recorded.get("jobs") or default_jobs()), default_jobs())
    timeout = float(recorded.get("timeout") or DEFAULT_TIMEOUT)
    if worker.container_seconds > timeout / 2:
        worker = replace(worker, container_seconds=timeout / 2)
    budget = recorded.get("memory_budget")
    return Settings(worker, max(1, jobs), timeout, None if budget is None else int(budget))


def confirm_for_match(case: Case, run_id: int, store_path: Path,
                      limits: dict[str, int]) -> dict[str, int]:
    """``triage match``: re-open each evidence that holds draft-decoded near candidates,
    when it is reachable and still the evidence the case scanned (same identity), decode
    the candidates again at full size, with the options of the scan that wrote their
    results (:func:`triage.runs.scan_options`: a scan made with ``--no-variants`` gets no
    variants here either), and record the results in one audited transaction
    (``match.confirm``). Candidates of evidence that cannot be re-opened stay draft values
    (their hits are "unconfirmed candidate"). Returns the counts for the summary."""
    import json
    import os

    from .datadigest import CONFIRM_ACTION, CONFIRM_REWRITES
    from .evidence_identity import differences
    from .runs import scan_options
    from .scan import _evidence_facts
    from .sources import open_source

    try:
        todo = candidates(case, store_path, limits)
    except (HashSetFileError, sqlite3.Error):
        todo = {}  # an unusable store: matching names it (exit 6)
    counts = {"candidates": sum(len(v) for v in todo.values()),
              **Outcome().as_dict(), "not_reachable": 0}
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
        # The candidates by the scan run that wrote their results: each group is
        # confirmed with that scan's recorded options.
        by_run: dict[int | None, list[int]] = {}
        for fid in ids:
            row = case.conn.execute("SELECT run_id FROM files WHERE id=?", (fid,)).fetchone()
            by_run.setdefault(None if row is None or row[0] is None else int(row[0]),
                              []).append(fid)
        results: list[FileResult] = []
        outcome = Outcome()
        try:
            facts = _evidence_facts(source, given, resolved)
            if identity is None or differences(json.loads(identity), facts.identity):
                counts["not_reachable"] += len(ids)  # other evidence at that path now
                continue
            for wrote, group in sorted(by_run.items(), key=lambda kv: (kv[0] is None,
                                                                       kv[0] or 0)):
                s = settings(scan_options(case, evidence_id, wrote))
                jobs = min(s.jobs, len(group))
                done = confirm(case, evidence_id, source.spec(), group, s.worker, jobs,
                               s.timeout, membudget.plan(s.memory_budget, jobs),
                               results.append, run_id)
                outcome.add(done)
        finally:
            source.close()
        if results:
            with case.audited_change(CONFIRM_ACTION, {
                    "run": run_id, "evidence": evidence_id,
                    "files": [r.file_id for r in results]}, CONFIRM_REWRITES) as c:
                case.write_results_in(c, run_id, results)
        for key, value in outcome.as_dict().items():
            counts[key] += value
    return counts
