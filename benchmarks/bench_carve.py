"""Benchmark: carving rate of ``find_embedded`` (issue 11, defect 6 "Carving is quadratic").

    .venv/bin/python benchmarks/bench_carve.py [--gifs 4000] [--mb 32] [--repeat 3]
                                               [--baseline REV] [--baseline-seconds 30]

Builds, in memory, a blob of ``--mb`` MiB holding ``--gifs`` distinct small GIFs made with
Pillow (64x48 random palette indices, benign), separated by random filler bytes (the case
from the issue: 32 MiB, 4,000 GIFs). Times ``find_embedded`` over it (best of
``--repeat``), checks that every GIF is carved at its offset with the original's MD5, and
prints MB/s and items/s. With ``--baseline REV`` it also runs ``triage/members/carve.py``
as of git revision ``REV`` (e.g. ``main`` before the fix), once, under a ``Budget`` of
``--baseline-seconds`` (the scan's time limit is 60 s; the issue used 30 s), and prints how
many items it carved, how far into the blob it got, and the same rates. Nothing is written.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage.members import Budget, ContainerError, Limits  # noqa: E402
from triage.members import carve as carve_now  # noqa: E402


def make_gif(rng: random.Random, size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    img = Image.frombytes("P", size, bytes(rng.randrange(64) for _ in range(size[0] * size[1])))
    img.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 3) % 256)])
    out = io.BytesIO()
    img.save(out, "GIF")
    return out.getvalue()


def build_blob(rng: random.Random, gifs: int, total: int) -> tuple[bytes, list[tuple[int, str]]]:
    """The blob and each GIF's (offset, MD5); filler is random bytes, spread evenly."""
    pics = [make_gif(rng) for _ in range(gifs)]
    filler = max(0, total - sum(map(len, pics)))
    out = bytearray(rng.randbytes(filler // (gifs + 1)))
    expected = []
    for i, pic in enumerate(pics):
        expected.append((len(out), hashlib.md5(pic).hexdigest()))
        out += pic
        out += rng.randbytes(filler * (i + 2) // (gifs + 1) - filler * (i + 1) // (gifs + 1))
    return bytes(out), expected


def load_revision(rev: str) -> types.ModuleType:
    """``triage/members/carve.py`` as of git revision ``rev``, as a module of this package."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:triage/members/carve.py"],
                         check=True, capture_output=True, text=True).stdout
    mod = types.ModuleType(f"triage.members._carve_{rev}")
    mod.__package__ = "triage.members"
    exec(compile(src, f"{rev}:triage/members/carve.py", "exec"), mod.__dict__)
    return mod


def run(mod: types.ModuleType, data: bytes, limits: Limits,
        ) -> tuple[float, list[tuple[int, str]], str | None]:
    """Seconds, (offset, MD5) of each item carved, and the limit hit (if any)."""
    got: list[tuple[int, str]] = []
    hit = None
    t = time.perf_counter()
    try:
        for m in mod.find_embedded(data, limits, Budget(limits)):
            got.append((m.offset, hashlib.md5(m.data).hexdigest()))
    except ContainerError as exc:
        hit = str(exc)
    return time.perf_counter() - t, got, hit


def report(label: str, seconds: float, got: list[tuple[int, str]], covered: int,
           hit: str | None) -> None:
    print(f"{label:28s} {seconds:8.2f} s  {len(got):6d} items  {covered / 2**20:6.1f} MiB "
          f"covered  {covered / seconds / 1e6:8.1f} MB/s  {len(got) / seconds:9.0f} items/s"
          + (f"  [{hit}]" if hit else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gifs", type=int, default=4000)
    ap.add_argument("--mb", type=float, default=32.0, help="blob size in MiB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", metavar="REV", help="also time carve.py at this git rev")
    ap.add_argument("--baseline-seconds", type=float, default=30.0)
    args = ap.parse_args()
    data, expected = build_blob(random.Random(6), args.gifs, int(args.mb * 2**20))
    print(f"blob: {len(data) / 2**20:.1f} MiB, {len(expected)} GIFs; best of {args.repeat}")
    limits = Limits()
    best = None
    for _ in range(args.repeat):
        seconds, got, hit = run(carve_now, data, limits)
        assert hit is None, hit
        assert got == expected, "carved items differ from the GIFs put in"
        best = seconds if best is None else min(best, seconds)
    assert best is not None
    report("this tree", best, expected, len(data), None)
    if args.baseline:
        old = load_revision(args.baseline)
        slow = Limits(max_seconds=args.baseline_seconds)
        seconds, got, hit = run(old, data, slow)
        assert got == expected[:len(got)], "baseline carved different items"
        # How far it got: the end of the last item carved, or all of it if it finished.
        covered = len(data) if hit is None else _end(old, data, got[-1][0]) if got else 0
        report(f"{args.baseline} (limit {args.baseline_seconds:g} s)", seconds, got, covered,
               hit)
    return 0


def _end(mod: types.ModuleType, data: bytes, at: int) -> int:
    end = mod.gif_end(data, at)
    assert end is not None
    return int(end)


if __name__ == "__main__":
    raise SystemExit(main())
