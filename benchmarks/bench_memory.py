"""Benchmark: memory of the whole scan with many workers on large pictures (issue 11,
defect 4 "Memory is bounded per worker, not in total").

    .venv/bin/python benchmarks/bench_memory.py [--files 8] [--size 11000] [--jobs 8]
                                                [--memory-budget MIB] [--guard-mib 2048]
                                                [--results FILE.json] [--keep]
    .venv/bin/python benchmarks/bench_memory.py --calibrate [--size 4000]

Scan mode (the case from the issue): writes ``--files`` RGB PNGs of ``--size`` x
``--size`` pixels (black with one varied row: 0.35 MB each at 11000, made without Pillow,
see ``tests/memtree.py``), runs ``triage scan --jobs N`` on them and samples the resident
memory of the scan's whole process tree (supervisor, forkserver, workers) from /proc every
100 ms. Prints the peak of that sum, the wall time, the memory budget the scan used and the
pool's grant figures, against the machine's MemAvailable before the scan. Before the fix
eight 11000x11000 PNGs with ``--jobs 8`` took the tree to 23.7 GB and the OOM killer
fired. The machine is protected while it runs: if MemAvailable falls under ``--guard-mib``
the scan's tree is killed and the run reported as aborted.

Calibrate mode: for each Pillow mode, decodes one ``--size`` x ``--size`` picture and runs
the picture algorithms on it in a fresh interpreter, and prints the growth of peak address
space (VmPeak) and peak resident memory (VmHWM) per pixel beside the estimate of
``triage.membudget.decode_cost`` (the source of the constants there).

Nothing of the pictures is displayed or kept; the work directory is removed at the end
(``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.memtree import TreeMemory, tree, write_png  # noqa: E402
from triage import membudget  # noqa: E402

GIB = 1 << 30


def _gib(n: int | None) -> str:
    return "none" if n is None else f"{n / GIB:.2f} GiB"


def scan(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    ev = work / "evidence"
    ev.mkdir()
    t = time.perf_counter()
    size = sum(write_png(ev / f"big{i}.png", args.size, args.size, seed=i)
               for i in range(args.files))
    print(f"{args.files} x {args.size}x{args.size} RGB PNG, {size:,} bytes, made in "
          f"{time.perf_counter() - t:.1f} s")
    available = membudget.mem_available()
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"machine: MemTotal {_gib(total)}, MemAvailable {_gib(available)} before the scan")
    cmd = [sys.executable, "-m", "triage", "scan", str(ev), "--case", str(work / "case"),
           "--no-match", "--json", "-q", "--jobs", str(args.jobs)]
    if args.memory_budget is not None:
        cmd += ["--memory-budget", str(args.memory_budget)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    aborted = threading.Event()
    least = [available or 0]

    def guard() -> None:
        while proc.poll() is None:
            avail = membudget.mem_available() or 0
            least[0] = min(least[0], avail)
            if avail < args.guard_mib << 20:
                aborted.set()
                for p in tree(proc.pid):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=guard, daemon=True)
    watcher.start()
    with TreeMemory(proc.pid, interval=0.1) as mem:
        out, err = proc.communicate()
    wall = time.perf_counter() - started
    watcher.join()
    result: dict[str, Any] = {
        "files": args.files, "size": args.size, "jobs": args.jobs,
        "memory_budget_mib": args.memory_budget, "exit_code": proc.returncode,
        "wall_seconds": round(wall, 1), "peak_tree_rss_bytes": mem.peak,
        "peak_tree_processes": mem.peak_processes, "samples": mem.samples,
        "mem_available_before_bytes": available, "mem_available_least_bytes": least[0],
        "aborted_by_guard": aborted.is_set(),
    }
    print(f"exit code {proc.returncode}; wall {wall:.1f} s; peak RSS of the process tree "
          f"{_gib(mem.peak)} ({mem.peak_processes} processes, {mem.samples} samples); least "
          f"MemAvailable during the scan {_gib(least[0])}")
    if aborted.is_set():
        print(f"ABORTED: MemAvailable fell under {args.guard_mib} MiB; the scan was killed")
        return result
    try:
        summary = json.loads(out)
    except json.JSONDecodeError:
        print("scan output is not JSON; stderr ends:\n" + err[-2000:])
        return result
    pool = summary.get("pool", {})
    result["pool"] = pool
    result["by_status"] = summary.get("by_status")
    print(f"budget {_gib(pool.get('memory_budget_bytes'))}, grant capacity "
          f"{_gib(pool.get('decode_grant_capacity_bytes'))}, peak granted "
          f"{_gib(pool.get('decode_grant_peak_bytes'))}; decodes that waited "
          f"{pool.get('decodes_waited')}, refused {pool.get('decodes_refused')}; timeouts "
          f"{pool.get('timeouts')}, crashes {pool.get('worker_crashes')}")
    print(f"statuses: {summary.get('by_status')}")
    if available:
        print(f"peak / MemAvailable before: {mem.peak / available:.0%}")
    return result


# -- calibration ----------------------------------------------------------------------------
_MEASURE = r"""
import sys
def status():
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmPeak", "VmHWM", "VmSize", "VmRSS"):
                d[k] = int(v.split()[0]) * 1024
    return d
from triage.worker import WorkerOptions, decode_image
from triage import membudget
import numpy, pdqhash, imagehash, scipy.fftpack  # imported before the baseline
opts = WorkerOptions(max_pixels=10**10, memory_limit=None)
data = open(sys.argv[1], "rb").read()
before = status()
im, facts, _ = decode_image(data, opts)
for alg in opts.picture_algorithms():
    alg.compute(im)
after = status()
px = facts.width * facts.height
names = [a.name for a in opts.picture_algorithms()]
print(facts.mode, px, after["VmPeak"] - before["VmSize"], after["VmHWM"] - before["VmRSS"],
      membudget.decode_cost(facts.width, facts.height, facts.mode, names))
"""

#: PNG colour type and bit depth for the modes PNG can hold; other modes go through TIFF.
PNG_MODES = {"1": (0, 1), "L": (0, 8), "P": (3, 8), "LA": (4, 8), "I;16": (0, 16),
             "RGB": (2, 8), "RGBA": (6, 8)}
TIFF_MODES = ("I", "F", "CMYK", "YCbCr", "LAB")


def calibrate(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from PIL import Image

    n = args.size
    rows = {}
    print(f"{n}x{n} pictures; bytes per pixel over the decoded-before state")
    print(f"{'mode':6} {'VmPeak/px':>10} {'VmHWM/px':>10} {'estimate/px':>12}")
    for mode in (*PNG_MODES, *TIFF_MODES):
        if mode in PNG_MODES:
            path = work / f"{mode.replace(';', '_')}.png"
            write_png(path, n, n, *PNG_MODES[mode])
        else:
            path = work / f"{mode}.tif"
            Image.new(mode, (n, n)).save(path)
        proc = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], text=True,
                              capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                              check=False)
        if proc.returncode:
            print(f"{mode:6} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        got_mode, px, peak, hwm, est = proc.stdout.split()
        px_i = int(px)
        rows[mode] = {"decoded_mode": got_mode, "pixels": px_i, "vmpeak_growth": int(peak),
                      "vmhwm_growth": int(hwm), "estimate": int(est)}
        print(f"{mode:6} {int(peak) / px_i:10.2f} {int(hwm) / px_i:10.2f} "
              f"{int(est) / px_i:12.2f}")
        path.unlink()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--size", type=int, default=None,
                    help="picture width and height (default 11000; 4000 to calibrate)")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--memory-budget", type=int, default=None,
                    help="passed to triage scan (MiB; default: the scan's own default)")
    ap.add_argument("--guard-mib", type=int, default=2048,
                    help="kill the scan if MemAvailable falls under this (MiB)")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--results", type=Path)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.size is None:
        args.size = 4000 if args.calibrate else 11000
    work = Path(tempfile.mkdtemp(prefix="bench-memory-", dir=args.workdir))
    try:
        result = calibrate(args, work) if args.calibrate else scan(args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.results:
        args.results.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
