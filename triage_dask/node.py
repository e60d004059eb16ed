"""What runs on a Dask worker (issue 19): the tasks :mod:`triage_dask.client` submits.

Dask runs tasks in threads of the worker process, and that process talks to the network,
so it must never import :mod:`triage` (whose offline guard would cut its connections).
Each task hands its batch, as the opaque bytes it came as, to a local
``python -m triage.cluster_node`` process (guard on; :mod:`triage.cluster_node`) over a
pipe and returns that process's answer, again as bytes. A node is kept between tasks of the
same scan (its worker pool stays warm); one node per batch running at a time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from typing import Any

from . import PROTOCOL, frames


class NodeRefused(RuntimeError):
    """The node on this worker refused the scan (versions, evidence not readable); the
    message says why. Not retried: the same machine would refuse again."""


class NodeLost(RuntimeError):
    """The node process on this worker died or closed its pipe in the middle of a batch."""


class _Node:
    def __init__(self, key: str, setup: bytes, threads: int) -> None:
        self.key = key
        self.idle_since = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "triage.cluster_node"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.inp, self.out = self.proc.stdin, self.proc.stdout
        frames.write(self.inp, {"op": "setup", "protocol": PROTOCOL, "setup": setup,
                                "threads": threads})
        try:
            self.hello = frames.read(self.out)
        except frames.FrameError as e:
            self.close()
            raise NodeLost(f"the triage node did not start: {e} (exit status "
                           f"{self.proc.poll()})") from e

    def batch(self, payload: bytes) -> bytes:
        try:
            frames.write(self.inp, {"op": "batch", "payload": payload})
            answer = frames.read(self.out)
        except (frames.FrameError, BrokenPipeError, OSError) as e:
            self.close()
            raise NodeLost(f"the triage node died during the batch (exit status "
                           f"{self.proc.poll()}): {e}") from e
        return bytes(answer["payload"])

    def close(self) -> None:
        for stream in (self.inp, self.out):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_lock = threading.Lock()
_idle: list[_Node] = []
#: An idle node is closed after this many seconds (with its worker processes, which hold
#: the evidence open): a scan that ended without closing its nodes (interrupted, or a
#: batch still running when it ended) leaves nothing behind for long.
IDLE_SECONDS = float(os.environ.get("TRIAGE_NODE_IDLE_SECONDS", "60"))
_reaper: threading.Thread | None = None


def _reap() -> None:
    while True:
        time.sleep(IDLE_SECONDS / 4)
        now = time.monotonic()
        with _lock:
            old = [n for n in _idle if now - n.idle_since > IDLE_SECONDS]
            for n in old:
                _idle.remove(n)
        for n in old:
            n.close()


def _worker_facts() -> tuple[str, int]:
    """This Dask worker's name (its ``--name``, else its address) and thread count."""
    from distributed import get_worker

    w = get_worker()
    name = str(w.name)
    address = str(w.address)
    label = address if name == address else f"{name} ({address})"
    return label, int(w.state.nthreads)


def _acquire(setup: bytes, threads: int) -> _Node:
    key = hashlib.sha256(setup).hexdigest()
    with _lock:
        for i, node in enumerate(_idle):
            if node.key == key and node.proc.poll() is None:
                return _idle.pop(i)
        # Nodes of another scan are not kept once a new scan comes (their pools hold
        # worker processes): at most one idle node per thread.
        stale = [n for n in _idle if n.key != key or n.proc.poll() is not None]
        for n in stale:
            _idle.remove(n)
    for n in stale:
        n.close()
    return _Node(key, setup, threads)


def _release(node: _Node) -> None:
    global _reaper
    node.idle_since = time.monotonic()
    with _lock:
        _idle.append(node)
        if _reaper is None:
            _reaper = threading.Thread(target=_reap, daemon=True, name="triage-node-reaper")
            _reaper.start()


def release(setup: bytes) -> int:
    """Close this worker's idle nodes of the scan ``setup`` belongs to (sent when the scan
    ends); returns how many were closed."""
    key = hashlib.sha256(setup).hexdigest()
    with _lock:
        mine = [n for n in _idle if n.key == key]
        for n in mine:
            _idle.remove(n)
    for n in mine:
        n.close()
    return len(mine)


def probe(setup: bytes) -> dict[str, Any]:
    """Start (or reuse) this worker's node for ``setup`` and report what it said on
    connecting: its versions, whether its offline guard is on, and a refusal if any. Run on
    every worker by the client before the first batch (``Client.run``)."""
    worker, threads = _worker_facts()
    node = _acquire(setup, threads)
    hello = dict(node.hello)
    if hello.get("op") == "ready":
        _release(node)
    else:
        node.close()
    hello["worker"] = worker
    hello["dask_process_imports_triage"] = "triage" in sys.modules
    return hello


def run_batch(setup: bytes, payload: bytes) -> dict[str, Any]:
    """One batch on this worker's node; returns ``{"worker", "payload"}`` (the node's
    answer, opaque here). Raises :class:`NodeRefused` when the node refuses the scan."""
    worker, threads = _worker_facts()
    node = _acquire(setup, threads)
    if node.hello.get("op") != "ready" or not node.hello.get("offline_guard"):
        node.close()
        reason = node.hello.get("reason") or "its triage node's offline guard is not on"
        raise NodeRefused(f"worker {worker} refused the scan: {reason}")
    answer = node.batch(payload)
    _release(node)
    return {"worker": worker, "payload": answer,
            "dask_process_imports_triage": "triage" in sys.modules}
