#!/usr/bin/env python3
"""Share of scan time spent reading metadata (issue 16 acceptance: at most 10%).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_metadata.py --jpegs 300 --rounds 3

Generates ``bench_scan.py``'s picture corpus (``gen_corpus``: camera-size JPEGs, equal
thirds 12/6/2 MP) and a copy of it in which every JPEG carries a real camera's EXIF block
(the APP1 segment of ``testdata/media/exiftool/Google.jpg``: Pixel 8 Pro, IFD0, Exif, GPS,
Interop and IFD1 with a thumbnail, 71 tags), then times ``triage scan --no-match`` with and
without ``--no-metadata`` on each, alternating, ``--rounds`` times; prints the medians and
the metadata share ``(with - without) / with``. Only times and counts are printed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_corpus

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "media" / "exiftool"


def exif_segment(jpeg: bytes) -> bytes:
    """The first APP1 Exif segment (marker included) of a JPEG."""
    i = 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF:
        marker, length = jpeg[i + 1], int.from_bytes(jpeg[i + 2:i + 4], "big")
        if marker == 0xE1 and jpeg[i + 4:i + 10] == b"Exif\0\0":
            return jpeg[i:i + 2 + length]
        i += 2 + length
    raise ValueError("no Exif APP1 segment")


def with_exif(src: Path, dest: Path, segment: bytes) -> int:
    n = 0
    for p in sorted(src.rglob("*.jpg")):
        out = dest / p.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        data = p.read_bytes()
        out.write_bytes(data[:2] + segment + data[2:])
        n += 1
    return n


def scan(target: Path, case: Path, metadata: bool) -> float:
    shutil.rmtree(case, ignore_errors=True)
    argv = [sys.executable, "-m", "triage", "scan", str(target), "--case", str(case),
            "--no-match", "--json", "-q"]
    if not metadata:
        argv.append("--no-metadata")
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 3):
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds


def in_process(target: Path) -> None:
    """CPU time of the worker's decode + hashing of every JPEG with and without reading its
    metadata (one process: immune to the other load of a shared machine)."""
    from triage.worker import WorkerOptions, _Draft, _perceptual

    files = sorted(target.rglob("*.jpg"))
    datas = [f.read_bytes() for f in files]
    cpu: dict[bool, float] = {}
    for meta in (True, False, True, False):
        options = WorkerOptions(metadata=meta)
        started = time.process_time()
        for data in datas:
            r = _Draft(file_id=1, mime="image/jpeg", media_kind="image")
            _perceptual(r, data, options, lambda _s: None, "x")
            assert r.status == "done" and (meta or r.metadata is None)
        cpu[meta] = time.process_time() - started  # the second round of each counts
    print(f"  in-process worker CPU: with metadata {cpu[True]:.2f} s, without "
          f"{cpu[False]:.2f} s for {len(files)} JPEGs: metadata share "
          f"{(cpu[True] - cpu[False]) / cpu[True]:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jpegs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-metadata-"))
    try:
        corpus = work / "corpus"
        gen_corpus.generate(corpus, jpegs=args.jpegs, nonmedia_mb=0, seed=args.seed)
        plain = corpus / "jpeg"
        exif = work / "exif"
        segment = exif_segment((SAMPLE / "Google.jpg").read_bytes())
        n = with_exif(plain, exif, segment)
        print(f"{n} JPEGs; EXIF segment {len(segment)} bytes")
        for name, target in (("no EXIF (bench_scan corpus)", plain),
                             ("camera EXIF added", exif)):
            times: dict[bool, list[float]] = {True: [], False: []}
            scan(target, work / "case", True)  # warm the page cache and imports
            for _ in range(args.rounds):
                for meta in (False, True):
                    times[meta].append(scan(target, work / "case", meta))
            on, off = statistics.median(times[True]), statistics.median(times[False])
            print(f"{name}: with metadata {on:.2f} s, --no-metadata {off:.2f} s "
                  f"(medians of {args.rounds}; all: on {[f'{t:.2f}' for t in times[True]]}, "
                  f"off {[f'{t:.2f}' for t in times[False]]}); metadata share "
                  f"{(on - off) / on:+.1%}")
            in_process(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
