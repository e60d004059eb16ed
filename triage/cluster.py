"""``triage scan --cluster tcp://HOST:PORT``: the worker pool on a Dask cluster (issue 19).

The supervisor stays what it is for a local scan: the only writer of the case database, and
the owner of enumeration, dispatch, resume and the audit trail. :class:`ClusterPool` takes
the place of :class:`~triage.pipeline.WorkerPool` (same ``run`` contract): it hands
batches of tasks to ``python -m triage_dask.client`` (a child process that imports Dask and
never :mod:`triage`, so this process keeps its offline guard), which submits them to the
scheduler. On each Dask worker a local ``triage.cluster_node`` runs every batch through the
same isolated worker pool as a local scan (:mod:`triage.cluster_node`).

What each guarantee becomes:

* a file that crashes or hangs a worker process costs that file: the node's pool retries
  it once on a fresh worker, then quarantines it, and times it out at the same deadline as
  locally; the crashes come back with the batch and are recorded before its results;
* a Dask worker (machine) that disappears costs nothing finished: Dask runs its batches
  again on another worker. A batch that Dask gives up on (``KilledWorker``: its workers
  were lost more often than the scheduler's ``allowed-failures``) or whose node died is
  split into single files; a single file whose batch is lost twice that way is quarantined
  (the mapping of Dask's retries onto "retry once, then quarantine"). No worker or no
  scheduler for ``wait`` seconds, or a batch cancelled with the scheduler, stops the scan
  (exit 9) without counting anything against a file;
* ``kill -9`` of the supervisor: every batch's tasks are recorded as dispatched before they
  are submitted and results are written as they come, so the same command resumes exactly
  as a local scan does;
* a worker whose triage or library versions differ from this machine's is refused before
  any file is sent (:func:`triage.cluster_node.version_differences`), and so is a worker
  that cannot read the evidence at its (mapped) path: the scan stops with exit code 9,
  finished files kept.

Only entries (names, sizes, times, where the content lies) go out and only results (hashes
and facts) come back; no file content ever crosses the network (docs/cluster.md).
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from triage_dask import frames

from . import faults
from .errors import ClusterError, UsageError
from .model import ClusterUse, FileResult, PoolSummary
from .pipeline import MAX_ATTEMPTS, _given_up
from .versions import versions
from .worker import Task, WorkerOptions

#: Files per batch (``--cluster-batch``): large enough that the per-batch round trip is
#: small against the work, small enough that every worker gets several.
DEFAULT_BATCH_FILES = 256
#: A batch is also closed at this much file content, so that large files spread out.
BATCH_CONTENT = 64 << 20
#: Batches in flight per Dask worker thread: one working, one waiting to start.
BATCHES_PER_THREAD = 2
#: Seconds to reach the scheduler and see a first worker.
CONNECT_TIMEOUT = 60.0
#: Seconds a scan waits while the cluster has no worker (or no scheduler) before it stops
#: with exit 9 (``--cluster-wait``).
DEFAULT_WAIT = 120.0


def parse_path_map(items: Sequence[str]) -> list[tuple[str, str]]:
    """``LOCAL=REMOTE`` items (``--path-map``), longest LOCAL first."""
    out = []
    for item in items:
        local, sep, remote = item.partition("=")
        if not sep or not local or not remote:
            raise UsageError(f"--path-map {item!r}: expected LOCAL=REMOTE (two absolute "
                             "paths)")
        if not (os.path.isabs(local) and os.path.isabs(remote)):
            raise UsageError(f"--path-map {item!r}: both paths must be absolute")
        out.append((os.path.normpath(local), os.path.normpath(remote)))
        # The scan reads evidence given through a symbolic link at its target: the map
        # must apply to the target too.
        real = os.path.realpath(local)
        if real != os.path.normpath(local):
            out.append((real, os.path.normpath(remote)))
    return sorted(out, key=lambda p: len(p[0]), reverse=True)


def map_path(path: str, path_map: Sequence[tuple[str, str]]) -> str:
    """``path`` as the workers see it: the longest matching LOCAL prefix replaced."""
    for local, remote in path_map:
        if path == local or path.startswith(local.rstrip("/") + "/"):
            return remote + path[len(local):]
    return path


def _map_spec(spec: tuple[str, Any], path_map: Sequence[tuple[str, str]]
              ) -> tuple[tuple[str, Any], str]:
    name, args = spec
    if isinstance(args, str):  # a folder: read through the worker's own mount
        mapped = map_path(args, path_map)
        return (name, {"path": mapped, "remote": True}), mapped
    if isinstance(args, dict) and isinstance(args.get("path"), str):
        mapped = map_path(args["path"], path_map)
        return (name, {**args, "path": mapped}), mapped
    raise ClusterError(f"a {name} source cannot be scanned on a cluster")


@dataclass
class _Batch:
    id: int
    tasks: list[Task]
    #: Sent alone after its first batch was lost (a lost single-file batch counts as a
    #: crash of the file, see the module doc).
    single: bool = False


@dataclass
class ClusterStats:
    workers: list[str] = field(default_factory=list)
    threads: int = 0
    batches: int = 0
    batches_lost: int = 0
    pool: dict[str, float] = field(default_factory=lambda: {
        "workers_started": 0, "worker_crashes": 0, "timeouts": 0, "quarantined": 0,
        "slowest_giveup_seconds": 0.0})
    by_worker: dict[str, int] = field(default_factory=dict)

    def use(self, address: str) -> ClusterUse:
        return ClusterUse(address=address, workers=tuple(self.workers),
                          files_by_worker=dict(sorted(self.by_worker.items())),
                          batches=self.batches, batches_lost=self.batches_lost)

    def summary(self) -> PoolSummary:
        p = self.pool
        return PoolSummary(workers_started=int(p["workers_started"]),
                           worker_crashes=int(p["worker_crashes"]),
                           timeouts=int(p["timeouts"]), quarantined=int(p["quarantined"]),
                           slowest_giveup_seconds=round(p["slowest_giveup_seconds"], 3))


class ClusterPool:
    """Run tasks on the Dask cluster at ``address``; yields one result per task, in
    completion order (the contract of :meth:`triage.pipeline.WorkerPool.run`)."""

    def __init__(self, address: str, spec: tuple[str, Any], options: WorkerOptions,
                 jobs: int | None, timeout: float, memory_budget: int | None, *,
                 path_map: Sequence[tuple[str, str]] = (), evidence_size: int | None = None,
                 batch_files: int = DEFAULT_BATCH_FILES, expected_files: int | None = None,
                 wait: float = DEFAULT_WAIT,
                 note: Callable[[str], None] | None = None) -> None:
        self.address = address
        self.batch_files = max(1, batch_files)
        self.wait = wait
        #: How many tasks ``run`` will be given, when the caller knows (the pending files):
        #: batches are then made small enough that every worker thread gets some.
        self.expected_files = expected_files
        self.stats = ClusterStats()
        self._note = note or (lambda _m: None)
        mapped_spec, evidence_path = _map_spec(spec, path_map)
        if options.block_store is not None:
            options = replace(options, block_store=map_path(options.block_store, path_map))
        setup = {"spec": mapped_spec, "options": options, "timeout": timeout, "jobs": jobs,
                 "memory_budget": memory_budget, "faults": faults.active(),
                 "versions": versions(),
                 "paths": {"evidence": evidence_path,
                           "block-hash set": options.block_store},
                 "evidence_size": evidence_size}
        self._setup = pickle.dumps(setup, protocol=pickle.HIGHEST_PROTOCOL)
        self._key = f"{os.getpid()}-{int(time.time())}"
        self._log = tempfile.TemporaryFile(prefix="triage-dask-client-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._in_flight: dict[int, _Batch] = {}
        self._next_id = 0
        self._connect()

    # -- the client process ----------------------------------------------------------
    def _connect(self) -> None:
        env = dict(os.environ)
        env.pop(faults.ENV, None)  # faults are the nodes' (sent in the setup), never Dask's
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "triage_dask.client"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=env)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._write({"op": "connect", "address": self.address, "setup": self._setup,
                     "timeout": CONNECT_TIMEOUT, "wait": self.wait, "key": self._key})
        stdout = self._proc.stdout

        def reader() -> None:
            try:
                while True:
                    self._answers.put(frames.read(stdout))
            except (frames.FrameError, OSError, ValueError):
                self._answers.put(None)

        threading.Thread(target=reader, daemon=True, name="dask-client-out").start()
        try:  # connecting, waiting for a worker, and every worker's node starting
            hello = self._answers.get(timeout=CONNECT_TIMEOUT * 3 + self.wait)
        except queue.Empty:
            raise ClusterError(f"no answer from the Dask cluster at {self.address} in "
                               f"{CONNECT_TIMEOUT * 3 + self.wait:.0f} s"
                               f"{self._log_tail()}") from None
        if hello is None:
            raise ClusterError(f"the Dask client ended before connecting to {self.address}"
                               f"{self._log_tail()}")
        if hello["op"] == "failed":
            raise ClusterError(hello["reason"])
        refused = [w for w in hello["workers"] if w.get("op") != "ready"]
        if refused:
            raise ClusterError("; ".join(f"worker {w['worker']} refused the scan: "
                                         f"{w.get('reason')}" for w in refused))
        unguarded = [w["worker"] for w in hello["workers"] if not w.get("offline_guard")]
        if unguarded:  # cannot happen with this code; never scan if it does
            raise ClusterError(f"worker(s) {', '.join(unguarded)}: the triage node's offline "
                               "guard is not on")
        self.stats.workers = sorted(w["worker"] for w in hello["workers"])
        self.stats.threads = int(hello["threads"])
        self._note(f"Dask cluster {self.address}: {len(self.stats.workers)} worker(s), "
                   f"{self.stats.threads} thread(s): {', '.join(self.stats.workers)}")

    def _write(self, message: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            frames.write(self._proc.stdin, message)
        except (BrokenPipeError, OSError) as e:
            raise ClusterError(f"lost the Dask client: {e}{self._log_tail()}") from e

    def _log_tail(self) -> str:
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - 2000))
            tail = self._log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        except OSError:
            return ""
        return ("; the client said: " + " | ".join(tail)) if tail else ""

    def close(self) -> None:
        if self._proc is not None:
            try:
                if self._proc.stdin is not None:
                    # The workers close this scan's nodes (and their worker processes,
                    # which hold the evidence open), then the client ends.
                    frames.write(self._proc.stdin, {"op": "close", "key": self._key})
                    self._proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        self._log.close()

    def __enter__(self) -> ClusterPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------
    def in_flight(self) -> list[Task]:
        return [t for b in self._in_flight.values() for t in b.tasks]

    def run(self, tasks: Iterable[Task],
            on_dispatch: Callable[[Sequence[Task]], None] | None = None,
            on_checkpoint: Callable[[Task, FileResult], None] | None = None,
            on_crash: Callable[[Task, int], None] | None = None,
            on_tick: Callable[[], None] | None = None) -> Iterator[FileResult]:
        """As :meth:`triage.pipeline.WorkerPool.run`. ``on_checkpoint`` is never called:
        a node sends a batch's results when the batch is over (a checkpoint only matters
        for a file still in flight when the supervisor dies, and such a file is redone)."""
        source = iter(tasks)
        singles: deque[Task] = deque()  # of lost batches, to be sent alone
        exhausted = False
        size = self.batch_files
        if self.expected_files:
            # At least two batches per slot (no worker idle while one has a long batch).
            size = max(1, min(size, -(-self.expected_files // (2 * self._slots()))))

        def fill() -> None:
            nonlocal exhausted
            while len(self._in_flight) < self._slots():
                if singles:
                    batch = [singles.popleft()]
                    single = True
                else:
                    if exhausted:
                        return
                    batch, content = [], 0
                    for task in source:
                        batch.append(task)
                        content += task.entry.size or 0
                        if len(batch) >= size or content >= BATCH_CONTENT:
                            break
                    else:
                        exhausted = True
                    if not batch:
                        return
                    single = False
                self._submit(_Batch(self._next_id, batch, single), on_dispatch)

        fill()
        while self._in_flight:
            try:
                answer = self._answers.get(timeout=1.0)
            except queue.Empty:
                if on_tick is not None:
                    on_tick()
                continue
            if answer is None:
                raise ClusterError(f"lost the Dask client{self._log_tail()}")
            if answer["op"] == "failed":
                raise ClusterError(answer["reason"])
            if answer["op"] == "threads":  # workers joined or left: as many batches
                self.stats.threads = int(answer["threads"])
                fill()
                continue
            batch = self._in_flight.pop(int(answer["id"]))
            if answer["op"] == "result":
                yield from self._results(batch, answer, on_crash)
            elif answer["kind"] == "killed":
                yield from self._lost(batch, answer["reason"], singles, on_crash)
            else:  # refused, or the cluster itself failed: never the files' doing
                raise ClusterError(answer["reason"])
            fill()
            if on_tick is not None:
                on_tick()

    def _slots(self) -> int:
        """Batches kept in flight: :data:`BATCHES_PER_THREAD` per Dask worker thread."""
        return max(1, self.stats.threads) * BATCHES_PER_THREAD

    def _submit(self, batch: _Batch, on_dispatch: Callable[[Sequence[Task]], None] | None
                ) -> None:
        if on_dispatch is not None:
            on_dispatch(batch.tasks)  # recorded before anything is sent
        self._next_id += 1
        self._in_flight[batch.id] = batch
        self.stats.batches += 1
        self._write({"op": "batch", "id": batch.id, "key": self._key,
                     "payload": pickle.dumps(batch.tasks, protocol=pickle.HIGHEST_PROTOCOL)})

    def _results(self, batch: _Batch, answer: dict[str, Any],
                 on_crash: Callable[[Task, int], None] | None) -> Iterator[FileResult]:
        if answer.get("dask_process_imports_triage"):
            raise ClusterError(f"worker {answer['worker']}: its Dask process imported "
                               "triage (the offline guard would cut its connections)")
        done = pickle.loads(answer["payload"])  # noqa: S301 - from our own nodes
        worker = str(answer["worker"])
        by_id = {t.file_id: t for t in batch.tasks}
        for file_id, crashes in done["crashes"]:
            if on_crash is not None:
                on_crash(by_id[file_id], crashes)
        counters = done["counters"]
        for k in ("workers_started", "worker_crashes", "timeouts", "quarantined"):
            self.stats.pool[k] += counters[k]
        self.stats.pool["slowest_giveup_seconds"] = max(
            self.stats.pool["slowest_giveup_seconds"], counters["slowest_giveup_seconds"])
        self.stats.by_worker[worker] = self.stats.by_worker.get(worker, 0) + len(batch.tasks)
        results: list[FileResult] = done["results"]
        if sorted(r.file_id for r in results) != sorted(by_id):
            raise ClusterError(f"worker {worker} answered a batch with other files than "
                               "were sent")
        for r in results:
            yield replace(r, processed_by=worker)

    def _lost(self, batch: _Batch, reason: str, singles: deque[Task],
              on_crash: Callable[[Task, int], None] | None) -> Iterator[FileResult]:
        """Dask gave up on a batch (see the module doc): its files are sent again one by
        one; a file lost again alone counts as a crash, and is quarantined at the second."""
        self.stats.batches_lost += 1
        if not batch.single:
            singles.extend(batch.tasks)
            self._note(f"a batch of {len(batch.tasks)} file(s) was lost ({reason}); "
                       "sending its files again one by one")
            return
        task = batch.tasks[0]
        crashes = task.crashes + 1
        if on_crash is not None:
            on_crash(task, crashes)
        if crashes < MAX_ATTEMPTS:
            singles.append(Task(task.file_id, task.entry, task.display_path, task.extension,
                                task.attempt + 1, crashes, task.full_decode))
            return
        self.stats.pool["quarantined"] += 1
        yield _given_up(None, task, "quarantined", "cluster", "WorkerLost",
                        f"the Dask batch holding only this file was lost {crashes} times "
                        f"({reason}); quarantined")
