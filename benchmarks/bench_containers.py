"""Benchmark: the cost of container expansion (issue 6, "Performance").

    .venv/bin/python benchmarks/bench_containers.py [--jpegs 300] [--per-zip 50]
                                                    [--repeat 5] [--hashes md5|all]

Generates N benign synthetic JPEGs (a few hundred KB each: gradients plus noise made with
Pillow), writes them unpacked and into ZIPs (stored and deflated) in one temporary
directory, then times, in this one process with a warm page cache, best of ``--repeat``:

* unpacked: read every JPEG file and hash it;
* zip (stored / deflated): read every ZIP, ``expand()`` it, hash every member;
* the same through ``walk()`` (expansion + carving of each member for embedded pictures);
* "scan-like": also hash the ZIP file itself, as a scan records the container as an item.

and prints each time and its ratio to the unpacked time (goal: zip path <= 1.3x). Nothing
is printed or kept of the pictures; the directory is removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage.members import Budget, Limits, container_kind, expand, walk  # noqa: E402


def make_jpeg(rng: random.Random, width: int = 1024, height: int = 768) -> bytes:
    from PIL import Image, ImageFilter

    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), rng.uniform(30, 60)).convert("RGB")
    img = Image.blend(base, noise, 0.5).filter(ImageFilter.SMOOTH)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=rng.choice((88, 92, 95)))
    return out.getvalue()


def hasher(kind: str) -> Callable[[bytes], None]:
    """MD5 only, or the worker's three digests (MD5, SHA-1, SHA-256)."""
    names = ("md5",) if kind == "md5" else ("md5", "sha1", "sha256")

    def run(data: bytes) -> None:
        for name in names:
            hashlib.new(name, data).digest()
    return run


def best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(repeat):
        t = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t)
    return min(times), count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jpegs", type=int, default=300)
    ap.add_argument("--per-zip", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hashes", choices=("md5", "all"), default="md5")
    args = ap.parse_args()
    h = hasher(args.hashes)
    rng = random.Random(6)
    limits = Limits()
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as tmp:
        root = Path(tmp)
        plain = root / "plain"
        plain.mkdir()
        jpegs = [make_jpeg(rng) for _ in range(args.jpegs)]
        for i, data in enumerate(jpegs):
            (plain / f"p{i:05d}.jpg").write_bytes(data)
        total = sum(map(len, jpegs))
        zips: dict[str, list[Path]] = {"stored": [], "deflated": []}
        for method, mode in (("stored", zipfile.ZIP_STORED), ("deflated", zipfile.ZIP_DEFLATED)):
            for start in range(0, len(jpegs), args.per_zip):
                path = root / f"{method}-{start:05d}.zip"
                with zipfile.ZipFile(path, "w", mode) as zf:
                    for i in range(start, min(start + args.per_zip, len(jpegs))):
                        zf.writestr(f"dir/p{i:05d}.jpg", jpegs[i])
                zips[method].append(path)
        print(f"{len(jpegs)} JPEGs, {total / 1e6:.1f} MB, mean {total / len(jpegs) / 1e3:.0f} KB;"
              f" {len(zips['stored'])} zips per method; hashes: {args.hashes}; best of "
              f"{args.repeat}")

        def unpacked() -> int:
            n = 0
            for p in sorted(plain.iterdir()):
                h(p.read_bytes())
                n += 1
            return n

        def via_expand(method: str, hash_container: bool) -> Callable[[], int]:
            def run() -> int:
                n = 0
                for p in zips[method]:
                    data = p.read_bytes()
                    if hash_container:
                        h(data)
                    kind = container_kind(data[:4096], "")
                    assert kind == "zip"
                    for m in expand(kind, data, limits, Budget(limits), name=p.name.encode()):
                        assert m.data is not None, m.reason
                        h(m.data)
                        n += 1
                return n
            return run

        def via_walk(method: str) -> Callable[[], int]:
            def run() -> int:
                n = 0
                for p in zips[method]:
                    data = p.read_bytes()
                    for e in walk(data, limits, name=p.name.encode()):
                        member = getattr(e, "member", None)
                        if member is not None and member.data is not None:
                            h(member.data)
                            n += 1
                return n
            return run

        base, n = best_of(args.repeat, unpacked)
        assert n == len(jpegs)
        print(f"{'unpacked: read + hash':46s} {base:7.3f} s  1.00x  "
              f"{total / base / 1e6:6.0f} MB/s")
        for label, fn in (
            ("zip stored: expand + hash", via_expand("stored", False)),
            ("zip deflated: expand + hash", via_expand("deflated", False)),
            ("zip stored: walk (expand + carve) + hash", via_walk("stored")),
            ("zip deflated: walk (expand + carve) + hash", via_walk("deflated")),
            ("zip stored, scan-like (+ hash the zip)", via_expand("stored", True)),
            ("zip deflated, scan-like (+ hash the zip)", via_expand("deflated", True)),
        ):
            t, n = best_of(args.repeat, fn)
            assert n == len(jpegs), (label, n)
            print(f"{label:46s} {t:7.3f} s  {t / base:.2f}x  {total / t / 1e6:6.0f} MB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
