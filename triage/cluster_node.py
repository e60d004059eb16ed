"""A cluster node: the triage side of a Dask worker (issue 19, ``triage scan --cluster``).

Started by :func:`triage_dask.node.run_batch` as ``python -m triage.cluster_node`` on the
Dask worker's machine, one per batch running at a time, and kept for the next batches of
the same scan. It imports :mod:`triage`, so the offline guard is on here as in every
process that touches evidence: it never opens a socket. It talks to the Dask worker's
thread over its stdin and stdout only (:mod:`triage_dask.frames`):

1. ``setup``: what the supervisor chose (the evidence's source spec with ``--path-map``
   applied, the worker options, the per-file timeout, jobs and memory budget, injected
   faults of a test run) and the supervisor's tool and library versions. A node whose own
   versions differ (which could change hashes) refuses, naming every difference; so does a
   node that cannot read the evidence where the spec says.
2. ``batch``: a list of :class:`~triage.worker.Task`; the node runs them through its own
   :class:`~triage.pipeline.WorkerPool`, the same isolated, deadline-bound, memory-capped
   workers as a local scan, and answers with every task's
   :class:`~triage.model.FileResult`, the worker crashes counted against files (a file
   that kills a worker is retried once on a fresh one, then quarantined, as locally) and
   the pool's counters.

Nothing of a file's content is ever written to stdout: only the results (hashes and facts).
"""

from __future__ import annotations

import os
import pickle
import socket
from dataclasses import asdict
from typing import IO, Any

from triage_dask import PROTOCOL, frames

from . import faults, isolation, membudget
from .pipeline import WorkerPool, default_jobs
from .versions import versions

#: Version facts that may differ between machines without changing any result.
IGNORED_VERSION_KEYS = frozenset({"platform"})


def version_differences(supervisor: dict[str, Any], here: dict[str, Any],
                        prefix: str = "") -> list[str]:
    """Every version fact that differs between the supervisor's and this machine's
    (:func:`triage.versions.versions`), as ``"name: A on the supervisor, B here"``."""
    out: list[str] = []
    for key in sorted(set(supervisor) | set(here)):
        if not prefix and key in IGNORED_VERSION_KEYS:
            continue
        a, b = supervisor.get(key), here.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(version_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a if a is not None else 'absent'} on the "
                       f"supervisor, {b if b is not None else 'absent'} here")
    return out


def offline_guard_on() -> bool:
    """Whether this process refuses Internet sockets (it must: it touches evidence)."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except PermissionError:
        return True
    s.close()
    return False


class Node:
    def __init__(self, setup: dict[str, Any], threads: int) -> None:
        self.setup = setup
        jobs = setup.get("jobs") or max(1, default_jobs() // max(1, threads))
        memory = membudget.plan(setup.get("memory_budget"), jobs)
        if threads > 1 and memory.budget is not None and setup.get("memory_budget") is None:
            # Each of the Dask worker's threads runs a node like this one: the machine's
            # budget is shared between them.
            memory = membudget.plan(max(membudget.MIN_BUDGET, memory.budget // threads),
                                    jobs)
        self.pool = WorkerPool(setup["spec"], setup["options"], jobs, setup["timeout"],
                               memory)

    def run(self, tasks: list[Any]) -> dict[str, Any]:
        before = asdict(self.pool.stats.summary())
        crashes: list[tuple[int, int]] = []
        results = list(self.pool.run(
            tasks, on_crash=lambda task, n: crashes.append((task.file_id, n))))
        after = asdict(self.pool.stats.summary())
        counters = {k: after[k] - before[k] for k in
                    ("workers_started", "worker_crashes", "timeouts", "quarantined")}
        counters["slowest_giveup_seconds"] = after["slowest_giveup_seconds"]
        counters["jobs"] = self.pool.jobs
        return {"results": results, "crashes": crashes, "counters": counters}

    def close(self) -> None:
        self.pool.close()


def refusal(setup: dict[str, Any]) -> str | None:
    """Why this machine must not work on the scan, or None."""
    differ = version_differences(setup["versions"], versions())
    if differ:
        return ("tool or library versions differ from the supervisor's (results could "
                "differ): " + "; ".join(differ))
    for what, path in setup.get("paths", {}).items():
        if path is not None and not os.access(
                path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
            return (f"cannot read the {what} at {path} on this machine (mount it read-only "
                    "at the same path, or map it with --path-map LOCAL=REMOTE)")
    size = setup.get("evidence_size")
    if size is not None:
        here = os.stat(setup["paths"]["evidence"]).st_size
        if here != size:
            return (f"the evidence at {setup['paths']['evidence']} is {here} bytes here, "
                    f"{size} bytes on the supervisor: not the same evidence")
    return None


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    hello = frames.read(inp)
    if hello.get("op") != "setup" or hello.get("protocol") != PROTOCOL:
        frames.write(out, {"op": "refused", "reason": "protocol mismatch between the Dask "
                           "side and this node (different triage versions)"})
        return
    setup = pickle.loads(hello["setup"])  # noqa: S301 - from our own supervisor
    if setup.get("faults"):
        os.environ[faults.ENV] = setup["faults"]  # test runs: as on the supervisor
    else:
        os.environ.pop(faults.ENV, None)
    isolation.start_early()  # its imports overlap with the checks below
    reason = refusal(setup)
    if reason is None:
        try:  # found now, the machine's problem is not charged to the files of a batch
            isolation.check_children()
        except isolation.ChildStartError as e:
            reason = f"isolated worker processes cannot run on this machine: {e}"
    facts = {"versions": versions(), "offline_guard": offline_guard_on(),
             "pid": os.getpid()}
    if reason is not None:
        frames.write(out, {"op": "refused", "reason": reason, **facts})
        return
    node = Node(setup, int(hello.get("threads") or 1))
    try:
        frames.write(out, {"op": "ready", **facts})
        while True:
            try:
                message = frames.read(inp)
            except frames.FrameError:
                return  # the Dask worker is gone or done with us
            if message.get("op") != "batch":
                return
            tasks = pickle.loads(message["payload"])  # noqa: S301 - our supervisor's
            answer = node.run(tasks)
            frames.write(out, {"op": "done", "payload": pickle.dumps(
                answer, protocol=pickle.HIGHEST_PROTOCOL)})
    finally:
        node.close()


def main() -> None:
    frames.serve_stdio(serve)


if __name__ == "__main__":
    main()
