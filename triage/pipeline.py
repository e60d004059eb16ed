"""The supervisor: disposable worker processes, per-file deadlines, crash survival.

A plain ``ProcessPoolExecutor`` is not enough (RELIABILITY.md): one dead worker breaks the
whole pool. Here each worker is its own process with its own pipe; the supervisor gives a
worker one task at a time and waits on all pipes at once with a deadline:

* a worker that dies (segfault, abort, out of memory) costs only its current file: the file
  is tried once more on a fresh worker; if it kills a worker twice it is ``quarantined``;
* a worker that exceeds the file's deadline is killed (SIGKILL) and the file ends as an
  ``error`` at the stage it was in (``timeout``); it is not retried (a hang hangs again);
* every task sent comes back as exactly one :class:`~triage.model.FileResult`.

Workers start from a forkserver that has already imported the heavy modules, so replacing
a dead worker is cheap, and no SQLite handle or lock of the supervisor is inherited.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from .errors import TriageError
from .model import FileResult, PoolSummary
from .worker import STAGES, Checkpoint, StageCell, Task, WorkerOptions, worker_main

#: Deadline per file: a base plus time for its size at a deliberately slow rate, so a huge
#: file on a slow disk is not mistaken for a hang.
DEFAULT_TIMEOUT = 60.0
MIN_THROUGHPUT = 20 << 20  # bytes per second assumed when extending the deadline
MAX_ATTEMPTS = 2  # a file that kills a worker this many times is quarantined
TMP_PREFIX = "triage-work-"


class WorkerStartError(TriageError):
    """Worker processes cannot be started (nothing about any file)."""


def file_deadline(size: int | None, base: float) -> float:
    return base + (size or 0) / MIN_THROUGHPUT


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    stage: StageCell
    tmpdir: str
    task: Task | None = None
    deadline: float = 0.0
    started: float = 0.0
    #: The task's result as it stood before decoding/expansion (digests known).
    partial: FileResult | None = None


@dataclass
class PoolStats:
    workers_started: int = 0
    crashes: int = 0
    timeouts: int = 0
    quarantined: int = 0
    slowest_giveup: float = 0.0

    def summary(self) -> PoolSummary:
        return PoolSummary(workers_started=self.workers_started, worker_crashes=self.crashes,
                           timeouts=self.timeouts, quarantined=self.quarantined,
                           slowest_giveup_seconds=round(self.slowest_giveup, 3))


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "unknown exit"
    if exitcode < 0:
        try:
            return f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


class WorkerPool:
    """Run tasks on ``jobs`` isolated workers; yields one result per task, in completion
    order."""

    def __init__(self, spec: tuple[str, Any], options: WorkerOptions, jobs: int,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.spec = spec
        self.options = options
        self.jobs = max(1, jobs)
        self.timeout = timeout
        self.stats = PoolStats()
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(["triage.worker", "triage.members", "PIL.Image",
                                          "numpy", "imagehash", "pdqhash", "magic"])
        _remove_stale_tmpdirs()
        # 0700 by mkdtemp; the pid in the name lets a later scan remove it if this one is
        # killed before it can clean up.
        self._tmproot = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        self._workers: list[_Worker] = []
        self._next_index = 0

    # -- lifecycle -------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        stage = self._ctx.RawValue("i", 0)
        tmpdir = tempfile.mkdtemp(prefix=f"w{self._next_index}-", dir=self._tmproot)
        proc = self._ctx.Process(target=worker_main,
                                 args=(child, self.spec, self.options, stage, tmpdir,
                                       os.getpid()),
                                 name=f"triage-worker-{self._next_index}", daemon=True)
        proc.start()
        child.close()
        w = _Worker(self._next_index, proc, parent, stage, tmpdir)
        # A worker that cannot set itself up (libmagic missing, evidence unreadable from a
        # worker) would otherwise crash on every file and quarantine them all: stop here,
        # with the files still pending for a later run.
        reason = "did not start within 60 s"
        if parent.poll(60):
            try:
                kind, detail = parent.recv()
            except (EOFError, OSError):
                proc.join(5)
                kind, detail = "died", _signal_name(proc.exitcode)
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
        if w.process.is_alive():
            w.process.kill()
        w.process.join(5)
        w.conn.close()
        shutil.rmtree(w.tmpdir, ignore_errors=True)

    def close(self) -> None:
        for w in self._workers:
            try:
                if w.task is None and w.process.is_alive():
                    w.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for w in self._workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            self._discard(w)
        self._workers = []
        shutil.rmtree(self._tmproot, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------
    def run(self, tasks: Iterable[Task],
            on_dispatch: Callable[[Task], None] | None = None) -> Iterator[FileResult]:
        """Yield one result per task. ``on_dispatch`` is called (in this process) just before
        a task is handed to a worker, so the caller can record that it is in flight."""
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
            # Hand out work to idle workers.
            for i, w in enumerate(self._workers):
                if w.task is not None:
                    continue
                task = next_task()
                if task is None:
                    break
                if not w.process.is_alive():
                    self._discard(w)
                    w = self._workers[i] = self._spawn()
                if on_dispatch is not None:
                    on_dispatch(task)
                w.task = task
                w.partial = None
                w.started = time.monotonic()
                w.deadline = w.started + file_deadline(task.entry.size, self.timeout)
                try:
                    w.conn.send(task)
                except OSError:
                    pass  # a dead worker shows up as EOF below
            busy = [w for w in self._workers if w.task is not None]
            if not busy:
                return
            now = time.monotonic()
            wait_for = max(0.0, min(w.deadline for w in busy) - now)
            ready = wait([w.conn for w in busy], timeout=min(wait_for, 1.0))
            for i, w in enumerate(self._workers):
                if w.task is None:
                    continue
                task = w.task
                if w.conn in ready:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        yield from self._crashed(i, w, task, retry)
                        continue
                    if isinstance(message, Checkpoint):  # keep, wait for the result
                        w.partial = message.result
                        continue
                    w.task = None
                    yield message
                elif time.monotonic() >= w.deadline:
                    yield self._timed_out(i, w, task)

    def _stage(self, w: _Worker) -> str:
        try:
            return STAGES[w.stage.value]
        except (IndexError, ValueError):
            return "unknown"

    def _crashed(self, i: int, w: _Worker, task: Task,
                 retry: deque[Task]) -> Iterator[FileResult]:
        stage = self._stage(w)
        w.process.join(5)
        how = _signal_name(w.process.exitcode)
        self._discard(w)
        self._workers[i] = self._spawn()
        self.stats.crashes += 1
        if task.attempt < MAX_ATTEMPTS:
            # Tried again on a fresh worker; ``attempt`` counts every time the file was in
            # flight when something died, including an interrupted earlier run.
            retry.append(Task(task.file_id, task.entry, task.display_path, task.extension,
                              task.attempt + 1))
            return
        self.stats.quarantined += 1
        self.stats.slowest_giveup = max(self.stats.slowest_giveup,
                                        time.monotonic() - w.started)
        yield _given_up(w.partial, task, "quarantined", stage, "WorkerCrash",
                        f"worker {how} at stage {stage}; the file was in flight during "
                        f"{task.attempt} crashes; quarantined")

    def _timed_out(self, i: int, w: _Worker, task: Task) -> FileResult:
        stage = self._stage(w)
        elapsed = time.monotonic() - w.started
        self._discard(w)
        self._workers[i] = self._spawn()
        self.stats.timeouts += 1
        self.stats.slowest_giveup = max(self.stats.slowest_giveup, elapsed)
        limit = w.deadline - w.started
        return _given_up(w.partial, task, "error", stage, "Timeout",
                         f"timeout: no result after {limit:.0f} s at stage {stage}; "
                         "worker killed")

    def in_flight(self) -> list[Task]:
        """Tasks handed to a worker and not answered yet."""
        return [w.task for w in self._workers if w.task is not None]


def _given_up(partial: FileResult | None, task: Task, status: str, stage: str,
              error_class: str, reason: str) -> FileResult:
    """The result of a file the pool gave up on: what the worker had already learnt (the
    digests and identification, sent before decoding) is kept; perceptual hashes, image
    facts and inner items are not (they were not finished)."""
    r = FileResult(file_id=task.file_id, status=status, stage=stage,
                   error_class=error_class, attempts=task.attempt, reason=reason)
    if partial is not None:
        r = replace(r, read_status=partial.read_status, mime=partial.mime,
                    magic=partial.magic, media_kind=partial.media_kind,
                    ext_mismatch=partial.ext_mismatch,
                    hashes=tuple(h for h in partial.hashes
                                 if h.algorithm in ("md5", "sha1", "sha256")),
                    warnings=partial.warnings)
    return r


def _remove_stale_tmpdirs() -> None:
    """Remove work directories left by scans that were killed (their pid is gone)."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(TMP_PREFIX):
            continue
        pid_text = name[len(TMP_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except PermissionError:
            continue


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
