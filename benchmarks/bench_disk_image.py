#!/usr/bin/env python3
"""Disk image of many small files: ``triage scan`` base vs head vs ``tsk_loaddb -h`` and
``fiwalk``, and the seek distance of the reads (issue 13).

    .venv/bin/python benchmarks/bench_disk_image.py --base main --head WORKTREE \\
        --files 40000 --runs 1 [--tree DIR] [--modes crypto,default,carve] [--no-seek]

An ext4 image is built with ``mke2fs -t ext4 -d TREE`` from a ``gen_systree.py`` tree
(or ``--tree``). Before every timed run the image's pages are dropped from the page cache
(``posix_fadvise(POSIX_FADV_DONTNEED)``; ``drop_caches`` would hit every other user of a
shared machine). Each round times ``tsk_loaddb -h`` and ``fiwalk`` (when installed), then
per mode base and head alternately (order swapped every round):

* ``crypto``: ``--no-containers --no-perceptual --no-match``; goal: no slower than
  ``tsk_loaddb -h``;
* ``default``: ``--no-match --no-carve``; goal: within 2.5x ``tsk_loaddb -h`` (the issue
  measures the default scan with carving of unallocated space and slack off, and asks for
  its cost apart);
* ``carve``: ``--no-match``, the default scan as it is, carving included (not in
  ``--modes`` unless named: its cost beside ``default`` is carving's).

Seek distance (not timed; ``strace -ff -e pread64`` on a crypto scan of each version): the
sum of jumps between consecutive reads of the image, ``|offset - end of the previous
read|``, in time order across all processes, and for the enumeration children (the layout
probe and the walk) and the workers apart; and the bytes read, in all and distinct (what a
page cache would not serve twice). This is what a spinning or USB disk pays, which these
virtual machines' host cache hides.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_systree
from sidebyside import Timings, checkout, load, tree_arguments, triage_argv

MODES = {"crypto": ["--no-containers", "--no-perceptual", "--no-match"],
         "default": ["--no-match", "--no-carve"],
         "carve": ["--no-match"]}
GOALS: dict[str, float] = {"crypto": 1.0, "default": 2.5}
_PREAD = re.compile(r"^(\d+\.\d+) pread64\(\d+<([^>]*)>, .*, (\d+), (\d+)\) = (\d+)")


def build_image(tree: Path, image: Path) -> None:
    size_mb = int(sum(f.stat().st_size for f in tree.rglob("*")
                      if f.is_file() and not f.is_symlink()) * 1.6 / 2**20) + 64
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", str(tree),
                    str(image), f"{size_mb}M"], check=True, capture_output=True)


def drop_cache(image: Path) -> None:
    fd = os.open(image, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def seek_distance(prefix: str, image: Path, jobs: int) -> dict[str, float]:
    """Seek figures (MiB) from strace -ff -ttt -y files ``prefix.PID``.

    The enumeration children (the layout probe, the walk: run one after the other, all
    before any file is handed out) are the processes, in the order of their first read of
    the image, whose reads all end before the next process's first read, as long as
    ``jobs`` processes remain for the workers; the rest are the workers (a replaced worker
    counts as one more)."""
    events: list[tuple[float, str, int, int]] = []
    for fn in glob.glob(prefix + ".*"):
        pid = fn.rsplit(".", 1)[1]
        with open(fn, errors="replace") as f:
            for line in f:
                m = _PREAD.match(line)
                if m and m.group(2) == str(image):
                    events.append((float(m.group(1)), pid, int(m.group(4)), int(m.group(5))))
    events.sort()

    def dist(seq: list[tuple[float, str, int, int]]) -> int:
        total, end = 0, None
        for _, _, off, n in seq:
            if end is not None:
                total += abs(off - end)
            end = off + n
        return total

    def distinct(seq: list[tuple[float, str, int, int]]) -> int:
        total, reach = 0, 0
        for off, n in sorted((e[2], e[3]) for e in seq):
            if off + n > reach:
                total += off + n - max(off, reach)
                reach = off + n
        return total

    by_pid: dict[str, list[tuple[float, str, int, int]]] = {}
    for e in events:
        by_pid.setdefault(e[1], []).append(e)
    order = sorted(by_pid, key=lambda p: by_pid[p][0][0])
    enumeration: set[str] = set()
    for i, pid in enumerate(order[:-1]):
        if by_pid[pid][-1][0] >= by_pid[order[i + 1]][0][0] or len(order) - i - 1 < jobs:
            break
        enumeration.add(pid)
    workers = [e for e in events if e[1] not in enumeration]
    return {"reads": len(events), "merged_mib": dist(events) / 2**20,
            "enumeration_mib": sum(dist(by_pid[p]) for p in enumeration) / 2**20,
            "enumeration_processes": len(enumeration),
            "workers_merged_mib": dist(workers) / 2**20,
            "workers_own_mib": sum(dist(v) for k, v in by_pid.items()
                                   if k not in enumeration) / 2**20,
            "read_mib": sum(e[3] for e in events) / 2**20,
            "distinct_mib": distinct(events) / 2**20}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    tree_arguments(ap, runs=1)
    ap.add_argument("--no-seek", action="store_true", help="skip the strace seek runs")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-disk-", dir=args.workdir))
    try:
        tree = args.tree
        if tree is None:
            tree = work / "tree"
            print("generated:", gen_systree.generate(tree, args.files, 1))
        image = work / "tree.ext4"
        build_image(tree, image)
        print(f"image: {image.stat().st_size / 2**20:.0f} MiB (mke2fs -t ext4 -d)")
        sides = {"base": checkout(args.base, work), "head": checkout(args.head, work)}
        modes = [m for m in args.modes.split(",") if m]
        peers: dict[str, list[str]] = {}
        if shutil.which("tsk_loaddb"):
            peers["tsk_loaddb -h"] = ["tsk_loaddb", "-h", "-d", str(work / "tsk.db"),
                                      str(image)]
        if shutil.which("fiwalk"):
            peers["fiwalk"] = ["fiwalk", "-X", str(work / "fiwalk.xml"), str(image)]
        peer_t = {k: Timings(k) for k in peers}
        results = {(k, m): Timings(f"{k} ({getattr(args, k)}) {m}") for k in sides
                   for m in modes}
        for r in range(args.runs):
            for name, cmd in peers.items():
                (work / "tsk.db").unlink(missing_ok=True)
                (work / "fiwalk.xml").unlink(missing_ok=True)  # fiwalk will not overwrite
                drop_cache(image)
                peer_t[name].run(cmd)
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for m in modes:
                for k in order:
                    case = work / f"case-{k}-{m}-{r}"
                    cmd, env = triage_argv(sides[k], "scan", str(image), "--case", str(case),
                                           "--jobs", str(args.jobs), "-q", "--json",
                                           *MODES[m])
                    drop_cache(image)
                    results[k, m].run(cmd, env, ok=(0, 3))
                    print(f"  round {r} {k} {m}: {results[k, m].seconds[-1]:.2f} s ({load()})",
                          flush=True)
                    shutil.rmtree(case)
        for t in (*peer_t.values(), *results.values()):
            print(t.text())
        ref = peer_t.get("tsk_loaddb -h")
        for m in modes:
            b, h = results["base", m].best, results["head", m].best
            cb, ch = results["base", m].cpu, results["head", m].cpu
            if cb and ch:
                print(f"{m}: CPU (all processes) base {min(cb):.1f} s, head {min(ch):.1f} s, "
                      f"base/head {min(cb) / min(ch):.2f}x")
            line = f"{m}: base/head {b / h:.2f}x"
            if ref is not None:
                ratio = h / ref.best
                line += f"; head/tsk_loaddb {ratio:.2f}x"
                if m in GOALS:
                    line += (f" (goal {GOALS[m]:g}x: "
                             f"{'MET' if ratio <= GOALS[m] else 'NOT MET'})")
            print(line)
        if not args.no_seek and shutil.which("strace"):
            for k, d in sides.items():
                prefix = str(work / f"strace-{k}")
                cmd, env = triage_argv(d, "scan", str(image), "--case",
                                       str(work / f"case-seek-{k}"), "--jobs", str(args.jobs),
                                       "-q", "--json", *MODES["crypto"])
                subprocess.run(["strace", "-ff", "-ttt", "-y", "-e", "trace=pread64", "-o",
                                prefix, *cmd], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False)
                s = seek_distance(prefix, image, args.jobs)
                print(f"seek distance {k} ({getattr(args, k)}): {s['reads']} reads; all "
                      f"processes in time order {s['merged_mib']:.0f} MiB; enumeration "
                      f"({s['enumeration_processes']} processes) "
                      f"{s['enumeration_mib']:.0f} MiB; workers merged "
                      f"{s['workers_merged_mib']:.0f} MiB, each worker's own summed "
                      f"{s['workers_own_mib']:.0f} MiB; read {s['read_mib']:.0f} MiB, of "
                      f"which distinct {s['distinct_mib']:.0f} MiB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
