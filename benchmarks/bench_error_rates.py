#!/usr/bin/env python3
"""Measured error rates of the near-match hashes (issue 14, item 5; not run in CI).

    .venv/bin/python benchmarks/bench_error_rates.py [--generated 1000] [--jobs 2] [--store]

Builds a labelled, benign corpus of distinct pictures: the public test pictures listed in
PUBLIC_PICTURES (read by path from ../shared/testdata, never copied; a pixel-correlation
check drops any that duplicate another) plus ``--generated`` seeded synthetic pictures of
five kinds (scenes, shapes, gradients, textures, mixtures). Every picture is transformed in
the TRANSFORMS ways (JPEG re-encodes, resizes, crops, rotations by 90/180/270 degrees and by
small angles, flips, letterbox and pillarbox bars, colour shifts, logo overlays), each
transformed copy JPEG-encoded in memory.

Hashing follows what triage does:

* the reference ("known") value of a picture is computed on the full-size picture, as a
  hash-set publisher would compute it (generated: the picture itself; public: the file
  decoded at full size with :func:`triage.worker.decode_image`, ``draft_size=0``);
* a transformed copy is decoded from its bytes with the scanner's own
  :func:`triage.worker.decode_image` and default :class:`~triage.worker.WorkerOptions`
  (JPEG draft decode to at least 360 px), then hashed with the registry's algorithms
  (``hashsets.algorithms``: PDQ, pHash, dHash). Its dihedral variants (the 7 other
  rotations/flips) are ``pdqhash.compute_dihedral`` for PDQ and the registry's pHash/dHash
  of ``Image.transpose`` of the decoded picture's grey conversion (identical to transposing
  the picture itself: Pillow's ``convert("L")`` is per pixel, and both hashes start with it);
* PDQ's quality gate (``PDQ.min_quality``) applies to copies as in ``triage match``: a copy
  below it is never matched (a miss for recall; its pairs are not counted as compared).

Measured per algorithm and threshold (0 to twice the default), with dihedral matching ON
(distance = minimum over the copy's 8 variants) and OFF (the copy as decoded):

* false matches: pairs of a copy and the reference of a *different* picture at or under
  the threshold (every copy against every other picture: ~2.3 x 10^7 pairs for 1,050 pictures);
* recall: copies within the threshold of their own picture's reference, also per transform.

Pair distances are numpy XOR + ``bitwise_count`` over uint64 words. Nothing is displayed or
written out: pictures exist only in memory, inside the worker processes; the output is
counts. ``--store`` writes the figures to ``hashsets/algorithms/error_rates.json`` (read by
``hashsets.algorithms.error_rates`` and printed in every report's method section);
``--results FILE`` writes the same JSON elsewhere. Prints Markdown tables for
docs/error-rates.md. Same seed, same library versions: same figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing as mp
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_corpus import _base_picture, _smooth  # noqa: E402  (the benchmark corpus's scenes)

from hashsets.algorithms import get  # noqa: E402
from hashsets.algorithms.error_rates import FORMAT, FORMAT_VERSION, STORED  # noqa: E402
from triage import membudget  # noqa: E402
from triage.worker import WorkerOptions, decode_image  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata" / "media"
#: Public test pictures (../shared/testdata/MANIFEST.md), one per distinct content: photos
#: and drawings from imageio, imagehash, PDQ and Pillow's test suites. Known duplicates are
#: left out by name (hopper in its 60 formats but one, flower.webp, sugarshack's variants,
#: PDQ's letterboxed sample, Pillow's TIFF layouts of one picture, hopper's sepia and spread
#: versions), and so are plain gradients (generated ones cover them) and 16-bit pictures
#: (Pillow's 8-bit conversion clips them to flat white: one degenerate value for all, see
#: hashsets/algorithms/perceptual.py). The correlation check in distinct_public() drops any
#: remaining look-alike, and files over MAX_PUBLIC_PIXELS (meadow_cube.jpg, 25 MP: to keep
#: the run short) or that do not decode (ultrahdr.jpg is truncated) are left out.
PUBLIC_PICTURES = (
    "imageio/astronaut.png", "imageio/bricks.jpg", "imageio/chelsea.png",
    "imageio/Ankylosaurus_&_Stegosaurus_Thumbnail.jpg", "imageio/geotiff.tif",
    "imageio/rommel.jpg", "imageio/wood.jpg", "imageio/scribble_P_RGB.bmp",
    "imageio/newtonscradle.gif", "imageio/imageio256.png", "imageio/checkerboard.png",
    "imageio/meadow_cube.jpg",
    "imagehash/imagehash.png", "imagehash/peppers.png",
    "pdq/sample-b.jpg", "pdq/rgb.jpeg", "pdq/LA.png",
    "pdq/random_image_from_test_pdq_hasher.png",
    "pillow/hopper.png", "pillow/flower.jpg", "pillow/flower2.jpg", "pillow/frozenpond.mpo",
    "pillow/sugarshack.mpo", "pillow/effect_mandelbrot.png", "pillow/exif-72dpi-int.jpg",
    "pillow/exif_gps_typeerror.jpg", "pillow/icc_profile_big.jpg", "pillow/iptc.jpg",
    "pillow/junk_jpeg_header.jpg", "pillow/test-card.png", "pillow/chi.gif",
    "pillow/iss634.gif", "pillow/xmp_test.jpg", "pillow/ultrahdr.jpg",
    "pillow/tiff_adobe_deflate.png", "pillow/pil168.png", "pillow/radial_gradients.png",
    "pillow/uncompressed_rgb.png", "pillow/xmp_tags_orientation.png",
    "pillow/dispose_none_load_end.gif", "pillow/transparent.png", "pillow/test.colors.gif",
    "pillow/a_fli.png", "pillow/copyleft.png", "pillow/old-style-jpeg-compression.png",
    "pillow/itxt_chunks.png", "pillow/exif.png", "pillow/app13-multiple.jpg",
    "pillow/photoshop-200dpi.jpg", "pillow/caption_6_33_22.png", "pillow/bc5_unorm.png",
    "pillow/dxt1-rgb-4bbp-noalpha_MipMaps-1.png", "pillow/multiline_text_justify_anchor.png",
)
MAX_PUBLIC_PIXELS = 12_000_000
#: Two public pictures whose 32x32 grey thumbnails correlate above this (under any of the 8
#: rotations/flips) are taken as one picture: the later one is dropped. A labelling step on
#: pixels, independent of the hashes measured.
DUPLICATE_CORRELATION = 0.85

#: Kinds of generated picture and their shares of the generated corpus.
KINDS = {"scene": 0.30, "shapes": 0.25, "texture": 0.20, "mixed": 0.15, "gradient": 0.10}
#: Long side of a generated picture (px) and aspect ratios (width / height).
LONG_SIDE = (320, 1024)
ASPECTS = (4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4, 2 / 3, 9 / 16)
#: JPEG quality of every transformed copy that is not a re-encode test itself.
COPY_QUALITY = 90
SENSOR_NOISE = 3.0  # std of the per-pixel noise added to generated pictures


# -- generated pictures -------------------------------------------------------------------
def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, 3))
    return r, g, b


def _gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A linear (random angle, 2-3 colour stops) or radial (random centre) gradient."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.6:
        a = rng.random() * 2 * np.pi
        t = xx * np.cos(a) + yy * np.sin(a)
    else:
        cx, cy = rng.random() * w, rng.random() * h
        t = np.hypot(xx - cx, yy - cy)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    stops = rng.integers(0, 256, (int(rng.integers(2, 4)), 3)).astype(np.float32)
    pos = t * (len(stops) - 1)
    i = np.minimum(pos.astype(np.int32), len(stops) - 2)
    f = (pos - i)[..., None]
    out: np.ndarray = stops[i] * (1 - f) + stops[i + 1] * f
    return out


def _shapes(rng: np.random.Generator, w: int, h: int, background: np.ndarray | None = None,
            count: tuple[int, int] = (5, 40)) -> np.ndarray:
    """Random ellipses, rectangles, polygons and thick lines on a plain or given background."""
    if background is None:
        im = Image.new("RGB", (w, h), _colour(rng))
    else:
        im = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(*count))):
        kind = int(rng.integers(0, 4))
        size = max(8, int(min(w, h) * (0.05 + 0.45 * rng.random() ** 2)))
        x, y = int(rng.integers(-size // 2, w)), int(rng.integers(-size // 2, h))
        box = (x, y, x + int(size * (0.5 + rng.random())), y + size)
        fill = _colour(rng)
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rectangle(box, fill=fill)
        elif kind == 2:
            pts = [(int(x + size * rng.random()), int(y + size * rng.random()))
                   for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(pts, fill=fill)
        else:
            draw.line((box[0], box[1], box[2], box[3]), fill=fill,
                      width=max(2, size // 10))
    return np.asarray(im).astype(np.float32)


def _texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A noise texture: fractal (smoothed noise at several scales, per channel), a grating
    (sinusoids at a random angle and frequency, with noise) or a cell pattern."""
    style = int(rng.integers(0, 3))
    if style == 0:
        channels = []
        for _ in range(3):
            c = np.zeros((h, w), np.float32)
            for cell, weight in ((max(w, h) // 3, 1.0), (48, 0.5), (12, 0.25), (3, 0.12)):
                c += weight * rng.random() * 2 * (_smooth(rng, w, h, max(2, cell)) - 0.5)
            channels.append(c)
        arr = np.stack(channels, -1)
        arr = (arr - arr.min()) / max(1e-6, float(arr.max() - arr.min()))
        return arr * 255
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if style == 1:
        a = rng.random() * np.pi
        freq = 2 * np.pi / (6 + 120 * rng.random())
        wave = np.sin((xx * np.cos(a) + yy * np.sin(a)) * freq + rng.random() * 6.3)
        c0, c1 = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
        f = ((wave + 1) / 2)[..., None]
        return c0 * (1 - f) + c1 * f + rng.normal(0, 12, (h, w, 1)).astype(np.float32)
    cell = int(rng.integers(8, 80))
    ix, iy = (xx // cell).astype(np.int64), (yy // cell).astype(np.int64)
    palette = rng.integers(0, 256, (int(rng.integers(2, 6)), 3)).astype(np.float32)
    idx = (ix * int(rng.integers(1, 7)) + iy * int(rng.integers(1, 7))) % len(palette)
    return palette[idx] + rng.normal(0, 8, (h, w, 1)).astype(np.float32)


def _mixed(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A texture under a translucent gradient, with a few shapes on top."""
    base = 0.6 * _texture(rng, w, h) + 0.4 * _gradient(rng, w, h)
    return _shapes(rng, w, h, background=base, count=(2, 12))


def _scene(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """gen_corpus's landscape (sky gradient, ridges, shapes), enlarged smoothly."""
    return _base_picture(rng, w, h).astype(np.float32)


GENERATORS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "scene": _scene, "shapes": _shapes, "texture": _texture, "mixed": _mixed,
    "gradient": _gradient,
}


def generated_picture(seed: int, index: int) -> tuple[str, Image.Image]:
    """Generated picture ``index`` of ``seed``: its kind and the RGB picture."""
    rng = np.random.default_rng([seed, index])
    kinds = list(KINDS)
    kind = kinds[int(rng.choice(len(kinds), p=list(KINDS.values())))]
    long_side = int(rng.integers(*LONG_SIDE))
    aspect = float(ASPECTS[int(rng.integers(0, len(ASPECTS)))])
    w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else (
        round(long_side * aspect), long_side)
    arr = GENERATORS[kind](rng, w, h)
    arr = arr + rng.normal(0, SENSOR_NOISE, (h, w, 1)).astype(np.float32)
    return kind, Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


# -- transforms ---------------------------------------------------------------------------
def _jpeg(im: Image.Image, quality: int = COPY_QUALITY) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _resize(im: Image.Image, factor: float) -> Image.Image:
    w, h = max(32, round(im.width * factor)), max(32, round(im.height * factor))
    return im.resize((w, h), Image.Resampling.LANCZOS)


def _crop(im: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = im.size
    return im.crop((round(w * left), round(h * top), round(w * (1 - right)),
                    round(h * (1 - bottom))))


def _bars(im: Image.Image, horizontal: bool) -> Image.Image:
    """Black bars above and below (letterbox) or left and right (pillarbox), each 20% of
    the picture's height or width."""
    w, h = im.size
    size = (w, round(h * 1.4)) if horizontal else (round(w * 1.4), h)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(im, ((size[0] - w) // 2, (size[1] - h) // 2))
    return canvas


def _logo(im: Image.Image, rng: np.random.Generator, large: bool) -> Image.Image:
    """A generated, text-free logo pasted 85% opaque: a corner badge of 18% of the width,
    or a banner across the bottom 18% of the height."""
    w, h = im.size
    lw, lh = (w, max(8, round(h * 0.18))) if large else (
        max(8, round(w * 0.18)), max(8, round(w * 0.18 * 0.6)))
    logo = Image.new("RGB", (lw, lh), _colour(rng))
    draw = ImageDraw.Draw(logo)
    draw.ellipse((lh * 0.1, lh * 0.1, lh * 0.9, lh * 0.9), fill=_colour(rng))
    for i in range(3):
        x0 = lh + i * (lw - lh) / 3
        draw.rectangle((x0, lh * 0.3, x0 + max(1, (lw - lh) / 4), lh * 0.7), fill=_colour(rng))
    x, y = (0, h - lh) if large else (w - lw - w // 40, h - lh - h // 40)
    out = im.copy()
    out.paste(logo, (x, y), Image.new("L", logo.size, 217))
    return out


def _tint(im: Image.Image) -> Image.Image:
    """A warm colour cast: red x1.12, blue x0.8, then gamma 0.85."""
    arr = np.asarray(im).astype(np.float32) * np.array([1.12, 1.0, 0.8], np.float32)
    arr = 255 * (np.clip(arr, 0, 255) / 255) ** 0.85
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


def _brighter(im: Image.Image) -> Image.Image:
    return ImageEnhance.Contrast(ImageEnhance.Brightness(im).enhance(1.25)).enhance(0.85)


T = Image.Transpose
#: name -> (family, function of (picture, rng) -> JPEG bytes). The families are the kinds
#: the issue names; every copy is a JPEG, so the scanner's draft decode applies to it.
TRANSFORMS: dict[str, tuple[str, Callable[[Image.Image, np.random.Generator], bytes]]] = {
    "jpeg q90": ("re-encode", lambda im, r: _jpeg(im, 90)),
    "jpeg q70": ("re-encode", lambda im, r: _jpeg(im, 70)),
    "jpeg q40": ("re-encode", lambda im, r: _jpeg(im, 40)),
    "resize 50%": ("resize", lambda im, r: _jpeg(_resize(im, 0.5))),
    "resize 25%": ("resize", lambda im, r: _jpeg(_resize(im, 0.25))),
    "crop 5% each side": ("crop", lambda im, r: _jpeg(_crop(im, .05, .05, .05, .05))),
    "crop 20% off-centre": ("crop", lambda im, r: _jpeg(_crop(im, .15, .02, .05, .13))),
    "rotate 90": ("rotate 90/180/270", lambda im, r: _jpeg(im.transpose(T.ROTATE_90))),
    "rotate 180": ("rotate 90/180/270", lambda im, r: _jpeg(im.transpose(T.ROTATE_180))),
    "rotate 270": ("rotate 90/180/270", lambda im, r: _jpeg(im.transpose(T.ROTATE_270))),
    "rotate 3 degrees": ("rotate small angle", lambda im, r: _jpeg(
        im.rotate(3, Image.Resampling.BICUBIC, fillcolor=(0, 0, 0)))),
    "rotate 8 degrees": ("rotate small angle", lambda im, r: _jpeg(
        im.rotate(-8, Image.Resampling.BICUBIC, fillcolor=(0, 0, 0)))),
    "flip left-right": ("flip", lambda im, r: _jpeg(im.transpose(T.FLIP_LEFT_RIGHT))),
    "flip top-bottom": ("flip", lambda im, r: _jpeg(im.transpose(T.FLIP_TOP_BOTTOM))),
    "rotate 90 + resize 50% + q70": ("combined", lambda im, r: _jpeg(
        _resize(im.transpose(T.ROTATE_90), 0.5), 70)),
    "letterbox 20%+20%": ("letterbox", lambda im, r: _jpeg(_bars(im, True))),
    "pillarbox 20%+20%": ("letterbox", lambda im, r: _jpeg(_bars(im, False))),
    "brightness +25%, contrast -15%": ("colour shift", lambda im, r: _jpeg(_brighter(im))),
    "warm tint + gamma": ("colour shift", lambda im, r: _jpeg(_tint(im))),
    "greyscale": ("colour shift", lambda im, r: _jpeg(im.convert("L"))),
    "logo badge (corner)": ("logo overlay", lambda im, r: _jpeg(_logo(im, r, False))),
    "logo banner (bottom 18%)": ("logo overlay", lambda im, r: _jpeg(_logo(im, r, True))),
}


# -- hashing (the project's code) ----------------------------------------------------------
#: The 7 non-identity elements of the dihedral group, as Pillow transpositions.
DIHEDRAL = (T.ROTATE_90, T.ROTATE_180, T.ROTATE_270, T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM,
            T.TRANSPOSE, T.TRANSVERSE)
ALGORITHMS = ("pdq", "phash", "dhash")
SCANNER = WorkerOptions()  # the worker's defaults: draft decode to >= 360 px
FULL_DECODE = WorkerOptions(draft_size=0)


def _words(hexvalue: str) -> list[int]:
    return [int(hexvalue[i:i + 16], 16) for i in range(0, len(hexvalue), 16)]


def _pdq_words(bits: Any) -> list[int]:
    packed = np.packbits(np.asarray(bits, dtype=np.uint8))
    return [int(v) for v in packed.view(">u8")]


@dataclass
class Hashes:
    """One picture's values: per algorithm a list of variants (each a list of uint64
    words; variant 0 is the picture as decoded), and PDQ's quality."""

    values: dict[str, list[list[int]]]
    pdq_quality: int
    pdq_dihedral_mismatch: int = 0  # compute_dihedral's variant 0 != the registry's value


def hash_picture(image: Image.Image, dihedral: bool) -> Hashes:
    """The registry's PDQ, pHash and dHash of ``image`` (and, with ``dihedral``, of its 7
    other rotations/flips)."""
    import pdqhash

    pdq_hex, quality = get("pdq").compute(image)  # type: ignore[attr-defined]
    values: dict[str, list[list[int]]] = {"pdq": [_words(pdq_hex)]}
    mismatch = 0
    if dihedral:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        variants, _ = pdqhash.compute_dihedral(np.asarray(rgb))
        mismatch = int(_pdq_words(variants[0]) != values["pdq"][0])
        values["pdq"] += [_pdq_words(v) for v in variants[1:]]
    grey = image if image.mode == "L" else None
    for name in ("phash", "dhash"):
        alg = get(name)
        vals = [_words(alg.compute(image)[0])]  # type: ignore[attr-defined]
        if dihedral:
            if grey is None:
                grey = image.convert("L")
            vals += [_words(alg.compute(grey.transpose(op))[0])  # type: ignore[attr-defined]
                     for op in DIHEDRAL]
        values[name] = vals
    return Hashes(values, int(quality or 0), mismatch)


def _decode(data: bytes, options: WorkerOptions) -> Image.Image:
    image, _facts, _notes = decode_image(data, options)
    membudget.release()
    return image


@dataclass(frozen=True)
class Task:
    index: int
    seed: int
    source: str  # "generated" or a public path under TESTDATA


def process(task: Task) -> dict[str, Any]:
    """Make (or read) one picture, hash it, make and hash its transformed copies. Returns
    only hashes, qualities and labels (never pixels)."""
    if task.source == "generated":
        kind, original = generated_picture(task.seed, task.index)
        reference = original
        label = f"generated {kind} #{task.index}"
    else:
        data = (TESTDATA / task.source).read_bytes()
        reference = _decode(data, FULL_DECODE)
        original = reference if reference.mode == "RGB" else reference.convert("RGB")
        kind, label = "public", task.source
    ref = hash_picture(reference, dihedral=False)
    rng = np.random.default_rng([task.seed, task.index, 0x7F])
    copies: list[dict[str, Any]] = []
    mismatches = 0
    for name, (_family, make) in TRANSFORMS.items():
        query = _decode(make(original, rng), SCANNER)
        h = hash_picture(query, dihedral=True)
        mismatches += h.pdq_dihedral_mismatch
        copies.append({"transform": name, "values": h.values, "pdq_quality": h.pdq_quality,
                       "decoded": query.size})
        query.close()
    return {"index": task.index, "kind": kind, "label": label, "size": original.size,
            "reference": ref.values, "reference_pdq_quality": ref.pdq_quality,
            "copies": copies, "pdq_dihedral_mismatch": mismatches}


# -- public pictures: which are distinct ----------------------------------------------------
def _thumb(path: str) -> np.ndarray | None:
    """A 32x32 grey thumbnail, zero-mean and unit-norm, or None if the file is unusable."""
    try:
        p = TESTDATA / path
        with Image.open(p) as probe:
            if probe.width * probe.height > MAX_PUBLIC_PIXELS:
                return None
        im = _decode(p.read_bytes(), FULL_DECODE)
    except Exception:
        return None
    if im.mode.startswith(("I", "F")):
        return None
    grey = im.convert("L") if im.mode != "L" else im
    a = np.asarray(grey.resize((32, 32), Image.Resampling.BOX), np.float64)
    a = a - a.mean()
    norm = float(np.linalg.norm(a))
    return a / norm if norm > 1e-9 else a


def distinct_public(paths: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(kept, dropped-with-reason): a path is dropped when it is missing, not decodable,
    over MAX_PUBLIC_PIXELS, or correlates above DUPLICATE_CORRELATION with a kept one under
    any rotation/flip."""
    kept: list[tuple[str, np.ndarray]] = []
    dropped: list[str] = []
    for path in paths:
        t = _thumb(path)
        if t is None:
            dropped.append(f"{path}: missing, not decodable, 16-bit or over "
                           f"{MAX_PUBLIC_PIXELS:,} pixels")
            continue
        variants = [t, np.rot90(t, 1), np.rot90(t, 2), np.rot90(t, 3), t[:, ::-1], t[::-1],
                    t.T, np.rot90(t, 2).T]
        twin = next(((k, c) for k, kt in kept
                     if (c := max(float((v * kt).sum()) for v in variants))
                     > DUPLICATE_CORRELATION), None)
        if twin:
            dropped.append(f"{path}: correlates {twin[1]:.2f} with {twin[0]}")
        else:
            kept.append((path, t))
    return [k for k, _ in kept], dropped


# -- pair distances -------------------------------------------------------------------------
def _distances(queries: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Hamming distances, shape (q, variants, n), of (q, variants, words) against (n, words)
    uint64 arrays."""
    out = np.zeros((queries.shape[0], queries.shape[1], refs.shape[0]), np.uint16)
    for w in range(refs.shape[1]):
        out += np.bitwise_count(queries[:, :, w, None] ^ refs[None, None, :, w])
    return out


def measure(results: list[dict[str, Any]], chunk: int = 128) -> dict[str, Any]:
    """Histograms of distances for unrelated and related pairs, dihedral on and off, and the
    figures at every threshold 0..2x default."""
    n = len(results)
    names = list(TRANSFORMS)
    owner = np.array([i for i, r in enumerate(results) for _ in r["copies"]], np.int64)
    transform = np.array([names.index(c["transform"]) for r in results for c in r["copies"]])
    quality = np.array([c["pdq_quality"] for r in results for c in r["copies"]])
    kinds = [r["kind"] for r in results]
    out: dict[str, Any] = {}
    for name in ALGORITHMS:
        alg = get(name)
        default = int(alg.default_threshold or 0)
        gate = alg.min_quality
        refs = np.array([r["reference"][name][0] for r in results], np.uint64)
        qs = np.array([c["values"][name] for r in results for c in r["copies"]], np.uint64)
        compared = np.ones(len(qs), bool) if gate is None else quality >= gate
        top = alg.bits + 1
        unrelated = {"dihedral": np.zeros(top + 1, np.int64), "plain": np.zeros(top + 1, np.int64)}
        own = {"dihedral": np.zeros(len(qs), np.int64), "plain": np.zeros(len(qs), np.int64)}
        false_pairs: list[tuple[int, int, int, int]] = []  # (query, ref, dist, variant)
        for start in range(0, len(qs), chunk):
            stop = min(len(qs), start + chunk)
            d = _distances(qs[start:stop], refs)
            rows = np.arange(stop - start)
            mine = owner[start:stop]
            variant = d.argmin(axis=1)
            modes = {"dihedral": d.min(axis=1).astype(np.int64),
                     "plain": d[:, 0, :].astype(np.int64)}
            for mode, m in modes.items():
                own[mode][start:stop] = m[rows, mine]
                m[rows, mine] = top  # the related pair is not an unrelated one
                m[~compared[start:stop]] = top  # gated: never compared
                unrelated[mode] += np.bincount(m.ravel(), minlength=top + 1)
            dm = modes["dihedral"]
            for qi, rj in zip(*np.nonzero(dm <= default), strict=True):
                false_pairs.append((start + int(qi), int(rj), int(dm[qi, rj]),
                                    int(variant[qi, rj])))
        pairs = int(compared.sum()) * (n - 1)
        assert int(unrelated["dihedral"][:top].sum()) == pairs
        rows_out = []
        for t in range(0, 2 * default + 1):
            row: dict[str, Any] = {"threshold": t}
            for mode in ("dihedral", "plain"):
                row[mode] = {"false_matches": int(unrelated[mode][:t + 1].sum()),
                             "found": int(((own[mode] <= t) & compared).sum())}
            rows_out.append(row)
        by_transform = {}
        for ti, tname in enumerate(names):
            sel = transform == ti
            by_transform[tname] = {
                "family": TRANSFORMS[tname][0], "copies": int(sel.sum()),
                **{mode: int(((own[mode] <= default) & compared & sel).sum())
                   for mode in ("dihedral", "plain")}}
        by_kind: dict[str, int] = {}
        for qi, rj, _d, _v in false_pairs:
            key = " / ".join(sorted((kinds[owner[qi]], kinds[rj])))
            by_kind[key] = by_kind.get(key, 0) + 1
        out[name] = {
            "label": alg.label, "bits": alg.bits, "default_threshold": default,
            "min_quality": gate, "unrelated_pairs": pairs, "transformed_pairs": len(qs),
            "copies_below_quality_gate": int((~compared).sum()),
            "references_below_quality_gate": (
                None if gate is None else
                sum(r["reference_pdq_quality"] < gate for r in results)),
            "thresholds": rows_out,
            "at_default": {
                "recall_by_transform": by_transform,
                "false_matches_by_kind": dict(sorted(by_kind.items())),
                "false_match_examples": [
                    {"copy": f"{results[owner[qi]]['label']} / "
                             f"{names[transform[qi]]}",
                     "reference": results[rj]["label"], "distance": dd,
                     "variant": int(v)}
                    for qi, rj, dd, v in sorted(false_pairs, key=lambda p: p[2])[:10]],
            },
        }
    return out


# -- output -----------------------------------------------------------------------------------
def _rate(k: int, n: int) -> str:
    return "0" if k == 0 else f"{k / n:.1e}"


def markdown(figures: dict[str, Any], picks: dict[str, tuple[int, ...]]) -> str:
    lines = ["| algorithm | threshold | false matches (dihedral on) | rate | recall (on) | "
             "false matches (off) | rate | recall (off) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, f in figures.items():
        m, n = f["unrelated_pairs"], f["transformed_pairs"]
        for row in f["thresholds"]:
            t = row["threshold"]
            if t not in picks[name]:
                continue
            on, off = row["dihedral"], row["plain"]
            mark = " (default)" if t == f["default_threshold"] else ""
            lines.append(
                f"| {f['label']} | {t}{mark} | {on['false_matches']:,} / {m:,} | "
                f"{_rate(on['false_matches'], m)} | {100 * on['found'] / n:.1f}% | "
                f"{off['false_matches']:,} / {m:,} | {_rate(off['false_matches'], m)} | "
                f"{100 * off['found'] / n:.1f}% |")
    lines += ["", "| transform | family | " + " | ".join(
        f"{f['label']} {f['default_threshold']} on / off" for f in figures.values()) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in figures) + " |"]
    first = next(iter(figures.values()))
    for tname, info in first["at_default"]["recall_by_transform"].items():
        cells = []
        for f in figures.values():
            x = f["at_default"]["recall_by_transform"][tname]
            cells.append(f"{100 * x['dihedral'] / x['copies']:.0f}% / "
                         f"{100 * x['plain'] / x['copies']:.0f}%")
        lines.append(f"| {tname} | {info['family']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for dist in ("Pillow", "ImageHash", "pdqhash", "numpy", "scipy"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "unknown"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", type=int, default=1000,
                    help="generated pictures (default 1000)")
    ap.add_argument("--public", type=int, default=len(PUBLIC_PICTURES),
                    help="use the first N entries of PUBLIC_PICTURES (default all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--store", action="store_true",
                    help=f"write the figures to {STORED.relative_to(ROOT)}")
    ap.add_argument("--results", type=Path, help="write the figures as JSON to this file")
    args = ap.parse_args()
    t0 = time.perf_counter()
    public, dropped = distinct_public(PUBLIC_PICTURES[:args.public])
    for d in dropped:
        print(f"public picture left out: {d}")
    tasks = [Task(i, args.seed, "generated") for i in range(args.generated)]
    tasks += [Task(args.generated + i, args.seed, p) for i, p in enumerate(public)]
    print(f"{len(public)} public + {args.generated} generated pictures, "
          f"{len(TRANSFORMS)} transforms each, {args.jobs} processes", flush=True)
    results: list[dict[str, Any]] = []
    with mp.Pool(args.jobs) as pool:
        for r in pool.imap(process, tasks, chunksize=4):
            results.append(r)
            if len(results) % 100 == 0:
                print(f"  {len(results):,} / {len(tasks):,} pictures hashed "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    hashed = time.perf_counter() - t0
    figures = measure(results)
    took = time.perf_counter() - t0
    kinds: dict[str, int] = {}
    for r in results:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    command = "python benchmarks/bench_error_rates.py " + shlex.join(sys.argv[1:])
    record = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "command": command.strip(),
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "HEAD"),
        "tree_modified": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "versions": _versions(),
        "seconds": round(took, 1),
        "corpus": {
            "description": (
                f"{len(results):,} distinct benign pictures ({len(public)} public test "
                f"pictures from ../shared/testdata/media, {args.generated:,} generated with "
                f"seed {args.seed}: scenes, shapes, textures, gradients, mixtures), each "
                f"in {len(TRANSFORMS)} transformed copies (JPEG); copies decoded as the "
                "scanner does (JPEG draft to >= 360 px), references hashed at full size"),
            "pictures": len(results), "public": len(public), "generated": args.generated,
            "seed": args.seed, "by_kind": dict(sorted(kinds.items())),
            "public_left_out": dropped,
            "transforms": {k: v[0] for k, v in TRANSFORMS.items()},
            "copies": sum(len(r["copies"]) for r in results),
            "draft_size": SCANNER.draft_size,
            "pdq_dihedral_variant0_mismatches": sum(r["pdq_dihedral_mismatch"]
                                                    for r in results),
        },
        "algorithms": figures,
    }
    picks = {n: tuple(sorted({*range(0, 2 * f["default_threshold"] + 1,
                                     max(1, f["default_threshold"] // 4)),
                              f["default_threshold"]}))
             for n, f in figures.items()}
    print(f"hashed in {hashed:.0f} s, pairs measured in {took - hashed:.0f} s")
    print(markdown(figures, picks))
    for f in figures.values():
        print(f"{f['label']} at {f['default_threshold']} (dihedral on), false matches by "
              f"kind: {f['at_default']['false_matches_by_kind']}")
    text = json.dumps(record, indent=1, sort_keys=False) + "\n"
    if args.store:
        STORED.write_text(text)
        print(f"stored in {STORED}")
    if args.results:
        args.results.write_text(text)
        print(f"written to {args.results}")


if __name__ == "__main__":
    main()
