#!/usr/bin/env python3
"""Pictures per second: ``triage scan`` base vs head against a minimal-loop floor measured in
the same run (issue 13).

    .venv/bin/python benchmarks/bench_pictures.py --corpus DIR --base main --head WORKTREE

``DIR`` is a ``gen_corpus.py`` corpus (its ``jpeg/`` folder is scanned: 300 JPEGs, a third of
them 12 MP, by default); without ``--corpus`` one is generated. The floor is a minimal loop
on ``--jobs`` processes doing only the unavoidable work per file: read it once, the three
digests (MD5, SHA-1, SHA-256), the same JPEG draft decode as the scanner (draft 360, first
frame, no rotation or letterbox removal) and the three perceptual hashes, computed by the
registry's own algorithms (``hashsets.algorithms.compute_all``: one conversion per
input mode). It is measured twice each round:

* ``loop``: the loop alone, in a warm pool whose imports are done before the clock starts;
* ``program``: the same loop as a program of its own (``--floor-program``), timed from its
  start to its end like a scan: the interpreter, its imports and the pool's start-up are
  work every program does.

Then ``triage scan JPEG_DIR --no-match`` of base and head alternately, with the work the
issue measures (``--no-variants --no-metadata``: the six hashes of the issue's time), and the
head also as it is by default, to report separately what later issues added: EXIF metadata
(issue 16, ``--no-variants``) and the rotation/mirror/letterbox variants (issue 14, the
default). Goal: 200 images/s, or within 1.2x of the floor (judged against the ``program``
floor; the ratio to the ``loop`` floor is printed beside it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the floor: this checkout's
from sidebyside import WORKTREE, Timings, checkout, load, triage_argv

GOAL_RATE = 200.0
GOAL_FLOOR_RATIO = 1.2
DRAFT = 360  # triage.worker.WorkerOptions.draft_size


def _minimal(path: str) -> int:
    from PIL import Image

    from hashsets.algorithms import compute_all, picture_algorithms

    with open(path, "rb") as f:
        data = f.read()
    for h in (hashlib.md5(data), hashlib.sha1(data), hashlib.sha256(data)):
        h.hexdigest()
    im = Image.open(io.BytesIO(data))
    im.draft("RGB" if im.mode == "RGB" else None, (DRAFT, DRAFT))
    im.load()
    compute_all(im, picture_algorithms())  # one grey image for pHash and dHash
    return len(data)


def floor(files: list[str], jobs: int) -> float:
    with Pool(jobs) as pool:
        pool.map(_minimal, files[:jobs])  # imports done before the clock starts
        t = time.monotonic()
        pool.map(_minimal, files, chunksize=4)
        return time.monotonic() - t


def floor_program(folder: str, jobs: int) -> int:
    """The minimal loop as a whole program (``--floor-program``): what the ``program`` floor
    times from the outside."""
    files = sorted(str(p) for p in Path(folder).rglob("*.jpg"))
    with Pool(jobs) as pool:
        pool.map(_minimal, files, chunksize=4)
    return 0


#: The scans of each side: label -> extra options of ``triage scan``. ``goal`` is the work
#: the issue measures; the others (head only) report what later issues added.
SCANS = {"goal": ["--no-variants", "--no-metadata"],
         "metadata": ["--no-variants"],
         "default": []}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--floor-program", metavar="FOLDER", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--jpegs", type=int, default=300)
    ap.add_argument("--base", default="main")
    ap.add_argument("--head", default=WORKTREE)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)
    if args.floor_program:
        return floor_program(args.floor_program, args.jobs)
    work = Path(tempfile.mkdtemp(prefix="bench-pictures-"))
    try:
        corpus = args.corpus
        if corpus is None:
            import gen_corpus

            corpus = work / "corpus"
            gen_corpus.main([str(corpus), "--jpegs", str(args.jpegs), "--nonmedia-mb", "0"])
        jpeg = corpus / "jpeg"
        files = sorted(str(p) for p in jpeg.rglob("*.jpg"))
        for p in files:
            Path(p).read_bytes()  # warm cache
        sides = {"base": checkout(args.base, work), "head": checkout(args.head, work)}
        floors: list[float] = []
        program = Timings(f"minimal loop as a program on {args.jobs} processes")
        runs = [(k, scan) for scan in SCANS for k in sides if k == "head" or scan == "goal"]
        scans = {(k, scan): Timings(f"{k} ({getattr(args, k)}) triage scan --no-match "
                                    + " ".join(SCANS[scan]))
                 for k, scan in runs}
        for r in range(args.runs):
            floors.append(floor(files, args.jobs))
            print(f"  round {r} floor (loop): {floors[-1]:.2f} s ({load()})", flush=True)
            program.run([sys.executable, __file__, "--floor-program", str(jpeg),
                         "--jobs", str(args.jobs)])
            print(f"  round {r} floor (program): {program.seconds[-1]:.2f} s ({load()})",
                  flush=True)
            for k, scan in (runs if r % 2 == 0 else list(reversed(runs))):
                cmd, env = triage_argv(sides[k], "scan", str(jpeg), "--case",
                                       str(work / f"case-{k}-{r}"), "--jobs", str(args.jobs),
                                       "--no-match", *SCANS[scan], "-q", "--json")
                scans[k, scan].run(cmd, env, ok=(0, 3))
                print(f"  round {r} {k} {scan}: {scans[k, scan].seconds[-1]:.2f} s ({load()})",
                      flush=True)
                shutil.rmtree(work / f"case-{k}-{r}")
        n = len(files)
        best_loop, best_program = min(floors), program.best
        print(f"{n} JPEGs; minimal loop on {args.jobs} processes: best {best_loop:.2f} s "
              f"({n / best_loop:.0f} images/s); as a program {best_program:.2f} s "
              f"({n / best_program:.0f} images/s)")
        print(program.text())
        for t in scans.values():
            print(t.text())
        for (k, scan), t in scans.items():
            rate = n / t.best
            ratio = t.best / best_program
            verdict = ""
            if scan == "goal":
                met = rate >= GOAL_RATE or ratio <= GOAL_FLOOR_RATIO
                verdict = (f" (goal {GOAL_RATE:.0f} images/s or within {GOAL_FLOOR_RATIO}x of "
                           f"the floor: {'MET' if met else 'NOT MET'})")
            print(f"{k} {scan}: {rate:.0f} images/s; {ratio:.2f}x the program floor, "
                  f"{t.best / best_loop:.2f}x the loop floor{verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
