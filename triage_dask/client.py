"""The Dask client of ``triage scan --cluster`` (issue 19): ``python -m triage_dask.client``.

Started by the supervisor (:mod:`triage.cluster`), which keeps enumeration, dispatch, resume,
the case database and the audit trail, and talks to this process over its stdin and stdout
(:mod:`triage_dask.frames`). This process imports :mod:`distributed` and never
:mod:`triage`: it can hold the connection to the scheduler (the supervisor's offline
guard would refuse it), and it never sees evidence. It passes batches to Dask and answers
back as the opaque bytes they are.

Messages from the supervisor: ``connect`` (scheduler address, the setup every node
receives), ``batch`` (an id and the pickled tasks), ``close``. Answers: ``connected`` (each
worker's report: versions, offline guard, refusal) or ``failed``, then for every batch
``result`` (the worker that ran it and the node's answer) or ``error`` (``lost``: the batch
could not finish after Dask's own retries, e.g. its worker was lost too often;
``refused``: a worker refused the scan).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import IO, Any

from . import frames
from .node import NodeRefused, probe, release, run_batch


def _connect(address: str, timeout: float) -> Any:
    from distributed import Client

    # Security (TLS certificates, require-encryption) comes from Dask's own configuration
    # (~/.config/dask/*.yaml or DASK_DISTRIBUTED__COMM__* variables): docs/cluster.md.
    return Client(address, timeout=timeout, set_as_default=False)


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    first = frames.read(inp)
    if first.get("op") != "connect":
        return
    try:
        client = _connect(first["address"], float(first.get("timeout", 30)))
    except Exception as e:
        frames.write(out, {"op": "failed", "reason": f"cannot connect to the Dask scheduler "
                           f"at {first['address']}: {e}"})
        return
    setup: bytes = first["setup"]
    try:
        try:
            client.wait_for_workers(1, timeout=float(first.get("wait", NO_WORKER_SECONDS)))
            # One probe per worker, as a task pinned to it (run in a worker thread, as the
            # batches are: the node it starts is the one the batches use).
            workers = list(client.scheduler_info(n_workers=-1)["workers"])
            probes = [client.submit(probe, setup, workers=[w], allow_other_workers=False,
                                    pure=False, key=f"triage-probe-{first['key']}-{w}")
                      for w in workers]
            reports = dict(zip(workers, client.gather(probes), strict=True))
        except Exception as e:
            frames.write(out, {"op": "failed", "reason": f"no usable Dask worker at "
                               f"{first['address']}: {e}"})
            return
        threads = sum(w.get("nthreads", 1)
                      for w in client.scheduler_info(n_workers=-1)["workers"].values())
        frames.write(out, {"op": "connected", "workers": list(reports.values()),
                           "threads": threads})
        _pump(client, setup, inp, out, float(first.get("wait", NO_WORKER_SECONDS)))
    finally:
        client.close()


#: Seconds without any Dask worker (all lost, none joined) or without the scheduler after
#: which the scan stops (exit 9; finished files are kept, the same command resumes); the
#: supervisor sends ``scan --cluster-wait``.
NO_WORKER_SECONDS = 120.0
#: How often the cluster's workers are counted.
MONITOR_SECONDS = 2.0


def _threads(client: Any) -> int:
    return int(sum(w.get("nthreads", 1)
                   for w in client.scheduler_info(n_workers=-1)["workers"].values()))


def _classify(future: Any) -> tuple[str, str]:
    """Why a batch ended without a result: ``refused`` (a node refused the scan),
    ``killed`` (Dask lost the batch's workers too often: KilledWorker; or the node process
    died during it), or ``cluster`` (the scheduler or this client's connection is gone, the
    batch was cancelled, or anything unforeseen: not the files' doing)."""
    from distributed import KilledWorker

    from .node import NodeLost

    try:
        error = future.exception() if future.status == "error" else None
    except BaseException as e:  # cancelled futures raise on asking
        return "cluster", f"{type(e).__name__}: {e}"
    if isinstance(error, NodeRefused):
        return "refused", str(error)
    if isinstance(error, (KilledWorker, NodeLost)):
        return "killed", f"{type(error).__name__}: {error}"
    if error is None:
        return "cluster", f"the batch was {future.status} (scheduler or connection lost)"
    return "cluster", f"{type(error).__name__}: {error}"


def _pump(client: Any, setup: bytes, inp: IO[bytes], out: IO[bytes],
          wait: float = NO_WORKER_SECONDS) -> None:
    """Submit batches as they come on ``inp``; write each outcome to ``out`` as it ends.
    A monitor reports the cluster's thread count as it changes and fails the scan when no
    worker (or no scheduler) is there for ``wait`` seconds."""
    outcomes: queue.Queue[dict[str, Any] | None] = queue.Queue()
    futures: dict[int, Any] = {}
    finished = threading.Event()

    def done(batch_id: int, future: Any) -> None:
        try:
            if future.status == "finished":
                result = future.result()
                outcomes.put({"op": "result", "id": batch_id, "worker": result["worker"],
                              "payload": result["payload"],
                              "dask_process_imports_triage":
                                  result["dask_process_imports_triage"]})
                return
            kind, reason = _classify(future)
        except BaseException as e:  # every batch must get an answer
            kind, reason = "cluster", f"{type(e).__name__}: {e}"
        outcomes.put({"op": "error", "id": batch_id, "kind": kind, "reason": reason})

    def reader() -> None:
        try:
            while True:
                message = frames.read(inp)
                if message.get("op") == "close":
                    _release(client, setup, message.get("key", ""))
                    break
                if message.get("op") != "batch":
                    break
                batch_id = int(message["id"])
                future = client.submit(run_batch, setup, message["payload"], pure=False,
                                       key=f"triage-batch-{message['key']}-{batch_id}")
                futures[batch_id] = future
                future.add_done_callback(lambda f, b=batch_id: done(b, f))
        except frames.FrameError:
            pass
        except BaseException as e:  # the supervisor must hear of it
            outcomes.put({"op": "failed", "reason": f"the Dask client cannot submit: "
                          f"{type(e).__name__}: {e}"})
        outcomes.put(None)

    def monitor() -> None:
        threads, since = -1, time.monotonic()
        while not finished.wait(MONITOR_SECONDS):
            try:
                now_threads = _threads(client) if client.status == "running" else 0
            except Exception:  # the scheduler is gone: counts as none
                now_threads = 0
            if now_threads:
                since = time.monotonic()
            elif time.monotonic() - since > wait:
                outcomes.put({"op": "failed", "reason": "no Dask worker (or no scheduler) "
                              f"for {wait:.0f} s: finished files are kept; start workers and "
                              "run the same scan again"})
                return
            if now_threads != threads and now_threads:
                threads = now_threads
                outcomes.put({"op": "threads", "threads": threads})

    threading.Thread(target=reader, daemon=True, name="batches-in").start()
    threading.Thread(target=monitor, daemon=True, name="workers").start()
    try:
        while (outcome := outcomes.get()) is not None:
            if "id" in outcome:
                futures.pop(outcome["id"], None)
            frames.write(out, outcome)
            if outcome["op"] == "failed":
                break
    finally:
        finished.set()


def _release(client: Any, setup: bytes, key: str) -> None:
    """The scan is over: every worker closes its idle nodes of this scan (their worker
    processes would otherwise keep the evidence open until the next scan)."""
    try:
        workers = list(client.scheduler_info(n_workers=-1)["workers"])
        closing = [client.submit(release, setup, workers=[w], allow_other_workers=False,
                                 pure=False, key=f"triage-release-{key}-{w}")
                   for w in workers]
        # Best effort, bounded: a frozen worker must not hold the scan's end (its idle
        # nodes close themselves after node.IDLE_SECONDS anyway).
        from distributed import wait

        wait(closing, timeout=10)
    except Exception:  # noqa: S110 - a worker that is gone has no nodes left
        pass


def main() -> None:
    frames.serve_stdio(serve)


if __name__ == "__main__":
    main()
