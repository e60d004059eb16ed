#!/usr/bin/env python3
"""Generate a benchmark corpus: camera-size JPEGs plus large non-media files.

    .venv/bin/python benchmarks/gen_corpus.py OUT_DIR --jpegs 300 --nonmedia-mb 500 --seed 1

Layout (all inside OUT_DIR, which must be empty or absent)::

    jpeg/640x480/img_00000.jpg ...     benign synthetic pictures, JPEG quality 90
    jpeg/1920x1080/...
    jpeg/4000x3000/...
    other/blob_000.bin ...             seeded random bytes (libmagic: "data")
    corpus.json                        parameters and counts (no content)

The pictures are computed (sky gradient, a sun, ridges, shapes) with seeded noise that gives
them camera-like JPEG entropy (about 2.3 bits per pixel at quality 90, ~3.5 MB for 12 MP), so
decoding costs what a camera photo costs. To stay fast, a few base pictures per size are
made once and every file is a different crop of a base plus a different crop of a shared
noise field and a colour shift, encoded in parallel worker processes. Same seed, same
Pillow: same bytes. Nothing is ever displayed.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

SIZES: tuple[tuple[int, int], ...] = ((640, 480), (1920, 1080), (4000, 3000))
JPEG_QUALITY = 90
BASES_PER_SIZE = 3
PAD = 48  # crop slack, in pixels, for the base pictures and the noise field
NOISE_STD = 4.0  # per-pixel sensor-like noise; with the texture below ~2.3 bits/pixel
TEXTURE_AMPLITUDE = 60.0
NONMEDIA_FILE_MB = 64  # non-media bytes are split into files of at most this size
MiB = 1024 * 1024

# Filled in the parent before the worker pool forks, so workers share them copy-on-write.
_BASES: dict[tuple[int, int], list[np.ndarray]] = {}
_NOISE: dict[tuple[int, int], np.ndarray] = {}


def _smooth(rng: np.random.Generator, w: int, h: int, cell: int) -> np.ndarray:
    """Float32 (h, w) in [0, 1]: coarse random grid enlarged bicubically."""
    coarse = (rng.random((max(2, h // cell + 2), max(2, w // cell + 2))) * 255).astype(np.uint8)
    enlarged = Image.fromarray(coarse, "L").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(enlarged, dtype=np.float32) / 255


def _base_picture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A landscape-like picture as int16 (h, w, 3): drawn small, enlarged smoothly."""
    sw, sh = max(64, w // 4), max(48, h // 4)
    yy = np.arange(sh, dtype=np.float32)[:, None, None] / sh
    top, horizon = rng.integers(20, 140, 3), rng.integers(140, 256, 3)
    sky = top * (1 - yy) + horizon * yy
    pixels = np.broadcast_to(sky, (sh, sw, 3)).copy()
    x = np.arange(sw, dtype=np.float32) / sw
    rows = np.arange(sh, dtype=np.float32)[:, None]
    for layer in range(3):
        ridge = np.full(sw, sh * (0.45 + 0.15 * layer), np.float32)
        for octave in (1, 2, 4, 8, 16):
            ridge += (sh * 0.1 / octave) * np.sin(2 * np.pi * (octave * x + rng.random()))
        shade = (0.6 + 0.4 * _smooth(rng, sw, sh, 8))[..., None]
        colour = rng.integers(30, 170, 3).astype(np.float32)
        pixels = np.where((rows >= ridge[None, :])[..., None], colour * shade, pixels)
    small = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(small)
    for _ in range(12):
        x0, x1 = sorted(int(v) for v in rng.integers(0, sw, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, sh, 2))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    big = small.resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(big).astype(np.int16)


def _noise_field(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """int16 (h, w): fine texture plus Gaussian sensor-like noise, shared by one size."""
    texture = (_smooth(rng, w, h, 6) - 0.5) * TEXTURE_AMPLITUDE
    grain = rng.normal(0.0, NOISE_STD, (h, w)).astype(np.float32)
    return np.round(texture + grain).astype(np.int16)


def _prepare(seed: int, sizes: list[tuple[int, int]]) -> None:
    for w, h in sizes:
        rng = np.random.default_rng([seed, w, h])
        _BASES[(w, h)] = [_base_picture(rng, w + PAD, h + PAD) for _ in range(BASES_PER_SIZE)]
        _NOISE[(w, h)] = _noise_field(rng, w + 2 * PAD, h + 2 * PAD)


def _make_jpeg(task: tuple[int, int, int, int, str]) -> tuple[str, int]:
    index, seed, w, h, out = task
    rng = np.random.default_rng([seed, index])
    base = _BASES[(w, h)][index % BASES_PER_SIZE]
    ox, oy = (int(v) for v in rng.integers(0, PAD, 2))
    nx, ny = (int(v) for v in rng.integers(0, 2 * PAD, 2))
    pixels = base[oy:oy + h, ox:ox + w] + _NOISE[(w, h)][ny:ny + h, nx:nx + w, None]
    pixels += rng.integers(-24, 25, 3).astype(np.int16)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    Path(out).write_bytes(buffer.getvalue())
    return out, buffer.tell()


def _write_nonmedia(folder: Path, total_mb: int, seed: int) -> list[int]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0xB10B])
    sizes: list[int] = []
    remaining = total_mb * MiB
    index = 0
    while remaining > 0:
        size = min(remaining, NONMEDIA_FILE_MB * MiB)
        with open(folder / f"blob_{index:03d}.bin", "wb") as handle:
            left = size
            while left:
                chunk = min(left, 8 * MiB)
                handle.write(rng.bytes(chunk))
                left -= chunk
        sizes.append(size)
        remaining -= size
        index += 1
    return sizes


def generate(dest: Path, *, jpegs: int, nonmedia_mb: int, seed: int = 1,
             workers: int | None = None,
             sizes: tuple[tuple[int, int], ...] = SIZES) -> dict[str, Any]:
    """Write the corpus into ``dest`` (absent or empty) and return its description.

    JPEG ``i`` has size ``sizes[i % len(sizes)]``, so the mix is equal thirds by count.
    """
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty")
    started = time.perf_counter()
    tasks = []
    for index in range(jpegs):
        w, h = sizes[index % len(sizes)]
        folder = dest / "jpeg" / f"{w}x{h}"
        folder.mkdir(parents=True, exist_ok=True)
        tasks.append((index, seed, w, h, str(folder / f"img_{index:05d}.jpg")))
    jpeg_bytes = 0
    if tasks:
        _prepare(seed, sorted({(t[2], t[3]) for t in tasks}))
        processes = workers or os.cpu_count() or 1
        if processes > 1:
            with mp.get_context("fork").Pool(processes) as pool:
                for _out, size in pool.imap_unordered(_make_jpeg, tasks, chunksize=2):
                    jpeg_bytes += size
        else:
            for task in tasks:
                jpeg_bytes += _make_jpeg(task)[1]
        _BASES.clear()
        _NOISE.clear()
    blob_sizes = _write_nonmedia(dest / "other", nonmedia_mb, seed) if nonmedia_mb else []
    description: dict[str, Any] = {
        "seed": seed,
        "jpeg_quality": JPEG_QUALITY,
        "jpegs": jpegs,
        "jpeg_sizes": {f"{w}x{h}": sum(1 for t in tasks if (t[2], t[3]) == (w, h))
                       for w, h in sizes},
        "jpeg_bytes": jpeg_bytes,
        "nonmedia_files": len(blob_sizes),
        "nonmedia_bytes": sum(blob_sizes),
        "generation_seconds": round(time.perf_counter() - started, 2),
    }
    (dest / "corpus.json").write_text(json.dumps(description, indent=2) + "\n")
    return description


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="output directory (absent or empty)")
    parser.add_argument("--jpegs", type=int, default=300, help="number of JPEGs (default 300)")
    parser.add_argument("--nonmedia-mb", type=int, default=500,
                        help="total MiB of random-byte non-media files (default 500)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--workers", type=int, default=None,
                        help="encoder processes (default: all cores)")
    args = parser.parse_args(argv)
    try:
        info = generate(args.dest, jpegs=args.jpegs, nonmedia_mb=args.nonmedia_mb,
                        seed=args.seed, workers=args.workers)
    except FileExistsError as exc:
        print(f"gen_corpus: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
