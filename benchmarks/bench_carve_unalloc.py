"""Benchmark: carving disk images' unallocated space (issue 17), triage against PhotoRec.

    .venv/bin/python benchmarks/bench_carve_unalloc.py [--big-mb 256] [--copies 400]
                                                       [--jobs 2] [--keep DIR]

Builds the carving test images with ``tests/carving/build_carve.sh`` (FAT32 with deleted
pictures and videos, FAT32 re-formatted, ext4 with deleted files, ext4 re-formatted without
discard, hostile FAT32) and one larger FAT32 of ``--big-mb`` MiB holding ``--copies``
pictures and videos (copies of the generated ones), all deleted. Then, side by side on each
image:

* ``triage scan IMAGE --no-match -j JOBS`` (carving is on by default), counting the expected
  files (``expected.tsv``: md5sum of the originals) among the carved items that are intact;
* ``photorec /log /d OUT /cmd IMAGE freespace,search`` (Debian ``testdisk``; unallocated
  space only, like triage), counting the expected files among what it wrote.

Prints per image: expected, recovered intact by each, seconds of each and the time ratio.
Acceptance (issue 17): triage recovers at least as many intact pictures as PhotoRec. The
recovered files PhotoRec writes go to a temporary folder that is removed (generated, benign
content); triage writes none.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def build(out: Path, big_mb: int, copies: int) -> dict[str, set[str]]:
    subprocess.run(["sh", str(ROOT / "tests/carving/build_carve.sh"), str(out)], check=True)
    expected: dict[str, set[str]] = {}
    for line in (out / "expected.tsv").read_text().splitlines():
        image, _name, digest = line.split("\t")
        expected.setdefault(image, set()).add(digest)
    if big_mb:
        image = out / "big.raw"
        with open(image, "wb") as f:
            f.truncate(big_mb << 20)
        subprocess.run(["mkfs.fat", "-F", "32", "-s", "1", str(image)], check=True,
                       capture_output=True)
        media = sorted(p for p in (out / "media").iterdir()
                       if p.suffix in (".jpg", ".png", ".gif", ".bmp", ".mp4", ".avi", ".mkv"))
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        names = []
        for i in range(copies):
            src = media[i % len(media)]
            name = f"::f{i:05d}{src.suffix}"
            subprocess.run(["mcopy", "-i", str(image), str(src), name], check=True, env=env)
            names.append(name)
        for i in range(0, len(names), 100):
            subprocess.run(["mdel", "-i", str(image), *names[i:i + 100]], check=True, env=env)
        expected["big.raw"] = {md5(p) for p in media}
    return expected


def run_triage(image: Path, work: Path, jobs: int, want: set[str]) -> tuple[int, int, float]:
    case = work / f"case-{image.stem}"
    shutil.rmtree(case, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([PY, "-m", "triage", "scan", str(image), "--case", str(case), "--no-match",
                    "-q", "--json", "-j", str(jobs)], check=False, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    elapsed = time.perf_counter() - t0
    conn = sqlite3.connect(case / "case.sqlite")
    try:
        got = [r[0] for r in conn.execute(
            "SELECT h.value FROM carved k JOIN files f ON f.id = k.file_id JOIN hashes h ON "
            "h.file_id = f.id AND h.algorithm = 'md5' WHERE f.status = 'done' AND "
            "k.partial = 0")]
    finally:
        conn.close()
    return len(want & set(got)), len(got), elapsed


def run_photorec(image: Path, work: Path, want: set[str]) -> tuple[int, int, float]:
    out = work / f"photorec-{image.stem}"
    shutil.rmtree(work / f"photorec-{image.stem}.1", ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(["photorec", "/log", "/d", str(out), "/cmd", str(image),
                    "freespace,search"], check=False, capture_output=True, cwd=work)
    elapsed = time.perf_counter() - t0
    files = [p for p in work.glob(f"photorec-{image.stem}.*/*") if p.name != "report.xml"]
    got = {md5(p) for p in files}
    shutil.rmtree(work / f"photorec-{image.stem}.1", ignore_errors=True)
    return len(want & got), len(files), elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--big-mb", type=int, default=256)
    ap.add_argument("--copies", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="build into this folder and keep it")
    a = ap.parse_args()
    if shutil.which("photorec") is None:
        print("photorec not found: apt-get install testdisk", file=sys.stderr)
        return 2
    work = a.keep or Path(tempfile.mkdtemp(prefix="bench-carve-"))
    try:
        expected = build(work, a.big_mb, a.copies)
        print(f"{'image':12} {'expected':>8} {'triage':>7} {'photorec':>8} "
              f"{'triage s':>9} {'photorec s':>10} {'ratio':>6}")
        ok = True
        for image, want in expected.items():
            t_hits, _t_all, t_s = run_triage(work / image, work, a.jobs, want)
            p_hits, _p_all, p_s = run_photorec(work / image, work, want)
            ok &= t_hits >= p_hits
            print(f"{image:12} {len(want):8} {t_hits:7} {p_hits:8} {t_s:9.2f} {p_s:10.2f} "
                  f"{t_s / p_s if p_s else float('inf'):6.1f}")
        print("triage recovers at least as many intact files as PhotoRec on every image:",
              "yes" if ok else "NO")
        return 0 if ok else 1
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
