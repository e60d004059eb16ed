"""Shared helpers of the issue-13 benchmarks: two versions of triage measured alternately.

A version is a git revision unpacked with ``git archive`` into the work directory (the
repository and its worktrees are never touched) or ``WORKTREE`` (this checkout, uncommitted
edits included). Both run with the same interpreter (the one running the benchmark), each
with ``PYTHONPATH`` set to its own checkout. Runs alternate base, head, base, head ... so
that a change of the machine's load hits both; the load average is printed with every
figure (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKTREE = "WORKTREE"


def tree_arguments(ap: argparse.ArgumentParser, runs: int) -> None:
    """The options every side-by-side benchmark of a generated file tree takes: the two
    versions, the tree (or its size), runs, jobs, scan modes and a work folder."""
    ap.add_argument("--base", default="main")
    ap.add_argument("--head", default=WORKTREE)
    ap.add_argument("--tree", type=Path)
    ap.add_argument("--files", type=int, default=40_000)
    ap.add_argument("--runs", type=int, default=runs)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--modes", default="crypto,default")
    ap.add_argument("--workdir", type=Path)


def checkout(rev: str, work: Path) -> Path:
    """A directory holding revision ``rev`` of this repository (``WORKTREE``: this one)."""
    if rev == WORKTREE:
        return REPO
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", rev], check=True,
                         capture_output=True, text=True).stdout.strip()
    out = work / f"checkout-{sha[:12]}"
    if not out.exists():
        out.mkdir(parents=True)
        archive = subprocess.Popen(["git", "-C", str(REPO), "archive", sha],
                                   stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(out)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise RuntimeError(f"git archive {rev} failed")
    return out


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


@dataclass
class Timings:
    label: str
    seconds: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    #: CPU seconds of the run and every process it started (``perf stat -e task-clock``,
    #: when perf is installed): much less sensitive to a busy machine than wall time.
    cpu: list[float] = field(default_factory=list)

    def text(self) -> str:
        if not self.seconds:
            return f"{self.label}: no run"
        s = sorted(self.seconds)
        cpu = f", CPU min {min(self.cpu):.3f} s" if self.cpu else ""
        return (f"{self.label}: wall min {s[0]:.3f} s, median {statistics.median(s):.3f} s"
                f"{cpu} over {len(s)} runs (1-min load {min(self.loads):.2f}-"
                f"{max(self.loads):.2f})")

    @property
    def best(self) -> float:
        return min(self.seconds)

    def run(self, argv: Sequence[str], env: dict[str, str] | None = None,
            ok: Sequence[int] = (0,)) -> float:
        """Time one run (wall, and CPU under perf when available); return wall seconds."""
        self.loads.append(os.getloadavg()[0])
        with tempfile.NamedTemporaryFile(prefix="perf-", suffix=".csv") as out:
            perf = shutil.which("perf")
            cmd = ([perf, "stat", "-x", ",", "-e", "task-clock", "-o", out.name, "--",
                    *argv] if perf else list(argv))
            wall = timed(cmd, env, ok)
            if perf:
                for line in Path(out.name).read_text().splitlines():
                    parts = line.split(",")
                    if len(parts) > 2 and parts[2] == "task-clock" and \
                            parts[0].replace(".", "", 1).isdigit():
                        self.cpu.append(float(parts[0]) / 1000)
        self.seconds.append(wall)
        return wall


def triage_argv(checkout_dir: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ, PYTHONPATH=str(checkout_dir))
    # -P: not the current folder first on the path (it may be a checkout of another version)
    return [sys.executable, "-P", "-m", "triage", *args], env


def timed(argv: Sequence[str], env: dict[str, str] | None = None,
          ok: Sequence[int] = (0,)) -> float:
    """Wall seconds of one run; raises with the end of stderr when its exit code is not
    in ``ok``."""
    t = time.monotonic()
    p = subprocess.run(list(argv), env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - t
    if p.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv[:6])} ... exited {p.returncode}: "
                           f"{p.stderr[-800:]}")
    return elapsed
