"""Rotated, mirrored and unletterboxed forms of a picture, hashed (issue 14 items 1-2).

Offenders rotate and mirror pictures and put them in black frames; a perceptual hash of the
picture as stored then lands far from the original's (106-144 bits of PDQ). So each picture
is hashed in more forms than one, and a hit says which form matched.

Dihedral variants: the eight rotations and mirror images of a picture. A variant's name
says what was done to the FILE'S decoded picture before hashing (Pillow's
``Image.Transpose`` operation in brackets); a file that is the known picture rotated 90
degrees clockwise therefore matches through ``rot90``, which undoes that rotation:

========== ===================================================== ==================
name       transform of the file's picture                       Meta's name
========== ===================================================== ==================
original   none                                                  ORIGINAL
rot90      rotated 90 degrees counter-clockwise (ROTATE_90)      ROTATE90
rot180     rotated 180 degrees (ROTATE_180)                      ROTATE180
rot270     rotated 90 degrees clockwise (ROTATE_270)             ROTATE270
flipx      mirrored left-right, x reversed (FLIP_LEFT_RIGHT)     FLIPY
flipy      mirrored top-bottom, y reversed (FLIP_TOP_BOTTOM)     FLIPX
transpose  mirrored about the top-left/bottom-right diagonal     FLIPPLUS1
           (TRANSPOSE)
transverse mirrored about the top-right/bottom-left diagonal     FLIPMINUS1
           (TRANSVERSE)
========== ===================================================== ==================

Meta's names (python-threatexchange's ``RotationType`` and the reference values in
``testdata/answers/pdq_reference.json``) call a top-bottom flip "FLIPX" (a flip about the x
axis); ours name the coordinate that is reversed. The table is the mapping; the tests check
it against Meta's published values.

How each algorithm computes its variants, from the one decoded picture:

* PDQ: each transformed picture is hashed in full (eight PDQ computations, 1-3 ms each on a
  draft-decoded photo; most of the variants' cost), from one luma computation permuted per
  variant (:mod:`~hashsets.algorithms.pdqluma`: the same values). Not from the DCT
  coefficients, as Meta's C++ ``pdqDihedralHash256esFromFloatLuma`` (and
  ``pdqhash.compute_dihedral``) does: PDQ's Jarosz box filter and decimation are not
  symmetric, so those values differ from the hash of the transformed picture by 0-8 bits on
  large photos but 10-42 bits on pictures of 128-512 pixels and up to 148 bits on noise-like
  ones (Meta's own LA.png); even deriving only the transposed variants that way differs by
  6-20 bits on small pictures (pdqhash's ``compute_float`` path also disagrees with
  ``compute`` on tiny ones). Measured with ``benchmarks/bench_variants.py``.
* pHash, dHash (imagehash): the grey picture and its transpose are each reduced once to
  the hash's grid (see :func:`_grid_variants`); the other variants are mirror images of
  those two grids, which equal the reduction of the mirrored picture.

Unletterboxing (:func:`unletterbox`): uniform dark rows and columns at the edges (every
pixel's grey value below :data:`LETTERBOX_BLACK`) are cut off before hashing, as
python-threatexchange's ``PhotoContent.unletterbox`` does; the cut is recorded, and the
picture as stored is hashed too. The cropped picture is hashed as it is (variant
``unletterboxed``), not rotated: that would double the cost for a rarer case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

    from .base import PictureAlgorithm

#: The eight dihedral variants in a fixed order (see the module doc); ``original`` first.
DIHEDRAL = ("original", "rot90", "rot180", "rot270", "flipx", "flipy", "transpose",
            "transverse")
#: What each variant means, for reports and ``--help``.
MEANING = {
    "original": "the picture as stored",
    "rot90": "the file's picture rotated 90 degrees counter-clockwise",
    "rot180": "the file's picture rotated 180 degrees",
    "rot270": "the file's picture rotated 90 degrees clockwise",
    "flipx": "the file's picture mirrored left-right",
    "flipy": "the file's picture mirrored top-bottom",
    "transpose": "the file's picture mirrored about its top-left/bottom-right diagonal",
    "transverse": "the file's picture mirrored about its top-right/bottom-left diagonal",
    "unletterboxed": "the file's picture with its uniform dark borders cut off",
}
#: Meta's names of the same transforms (python-threatexchange ``RotationType``).
META_NAME = {"original": "ORIGINAL", "rot90": "ROTATE90", "rot180": "ROTATE180",
             "rot270": "ROTATE270", "flipx": "FLIPY", "flipy": "FLIPX",
             "transpose": "FLIPPLUS1", "transverse": "FLIPMINUS1"}
#: Variants that swap width and height.
SWAPS_AXES = frozenset({"rot90", "rot270", "transpose", "transverse"})
UNLETTERBOXED = "unletterboxed"
#: Grey level (Pillow ``convert("L")``) below which a border row or column counts as black.
#: python-threatexchange's ``unletterbox`` takes a ``black_threshold`` (default 40 in
#: ``PhotoContent.unletterbox``, 10 in its ``detect_*_border`` helpers); its tests give the
#: reference hash of ``letterboxed_sample-b.jpg`` at thresholds 15 and 25, and 25 is the one
#: that gives back the original's hash (testdata/answers/pdq_reference.json). JPEG noise
#: lifts black bars to a few grey levels; 25 is well below any dark content worth keeping.
LETTERBOX_BLACK = 25
#: A border is cut only when it takes at least this fraction of the picture's width or
#: height (a thin dark edge is content, not a letterbox; 2% cut single rows of icons and
#: dark illustrations in the shared test pictures) ...
LETTERBOX_MIN_FRACTION = 0.04
#: ... in a picture at least this large on both sides (smaller ones are icons) ...
LETTERBOX_MIN_SIDE = 64
#: ... and never when less than this fraction would remain (an almost black picture).
LETTERBOX_MIN_KEEP = 0.2


def variant_name(base: str | None, dihedral: str) -> str:
    """The stored name of dihedral variant ``dihedral`` of the form ``base`` (None: the
    picture as stored; ``unletterboxed``: its cropped form)."""
    if base is None:
        return dihedral
    return base if dihedral == "original" else f"{base}+{dihedral}"


def describe(variant: str) -> str:
    """Plain words for a stored variant name (``unletterboxed+rot90`` -> "the file's picture
    with its uniform dark borders cut off, then rotated 90 degrees counter-clockwise")."""
    base, _, rest = variant.partition("+")
    if not rest:
        return MEANING.get(base, variant)
    tail = MEANING.get(rest, rest).removeprefix("the file's picture ")
    return f"{MEANING.get(base, base)}, then {tail}"


def _transpose_ops() -> dict[str, Image.Transpose]:
    from PIL import Image

    t = Image.Transpose
    return {"rot90": t.ROTATE_90, "rot180": t.ROTATE_180, "rot270": t.ROTATE_270,
            "flipx": t.FLIP_LEFT_RIGHT, "flipy": t.FLIP_TOP_BOTTOM, "transpose": t.TRANSPOSE,
            "transverse": t.TRANSVERSE}


def transform(image: Image.Image, variant: str) -> Image.Image:
    """``image`` transformed as dihedral ``variant`` says (a new image; ``original``: a
    copy). The reference for what the fast paths compute."""
    if variant == "original":
        return image.copy()
    return image.transpose(_transpose_ops()[variant])


# -- PDQ ----------------------------------------------------------------------------------

def pdq_dihedral(image: Image.Image, names: Sequence[str] = DIHEDRAL
                 ) -> tuple[dict[str, str], dict[str, int]]:
    """PDQ values and qualities of the dihedral variants ``names`` (default: all eight)
    of ``image``: the picture is
    converted to RGB once (as :class:`~hashsets.algorithms.perceptual.PDQ` does) and each
    variant's value is exactly the PDQ of the rotated or mirrored picture (Meta's reference
    values for LA.png are met to the bit): by :mod:`~hashsets.algorithms.pdqluma` (the luma
    computed once and permuted, each variant hashed in full by Meta's C++), or, where that
    is not available, by hashing each transformed picture with ``pdqhash.compute``."""
    import numpy as np

    from . import get
    from .pdqluma import pdq_values

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    fast = pdq_values(np.asarray(rgb), tuple(names))
    if fast is None:  # the registry's PDQ (pdqhash.compute) of each transformed picture
        pdq = get("pdq")
        fast = {}
        for name in names:
            form = transform(rgb, name)
            try:
                value, quality = pdq.compute(form)  # type: ignore[attr-defined]
            finally:
                form.close()
            fast[name] = (value, int(quality))
    return ({name: fast[name][0] for name in names},
            {name: fast[name][1] for name in names})


# -- pHash / dHash ------------------------------------------------------------------------

def _grid_variants(image: Image.Image, size: tuple[int, int], hasher: object
                   ) -> dict[str, str]:
    """The eight variants of an imagehash hash computed on a ``size`` grid: the grey picture
    and its transpose are each reduced once with imagehash's own resize (LANCZOS); the
    other six variants are mirror images of those two grids. A mirror image commutes with
    Pillow's resampling (its filter weights are symmetric), so each value is that of
    hashing the transformed picture in full (checked in tests and
    ``benchmarks/bench_variants.py``); a transpose does not commute (Pillow resizes
    horizontally first, rounding in between), hence the second grid."""
    from PIL import Image

    t = Image.Transpose
    grey = image.convert("L")
    turned = grey.transpose(t.TRANSPOSE)
    try:
        plain = grey.resize(size, Image.Resampling.LANCZOS)
        swapped = turned.resize(size, Image.Resampling.LANCZOS)
    finally:
        turned.close()
        if grey is not image:
            grey.close()
    # Each variant as (grid, mirror applied to it): rot90 = TRANSPOSE then FLIP_TOP_BOTTOM,
    # rot270 = TRANSPOSE then FLIP_LEFT_RIGHT, transverse = TRANSPOSE then ROTATE_180.
    recipe: dict[str, tuple[Image.Image, Image.Transpose | None]] = {
        "original": (plain, None), "flipx": (plain, t.FLIP_LEFT_RIGHT),
        "flipy": (plain, t.FLIP_TOP_BOTTOM), "rot180": (plain, t.ROTATE_180),
        "transpose": (swapped, None), "rot90": (swapped, t.FLIP_TOP_BOTTOM),
        "rot270": (swapped, t.FLIP_LEFT_RIGHT), "transverse": (swapped, t.ROTATE_180)}
    out: dict[str, str] = {}
    for name in DIHEDRAL:
        grid, mirror = recipe[name]
        form = grid if mirror is None else grid.transpose(mirror)
        out[name] = str(hasher(form))  # type: ignore[operator]
    return out


def phash_dihedral(image: Image.Image) -> dict[str, str]:
    """imagehash pHash (hash_size 8, a 32x32 grid) of the eight dihedral variants."""
    import imagehash

    return _grid_variants(image, (32, 32), imagehash.phash)


def dhash_dihedral(image: Image.Image) -> dict[str, str]:
    """imagehash dHash (hash_size 8, a 9x8 grid) of the eight dihedral variants."""
    import imagehash

    return _grid_variants(image, (9, 8), imagehash.dhash)


# -- unletterboxing -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Letterbox:
    """Dark borders found on a picture: pixels cut from each side (of the decoded size)."""

    left: int
    top: int
    right: int
    bottom: int
    black: int = LETTERBOX_BLACK

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (self.left, self.top, width - self.right, height - self.bottom)

    def describe(self, width: int, height: int) -> str:
        return (f"unletterboxed: dark borders (grey < {self.black}) cut, left {self.left}, "
                f"top {self.top}, right {self.right}, bottom {self.bottom} of "
                f"{width}x{height} decoded pixels")


def find_letterbox(image: Image.Image, black: int = LETTERBOX_BLACK) -> Letterbox | None:
    """The uniform dark borders of ``image`` (rows and columns whose every grey value is
    below ``black``), or None when there are none worth cutting (see
    :data:`LETTERBOX_MIN_FRACTION` and :data:`LETTERBOX_MIN_KEEP`)."""
    import numpy as np

    if image.width < LETTERBOX_MIN_SIDE or image.height < LETTERBOX_MIN_SIDE:
        return None
    grey = np.asarray(image.convert("L"))
    height, width = grey.shape
    dark = grey < black
    dark_rows: npt.NDArray[np.bool_] = np.asarray(dark.all(axis=1))
    dark_cols: npt.NDArray[np.bool_] = np.asarray(dark.all(axis=0))

    def run(flags: npt.NDArray[np.bool_]) -> int:
        lit = np.flatnonzero(~flags)
        return int(lit[0]) if len(lit) else len(flags)

    top, bottom = run(dark_rows), run(dark_rows[::-1])
    left, right = run(dark_cols), run(dark_cols[::-1])
    min_rows, min_cols = height * LETTERBOX_MIN_FRACTION, width * LETTERBOX_MIN_FRACTION
    top, bottom = (v if v >= min_rows else 0 for v in (top, bottom))
    left, right = (v if v >= min_cols else 0 for v in (left, right))
    if not (top or bottom or left or right):
        return None
    if (height - top - bottom < height * LETTERBOX_MIN_KEEP
            or width - left - right < width * LETTERBOX_MIN_KEEP):
        return None
    return Letterbox(left, top, right, bottom, black)


def unletterbox(image: Image.Image, black: int = LETTERBOX_BLACK
                ) -> tuple[Image.Image, Letterbox] | None:
    """``image`` with its dark borders cut off and what was cut, or None (no borders)."""
    box = find_letterbox(image, black)
    if box is None:
        return None
    return image.crop(box.box(image.width, image.height)), box


# -- all together -------------------------------------------------------------------------

def dihedral_values(algorithm: PictureAlgorithm, image: Image.Image,
                    names: Sequence[str] = DIHEDRAL) -> dict[str, tuple[str, int | None]]:
    """``{variant: (hex, quality)}`` for the dihedral variants ``names`` (default: all
    eight) of ``image`` under ``algorithm``: PDQ, pHash and dHash by their fast paths
    above, any other picture algorithm by hashing each transformed picture."""
    if algorithm.name == "pdq":  # eight separate C++ runs: only those asked for
        values, qualities = pdq_dihedral(image, names)
        return {k: (v, qualities[k]) for k, v in values.items()}
    if algorithm.name == "phash":  # eight hashes of one small grid: cheap, all kept
        return {k: (v, None) for k, v in phash_dihedral(image).items() if k in names}
    if algorithm.name == "dhash":
        return {k: (v, None) for k, v in dhash_dihedral(image).items() if k in names}
    return {name: algorithm.compute(transform(image, name)) for name in names}


@dataclass(frozen=True, slots=True)
class VariantValue:
    """One algorithm's value of one form of the picture."""

    algorithm: str
    variant: str
    value: str
    quality: int | None
    #: What was done to the decoded picture, in words (stored with the value).
    preprocessing: str


#: Pictures larger than this (decoded pixels) have their rotated and mirrored forms hashed
#: from a copy reduced by a whole factor (Pillow ``reduce``, a box filter) to at most this
#: many pixels: eight PDQ computations of a 15 MP picture took 84 s on a loaded 2-core
#: machine (a per-file timeout). Every JPEG decoded in draft mode is below it; PDQ, pHash
#: and dHash reduce every picture to 64x64, 32x32 or 9x8 anyway, so the values move by a few
#: bits, like a draft decode's (benchmarks/bench_variants.py). The picture as stored, and
#: the unletterboxed form, are always hashed at the size decoded.
VARIANTS_FULL_PIXELS = 2_000_000


def picture_variants(image: Image.Image, algorithms: Sequence[PictureAlgorithm], *,
                     dihedral: bool = True, letterbox: bool = True
                     ) -> tuple[list[VariantValue], Letterbox | None]:
    """Every form of ``image`` hashed by every algorithm, ``original`` included: the
    eight dihedral variants (``dihedral``), and when the picture has dark borders
    (``letterbox``) its unletterboxed form (as it is, not rotated). Returns the values
    and the borders found (None: none). Never keeps or writes out pixels."""
    forms: list[tuple[str | None, Image.Image, str]] = [(None, image, "")]
    found: Letterbox | None = None
    if letterbox:
        cut = unletterbox(image)
        if cut is not None:
            cropped, found = cut
            forms.append((UNLETTERBOXED, cropped, found.describe(image.width, image.height)))
    out: list[VariantValue] = []
    small: Image.Image | None = None
    reduced = ""
    if dihedral and image.width * image.height > VARIANTS_FULL_PIXELS:
        factor = 2
        while image.width * image.height > VARIANTS_FULL_PIXELS * factor * factor:
            factor += 1
        # reduce() takes L, RGB, RGBA ...; not bilevel or palette pictures: those are
        # converted as PDQ converts them (imagehash's grey conversion gives the same grey).
        source = image if image.mode in ("L", "RGB") else image.convert("RGB")
        small = source.reduce(factor)
        if source is not image:
            source.close()
        reduced = (f" (hashed from the picture reduced by 1/{factor}, box filter, to "
                   f"{small.width}x{small.height})")
    try:
        for base, picture, how in forms:
            for alg in algorithms:
                # The cropped picture as it is only: a letterboxed AND rotated copy is
                # rarer, and its eight PDQ computations would double the cost.
                if dihedral and base is None and small is None:
                    values = dihedral_values(alg, picture)
                else:
                    values = {"original": alg.compute(picture)}
                    if dihedral and base is None and small is not None:
                        values.update(dihedral_values(alg, small, DIHEDRAL[1:]))
                for name in DIHEDRAL:
                    if name not in values:
                        continue
                    value, quality = values[name]
                    steps = [s for s in (how, "" if name == "original"
                                         else f"dihedral variant {name}: {MEANING[name]}"
                                         f"{reduced}")
                             if s]
                    out.append(VariantValue(alg.name, variant_name(base, name), value,
                                            quality, "; ".join(steps)))
    finally:
        for _, picture, _ in forms[1:]:
            picture.close()
        if small is not None:
            small.close()
    return out, found
