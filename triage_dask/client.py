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

import os
import queue
import sys
import threading
from typing import IO, Any

from . import frames
from .node import NodeRefused, probe, run_batch


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
            client.wait_for_workers(int(first.get("min_workers", 1)),
                                    timeout=float(first.get("timeout", 30)))
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
        _pump(client, setup, inp, out)
    finally:
        client.close()


def _pump(client: Any, setup: bytes, inp: IO[bytes], out: IO[bytes]) -> None:
    """Submit batches as they come on ``inp``; write each outcome to ``out`` as it ends."""
    outcomes: queue.Queue[dict[str, Any] | None] = queue.Queue()
    futures: dict[int, Any] = {}

    def done(batch_id: int, future: Any) -> None:
        try:
            if future.status == "finished":
                result = future.result()
                outcomes.put({"op": "result", "id": batch_id, "worker": result["worker"],
                              "payload": result["payload"],
                              "dask_process_imports_triage":
                                  result["dask_process_imports_triage"]})
                return
            error = future.exception()
        except Exception as e:  # cancelled, or the client lost the scheduler
            error = e
        kind = "refused" if isinstance(error, NodeRefused) else "lost"
        outcomes.put({"op": "error", "id": batch_id, "kind": kind,
                      "reason": f"{type(error).__name__}: {error}"})

    def reader() -> None:
        try:
            while True:
                message = frames.read(inp)
                if message.get("op") != "batch":
                    break
                batch_id = int(message["id"])
                future = client.submit(run_batch, setup, message["payload"], pure=False,
                                       key=f"triage-batch-{message['key']}-{batch_id}")
                futures[batch_id] = future
                future.add_done_callback(lambda f, b=batch_id: done(b, f))
        except frames.FrameError:
            pass
        outcomes.put(None)

    threading.Thread(target=reader, daemon=True, name="batches-in").start()
    while (outcome := outcomes.get()) is not None:
        futures.pop(outcome["id"], None)
        frames.write(out, outcome)


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stdout carries frames only; Dask's own messages go to stderr
    sys.stdout = sys.stderr
    try:
        serve(sys.stdin.buffer, out)
    except (frames.FrameError, BrokenPipeError):
        pass


if __name__ == "__main__":
    main()
