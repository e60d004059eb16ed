"""A Dask scheduler and workers on 127.0.0.1, each a process of its own, as a lab runs them
(``dask scheduler``, ``dask worker``): for tests/test_cluster.py and
benchmarks/bench_cluster.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")


class Cluster:
    """A scheduler and workers on 127.0.0.1, each a process of its own."""

    def __init__(self, work: Path, pythonpath: str = str(ROOT), extra: tuple[str, ...] = ()
                 ) -> None:
        #: Options given to the scheduler and every worker (e.g. TLS).
        self.extra = list(extra)
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.file = work / "scheduler.json"
        self.env = dict(os.environ, PYTHONPATH=pythonpath)
        self.env.pop("TRIAGE_INJECT_FAULT", None)
        # Idle nodes close after 5 s (60 s in use): tests see an interrupted scan's nodes go.
        self.env["TRIAGE_NODE_IDLE_SECONDS"] = "5"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(self.file), *self.extra],
                    "scheduler", self.env)
        deadline = time.monotonic() + 90
        while not self.file.exists() or not self.file.read_text().strip():
            assert time.monotonic() < deadline, self.log("scheduler")
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]

    def _start(self, cmd: list[str], name: str, env: dict[str, str]
               ) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}.log", "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")[-3000:]

    def add_worker(self, name: str, pythonpath: str | None = None, nthreads: int = 1,
                   env: dict[str, str] | None = None) -> None:
        env = dict(self.env, PYTHONPATH=pythonpath or self.env["PYTHONPATH"], **(env or {}))
        self.workers[name] = self._start(
            [str(DASK), "worker", "--scheduler-file", str(self.file), "--nthreads",
             str(nthreads), "--name", name, "--no-nanny", "--no-dashboard", *self.extra], name,
            env)

    def wait_for_workers(self, n: int, env: dict[str, str] | None = None) -> None:
        """Wait from a process of its own (this one imported triage: no sockets here)."""
        code = ("import sys; from distributed import Client; "
                "c = Client(sys.argv[1], timeout=60); c.wait_for_workers(int(sys.argv[2]), "
                "timeout=90); c.close()")
        subprocess.run([sys.executable, "-c", code, self.address, str(n)],
                       env={**self.env, **(env or {})},
                       check=True, timeout=180, capture_output=True)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
