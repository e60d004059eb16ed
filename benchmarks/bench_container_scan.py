"""Cost of container expansion in a whole scan (issue 6, "Performance").

Scans the same camera-size JPEGs (from gen_corpus.py) twice with the full pipeline (three
digests, identification, pHash, dHash, PDQ; no matching): once unpacked in folders, once
packed into ZIP files (deflated, as archivers write them; and stored), and prints the
ratio. Goal: the ZIP tree costs no more than 1.3x the unpacked tree.

    .venv/bin/python benchmarks/bench_container_scan.py [--jpegs 200] [--per-zip 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_corpus import generate

TRIAGE = [sys.executable, "-m", "triage"]


def scan(evidence: Path, case: Path) -> tuple[float, dict[str, object]]:
    shutil.rmtree(case, ignore_errors=True)
    t = time.perf_counter()
    proc = subprocess.run([*TRIAGE, "scan", str(evidence), "--case", str(case), "--no-match",
                           "--json", "-q"], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    if proc.returncode not in (0, 3):
        raise SystemExit(f"triage scan failed ({proc.returncode}): {proc.stderr[-800:]}")
    return elapsed, json.loads(proc.stdout)


def pack(src: list[Path], dest: Path, per_zip: int, method: int) -> None:
    dest.mkdir()
    for i in range(0, len(src), per_zip):
        with zipfile.ZipFile(dest / f"batch{i // per_zip:04d}.zip", "w", method) as z:
            for p in src[i:i + per_zip]:
                z.write(p, f"DCIM/{p.name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jpegs", type=int, default=200)
    ap.add_argument("--per-zip", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per layout")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="triage-bench-containers-"))
    try:
        plain = tmp / "plain"
        generate(plain, jpegs=args.jpegs, nonmedia_mb=0)
        jpegs = sorted(p for p in plain.rglob("*.jpg"))
        pack(jpegs, tmp / "deflated", args.per_zip, zipfile.ZIP_DEFLATED)
        pack(jpegs, tmp / "stored", args.per_zip, zipfile.ZIP_STORED)
        for layout in ("plain", "deflated", "stored"):   # warm the page cache
            for p in (tmp / layout).rglob("*"):
                if p.is_file():
                    p.read_bytes()
        best: dict[str, float] = {}
        images: dict[str, object] = {}
        for layout in ("plain", "deflated", "stored"):
            runs = [scan(tmp / layout, tmp / f"case-{layout}") for _ in range(args.repeat)]
            best[layout] = min(r[0] for r in runs)
            images[layout] = runs[0][1].get("images_with_perceptual_hashes")
        print(f"{len(jpegs)} JPEGs, {args.per_zip} per ZIP; best of {args.repeat} runs")
        print(f"{'layout':10} {'seconds':>8} {'images hashed':>14} {'ratio':>6}")
        for layout in ("plain", "deflated", "stored"):
            ratio = best[layout] / best["plain"]
            print(f"{layout:10} {best[layout]:8.2f} {images[layout]!s:>14} {ratio:6.2f}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
