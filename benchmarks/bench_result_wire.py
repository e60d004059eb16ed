#!/usr/bin/env python3
"""Cost of the per-file result on the worker pipe, and a scan of many small files.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_result_wire.py [--files 3000] [--runs 2]

1. Pickle round trip of typical :class:`triage.model.FileResult` records (half plain files
   with three digests, half pictures with three more perceptual hashes and picture facts),
   as the supervisor receives one per file: CPU microseconds per result (best of 7 rounds,
   ``time.process_time`` so that other load on the machine counts less) and bytes per
   result.
2. ``triage scan --no-perceptual --no-match`` of ``--files`` small random files (100 to
   3000 bytes, the size class of a system tree, DESIGN.md), ``--runs`` times: the
   ``elapsed_seconds`` of each run and files per second.

Only counts and times are printed; everything is written under one temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from triage.model import FileResult, HashValue, PictureFacts

ROUNDS = 7


def _result(i: int) -> FileResult:
    hashes = [HashValue("md5", f"{i:032x}"), HashValue("sha1", f"{i:040x}"),
              HashValue("sha256", f"{i:064x}")]
    image = None
    if i % 2:
        prep = "first frame; JPEG draft decode to 500x375; EXIF orientation not applied"
        hashes += [HashValue("phash", f"{i:016x}", None, f"{prep}; grey 32x32 DCT"),
                   HashValue("dhash", f"{i:016x}", None, f"{prep}; grey 9x8"),
                   HashValue("pdq", f"{i:064x}", 90, f"{prep}; PDQ 512 box")]
        image = PictureFacts("JPEG", 4000, 3000, "RGB", 1, 500, 375, prep)
    return FileResult(file_id=i, status="done", read_status="full", mime="image/jpeg",
                      magic="JPEG image data, JFIF standard 1.01", media_kind="image",
                      ext_mismatch=0, hashes=tuple(hashes), image=image)


def wire(n: int = 5000) -> None:
    results = [_result(i) for i in range(n)]
    best_dump = best_load = float("inf")
    blobs: list[bytes] = []
    for _ in range(ROUNDS):
        t0 = time.process_time()
        blobs = [pickle.dumps(r) for r in results]
        t1 = time.process_time()
        back = [pickle.loads(b) for b in blobs]
        t2 = time.process_time()
        best_dump, best_load = min(best_dump, t1 - t0), min(best_load, t2 - t1)
    assert back == results
    print(f"pickle: dumps {1e6 * best_dump / n:.1f} us/result, loads "
          f"{1e6 * best_load / n:.1f} us/result, {sum(map(len, blobs)) / n:.0f} bytes/result")


def scan(files: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-wire-") as tmp:
        ev = Path(tmp) / "ev"
        rng = random.Random(1)
        for i in range(files):
            d = ev / f"d{i % 30}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i}.txt").write_bytes(rng.randbytes(rng.randint(100, 3000)))
        for run in range(runs):
            case = Path(tmp) / f"case{run}"
            proc = subprocess.run(
                [sys.executable, "-m", "triage", "scan", str(ev), "--case", str(case),
                 "--no-perceptual", "--no-match", "-q", "--json", "-j", "2"],
                capture_output=True, text=True, env=os.environ.copy(), check=False)
            if proc.returncode != 0:
                print(f"scan failed ({proc.returncode}): {proc.stderr.strip()}")
                return
            elapsed = json.loads(proc.stdout)["elapsed_seconds"]
            print(f"scan of {files} small files: {elapsed:.2f} s, {files / elapsed:.0f} files/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    wire()
    if args.files:
        scan(args.files, args.runs)


if __name__ == "__main__":
    main()
