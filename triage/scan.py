"""``triage scan``: evidence in, case database out.

1. Open the source; record the evidence (type, size, partitions, stored hashes) and its
   warnings before any file is read.
2. Enumerate every entry into the case database (status ``pending``, or final for entries
   that are never read: directories, links, FIFOs, enumeration errors), in batches.
3. Hand the pending entries, in id order, to isolated workers; write results in batches,
   one transaction each. Every entry ends with a final status.
4. Match against the hash-set store (unless disabled), then summarise.

A scan of evidence that is already in the case resumes: entries with a final status are
not redone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from hashsets.algorithms import picture_algorithms

from . import evidence_identity, faults
from .case import Case
from .errors import HashSetError
from .model import (
    INCOMPLETE,
    CaseCounts,
    FileProblem,
    FileResult,
    MatchSummary,
    PoolSummary,
    RunSummary,
    outcome_counts,
    record_dict,
)
from .pipeline import DEFAULT_TIMEOUT, MAX_ATTEMPTS, WorkerPool, default_jobs
from .runs import case_run
from .sources import open_source
from .sources.base import EntryAmendment, FileEntry, Source
from .util import display_bytes
from .worker import Task, WorkerOptions

ENUM_BATCH = 2000
WRITE_BATCH = 500


class Progress(Protocol):
    def warn(self, message: str) -> None: ...
    def enumerated(self, count: int) -> None: ...
    def start_processing(self, files: int, total_bytes: int) -> None: ...
    def advance(self, files: int, nbytes: int) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
    def warn(self, message: str) -> None:
        pass

    def enumerated(self, count: int) -> None:
        pass

    def start_processing(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class ScanOptions:
    jobs: int = field(default_factory=default_jobs)
    timeout: float = DEFAULT_TIMEOUT
    worker: WorkerOptions = field(default_factory=WorkerOptions)
    match: bool = True
    store: str | None = None
    thresholds: dict[str, int] = field(default_factory=dict)
    case_number: str | None = None
    examiner: str | None = None
    agency: str | None = None
    notes: str | None = None
    #: Put the evidence's quarantined files back in the queue (new attempts, audited).
    retry_quarantined: bool = False

    def recorded(self) -> dict[str, Any]:
        """The options as stored in the run row (no case metadata: that has its table)."""
        d = {"jobs": self.jobs, "timeout": self.timeout, "worker": asdict(self.worker),
             "match": self.match, "store": self.store, "thresholds": self.thresholds,
             "retry_quarantined": self.retry_quarantined}
        if faults.active():
            d["fault_injection"] = faults.active()
        return d


def _enumerate(case: Case, evidence_id: int, run_id: int,
               entries: Iterator[FileEntry | EntryAmendment], progress: Progress) -> int:
    count = 0
    batch: list[FileEntry] = []
    for entry in entries:
        if isinstance(entry, EntryAmendment):
            if batch:  # the entry it names may still be in the batch
                case.insert_entries(evidence_id, run_id, batch)
                count += len(batch)
                batch = []
            case.amend_entries(evidence_id, run_id, [entry])
            continue
        batch.append(entry)
        if len(batch) >= ENUM_BATCH:
            case.insert_entries(evidence_id, run_id, batch)
            count += len(batch)
            progress.enumerated(count)
            batch = []
    if batch:
        case.insert_entries(evidence_id, run_id, batch)
        count += len(batch)
        progress.enumerated(count)
    return count


def _tasks(case: Case, evidence_id: int) -> Iterator[Task]:
    after = 0
    while True:
        page = case.pending_page(evidence_id, after)
        if not page:
            return
        for p in page:
            yield Task(p.file_id, p.entry, p.display_path, p.extension,
                       attempt=p.attempts + 1, crashes=p.worker_crashes)
        after = page[-1].file_id


def scan(evidence: str, case_dir: str | os.PathLike[str], options: ScanOptions,
         argv: Sequence[str] = (), progress: Progress | None = None) -> RunSummary:
    """Scan ``evidence`` into the case at ``case_dir``; return the run's summary.

    Raises :class:`~triage.errors.EvidenceError` when the evidence cannot be opened and
    :class:`~triage.errors.CaseError` when the case cannot be used; problems with single
    files never raise.
    """
    progress = progress or _NoProgress()
    source = open_source(evidence)  # fails before the case is touched
    source.enumeration_timeout = options.timeout  # the Source contract: every source
    started = time.monotonic()
    evidence_facts: list[_EvidenceFacts] = []
    warnings: list[str] = []

    def preflight(case: Case) -> None:
        # The evidence is checked against the case before anything is recorded: other
        # evidence at a path the case holds leaves the case exactly as it was.
        facts = _evidence_facts(source, evidence)
        evidence_facts.append(facts)
        if (warning := case.check_evidence(facts.path, facts.path_bytes, facts.source_type,
                                           facts.identity)):
            warnings.append(warning)

    try:
        with case_run(case_dir, "scan", argv=argv, options=options.recorded(), create=True,
                      case_info={"number": options.case_number,
                                 "examiner": options.examiner, "agency": options.agency,
                                 "notes": options.notes}, preflight=preflight) as run:
            case = run.case
            summary = RunSummary(run_id=run.run_id, case_database=str(case.db_path.resolve()))
            for w in warnings:
                progress.warn(w)
                case.record_error(run.run_id, "evidence", "Warning", w)
            try:
                summary = _scan(case, summary, source, evidence_facts[0], options, progress)
            finally:
                summary = replace(summary,
                                  elapsed_seconds=round(time.monotonic() - started, 3))
                run.summary = record_dict(summary)
                del run.summary["case_database"]
                progress.finish()
    finally:
        source.close()
    return summary


@dataclass(frozen=True)
class _EvidenceFacts:
    """What the case records of the evidence itself (read before the case is touched)."""

    path: str
    path_bytes: bytes
    source_type: str
    description: dict[str, Any]
    identity: dict[str, Any]


def _evidence_facts(source: Source, evidence: str) -> _EvidenceFacts:
    description = source.describe()
    abs_path = os.fsencode(os.path.abspath(evidence))
    return _EvidenceFacts(display_bytes(abs_path), abs_path or os.fsencode(evidence),
                          str(description.get("type", source.name)), description,
                          evidence_identity.identify(evidence, description))


def _scan(case: Case, summary: RunSummary, source: Source, ev: _EvidenceFacts,
          options: ScanOptions, progress: Progress) -> RunSummary:
    run_id = summary.run_id
    description = ev.description
    evidence_id = case.add_evidence(
        path=ev.path, path_bytes=ev.path_bytes, source_type=ev.source_type,
        size=description.get("size"), description=description, run_id=run_id,
        stored_md5=description.get("stored_md5"),
        stored_sha1=description.get("stored_sha1"), identity=ev.identity)
    for w in source.warnings():
        progress.warn(w)
        case.record_error(run_id, "evidence", "Warning", w)
    enum_key = f"enumerated:{evidence_id}"
    resumed = case.get_meta(enum_key) is not None
    if not resumed:
        _enumerate(case, evidence_id, run_id, source.entries(), progress)
        case.set_meta(enum_key, str(run_id))
    if options.retry_quarantined:
        retried = case.requeue_quarantined(evidence_id, run_id)
        if retried:
            progress.warn(f"{retried} quarantined file(s) are tried again")
    quarantined = case.quarantine_repeated_inflight(evidence_id, run_id, MAX_ATTEMPTS)
    if quarantined:
        progress.warn(f"{quarantined} file(s) crashed a worker {MAX_ATTEMPTS} times "
                      "in earlier runs; quarantined")
    files, total_bytes = case.pending_totals(evidence_id)
    progress.start_processing(files, total_bytes)
    summary = replace(summary, resumed=resumed)
    pool = _process(case, evidence_id, run_id, source.spec(), options, progress)
    summary = replace(summary, pool=pool, counts=summarize(case, evidence_id))
    if options.match:
        try:
            faults.check("match", "*")
            summary = replace(summary, matches=_match(case, run_id, options))
        except (HashSetError, faults.InjectedFault) as e:
            # The scan's results stand; matching can be re-run with `triage match`.
            summary = replace(summary, match_error=str(e))
            progress.warn(f"matching failed: {e}; the scan is complete, run "
                          "'triage match' once the store is fixed")
            case.record_error(run_id, "match", e.__class__.__name__, str(e))
    return summary


def _process(case: Case, evidence_id: int, run_id: int, spec: tuple[str, Any],
             options: ScanOptions, progress: Progress) -> PoolSummary:
    """Run the pending entries through the worker pool. Each result is written together
    with the next dispatch (see :meth:`Case.record_progress`), so nothing finished is ever
    lost to a crash and nothing unfinished is ever taken for done."""
    buffer: list[FileResult] = []
    sizes: dict[int, int] = {}
    worker = options.worker
    if worker.container_seconds > options.timeout / 2:
        # Expansion must give up (and say which limit) before the pool's deadline does.
        worker = replace(worker, container_seconds=options.timeout / 2)
    with WorkerPool(spec, worker, options.jobs, options.timeout) as pool:
        def tasks() -> Iterator[Task]:
            for t in _tasks(case, evidence_id):
                sizes[t.file_id] = t.entry.size or 0
                yield t

        def dispatched(task: Task) -> None:
            case.record_progress(run_id, buffer, [(task.file_id, task.attempt)])
            buffer.clear()

        def checkpoint(task: Task, partial: FileResult) -> None:
            case.record_progress(run_id, buffer, checkpoints=[partial])
            buffer.clear()

        def crashed(task: Task, crashes: int) -> None:
            case.record_progress(run_id, buffer, crashes=[(task.file_id, crashes)])
            buffer.clear()

        try:
            for result in pool.run(tasks(), on_dispatch=dispatched, on_checkpoint=checkpoint,
                                   on_crash=crashed):
                buffer.append(result)
                progress.advance(1, sizes.pop(result.file_id, 0))
                if len(buffer) >= WRITE_BATCH:
                    case.record_progress(run_id, buffer)
                    buffer.clear()
        except KeyboardInterrupt:
            # Ctrl-C/SIGTERM: finished results are kept; the files in flight were not the
            # cause, so their dispatch is not counted against them (two ordinary
            # interruptions must not quarantine a slow file).
            case.record_progress(run_id, buffer, [(t.file_id, t.attempt - 1)
                                                  for t in pool.in_flight()])
            buffer.clear()
            raise
        finally:
            if buffer:
                case.record_progress(run_id, buffer)
                buffer.clear()
        return pool.stats.summary()


def _match(case: Case, run_id: int, options: ScanOptions) -> MatchSummary:
    from .matching import match_case

    return match_case(case, run_id, store_path=Path(options.store) if options.store else None,
                      thresholds=options.thresholds or None)


def summarize(case: Case, evidence_id: int | None = None) -> CaseCounts:
    """Counts that a person and a batch script need after a scan."""
    where, params = ("WHERE evidence_id=?", (evidence_id,)) if evidence_id else ("", ())
    c = case.conn
    by_status = dict(c.execute(f"SELECT status, count(*) FROM files {where} GROUP BY status",
                               params).fetchall())
    by_kind = dict(c.execute(
        f"SELECT coalesce(media_kind, kind), count(*) FROM files {where} "
        "GROUP BY 1", params).fetchall())
    and_ = "AND" if where else "WHERE"
    mismatches = c.execute(f"SELECT count(*) FROM files {where} {and_} ext_mismatch=1",
                           params).fetchone()[0]
    hashed_bytes = c.execute(
        f"SELECT coalesce(sum(size), 0) FROM files {where} {and_} status IN ('done', "
        f"'{INCOMPLETE}') AND kind='file'", params).fetchone()[0]
    dup_groups, dup_files = c.execute(
        "SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM hashes h "
        f"JOIN files f ON f.id=h.file_id {where.replace('evidence_id', 'f.evidence_id')} "
        f"{'AND' if where else 'WHERE'} h.algorithm='sha256' GROUP BY h.value "
        "HAVING count(*) > 1)", params).fetchone()
    pictures = ", ".join(f"'{a.name}'" for a in picture_algorithms()) or "NULL"
    perceptual = c.execute(
        "SELECT count(DISTINCT h.file_id) FROM hashes h JOIN files f ON f.id=h.file_id "
        f"{where.replace('evidence_id', 'f.evidence_id')} "
        f"{'AND' if where else 'WHERE'} h.algorithm IN ({pictures})", params).fetchone()[0]

    def first_20(statuses: str) -> tuple[FileProblem, ...]:
        return tuple(FileProblem(*r) for r in c.execute(
            f"SELECT display_path, status, status_stage, status_reason FROM files "
            f"{where} {and_} status IN ({statuses}) ORDER BY id LIMIT 20", params))

    return CaseCounts(
        entries=sum(by_status.values()),
        by_status=dict(sorted(by_status.items())),
        by_outcome=outcome_counts(by_status),
        by_kind=dict(sorted((str(k), v) for k, v in by_kind.items())),
        extension_mismatches=mismatches,
        hashed_bytes=hashed_bytes,
        duplicate_groups=dup_groups,
        files_in_duplicate_groups=dup_files,
        images_with_perceptual_hashes=perceptual,
        problems_shown=first_20("'error', 'quarantined'"),
        gaps_shown=first_20(f"'{INCOMPLETE}'"),
    )
