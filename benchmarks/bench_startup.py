#!/usr/bin/env python3
"""Start-up time of ``triage scan`` on an empty folder, base vs head (issue 13).

    .venv/bin/python benchmarks/bench_startup.py --base main --head WORKTREE --runs 7

Goal: under 0.5 s for an empty folder (``--no-match``: no store to open). Also times
``triage --version`` and the supervisor's imports (``python -X importtime``, the ten
slowest top-level modules of the head).

Both checkouts are byte-compiled first (``compileall``), as an installed package is (pip
compiles on install): with ``PYTHONDONTWRITEBYTECODE`` set (as in this project's shells)
an uncompiled checkout recompiles every triage module on every run, ~0.15 s that no
installed copy pays. ``--no-compile`` measures the checkouts as they are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sidebyside import WORKTREE, Timings, checkout, triage_argv

GOAL_SECONDS = 0.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--head", default=WORKTREE)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-compile", action="store_true",
                    help="do not byte-compile the checkouts first")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        empty = work / "empty"
        empty.mkdir()
        sides = {"base": checkout(args.base, work), "head": checkout(args.head, work)}
        if not args.no_compile:
            for d in sides.values():
                subprocess.run([sys.executable, "-m", "compileall", "-q", "triage",
                                "hashsets"], cwd=d, check=True, stdout=subprocess.DEVNULL)
        print(f"byte-compiled first: {'no' if args.no_compile else 'yes'}; "
              f"{os.cpu_count()} CPUs", flush=True)
        scans = {k: Timings(f"{k} ({getattr(args, k)}) scan of an empty folder")
                 for k in sides}
        versions = {k: Timings(f"{k} ({getattr(args, k)}) triage --version") for k in sides}
        for i in range(args.runs):
            for k, d in sides.items():
                case = work / f"case-{k}-{i}"
                cmd, env = triage_argv(d, "scan", str(empty), "--case", str(case),
                                       "--no-match", "-q", "--json")
                scans[k].run(cmd, env)
                cmd, env = triage_argv(d, "--version")
                versions[k].run(cmd, env)
                shutil.rmtree(case)
        for t in (*versions.values(), *scans.values()):
            print(t.text())
        head = scans["head"].best
        print(f"goal: head scan of an empty folder under {GOAL_SECONDS} s: "
              f"{'MET' if head < GOAL_SECONDS else 'NOT MET'} ({head:.3f} s); "
              f"base/head {scans['base'].best / head:.2f}x")
        cmd, env = triage_argv(sides["head"], "scan", str(empty), "--case",
                               str(work / "case-importtime"), "--no-match", "-q")
        p = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env,
                           capture_output=True, text=True)
        rows = []
        for line in p.stderr.splitlines():
            parts = line.split("|")
            if line.startswith("import time:") and len(parts) == 3 and \
                    not parts[2].startswith("  ") and parts[1].strip().isdigit():
                rows.append((int(parts[1]), parts[2].strip()))
        print("head: slowest top-level imports of the supervisor (cumulative ms):")
        for us, name in sorted(rows, reverse=True)[:10]:
            print(f"  {us / 1000:7.1f}  {name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
