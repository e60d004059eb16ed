"""Perceptual hashes: pHash and dHash (imagehash) and PDQ (Meta, via pdqhash).

Conventions follow the reference implementations so that our values agree with hash sets
computed by others:

* pHash / dHash: exactly ``imagehash.phash(image)`` / ``imagehash.dhash(image)`` with
  hash_size 8 (imagehash converts to 8-bit grey with Pillow's ``convert("L")``).
* PDQ: ``pdqhash.compute(numpy.asarray(image.convert("RGB")))`` as python-threatexchange
  and Meta's HMA do (alpha is dropped, 16-bit values clip in Pillow's conversion).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import PerceptualAlgorithm

if TYPE_CHECKING:
    from PIL import Image

# Meta, "The TMK+PDQF Video-Hashing Algorithm and the PDQ Image Similarity Algorithm"
# (pdqhash docs) and python-threatexchange's PdqSignal: match at distance <= 31, and
# hashes with quality < 50 are too unreliable to act on.
PDQ_MATCH_DISTANCE = 31
PDQ_MIN_QUALITY = 50
# imagehash README and common practice for 64-bit pHash/dHash: 8-10 bits. We default to
# 10 and record the threshold with every near match (FORMATS.md).
PHASH_MATCH_DISTANCE = 10
DHASH_MATCH_DISTANCE = 10


class PHash(PerceptualAlgorithm):
    name = "phash"
    bits = 64
    default_threshold = PHASH_MATCH_DISTANCE
    preprocessing = "imagehash.phash(hash_size=8): Pillow convert('L'), resize 32x32 LANCZOS, DCT"

    def compute(self, image: Image.Image) -> tuple[str, int | None]:
        import imagehash

        return str(imagehash.phash(image)), None


class DHash(PerceptualAlgorithm):
    name = "dhash"
    bits = 64
    default_threshold = DHASH_MATCH_DISTANCE
    preprocessing = "imagehash.dhash(hash_size=8): Pillow convert('L'), resize 9x8 LANCZOS"

    def compute(self, image: Image.Image) -> tuple[str, int | None]:
        import imagehash

        return str(imagehash.dhash(image)), None


class PDQ(PerceptualAlgorithm):
    name = "pdq"
    bits = 256
    default_threshold = PDQ_MATCH_DISTANCE
    min_quality = PDQ_MIN_QUALITY
    preprocessing = "pdqhash.compute(RGB uint8 array): Pillow convert('RGB') (alpha dropped)"

    def compute(self, image: Image.Image) -> tuple[str, int | None]:
        import numpy as np
        import pdqhash

        rgb = image if image.mode == "RGB" else image.convert("RGB")
        bits, quality = pdqhash.compute(np.asarray(rgb))
        # pdqhash returns 256 bits, most significant first; pack to 64 hex digits.
        value = int("".join("1" if b else "0" for b in bits), 2)
        return f"{value:064x}", int(quality)
