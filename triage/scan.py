"""``triage scan``: evidence in, case database out.

0. Resolve symbolic links in the evidence path and open the source; refuse a case inside
   the evidence or evidence inside the case, and case details that contradict the case's,
   before anything is written.
1. Open the case; record the evidence (type, size, partitions, stored hashes) and its
   warnings before any file is read.
2. Enumerate every entry into the case database (status ``pending``, or final for entries
   that are never read: directories, links, FIFOs, enumeration errors), in batches.
3. Hand the pending entries, in id order, to isolated workers; write results in batches,
   one transaction each. Every entry ends with a final status.
4. With ``--verify-image``: hash the image, compare with its stored hashes, record both.
5. Match against the hash-set store (unless disabled), then summarise.

A scan of evidence that is already in the case resumes: entries with a final status are
not redone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hashsets.algorithms import picture_algorithms

from . import evidence_identity, faults, isolation, membudget, placement
from .case import Case
from .errors import EvidenceError, HashSetError, UsageError
from .model import (
    INCOMPLETE,
    CaseCounts,
    ClusterUse,
    EvidenceStart,
    FieldChange,
    FileProblem,
    FileResult,
    ImageCheck,
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
from .videocoverage import video_coverage
from .worker import Task, WorkerOptions

if TYPE_CHECKING:
    from .cluster import ClusterPool

ENUM_BATCH = 2000
WRITE_BATCH = 500
#: Longest time a result that came back waits to be written (see ``tick`` in _process).
FLUSH_SECONDS = 1.0


class Progress(Protocol):
    def warn(self, message: str) -> None: ...
    def note(self, message: str) -> None: ...
    def verifying(self, done: int, total: int) -> None: ...
    def enumerated(self, count: int) -> None: ...
    def start_processing(self, files: int, total_bytes: int) -> None: ...
    def advance(self, files: int, nbytes: int) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
    def warn(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def verifying(self, done: int, total: int) -> None:
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
    #: Total memory budget of the workers in bytes (``--memory-budget``); None: from the
    #: machine's available memory; 0: none (triage.membudget).
    memory_budget: int | None = None
    match: bool = True
    store: str | None = None
    thresholds: dict[str, int] = field(default_factory=dict)
    case_number: str | None = None
    examiner: str | None = None
    agency: str | None = None
    notes: str | None = None
    #: Put the evidence's quarantined files back in the queue (new attempts, audited).
    retry_quarantined: bool = False
    #: Change case details that differ from the recorded ones (else the scan is refused).
    update_case: bool = False
    #: Hash the whole image and compare with the hashes stored at acquisition (E01).
    verify_image: bool = False
    #: Disk images: carve unallocated space, slack and unpartitioned space (issue 17).
    carve: bool = True
    #: The seized device's make and model (``--device-make``, ``--device-model``; issue 16:
    #: ``triage leads`` ranks media made by such a camera higher).
    device_make: str | None = None
    device_model: str | None = None
    #: ``--cluster``: the Dask scheduler's address (issue 19, :mod:`triage.cluster`); None:
    #: this machine's own workers. ``path_map``: ``--path-map`` pairs (LOCAL, REMOTE);
    #: ``cluster_jobs``: workers per Dask worker thread (None: each machine's cores divided
    #: by its Dask threads); ``cluster_batch``: files per batch; ``cluster_wait``: seconds
    #: without any worker (or scheduler) before the scan stops.
    cluster: str | None = None
    path_map: tuple[tuple[str, str], ...] = ()
    cluster_jobs: int | None = None
    cluster_batch: int = 256
    cluster_wait: float = 120.0

    def recorded(self) -> dict[str, Any]:
        """The options as stored in the run row (no case metadata: that has its table)."""
        d = {"jobs": self.jobs, "timeout": self.timeout, "worker": asdict(self.worker),
             "memory_budget": self.memory_budget,
             "match": self.match, "store": self.store, "thresholds": self.thresholds,
             "retry_quarantined": self.retry_quarantined,
             "update_case": self.update_case, "verify_image": self.verify_image,
             "carve": self.carve}
        if self.device_make or self.device_model:
            d["device"] = {"make": self.device_make, "model": self.device_model}
        if self.cluster:
            d["cluster"] = {"address": self.cluster,
                            "path_map": [list(p) for p in self.path_map],
                            "jobs_per_worker": self.cluster_jobs,
                            "batch_files": self.cluster_batch,
                            "wait_seconds": self.cluster_wait}
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


#: Pending entries are handed out in windows of this many (in id order, i.e. walk order),
#: each sorted by where the content starts in the image when the source says (a disk
#: image's locator ends with that byte offset): reads then sweep forward through the image
#: instead of jumping to and fro (issue 13: what a spinning or USB disk pays). Bounded, so
#: memory stays flat in the number of files.
READ_ORDER_WINDOW = 10_000


def _read_order(task: Task) -> tuple[int, int]:
    """The physical position of a task's content, if its locator ends with one (a disk
    image's entries, see :func:`triage.sources.tsk._first_data_byte`); else the end."""
    loc = task.entry.locator
    if isinstance(loc, (list, tuple)) and len(loc) == 5 and isinstance(loc[4], int):
        return (0, loc[4])
    return (1, 0)


def _tasks(case: Case, evidence_id: int) -> Iterator[Task]:
    after = 0
    window: list[Task] = []
    while True:
        page = case.pending_page(evidence_id, after)
        for p in page:
            window.append(Task(p.file_id, p.entry, p.display_path, p.extension,
                               attempt=p.attempts + 1, crashes=p.worker_crashes))
        if window and (not page or len(window) >= READ_ORDER_WINDOW):
            window.sort(key=_read_order)  # stable: id order among equal keys
            yield from window
            window = []
        if not page:
            return
        after = page[-1].file_id


def scan(evidence: str, case_dir: str | os.PathLike[str], options: ScanOptions,
         argv: Sequence[str] = (), progress: Progress | None = None) -> RunSummary:
    """Scan ``evidence`` into the case at ``case_dir``; return the run's summary.

    Evidence given through a symbolic link is read through its resolved target (an E01's
    segments are found beside the target); the case records the path given and the target.
    Before anything is created or written, refuses (:class:`~triage.errors.UsageError`,
    exit code 2) a case directory inside the evidence or evidence inside the case
    (:mod:`triage.placement`), and case details (number, examiner, agency, notes) that
    differ from those the case holds, unless ``options.update_case``.

    Raises :class:`~triage.errors.EvidenceError` when the evidence cannot be opened and
    :class:`~triage.errors.CaseError` when the case cannot be used,
    :class:`~triage.isolation.ChildStartError` (exit code 1, nothing recorded) when no
    isolated child can be started on this machine; problems with single files never raise.
    """
    progress = progress or _NoProgress()
    # Started now, so that its imports overlap with opening the evidence and the case;
    # raises ChildStartError (exit 1) before anything is recorded when it cannot start.
    isolation.ensure_running()
    resolved = _resolve(evidence)
    source = open_source(resolved)  # fails before the case is touched
    source.enumeration_timeout = options.timeout  # the Source contract: every source
    if hasattr(source, "carve"):  # disk images (issue 17)
        source.carve = options.carve
    started = time.monotonic()
    warnings: list[str] = []
    given_info = {"number": options.case_number, "examiner": options.examiner,
                  "agency": options.agency, "notes": options.notes}
    seen: list[tuple[int | None, list[tuple[int, str, bytes, str]]]] = []

    try:
        facts = _evidence_facts(source, evidence, resolved)
        placement.refuse_nesting(case_dir, evidence, facts.files,
                                 folder=facts.source_type == "directory")

        def preflight(case: Case) -> None:
            # The evidence and the case details are checked against the case before
            # anything is recorded: a refusal leaves the case exactly as it was.
            if (warning := case.check_evidence(facts.path, facts.path_bytes,
                                               facts.source_type, facts.identity)):
                warnings.append(warning)
            _check_case_info(case, given_info, options.update_case)
            held = case.evidence_list()
            known = next((i for i, _, b, t in held
                          if b == facts.path_bytes and t == facts.source_type), None)
            seen.append((known, held))

        with case_run(case_dir, "scan", argv=argv, options=options.recorded(), create=True,
                      case_info=given_info, preflight=preflight) as run:
            case = run.case
            summary = RunSummary(run_id=run.run_id, case_database=str(case.db_path.resolve()))
            if run.case_changes:
                summary = replace(summary, case_changes=tuple(
                    FieldChange(f, old, new) for f, old, new in run.case_changes))
                for f, old, new in run.case_changes:
                    progress.note(f"case {Case.CASE_FIELDS[f].lstrip('-')}: "
                                  f"{'(none)' if old is None else repr(old)} -> {new!r} "
                                  "(recorded in the audit trail)")
            if facts.resolved_path is not None:
                progress.note(f"{evidence}: given through a symbolic link; reading "
                              f"{facts.resolved_path} (both paths are recorded)")
            known, held = seen[0]
            others = [p for i, p, _, _ in held if i != known]
            if known is None and others:
                progress.note(f"adding new evidence to the case {case_dir}, which holds "
                              f"{len(others)} other evidence: {', '.join(others[:3])}"
                              f"{', ...' if len(others) > 3 else ''}")
                same = [p for i, p, b, _ in held if i != known and
                        os.path.realpath(os.fsdecode(b)) in facts.files[:1]]
                if same:
                    progress.warn(f"{evidence} reads {facts.files[0]}, which this case "
                                  f"already holds as {', '.join(same)}: its files will be "
                                  "counted twice; scan through one path only")
            for w in warnings:
                progress.warn(w)
                case.record_error(run.run_id, "evidence", "Warning", w)
            try:
                summary = _scan(case, summary, source, facts, options, progress,
                                added=known is None, others=len(others))
            finally:
                summary = replace(summary,
                                  elapsed_seconds=round(time.monotonic() - started, 3))
                run.summary = record_dict(summary)
                del run.summary["case_database"]
                progress.finish()
    finally:
        source.close()
    return summary


def _resolve(evidence: str) -> str:
    """The path to read: ``evidence`` with every symbolic link resolved. A link whose
    target is missing is named as such (:class:`EvidenceError`)."""
    resolved = os.path.realpath(evidence)
    if os.path.lexists(evidence) and not os.path.exists(resolved):
        raise EvidenceError(f"{evidence}: a symbolic link to {resolved}, which does not "
                            "exist")
    return resolved


def _check_case_info(case: Case, given: dict[str, str | None], update: bool) -> None:
    """Refuse case details that differ from the recorded ones unless ``update``. A detail
    the case does not hold yet is recorded (shown on screen, audited) without asking."""
    held = case.case_info()
    if not held or update:
        return
    differ = [(f, held.get(f), v) for f, v in given.items()
              if v is not None and held.get(f) is not None and held.get(f) != v]
    if differ:
        listed = "; ".join(f"{Case.CASE_FIELDS[f]}: the case holds {old!r}, given {new!r}"
                           for f, old, new in differ)
        raise UsageError(
            f"{case.directory}: the case details given differ from the case's ({listed}). "
            "Nothing was changed. Give --update-case to change them (old and new values "
            "are recorded in the audit trail), leave the option out to keep the case's, "
            "or scan into another case.")


@dataclass(frozen=True)
class _EvidenceFacts:
    """What the case records of the evidence itself (read before the case is touched)."""

    path: str
    path_bytes: bytes
    source_type: str
    description: dict[str, Any]
    identity: dict[str, Any]
    #: The resolved paths read: the folder, or every segment of an image.
    files: list[str]
    #: The target read when the path given is or passes through a symbolic link.
    resolved_path: str | None


def _evidence_facts(source: Source, evidence: str, resolved: str) -> _EvidenceFacts:
    description = source.describe()
    abs_path = os.fsencode(os.path.abspath(evidence))
    linked = os.path.abspath(evidence) != resolved
    if linked:
        # Both the path given (the evidence's path in the case) and the target read.
        description = {**description, "given_path": os.path.abspath(evidence),
                       "resolved_path": resolved}
    source_type = str(description.get("type", source.name))
    files = [resolved] if source_type == "directory" else [
        os.path.realpath(str(s)) for s in description.get("segments") or [resolved]]
    return _EvidenceFacts(display_bytes(abs_path), abs_path or os.fsencode(evidence),
                          source_type, description,
                          evidence_identity.identify(resolved, description), files,
                          resolved if linked else None)


def _scan(case: Case, summary: RunSummary, source: Source, ev: _EvidenceFacts,
          options: ScanOptions, progress: Progress, *, added: bool = True,
          others: int = 0) -> RunSummary:
    run_id = summary.run_id
    description = ev.description
    stored = description.get("stored_hashes") or {}
    evidence_id = case.add_evidence(
        path=ev.path, path_bytes=ev.path_bytes, source_type=ev.source_type,
        size=description.get("size"), description=description, run_id=run_id,
        stored_md5=stored.get("md5"), stored_sha1=stored.get("sha1"), identity=ev.identity)
    warned: set[str] = set()

    def say_warnings() -> None:
        # Sources may learn of problems while listing (an image's volumes without a file
        # system): asked before and after enumeration, each said and recorded once.
        for w in source.warnings():
            if w not in warned:
                warned.add(w)
                progress.warn(w)
                case.record_error(run_id, "evidence", "Warning", w)

    say_warnings()
    enum_key = f"enumerated:{evidence_id}"
    listed_by = case.get_meta(enum_key)
    resumed = listed_by is not None
    before = case.entry_tally(evidence_id, run_id)[0]
    if not resumed:
        _enumerate(case, evidence_id, run_id, source.entries(), progress)
        case.set_meta(enum_key, str(run_id))
        say_warnings()
    if options.retry_quarantined:
        retried = case.requeue_quarantined(evidence_id, run_id)
        if retried:
            progress.warn(f"{retried} quarantined file(s) are tried again")
    quarantined = case.quarantine_repeated_inflight(evidence_id, run_id, MAX_ATTEMPTS)
    if quarantined:
        progress.warn(f"{quarantined} file(s) crashed a worker {MAX_ATTEMPTS} times "
                      "in earlier runs; quarantined")
    total, _, earlier = case.entry_tally(evidence_id, run_id)
    files, total_bytes = case.pending_totals(evidence_id)
    start = EvidenceStart(evidence_id=evidence_id, path=ev.path,
                          resolved_path=ev.resolved_path, added=added, other_evidence=others,
                          resumed_run=int(listed_by) if listed_by else None,
                          new_entries=total - before, earlier_entries=earlier,
                          pending_entries=files)
    if resumed:
        progress.note(f"resuming the scan of run {listed_by}: {earlier:,} entries were "
                      f"finished by earlier runs, {files:,} to do")
    progress.start_processing(files, total_bytes)
    summary = replace(summary, resumed=resumed, evidence=start)
    # Nothing pending (an empty folder, a finished scan): no worker is started.
    used: list[ClusterUse] = []
    pool = (_process(case, evidence_id, run_id, source.spec(), options, progress,
                     expected=files, cluster_use=used) if files else PoolSummary())
    if used:
        summary = replace(summary, cluster=used[0])
    confirmation = _confirm(case, evidence_id, run_id, source.spec(), options, progress)
    if ev.source_type != "directory":
        from .carved import link_found_again
        from .carved import summary as carving_summary

        link_found_again(case, evidence_id)
        summary = replace(summary, carving=carving_summary(case, evidence_id))
    summary = replace(summary, pool=pool, counts=summarize(case, evidence_id))
    if options.verify_image:
        summary = replace(summary, image_verification=_verify_image(
            case, evidence_id, run_id, ev, progress))
    if options.match:
        try:
            faults.check("match", "*")
            summary = replace(summary, matches=_match(case, run_id, options, confirmation))
        except (HashSetError, faults.InjectedFault) as e:
            # The scan's results stand; matching can be re-run with `triage match`.
            summary = replace(summary, match_error=str(e))
            progress.warn(f"matching failed: {e}; the scan is complete, run "
                          "'triage match' once the store is fixed")
            case.record_error(run_id, "match", e.__class__.__name__, str(e))
    return summary


def _verify_image(case: Case, evidence_id: int, run_id: int, ev: _EvidenceFacts,
                  progress: Progress) -> ImageCheck:
    """``--verify-image``: hash the image's media data, compare with the stored hashes,
    record the computed hashes in the evidence row and the result in the audit trail."""
    from .sources.image import verify_image

    if ev.source_type == "directory":
        progress.note("--verify-image: the evidence is a folder, not a disk image; "
                      "nothing to verify")
        return ImageCheck("not an image")
    result = verify_image(ev.files[0], progress=progress.verifying)
    case.record_image_verification(evidence_id, result, run_id)
    return ImageCheck(result["result"], result["computed"]["md5"],
                      result["computed"]["sha1"], result["stored"].get("md5"),
                      result["stored"].get("sha1"))


def _process(case: Case, evidence_id: int, run_id: int, spec: tuple[str, Any],
             options: ScanOptions, progress: Progress, expected: int | None = None,
             cluster_use: list[ClusterUse] | None = None) -> PoolSummary:
    """Run the pending entries through the worker pool. Each result is written together
    with the next dispatch (see :meth:`Case.record_progress`), so nothing finished is ever
    lost to a crash and nothing unfinished is ever taken for done."""
    buffer: list[FileResult] = []
    sizes: dict[int, int] = {}
    worker = options.worker
    if worker.container_seconds > options.timeout / 2:
        # Expansion must give up (and say which limit) before the pool's deadline does.
        worker = replace(worker, container_seconds=options.timeout / 2)
    blocks = _block_store(options)
    if blocks is not None and worker.block_store is None:
        worker = replace(worker, block_store=blocks)
    pool: WorkerPool | ClusterPool
    if options.cluster:
        from .cluster import ClusterPool

        args = spec[1]
        image = args.get("path") if isinstance(args, dict) else None
        pool = ClusterPool(options.cluster, spec, worker, options.cluster_jobs,
                           options.timeout, options.memory_budget,
                           path_map=options.path_map,
                           evidence_size=os.stat(image).st_size if image else None,
                           batch_files=options.cluster_batch, expected_files=expected,
                           wait=options.cluster_wait, note=progress.note)
    else:
        memory = membudget.plan(options.memory_budget, options.jobs)
        if memory.jobs < memory.jobs_requested:
            progress.warn(f"--jobs {memory.jobs_requested} lowered to {memory.jobs}: "
                          f"{memory.describe()} carries no more workers")
        pool = WorkerPool(spec, worker, options.jobs, options.timeout, memory)
    with pool:
        def tasks() -> Iterator[Task]:
            for t in _tasks(case, evidence_id):
                sizes[t.file_id] = t.entry.size or 0
                yield t

        def dispatched(tasks: Sequence[Task]) -> None:
            case.record_progress(run_id, buffer, [(t.file_id, t.attempt) for t in tasks])
            buffer.clear()

        def checkpoint(task: Task, partial: FileResult) -> None:
            case.record_progress(run_id, buffer, checkpoints=[partial])
            buffer.clear()

        def crashed(task: Task, crashes: int) -> None:
            case.record_progress(run_id, buffer, crashes=[(task.file_id, crashes)])
            buffer.clear()

        oldest = [0.0]  # when the oldest unwritten result came back

        def tick() -> None:
            # Results wait for the next dispatch (one transaction for both) but never
            # much longer than FLUSH_SECONDS (the pool ticks at least once a second), so a
            # kill -9 loses at most about two seconds of finished work.
            if buffer and time.monotonic() - oldest[0] >= FLUSH_SECONDS:
                case.record_progress(run_id, buffer)
                buffer.clear()

        try:
            for result in pool.run(tasks(), on_dispatch=dispatched, on_checkpoint=checkpoint,
                                   on_crash=crashed, on_tick=tick):
                if not buffer:
                    oldest[0] = time.monotonic()
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
        if options.cluster and cluster_use is not None:
            from .cluster import ClusterStats

            assert isinstance(pool.stats, ClusterStats)
            cluster_use.append(pool.stats.use(options.cluster))
        return pool.stats.summary()


def _block_store(options: ScanOptions) -> str | None:
    """The block-hash set beside the hash-set store, when one was imported (issue 17:
    fragment matching is on only then)."""
    from hashsets.blocks import block_store_path
    from hashsets.paths import default_store_path

    if not options.carve:
        return None
    path = block_store_path(Path(options.store) if options.store else default_store_path())
    return str(path) if path.is_file() else None




def _confirm(case: Case, evidence_id: int, run_id: int, spec: tuple[str, Any],
             options: ScanOptions, progress: Progress) -> dict[str, int] | None:
    """The scan's second pass (issue 14 item 3, :mod:`triage.confirm`): pictures of this
    evidence whose draft-decoded values are near candidates are decoded again at full size
    before matching. Nothing to do without matching, perceptual hashes or draft decoding.
    Returns the counts for the match summary, None when it did not run."""
    if not (options.match and options.worker.perceptual and options.worker.draft_size):
        return None
    from hashsets.store import default_store_path

    from .confirm import Outcome, candidates, confirm
    from .matching import effective_thresholds

    try:
        limits = effective_thresholds(options.thresholds or None)
        store = Path(options.store) if options.store else default_store_path()
        todo = candidates(case, store, limits).get(evidence_id, [])
    except Exception as e:  # the store's problems are matching's to report
        progress.warn(f"full-decode confirmation skipped: {e}")
        return None
    if not todo:
        return {"candidates": 0, **Outcome().as_dict()}
    progress.note(f"decoding {len(todo)} draft-decoded near candidate(s) again at full size")
    memory = membudget.plan(options.memory_budget, options.jobs)
    worker = options.worker
    if worker.container_seconds > options.timeout / 2:
        worker = replace(worker, container_seconds=options.timeout / 2)
    outcome = confirm(case, evidence_id, spec, todo, worker, options.jobs, options.timeout,
                      memory, lambda r: case.record_progress(run_id, [r]), run_id)
    return {"candidates": len(todo), **outcome.as_dict()}


def _match(case: Case, run_id: int, options: ScanOptions,
           confirmation: dict[str, int] | None = None) -> MatchSummary:
    from .matching import match_case

    return match_case(case, run_id, store_path=Path(options.store) if options.store else None,
                      thresholds=options.thresholds or None, confirmation=confirmation)


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
        f"'{INCOMPLETE}') AND kind='file' AND coalesce(locator, '') NOT LIKE '[\"carve\"%'",
        params).fetchone()[0]
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
        videos=video_coverage(c, evidence_id),
    )
