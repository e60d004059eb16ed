#!/usr/bin/env python3
"""A system-like tree of many small files (issue 13), benign and seeded.

    .venv/bin/python benchmarks/gen_systree.py OUT_DIR --files 40000 --seed 1

Modelled on ``/usr/share`` of a Debian system (47,758 files, median 1.3 KB, 3,936 symlinks,
5.6k icons): sizes of text and binary files are log-normal around 2.3 KB (sigma 1.6, capped at
4 MiB; overall median ~1.3 KB), in folders of 1-120 entries nested up to five deep. Of the entries:

* 52 % text (documentation-like lines of words: ``.txt``, ``.html``, ``.desktop``, none);
* 12 % PNG icons (16-64 px gradients, Pillow, compression level 6);
*  9 % gzip-compressed text (man pages: ``.gz``; the default scan expands them);
*  9 % binary (seeded random bytes: ``.mo``, ``.bin``, ``.dat``);
*  8 % symbolic links to earlier files (relative);
* 10 % empty or tiny (0-64 bytes) configuration-like files.

Same seed, same Python and Pillow: same bytes. Prints a JSON summary (counts, bytes,
median size).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import statistics
import sys
from pathlib import Path

from PIL import Image

WORDS = ("the system file data user package config default value option manual page "
         "command line output input device network service version license copyright "
         "library module function return error status display window icon theme locale "
         "translation message string format table index entry section example note").split()
MEDIAN = 2300  # bytes: with the icons and tiny files, an overall median of ~1.3 KB (issue 13)
SIGMA = 1.6
MAX_SIZE = 4 << 20


def _size(rng: random.Random) -> int:
    return min(MAX_SIZE, max(1, int(rng.lognormvariate(0, SIGMA) * MEDIAN)))


def _text(rng: random.Random, size: int) -> bytes:
    out: list[str] = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def _png(rng: random.Random) -> bytes:
    side = rng.choice((16, 22, 24, 32, 48, 64))
    a = tuple(rng.randrange(256) for _ in range(3))
    b = tuple(rng.randrange(256) for _ in range(3))
    im = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    im = Image.merge("RGB", [ch.point(lambda v, lo=lo, hi=hi: lo + (hi - lo) * v // 255)
                             for ch, lo, hi in zip(im.split(), a, b, strict=True)])
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def generate(out: Path, files: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    dirs = [out]
    made: list[Path] = []
    sizes: list[int] = []
    kinds: dict[str, int] = {}
    left_in_dir = 0
    current = out
    for i in range(files):
        if left_in_dir == 0:
            parent = rng.choice(dirs[-50:]) if len(dirs) > 1 else out
            depth = len(parent.relative_to(out).parts)
            if depth >= 5:
                parent = out
            current = parent / f"d{len(dirs):05d}"
            current.mkdir()
            dirs.append(current)
            left_in_dir = rng.randint(1, 120)
        left_in_dir -= 1
        r = rng.random()
        if r < 0.08 and made:
            target = rng.choice(made)
            link = current / f"l{i:06d}"
            os.symlink(os.path.relpath(target, current), link)
            kinds["symlink"] = kinds.get("symlink", 0) + 1
            continue
        if r < 0.20:
            kind, data = "png", _png(rng)
            name = f"f{i:06d}.png"
        elif r < 0.29:
            kind = "gz"
            data = gzip.compress(_text(rng, _size(rng) * 3), compresslevel=9, mtime=0)
            name = f"f{i:06d}.{rng.choice(('1', '5', '8'))}.gz"
        elif r < 0.38:
            kind, data = "binary", rng.randbytes(_size(rng))
            name = f"f{i:06d}.{rng.choice(('mo', 'bin', 'dat'))}"
        elif r < 0.48:
            kind, data = "tiny", _text(rng, rng.randint(0, 64))
            name = f"f{i:06d}.conf"
        else:
            kind, data = "text", _text(rng, _size(rng))
            name = f"f{i:06d}{rng.choice(('.txt', '.html', '.desktop', ''))}"
        p = current / name
        p.write_bytes(data)
        made.append(p)
        sizes.append(len(data))
        kinds[kind] = kinds.get(kind, 0) + 1
    summary = {"entries": files, "regular_files": len(sizes), "directories": len(dirs) - 1,
               "bytes": sum(sizes), "median_size": statistics.median(sizes) if sizes else 0,
               "kinds": dict(sorted(kinds.items())), "seed": seed}
    (out.parent / f"{out.name}.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--files", type=int, default=40_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    print(json.dumps(generate(args.out, args.files, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
