#!/usr/bin/env python3
"""Measured error rates of the near-match hashes (issue 14, item 5; not run in CI).

    .venv/bin/python benchmarks/bench_error_rates.py [--generated 1000] [--jobs 2] [--store]
        [--transforms NAME ...]

Builds a labelled, benign corpus of distinct pictures: the public test pictures listed in
PUBLIC_PICTURES (read by path from ../shared/testdata, never copied; a pixel-correlation
check drops any that duplicate another) plus ``--generated`` seeded synthetic pictures of
five kinds (scenes, shapes, gradients, textures, mixtures). Every picture is transformed in
the TRANSFORMS ways (JPEG re-encodes, resizes, crops, rotations by 90/180/270 degrees and by
small angles, flips, letterbox and pillarbox bars, colour shifts, logo overlays), each
transformed copy JPEG-encoded in memory. ``--transforms`` measures a subset (quick checks
only: ``--store`` refuses it).

What is modelled: one default ``triage scan`` of every copy against a hash-set store that
holds the reference values of every picture, followed by its matching step.

* Reference ("known") values: the registry's PDQ, pHash and dHash of the full-size picture
  as it is (no variants), as a hash-set publisher computes them (generated: the picture
  itself; public: the file decoded at full size with :func:`triage.worker.decode_image`,
  ``draft_size=0``). Each reference is one set entry carrying all three values.
* A copy's values are exactly what the scan records for its bytes: decoded by
  :func:`triage.worker.decode_image` with default :class:`~triage.worker.WorkerOptions`
  (JPEG draft decode to at least 360 px) and hashed by the worker's own
  ``triage.worker._picture_hashes``, i.e. :func:`hashsets.algorithms.variants.
  picture_variants`: the picture as stored, its 7 other rotations/flips (each the hash of
  the transformed picture) and, when it has uniform dark borders, its unletterboxed form.
  Variants ON ("dihedral" in the JSON): the distance of a copy to a reference is the
  minimum over all its recorded values; OFF ("plain"): what ``triage scan --no-variants``
  records, the picture as decoded only (the same worker function with ``variants=False``).
* Quality gate (PDQ ``min_quality``), as ``triage match`` applies it: each value by its own
  quality; a value below the gate is never matched nor a candidate. A copy none of whose
  main-pass values passes the gate is never matched (a miss for recall) and its pairs are
  not counted as compared.
* Confirmation (:mod:`triage.confirm`): a copy whose main pass was a JPEG draft decode
  (its preprocessing says "JPEG draft decode") is a near candidate at threshold t when one
  of its draft values lies within t + the algorithm's ``draft_margin`` of any reference in
  the store (its own included); it is then decoded again at full size (``draft_size=0``,
  the same variants setting) and only the full-decode values are matched. So at threshold t
  a draft-decoded copy matches a reference when both its full-decode distance and (its
  closest draft distance to any reference - margin) are at most t; a copy decoded at full
  size in the main pass (not a JPEG, or too small for draft mode) is matched on its values
  directly. Every confirmation succeeds here (none fails or times out), so no hit stays an
  "unconfirmed candidate".
* Grades (:func:`triage.matching._graded`), at the default thresholds: a near hit is
  "confirmed" when another algorithm hits the same set entry from the same file, "review"
  otherwise; the counts are stored per algorithm, with the pairs that one or several
  algorithms match.

Measured per algorithm and threshold (0 to twice the default), variants ON and OFF:

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
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_corpus import _base_picture, _smooth  # noqa: E402  (the benchmark corpus's scenes)

from hashsets.algorithms import get  # noqa: E402
from hashsets.algorithms.base import compute_all  # noqa: E402
from hashsets.algorithms.error_rates import FORMAT, FORMAT_VERSION, STORED  # noqa: E402
from hashsets.algorithms.variants import DIHEDRAL as DIHEDRAL_NAMES  # noqa: E402
from hashsets.algorithms.variants import UNLETTERBOXED  # noqa: E402
from triage import membudget  # noqa: E402
from triage.case import DRAFT_STEP  # noqa: E402
from triage.worker import WorkerOptions, _Draft, _picture_hashes, decode_image  # noqa: E402

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
ALGORITHMS = ("pdq", "phash", "dhash")
SCANNER = WorkerOptions()  # the worker's defaults: draft decode to >= 360 px, variants on
FULL_DECODE = WorkerOptions(draft_size=0)  # what a confirmation task decodes with
#: The scan's dihedral variants then its unletterboxed form: a copy has at most this many
#: values per algorithm (hashsets.algorithms.variants.picture_variants).
MAX_VARIANTS = len(DIHEDRAL_NAMES) + 1


def _words(hexvalue: str) -> list[int]:
    return [int(hexvalue[i:i + 16], 16) for i in range(0, len(hexvalue), 16)]


#: One algorithm's recorded values of one decoded picture: (variant, words, quality), the
#: picture as stored ("original") first.
Values = list[tuple[str, list[int], int | None]]


def scan_values(data: bytes, options: WorkerOptions) -> tuple[bool, dict[str, Values]]:
    """What a scan records for a picture file's bytes under ``options``: decoded with the
    worker's :func:`~triage.worker.decode_image`, hashed by the worker's own
    ``_picture_hashes`` (with ``options.variants``: picture_variants, i.e. the 8 rotations/
    flips and, when the picture has dark borders, its unletterboxed form). Returns whether
    the decode was a JPEG draft decode (the preprocessing the scan marks, which makes the
    file's values "draft" for matching) and per algorithm its values."""
    image, facts, _notes = decode_image(data, options)
    result = _Draft(file_id=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            facts = _picture_hashes(result, image, facts, options)
    finally:
        image.close()
        membudget.release()
    out: dict[str, Values] = {name: [] for name in ALGORITHMS}
    for h in result.hashes:
        if h.algorithm in out:
            out[h.algorithm].append((h.variant or "original", _words(h.value), h.quality))
    for name, vals in out.items():
        if not vals or vals[0][0] != "original":
            raise AssertionError(f"{name}: the picture as stored is not the first value")
    return DRAFT_STEP in (facts.preprocessing or ""), out


def reference_values(image: Image.Image) -> tuple[dict[str, list[int]], int]:
    """A hash-set publisher's values of a full-size picture (the registry's algorithms, the
    picture as it is, no variants) and its PDQ quality."""
    values: dict[str, list[int]] = {}
    quality = 0
    for alg, value, q in compute_all(image, [get(n) for n in ALGORITHMS]):  # type: ignore[misc]
        values[alg.name] = _words(value)
        if alg.name == "pdq":
            quality = int(q or 0)
    return values, quality


def _decode(data: bytes, options: WorkerOptions) -> Image.Image:
    image, _facts, _notes = decode_image(data, options)
    membudget.release()
    return image


@dataclass(frozen=True)
class Task:
    index: int
    seed: int
    source: str  # "generated" or a public path under TESTDATA
    transforms: tuple[str, ...] = tuple(TRANSFORMS)


def copy_record(name: str, data: bytes) -> dict[str, Any]:
    """One transformed copy as the scan records it: the main pass (default options, with
    variants: ``on``; with ``--no-variants``: ``off``) and, when the main pass was a JPEG
    draft decode, the confirmation pass's full-size decode of the same bytes (``full_on``,
    ``full_off``), which replaces the draft values when the copy is a near candidate."""
    drafted, on = scan_values(data, SCANNER)
    drafted_off, off = scan_values(data, replace(SCANNER, variants=False))
    assert drafted == drafted_off
    rec: dict[str, Any] = {"transform": name, "drafted": drafted, "on": on, "off": off,
                           "letterbox": any(v[0] == UNLETTERBOXED for v in on["pdq"])}
    if drafted:
        full_d, rec["full_on"] = scan_values(data, FULL_DECODE)
        _, rec["full_off"] = scan_values(data, replace(FULL_DECODE, variants=False))
        assert not full_d
    # --no-variants records the same value of the picture as stored as the variants' pass
    rec["off_mismatch"] = sum(on[n][0][1] != off[n][0][1] for n in ALGORITHMS)
    return rec


def process(task: Task) -> dict[str, Any]:
    """Make (or read) one picture, hash it, make its transformed copies and record what a
    scan records for each. Returns only hashes, qualities and labels (never pixels)."""
    if task.source == "generated":
        kind, original = generated_picture(task.seed, task.index)
        reference = original
        label = f"generated {kind} #{task.index}"
    else:
        data = (TESTDATA / task.source).read_bytes()
        reference = _decode(data, FULL_DECODE)
        original = reference if reference.mode == "RGB" else reference.convert("RGB")
        kind, label = "public", task.source
    ref, ref_quality = reference_values(reference)
    rng = np.random.default_rng([task.seed, task.index, 0x7F])
    copies: list[dict[str, Any]] = []
    for name, (_family, make) in TRANSFORMS.items():
        data = make(original, rng)  # every transform, so the rng draws stay the same
        if name in task.transforms:
            copies.append(copy_record(name, data))
    return {"index": task.index, "kind": kind, "label": label, "size": original.size,
            "reference": ref, "reference_pdq_quality": ref_quality, "copies": copies}


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


MODES = {"dihedral": ("on", "full_on", MAX_VARIANTS), "plain": ("off", "full_off", 1)}


def _stack(copies: list[dict[str, Any]], key: str, name: str, slots: int, words: int,
           gate: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(values, usable): the copies' recorded values of ``name`` under ``key`` as a
    (copies, slots, words) uint64 array, and which slots hold a value past the quality
    gate (as :func:`triage.matching._match` and :func:`triage.confirm.candidates` skip a
    value below it, each variant by its own quality)."""
    vals = np.zeros((len(copies), slots, words), np.uint64)
    usable = np.zeros((len(copies), slots), bool)
    for i, c in enumerate(copies):
        if key not in c:
            continue
        for j, (_variant, w, quality) in enumerate(c[key][name][:slots]):
            vals[i, j] = w
            usable[i, j] = gate is None or (quality is not None and quality >= gate)
    return vals, usable


def measure(results: list[dict[str, Any]], chunk: int = 128
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Histograms of the distances that decide a match, for unrelated and related pairs,
    variants on ("dihedral") and off ("plain"), and the figures at every threshold 0..2x
    default (see the module doc for the model); and, at the default thresholds, how many
    pairs one or several algorithms match."""
    n = len(results)
    names = list(TRANSFORMS)
    copies = [c for r in results for c in r["copies"]]
    owner = np.array([i for i, r in enumerate(results) for _ in r["copies"]], np.int64)
    transform = np.array([names.index(c["transform"]) for c in copies], np.int64)
    drafted = np.array([c["drafted"] for c in copies], bool)
    kinds = [r["kind"] for r in results]
    out: dict[str, Any] = {}
    hit_pairs: dict[str, dict[str, set[int]]] = {mode: {} for mode in MODES}
    hit_own: dict[str, dict[str, np.ndarray]] = {mode: {} for mode in MODES}
    # Confirmation is per file: a draft-decoded copy is decoded again at full size when ANY
    # algorithm's draft value (past its gate) lies within that algorithm's threshold +
    # draft_margin of a known value; then every algorithm's full-decode values replace the
    # draft ones. level[mode][name][q]: the smallest threshold at which ``name`` makes
    # copy q a candidate (its closest usable draft distance to any reference - margin;
    # a value above every threshold when q was not draft-decoded or has no usable value).
    level: dict[str, dict[str, np.ndarray]] = {mode: {} for mode in MODES}
    dr_all = np.flatnonzero(drafted)
    for name in ALGORITHMS:
        alg = get(name)
        refs = np.array([r["reference"][name] for r in results], np.uint64)
        for mode, (main_key, _full_key, slots) in MODES.items():
            lv = np.full(len(copies), 10**6, np.int64)
            qs, usable = _stack([copies[i] for i in dr_all], main_key, name, slots,
                                refs.shape[1], alg.min_quality)
            for start in range(0, len(dr_all), chunk):
                stop = min(len(dr_all), start + chunk)
                d = _distances(qs[start:stop], refs)
                d[~usable[start:stop]] = alg.bits + 1
                closest = d.min(axis=(1, 2)).astype(np.int64)
                lv[dr_all[start:stop]] = np.where(closest <= alg.bits,
                                                  closest - alg.draft_margin, 10**6)
            level[mode][name] = lv
    for name in ALGORITHMS:
        alg = get(name)
        default = int(alg.default_threshold or 0)
        gate = alg.min_quality
        refs = np.array([r["reference"][name] for r in results], np.uint64)
        top = alg.bits + 1
        figures: dict[str, dict[str, Any]] = {}
        for mode, (main_key, full_key, slots) in MODES.items():
            qs, usable = _stack(copies, main_key, name, slots, refs.shape[1], gate)
            fq, fusable = _stack(copies, full_key, name, slots, refs.shape[1], gate)
            # Another algorithm, at its default threshold, makes the copy a candidate.
            by_others = np.zeros(len(copies), bool)
            for other in ALGORITHMS:
                if other != name:
                    by_others |= level[mode][other] <= int(get(other).default_threshold or 0)
            mine_level = level[mode][name]
            # Compared: a value that can be matched, from the main pass or, for a
            # draft-decoded copy, from the confirmation's full decode.
            compared: np.ndarray = np.asarray(
                usable.any(axis=1) | (drafted & fusable.any(axis=1)), bool)
            # Distance bins: 0..bits, ``top`` = never matched (no value of the copy that
            # counts passes the quality gate), ``top + 1`` = not a compared unrelated pair
            # (the copy's own reference, or a copy with no value past the gate at all).
            unrelated = np.zeros(top + 2, np.int64)
            own = np.full(len(copies), top, np.int64)
            confirmed_at_default = int((drafted & ((mine_level <= default) | by_others)).sum())
            false_pairs: list[tuple[int, int, int, str]] = []  # (copy, ref, dist, variant)
            for start in range(0, len(copies), chunk):
                stop = min(len(copies), start + chunk)
                rows = np.arange(stop - start)
                mine = owner[start:stop]
                d = _distances(qs[start:stop], refs)
                d[~usable[start:stop]] = top
                best = d.argmin(axis=1)
                dist = d.min(axis=1).astype(np.int64)  # the main pass's distances
                # A draft-decoded copy is matched at threshold t on its full-decode values
                # once it is a candidate: always when another algorithm makes it one, else
                # when t >= its level for this algorithm; below that level its draft
                # distances are all over t + margin, so it matches nothing. Hence at t it
                # matches reference r when max(full distance, level) <= t.
                dr = np.flatnonzero(drafted[start:stop])
                if len(dr):
                    fd = _distances(fq[start + dr], refs)
                    fd[~fusable[start + dr]] = top
                    best[dr] = fd.argmin(axis=1)
                    floor = np.where(by_others[start + dr], 0, mine_level[start + dr])
                    dist[dr] = np.minimum(np.maximum(fd.min(axis=1), floor[:, None]), top)
                in_full = set(dr.tolist())
                dist[~compared[start:stop]] = top + 1
                own[start:stop] = dist[rows, mine]
                dist[rows, mine] = top + 1  # the related pair is not an unrelated one
                unrelated += np.bincount(dist.ravel(), minlength=top + 2)
                for qi, rj in zip(*np.nonzero(dist <= default), strict=True):
                    q = start + int(qi)
                    key = full_key if int(qi) in in_full else main_key
                    variant = copies[q][key][name][int(best[qi, rj])][0]
                    false_pairs.append((q, int(rj), int(dist[qi, rj]), variant))
            pairs = int(compared.sum()) * (n - 1)
            assert int(unrelated[:top + 1].sum()) == pairs
            hit_pairs[mode][name] = {q * n + r for q, r, _d, _v in false_pairs}
            hit_own[mode][name] = own <= default
            by_kind: dict[str, int] = {}
            for qi, rj, _d, _v in false_pairs:
                k = " / ".join(sorted((kinds[owner[qi]], kinds[rj])))
                by_kind[k] = by_kind.get(k, 0) + 1
            figures[mode] = {
                "unrelated": unrelated, "own": own, "compared": compared,
                "pairs": pairs, "by_kind": by_kind, "false_pairs": false_pairs,
                "confirmed_at_default": confirmed_at_default}
        on, off = figures["dihedral"], figures["plain"]
        rows_out = []
        for t in range(0, 2 * default + 1):
            row: dict[str, Any] = {"threshold": t}
            for mode, f in figures.items():
                row[mode] = {"false_matches": int(f["unrelated"][:t + 1].sum()),
                             "found": int((f["own"] <= t).sum())}
            rows_out.append(row)
        by_transform = {}
        for ti, tname in enumerate(names):
            sel = transform == ti
            if not sel.any():
                continue
            by_transform[tname] = {
                "family": TRANSFORMS[tname][0], "copies": int(sel.sum()),
                **{mode: int(((f["own"] <= default) & sel).sum())
                   for mode, f in figures.items()}}
        out[name] = {
            "label": alg.label, "bits": alg.bits, "default_threshold": default,
            "min_quality": gate, "draft_margin": int(alg.draft_margin),
            "unrelated_pairs": on["pairs"], "transformed_pairs": len(copies),
            "copies_below_quality_gate": int((~on["compared"]).sum()),
            "plain_unrelated_pairs": off["pairs"],
            "plain_copies_below_quality_gate": int((~off["compared"]).sum()),
            "references_below_quality_gate": (
                None if gate is None else
                sum(r["reference_pdq_quality"] < gate for r in results)),
            "thresholds": rows_out,
            "at_default": {
                "recall_by_transform": by_transform,
                "confirmation_candidates": {mode: f["confirmed_at_default"]
                                            for mode, f in figures.items()},
                "false_matches_by_kind": dict(sorted(on["by_kind"].items())),
                "plain_false_matches_by_kind": dict(sorted(off["by_kind"].items())),
                "false_match_examples": [
                    {"copy": f"{results[owner[qi]]['label']} / "
                             f"{copies[qi]['transform']}",
                     "reference": results[rj]["label"], "distance": dd, "variant": v}
                    for qi, rj, dd, v in sorted(on["false_pairs"], key=lambda p: p[2])[:10]],
            },
        }
    # Grades (triage.matching._graded): each reference is one set entry carrying all three
    # values; a near hit is "confirmed" when another algorithm hits the same entry from the
    # same file, "review" otherwise (no hit here stays draft: every candidate is confirmed).
    for name in ALGORITHMS:
        graded: dict[str, dict[str, int]] = {}
        for mode in MODES:
            others_pairs = set().union(*(p for k, p in hit_pairs[mode].items() if k != name))
            mine_pairs = hit_pairs[mode][name]
            others_own = np.zeros(len(copies), bool)
            for k, v in hit_own[mode].items():
                if k != name:
                    others_own |= v
            mine_own = hit_own[mode][name]
            graded[mode] = {
                "false_matches_confirmed": len(mine_pairs & others_pairs),
                "false_matches_review": len(mine_pairs - others_pairs),
                "found_confirmed": int((mine_own & others_own).sum()),
                "found_review": int((mine_own & ~others_own).sum())}
        out[name]["at_default"]["grades"] = graded
    combined: dict[str, Any] = {}
    for mode in MODES:
        sets = list(hit_pairs[mode].values())
        every: set[int] = set().union(*sets)
        own_hits = np.sum([v.astype(np.int64) for v in hit_own[mode].values()], axis=0)
        combined[mode] = {
            "false_pairs_any_algorithm": len(every),
            "false_pairs_two_or_more_algorithms": sum(
                1 for p in every if sum(p in x for x in sets) >= 2),
            "copies_found_any_algorithm": int((own_hits >= 1).sum()),
            "copies_found_two_or_more_algorithms": int((own_hits >= 2).sum())}
    return out, combined


# -- output -----------------------------------------------------------------------------------
def _rate(k: int, n: int) -> str:
    return "0" if k == 0 else f"{k / n:.1e}"


def markdown(figures: dict[str, Any], picks: dict[str, tuple[int, ...]]) -> str:
    lines = ["| algorithm | threshold | false matches (variants on) | rate | recall (on) | "
             "false matches (off) | rate | recall (off) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, f in figures.items():
        m, n = f["unrelated_pairs"], f["transformed_pairs"]
        m_off = f.get("plain_unrelated_pairs", m)
        for row in f["thresholds"]:
            t = row["threshold"]
            if t not in picks[name]:
                continue
            on, off = row["dihedral"], row["plain"]
            mark = " (default)" if t == f["default_threshold"] else ""
            lines.append(
                f"| {f['label']} | {t}{mark} | {on['false_matches']:,} / {m:,} | "
                f"{_rate(on['false_matches'], m)} | {100 * on['found'] / n:.1f}% | "
                f"{off['false_matches']:,} / {m_off:,} | {_rate(off['false_matches'], m_off)} | "
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
    ap.add_argument("--transforms", nargs="+", metavar="NAME", choices=list(TRANSFORMS),
                    help="measure only these transforms (quick checks; the stored figures "
                         "come from a run of all of them). Names: "
                         + "; ".join(TRANSFORMS).replace("%", "%%"))
    ap.add_argument("--hashes", type=Path, metavar="FILE",
                    help="keep the copies' hash values (never pixels) in FILE after hashing, "
                         "or read them from it when it exists (same command and commit): "
                         "the pair measurement can then be re-run without hashing again")
    args = ap.parse_args()
    chosen = tuple(args.transforms or TRANSFORMS)
    if args.store and len(chosen) != len(TRANSFORMS):
        ap.error("--store records a run of every transform: leave out --transforms")
    t0 = time.perf_counter()
    public, dropped = distinct_public(PUBLIC_PICTURES[:args.public])
    for d in dropped:
        print(f"public picture left out: {d}")
    tasks = [Task(i, args.seed, "generated", chosen) for i in range(args.generated)]
    tasks += [Task(args.generated + i, args.seed, p, chosen) for i, p in enumerate(public)]
    print(f"{len(public)} public + {args.generated} generated pictures, "
          f"{len(chosen)} transforms each, {args.jobs} processes", flush=True)
    results: list[dict[str, Any]] = []
    hashes_from: dict[str, str] | None = None
    if args.hashes and args.hashes.exists():
        # Only hash values, qualities and labels (never pixels); made by this same command.
        saved = json.loads(args.hashes.read_text())
        then = ap.parse_args(saved["argv"])
        inputs = ("generated", "public", "seed", "transforms")
        if any(getattr(then, k) != getattr(args, k) for k in inputs):
            ap.error(f"{args.hashes} holds the hash values of another corpus")
        results = saved["results"]
        # Said in the record: the values were hashed by the code of that commit (the
        # hashing functions must be the same as this commit's; git diff shows it).
        hashes_from = {"file": str(args.hashes), "commit": saved["commit"],
                       "command": "python benchmarks/bench_error_rates.py "
                                  + shlex.join(saved["argv"])}
        print(f"hash values read from {args.hashes} (hashed at commit {saved['commit']})")
    else:
        with mp.Pool(args.jobs) as pool:
            for r in pool.imap(process, tasks, chunksize=4):
                results.append(r)
                if len(results) % 100 == 0:
                    print(f"  {len(results):,} / {len(tasks):,} pictures hashed "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if args.hashes:
            args.hashes.write_text(json.dumps({"argv": sys.argv[1:],
                                               "commit": _git("rev-parse", "HEAD"),
                                               "results": results}))
    hashed = time.perf_counter() - t0
    figures, combined = measure(results)
    copies = [c for r in results for c in r["copies"]]
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
        "hash_values_from": hashes_from,
        "corpus": {
            "description": (
                f"{len(results):,} distinct benign pictures ({len(public)} public test "
                f"pictures from ../shared/testdata/media, {args.generated:,} generated with "
                f"seed {args.seed}: scenes, shapes, textures, gradients, mixtures), each "
                f"in {len(chosen)} transformed copies (JPEG); each copy's values are those "
                "a default scan records (JPEG draft decode to >= 360 px, the rotations/flips "
                "and unletterboxed form as variants), draft-decoded near candidates "
                "re-hashed from a full-size decode as the scan's confirmation pass does; "
                "references hashed at full size"),
            "pictures": len(results), "public": len(public), "generated": args.generated,
            "seed": args.seed, "by_kind": dict(sorted(kinds.items())),
            "public_left_out": dropped,
            "transforms": {k: v[0] for k, v in TRANSFORMS.items() if k in chosen},
            "copies": len(copies),
            "draft_size": SCANNER.draft_size,
            "copies_draft_decoded": sum(c["drafted"] for c in copies),
            "copies_unletterboxed": sum(c["letterbox"] for c in copies),
            "copies_unletterboxed_by_transform": {
                k: n for k in chosen
                if (n := sum(c["letterbox"] for c in copies if c["transform"] == k))},
            # The value of the picture as stored, --no-variants against variants on: the
            # same function of the same decode, so always 0.
            "no_variants_value_mismatches": sum(c["off_mismatch"] for c in copies),
        },
        "algorithms": figures,
        "at_default_thresholds": combined,
    }
    picks = {n: tuple(sorted({*range(0, 2 * f["default_threshold"] + 1,
                                     max(1, f["default_threshold"] // 4)),
                              f["default_threshold"]}))
             for n, f in figures.items()}
    print(f"hashed in {hashed:.0f} s, pairs measured in {took - hashed:.0f} s")
    print(markdown(figures, picks))
    for f in figures.values():
        print(f"{f['label']} at {f['default_threshold']} (variants on), false matches by "
              f"kind: {f['at_default']['false_matches_by_kind']}; grades "
              f"{f['at_default']['grades']}; confirmation candidates "
              f"{f['at_default']['confirmation_candidates']}")
    print(f"at the default thresholds: {combined}")
    corpus: dict[str, Any] = record["corpus"]  # type: ignore[assignment]
    print(f"copies draft-decoded: {corpus['copies_draft_decoded']:,}; "
          f"unletterboxed: {corpus['copies_unletterboxed_by_transform']}; "
          f"--no-variants value mismatches: {corpus['no_variants_value_mismatches']}")
    text = json.dumps(record, indent=1, sort_keys=False) + "\n"
    if args.store:
        STORED.write_text(text)
        print(f"stored in {STORED}")
    if args.results:
        args.results.write_text(text)
        print(f"written to {args.results}")


if __name__ == "__main__":
    main()
