"""The supervisor: disposable worker processes, per-file deadlines, crash survival.

A plain ``ProcessPoolExecutor`` is not enough (RELIABILITY.md): one dead worker breaks the
whole pool. Here each worker is its own process with its own pipe; the supervisor gives a
worker one task at a time and waits on all pipes at once with a deadline:

* a worker that dies (segfault, abort, out of memory) costs only its current file: the file
  is tried once more on a fresh worker; if it kills a worker twice it is ``quarantined``
  (each crash is recorded at once, so the count survives a kill of the whole scan; the
  whole scan dying while a file is in flight never counts against the file);
* a worker that exceeds the file's deadline is killed (SIGKILL) and the file ends as an
  ``error`` at the stage it was in (``timeout``); it is not retried (a hang hangs again);
  inside a container each inner item gets a file's deadline again (worker ``Progress``);
* a video's deadline grows with its duration (read from the container by the worker, which
  sends its decoding time budget as a ``VideoBudget`` before decoding: the deadline becomes
  that budget plus the base timeout; issue 15);
* every task sent comes back as exactly one :class:`~triage.model.FileResult`;
* large picture decodes are admitted against the scan's total memory budget
  (:mod:`triage.membudget`): a worker asks for a grant before decoding and the supervisor
  grants it, queues it (the worker's deadline is paused while it waits) or refuses it; a
  granted decode extends the file's deadline in proportion to its estimate; a grant is
  returned when the decode is over and, whatever happens, when the task ends, the worker
  dies or is killed.

Workers are isolated children (:mod:`triage.isolation`, the same mechanism as the
enumeration children): forked from a forkserver that has already imported the heavy
modules, so replacing a dead worker is cheap, and no SQLite handle or lock of the supervisor
is inherited; core dumps off, memory capped, stderr discarded, a private temporary folder.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from hashsets.algorithms import get as get_algorithm
from hashsets.algorithms import stream_algorithms

from . import isolation, membudget
from .errors import TriageError
from .model import FileResult, PoolSummary
from .worker import (
    STAGES,
    Checkpoint,
    Progress,
    StageCell,
    Task,
    VideoBudget,
    WorkerOptions,
    worker_main,
)

#: Deadline per file: a base plus time for its size at a deliberately slow rate, so a huge
#: file on a slow disk is not mistaken for a hang.
DEFAULT_TIMEOUT = 60.0
MIN_THROUGHPUT = 20 << 20  # bytes per second assumed when extending the deadline
#: Bytes of decode estimate per second assumed when a granted decode extends its file's
#: deadline: the deadline is for the file's size, but a 1.6 MB PNG can hold 121 MP that take
#: 15 s to decode and hash on an idle core (estimate 3.9 GB, about 260 MB/s, measured with
#: benchmarks/bench_memory.py); 20 MiB/s leaves room for 13 times that on a busy machine.
#: All of a file's decodes together (the pictures inside an archive) extend its deadline by
#: at most what the costliest picture ``max_pixels`` lets through would (307 s by default).
DECODE_THROUGHPUT = 20 << 20
MAX_ATTEMPTS = 2  # a file that kills a worker this many times is quarantined (RELIABILITY.md)
#: Seconds a file may stay in decoding or expansion after its checkpoint (digests known)
#: before the checkpoint is handed to ``on_checkpoint`` to be recorded: most files finish
#: well within it and cost no extra write; a slow one (a big archive) has its digests in the
#: case within about a second, whatever happens to the scan afterwards.
CHECKPOINT_DELAY = 1.0
#: Tasks a worker holds at once (the one it works on and those queued behind it in its
#: pipe), so that it never waits idle while the supervisor records a result and picks the
#: next task; a worker whose queue is down to PREFETCH_LOW is topped up, all workers' new
#: tasks recorded in one transaction (on_dispatch). Issue 13: one transaction and one wake-up
#: per file made the supervisor the bottleneck on small files.
PREFETCH = 32
PREFETCH_LOW = 8
#: Beyond two tasks (the one being worked on and the next, so that no worker ever waits), a
#: queue is also kept under this much file content (sum of sizes), so that near the end no
#: worker sits on a long queue of large files (pictures: ~30 ms per MB) while another is
#: idle, and under this many pickled bytes, far below a Unix socket's buffer
#: (net.core.wmem_default, 208 KiB), so that sending a task never blocks: the supervisor
#: cannot deadlock with a worker that is blocked sending it a large result.
PREFETCH_CONTENT = 2 << 20
PREFETCH_WIRE_BYTES = 32 << 10


class WorkerStartError(TriageError):
    """Worker processes cannot be started (nothing about any file)."""


def file_deadline(size: int | None, base: float) -> float:
    return base + (size or 0) / MIN_THROUGHPUT


@dataclass
class _Worker:
    index: int
    child: isolation.Child
    stage: StageCell
    #: Tasks handed to this worker and not answered yet, in the order it works on them
    #: (:func:`_refill`); the first is the one it is working on, or about to start.
    queue: deque[_Sent] = field(default_factory=deque)
    deadline: float = 0.0
    started: float = 0.0
    #: The first task's result as it stood before decoding/expansion (digests known).
    partial: FileResult | None = None
    partial_at: float = 0.0
    partial_recorded: bool = False
    #: When the worker began waiting for a memory grant (its deadline is paused meanwhile).
    waiting_since: float | None = None
    waiting_for: int = 0
    #: Seconds the task's deadline was extended for granted decodes.
    extended: float = 0.0

    @property
    def task(self) -> Task | None:
        """The task this worker is working on (or about to start), if any."""
        return self.queue[0].task if self.queue else None

    def start_head(self, now: float, base: float) -> None:
        """The first queued task starts now: its deadline runs from here."""
        self.partial, self.partial_recorded = None, False
        self.extended = 0.0
        if self.queue:
            self.started = now
            self.deadline = now + file_deadline(self.queue[0].task.entry.size, base)


@dataclass(frozen=True, slots=True)
class _Sent:
    """A task sent to a worker, with its pickled size (what sits in the pipe)."""

    task: Task
    wire_bytes: int


@dataclass
class PoolStats:
    workers_started: int = 0
    crashes: int = 0
    timeouts: int = 0
    quarantined: int = 0
    slowest_giveup: float = 0.0
    memory: membudget.MemoryPlan | None = None
    admission: membudget.Admission | None = None

    def summary(self) -> PoolSummary:
        plan, adm = self.memory, self.admission
        return PoolSummary(workers_started=self.workers_started, worker_crashes=self.crashes,
                           timeouts=self.timeouts, quarantined=self.quarantined,
                           slowest_giveup_seconds=round(self.slowest_giveup, 3),
                           memory_budget_bytes=plan.budget if plan else None,
                           decode_grant_capacity_bytes=plan.capacity if plan else None,
                           decode_grant_peak_bytes=adm.peak if adm else 0,
                           decodes_waited=adm.waited if adm else 0,
                           decodes_refused=adm.refused if adm else 0)


class WorkerPool:
    """Run tasks on ``jobs`` isolated workers; yields one result per task, in completion
    order.

    ``memory`` is the scan's total budget (:func:`triage.membudget.plan`; default: planned
    from the machine's available memory for ``jobs``): it may lower ``jobs``, caps each
    worker's address space and admits large decodes."""

    def __init__(self, spec: tuple[str, Any], options: WorkerOptions, jobs: int,
                 timeout: float = DEFAULT_TIMEOUT,
                 memory: membudget.MemoryPlan | None = None) -> None:
        self.spec = spec
        self.options = options
        self.memory = memory if memory is not None else membudget.plan(None, jobs)
        self.jobs = max(1, min(jobs, self.memory.jobs))
        self.timeout = timeout
        self._worker_limit = self.memory.worker_limit(options.memory_limit)
        self._max_extension = (options.max_pixels * membudget.WORST_BYTES_PER_PIXEL
                               / DECODE_THROUGHPUT)
        self.admission = membudget.Admission(self.memory.capacity,
                                             f"of {self.memory.describe()}")
        self.stats = PoolStats(memory=self.memory, admission=self.admission)
        self._algorithms = tuple(get_algorithm(n) for n in options.algorithms)
        isolation.remove_stale_tmpdirs()
        # 0700 by mkdtemp; the pid in the name lets a later scan remove it if this one is
        # killed before it can clean up.
        self._tmproot = tempfile.mkdtemp(prefix=f"{isolation.TMP_PREFIX}{os.getpid()}-")
        self._workers: list[_Worker] = []
        self._next_index = 0
        self._waiter = _Waiter()

    # -- lifecycle -------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        stage = isolation.shared_int()
        try:
            child = isolation.spawn(worker_main,
                                    (self.spec, self.options, stage, self._algorithms),
                                    name=f"worker-{self._next_index}",
                                    memory_limit=self._worker_limit,
                                    tmp_root=self._tmproot)
        except (OSError, isolation.ChildStartError) as e:
            raise WorkerStartError(f"worker processes cannot start: {e}") from e
        w = _Worker(self._next_index, child, stage)
        parent = child.conn
        # A worker that cannot set itself up (libmagic missing, evidence unreadable from a
        # worker) would otherwise crash on every file and quarantine them all: stop here,
        # with the files still pending for a later run.
        reason = "did not start within 60 s"
        if parent.poll(60):
            try:
                kind, detail = parent.recv()
            except (EOFError, OSError):
                kind, detail = "died", child.death()
            if kind == "ready":
                reason = ""
            else:
                reason = str(detail)
        if reason:
            self._discard(w)
            raise WorkerStartError(f"worker processes cannot start: {reason}")
        self._next_index += 1
        self.stats.workers_started += 1
        return w

    def _discard(self, w: _Worker) -> None:
        w.child.discard()

    def close(self) -> None:
        for w in self._workers:
            try:
                if not w.queue and w.child.process.is_alive():
                    w.child.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for w in self._workers:
            w.child.discard(grace=max(0.0, deadline - time.monotonic()))
        self._workers = []
        shutil.rmtree(self._tmproot, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------
    def run(self, tasks: Iterable[Task],
            on_dispatch: Callable[[Sequence[Task]], None] | None = None,
            on_checkpoint: Callable[[Task, FileResult], None] | None = None,
            on_crash: Callable[[Task, int], None] | None = None,
            on_tick: Callable[[], None] | None = None) -> Iterator[FileResult]:
        """Yield one result per task. Callbacks, all called in this process so the caller
        can record them at once: ``on_tick()`` at least once a second and after every
        batch of results; ``on_dispatch(tasks)`` just before tasks are handed to
        workers (each worker holds up to :data:`PREFETCH` tasks and works through them in
        order); ``on_checkpoint(task, partial)`` with what the worker knew once it had read
        the file in full (digests), if decoding or expanding it is still going on
        :data:`CHECKPOINT_DELAY` seconds later or the worker died; ``on_crash(task,
        crashes)`` when a worker died on the task (``crashes`` counts them, earlier runs
        included). A worker that dies or is killed costs only the task it was working on:
        the tasks queued behind it go to another worker unchanged (not counted against
        them)."""
        source = iter(tasks)
        retry: deque[Task] = deque()
        exhausted = False
        while len(self._workers) < self.jobs:
            self._workers.append(self._spawn())

        def next_task() -> Task | None:
            nonlocal exhausted
            if retry:
                return retry.popleft()
            if exhausted:
                return None
            try:
                return next(source)
            except StopIteration:
                exhausted = True
                return None

        while True:
            self._refill(next_task, on_dispatch)
            busy = [w for w in self._workers if w.queue]
            if not busy:
                return
            now = time.monotonic()
            wait_for = max(0.0, min((w.deadline for w in busy if w.waiting_since is None),
                                    default=now + 1.0) - now)
            ready = self._waiter.wait([w.child.conn for w in busy], min(wait_for, 1.0))
            if on_tick is not None:
                on_tick()
            for i, w in enumerate(self._workers):
                if not w.queue:
                    continue
                if w.child.conn in ready or (w.waiting_since is None
                                             and time.monotonic() >= w.deadline
                                             and _has_message(w)):
                    # (A message that came while this loop was busy, e.g. starting a
                    # replacement worker, is read before any deadline is judged.)
                    yield from self._drain(i, w, retry, on_checkpoint, on_crash,
                                           readable=True)
                elif w.waiting_since is None and time.monotonic() >= w.deadline:
                    yield self._timed_out(i, w, retry)
                else:
                    self._checkpoint_if_due(w, w.queue[0].task, on_checkpoint)

    def _refill(self, next_task: Callable[[], Task | None],
                on_dispatch: Callable[[Sequence[Task]], None] | None) -> None:
        """Top up every worker whose queue is down to :data:`PREFETCH_LOW` (within the
        content and pipe limits); record all the new tasks with one ``on_dispatch`` call,
        then send them."""
        if all(len(w.queue) > PREFETCH_LOW for w in self._workers):
            return  # nothing to top up (most wake-ups on small files)
        plan: list[tuple[int, Task, bytes]] = []
        counts = [len(w.queue) for w in self._workers]
        # Only queues at or below PREFETCH_LOW are added to (the others are skipped below).
        content = [sum(s.task.entry.size or 0 for s in w.queue) if n <= PREFETCH_LOW else 0
                   for w, n in zip(self._workers, counts, strict=True)]
        wire = [sum(s.wire_bytes for s in w.queue) if n <= PREFETCH_LOW else 0
                for w, n in zip(self._workers, counts, strict=True)]

        def take(i: int) -> bool:
            task = next_task()
            if task is None:
                return False
            data = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
            plan.append((i, task, data))
            counts[i] += 1
            content[i] += task.entry.size or 0
            wire[i] += len(data)
            return True

        # First one task to every idle worker (all of them busy before any holds two),
        # then the queues are topped up; the last task taken may pass a limit.
        for i, n in enumerate(counts):
            if n == 0 and not take(i):
                break
        for i in range(len(self._workers)):
            if len(self._workers[i].queue) > PREFETCH_LOW:
                continue
            while counts[i] < PREFETCH and not (
                    counts[i] >= 2 and (content[i] >= PREFETCH_CONTENT
                                        or wire[i] >= PREFETCH_WIRE_BYTES)):
                if not take(i):
                    break
        if not plan:
            return
        for i in sorted({i for i, _, _ in plan}):
            w = self._workers[i]
            if not w.queue and not w.child.process.is_alive():
                self._discard(w)
                self._workers[i] = self._spawn()
        if on_dispatch is not None:
            on_dispatch([t for _, t, _ in plan])
        now = time.monotonic()
        for i, task, data in plan:
            w = self._workers[i]
            idle = not w.queue
            w.queue.append(_Sent(task, len(data)))
            if idle:
                w.start_head(now, self.timeout)
            try:
                w.child.conn.send_bytes(data)
            except OSError:
                pass  # a dead worker shows up as EOF

    def _drain(self, i: int, w: _Worker, retry: deque[Task],
               on_checkpoint: Callable[[Task, FileResult], None] | None,
               on_crash: Callable[[Task, int], None] | None,
               readable: bool = False) -> Iterator[FileResult]:
        """Every message the worker has sent so far (results of its first tasks, in order,
        and checkpoints); a closed pipe is the death of the worker on its first task.
        ``readable``: the pipe was just found readable (closed or in error)."""
        conn = w.child.conn
        while w.queue:
            task = w.queue[0].task
            try:
                # The first message of a wake-up needs no second look (issue 13: a poll
                # per message was a share of the supervisor's time on many small files).
                if not readable and not _readable_now(conn):
                    return
                readable = False
                message = conn.recv()
            except (EOFError, OSError):
                if (w.partial is not None and not w.partial_recorded
                        and on_checkpoint is not None):
                    on_checkpoint(task, w.partial)  # kept whatever comes next
                yield from self._crashed(i, w, task, retry, on_crash)
                return
            if isinstance(message, Checkpoint):  # keep, wait for the result
                w.partial, w.partial_at = message.result, time.monotonic()
                continue
            if isinstance(message, Progress):  # an inner item: a file's deadline
                w.deadline = max(w.deadline, time.monotonic() + file_deadline(
                    message.size, self.timeout))
                # These can come without pause: the checkpoint is due all the same.
                self._checkpoint_if_due(w, task, on_checkpoint)
                continue
            if isinstance(message, VideoBudget):
                # A video's deadline grows with its duration (issue 15): its decoding time
                # budget, plus the base timeout for everything around it.
                w.deadline = max(w.deadline, time.monotonic() + message.seconds + self.timeout)
                continue
            if isinstance(message, membudget.GrantRequest):
                self._grant_request(w, message.nbytes)
                continue
            if isinstance(message, membudget.GrantRelease):
                self._release(w)
                continue
            w.queue.popleft()
            self._release(w)
            w.start_head(time.monotonic(), self.timeout)
            yield message

    @staticmethod
    def _checkpoint_if_due(w: _Worker, task: Task,
                           on_checkpoint: Callable[[Task, FileResult], None] | None) -> None:
        """Hand the task's checkpoint to ``on_checkpoint`` once it is
        :data:`CHECKPOINT_DELAY` old and not handed over yet."""
        if (w.partial is not None and not w.partial_recorded
                and time.monotonic() - w.partial_at >= CHECKPOINT_DELAY):
            w.partial_recorded = True
            if on_checkpoint is not None:
                on_checkpoint(task, w.partial)

    # -- the memory budget -------------------------------------------------------------
    def _grant_request(self, w: _Worker, nbytes: int) -> None:
        reply = self.admission.request(w.index, nbytes)
        if reply is None:  # queued: the deadline stops until the grant comes
            w.waiting_since = time.monotonic()
            w.waiting_for = nbytes
            return
        if reply.granted:
            self._extend(w, nbytes)
        self._reply(w, reply)

    def _extend(self, w: _Worker, nbytes: int) -> None:
        """A decode of ``nbytes`` of estimate was granted: more time for the file."""
        more = min(nbytes / DECODE_THROUGHPUT, self._max_extension - w.extended)
        if more > 0:
            w.deadline += more
            w.extended += more

    def _release(self, w: _Worker) -> None:
        """``w`` holds no grant and waits for none any more; tell the workers granted in
        its place."""
        w.waiting_since = None
        if not self.admission.held and not self.admission.queue:
            return  # no grant held or asked for by any worker (nearly always)
        granted = set(self.admission.release(w.index))
        for other in self._workers:
            if other.index in granted and other.waiting_since is not None:
                other.deadline += time.monotonic() - other.waiting_since
                other.waiting_since = None
                self._extend(other, other.waiting_for)
                self._reply(other, membudget.GrantReply(True))

    def _reply(self, w: _Worker, reply: membudget.GrantReply) -> None:
        try:
            w.child.conn.send(reply)
        except OSError:
            pass  # a dead worker shows up as EOF

    def _stage(self, w: _Worker) -> str:
        try:
            return STAGES[w.stage.value]
        except (IndexError, ValueError):
            return "unknown"

    def _crashed(self, i: int, w: _Worker, task: Task, retry: deque[Task],
                 on_crash: Callable[[Task, int], None] | None) -> Iterator[FileResult]:
        stage = self._stage(w)
        how = w.child.death()
        self._discard(w)
        self._release(w)
        crashes = task.crashes + 1
        self.stats.crashes += 1
        _requeue_behind(w, retry)
        if on_crash is not None:
            on_crash(task, crashes)  # recorded before anything else can go wrong
        self._workers[i] = self._spawn()
        if crashes < MAX_ATTEMPTS:
            # Tried again on a fresh worker; only crashes of a worker on this very file
            # count (earlier runs' included), never a death of the whole scan.
            retry.append(Task(task.file_id, task.entry, task.display_path, task.extension,
                              task.attempt + 1, crashes))
            return
        self.stats.quarantined += 1
        self.stats.slowest_giveup = max(self.stats.slowest_giveup,
                                        time.monotonic() - w.started)
        yield _given_up(w.partial, task, "quarantined", stage, "WorkerCrash",
                        f"worker {how} at stage {stage}; {crashes} crashes of a worker on "
                        "this file; quarantined")

    def _timed_out(self, i: int, w: _Worker, retry: deque[Task]) -> FileResult:
        task = w.queue[0].task
        stage = self._stage(w)
        elapsed = time.monotonic() - w.started
        self._discard(w)
        self._release(w)
        _requeue_behind(w, retry)
        self._workers[i] = self._spawn()
        self.stats.timeouts += 1
        self.stats.slowest_giveup = max(self.stats.slowest_giveup, elapsed)
        limit = w.deadline - w.started
        return _given_up(w.partial, task, "error", stage, "Timeout",
                         f"timeout: no result after {limit:.0f} s at stage {stage}; "
                         "worker killed")

    def in_flight(self) -> list[Task]:
        """Tasks handed to a worker and not answered yet (queued ones included)."""
        return [s.task for w in self._workers for s in w.queue]


class _Waiter:
    """``multiprocessing.connection.wait`` with one ``poll`` object kept while the set of
    pipes waited on stays the same (it builds and fills a new selector on every call: a
    measurable share of the supervisor's time on many small files, issue 13). Like it, a
    pipe is ready when it is readable, closed or in error."""

    def __init__(self) -> None:
        self._fds: tuple[int, ...] = ()
        self._poll = select.poll()

    def wait(self, conns: Sequence[Connection], timeout: float) -> list[Connection]:
        fds = tuple(c.fileno() for c in conns)
        if fds != self._fds:
            self._poll = select.poll()
            for fd in fds:
                self._poll.register(fd, select.POLLIN)
            self._fds = fds
        events = self._poll.poll(math.ceil(max(0.0, timeout) * 1000))  # EINTR: PEP 475
        ready = {fd for fd, _ in events}
        return [c for c in conns if c.fileno() in ready]


def _has_message(w: _Worker) -> bool:
    """Whether the worker's pipe has something to read (a message, or EOF)."""
    try:
        return _readable_now(w.child.conn)
    except (EOFError, OSError):
        return True


def _readable_now(conn: Connection) -> bool:
    """``conn.poll(0)`` without building a selector (as :class:`_Waiter`): readable, closed
    or in error; OSError when ``conn`` itself is closed."""
    p = select.poll()
    p.register(conn.fileno(), select.POLLIN)
    return bool(p.poll(0))


def _requeue_behind(w: _Worker, retry: deque[Task]) -> None:
    """Empty the queue of a worker that is gone: the tasks behind its first one were never
    started, so they go to the retry queue as they are (same attempt, no crash counted)."""
    behind = [s.task for s in w.queue][1:]
    w.queue.clear()
    retry.extend(behind)


def _given_up(partial: FileResult | None, task: Task, status: str, stage: str,
              error_class: str, reason: str) -> FileResult:
    """The result of a file the pool gave up on: what the worker had already learnt (the
    digests and identification, sent before decoding) is kept; perceptual hashes, image
    facts and inner items are not (they were not finished)."""
    r = FileResult(file_id=task.file_id, status=status, stage=stage,
                   error_class=error_class, attempts=task.attempt, reason=reason)
    if partial is not None:
        streams = {a.name for a in stream_algorithms()}
        r = replace(r, read_status=partial.read_status, mime=partial.mime,
                    media_kind=partial.media_kind,
                    ext_mismatch=partial.ext_mismatch,
                    hashes=tuple(h for h in partial.hashes if h.algorithm in streams),
                    warnings=partial.warnings)
    return r


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
