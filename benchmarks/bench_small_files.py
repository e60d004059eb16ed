#!/usr/bin/env python3
"""Many small files: ``triage scan`` of a system-like tree, base vs head vs hashdeep
(issue 13).

    .venv/bin/python benchmarks/bench_small_files.py --base main --head WORKTREE \\
        --files 40000 --runs 2 [--tree DIR] [--modes crypto,default]

The tree comes from ``gen_systree.py`` (40,000 entries, median ~1.3 KB) unless ``--tree``
names one (e.g. a copy of ``/usr/share``). After one warm-up read of every file, each round
runs ``hashdeep -r -c md5,sha1,sha256 TREE``, then for each mode the base and the head
alternately (their order swapped every round):

* ``crypto``: ``triage scan TREE --no-containers --no-perceptual --no-match`` (crypto +
  identify). Goal: within 2x hashdeep.
* ``default``: ``triage scan TREE --no-match`` (containers expanded, pictures hashed).
  Goal: within 4x hashdeep.

Also prints the floor that libmagic alone sets: the CPU time of one ``from_buffer`` per
regular file (``magic.Magic(mime=True)``, the head a worker gives it) divided by the
number of cores. Figures are best-of-runs wall seconds with the load average of the time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_systree
from sidebyside import Timings, checkout, load, tree_arguments, triage_argv

MODES = {"crypto": ["--no-containers", "--no-perceptual", "--no-match"],
         "default": ["--no-match"]}
GOALS = {"crypto": 2.0, "default": 4.0}
HEAD = 1 << 20  # triage.identify.MAGIC_HEAD_BYTES


def warm(tree: Path) -> list[str]:
    files = []
    for d, _dirs, names in os.walk(tree):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(p)
                with open(p, "rb") as f:
                    while f.read(1 << 20):
                        pass
    return files


def libmagic_floor(files: list[str]) -> float:
    import magic

    m = magic.Magic(mime=True)
    cpu = 0.0
    for p in files:
        with open(p, "rb") as f:
            head = f.read(HEAD)
        if head:
            t = time.process_time()
            m.from_buffer(head)
            cpu += time.process_time() - t
    return cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    tree_arguments(ap, runs=2)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-small-", dir=args.workdir))
    try:
        tree = args.tree
        if tree is None:
            tree = work / "tree"
            print("generated:", gen_systree.generate(tree, args.files, 1))
        files = warm(tree)
        sides = {"base": checkout(args.base, work), "head": checkout(args.head, work)}
        modes = [m for m in args.modes.split(",") if m]
        hashdeep = Timings("hashdeep -r -c md5,sha1,sha256")
        results = {(k, m): Timings(f"{k} ({getattr(args, k)}) {m}") for k in sides
                   for m in modes}
        have_hashdeep = shutil.which("hashdeep") is not None
        for r in range(args.runs):
            if have_hashdeep:
                hashdeep.run(["hashdeep", "-r", "-c", "md5,sha1,sha256", str(tree)])
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for m in modes:
                for k in order:
                    case = work / f"case-{k}-{m}-{r}"
                    cmd, env = triage_argv(sides[k], "scan", str(tree), "--case", str(case),
                                           "--jobs", str(args.jobs), "-q", "--json",
                                           *MODES[m])
                    results[k, m].run(cmd, env, ok=(0, 3))
                    print(f"  round {r} {k} {m}: {results[k, m].seconds[-1]:.2f} s ({load()})",
                          flush=True)
                    shutil.rmtree(case)
        print(f"tree: {tree} ({len(files)} regular files)")
        if have_hashdeep:
            print(hashdeep.text())
        else:
            print("hashdeep: not installed (apt-get install hashdeep)")
        for t in results.values():
            print(t.text())
        for m in modes:
            b, h = results["base", m].best, results["head", m].best
            cb, ch = results["base", m].cpu, results["head", m].cpu
            if cb and ch:
                print(f"{m}: CPU (all processes) base {min(cb):.1f} s, head {min(ch):.1f} s, "
                      f"base/head {min(cb) / min(ch):.2f}x")
            line = f"{m}: head {len(files) / h:.0f} files/s, base {len(files) / b:.0f} " \
                   f"files/s, base/head {b / h:.2f}x"
            if have_hashdeep:
                ratio = h / hashdeep.best
                line += (f"; head/hashdeep {ratio:.1f}x (goal {GOALS[m]:g}x: "
                         f"{'MET' if ratio <= GOALS[m] else 'NOT MET'})")
            print(line)
        cpu = libmagic_floor(files)
        print(f"libmagic floor: {cpu:.2f} s CPU for one from_buffer per file, "
              f"{cpu / args.jobs:.2f} s on {args.jobs} cores ({load()})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
