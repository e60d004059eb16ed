"""Perceptual hashes: pHash and dHash (imagehash) and PDQ (Meta, via pdqhash).

Conventions follow the reference implementations so that our values agree with hash sets
computed by others:

* pHash / dHash: exactly ``imagehash.phash(image)`` / ``imagehash.dhash(image)`` with
  hash_size 8 (imagehash converts to 8-bit grey with Pillow's ``convert("L")``).
* PDQ: ``pdqhash.compute(numpy.asarray(image.convert("RGB")))`` as python-threatexchange
  and Meta's HMA do (alpha is dropped, 16-bit values clip in Pillow's conversion).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .base import PictureAlgorithm

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
# Full-decode confirmation margins (issue 14): a draft-decoded value within threshold +
# margin of a known value is decoded again at full size and the hit decided on that. PDQ:
# 16 bits, the tolerance upstream allows between two decodes of the same picture
# (python-threatexchange's PDQ tests; draft decoding moved PDQ by up to 12 bits on Meta's
# set, issue 14). pHash/dHash: draft decoding moved them by at most 2 and 3 bits
# (benchmarks/bench_scan.py --parts d, README); 4 bits covers that, while 16 would reach a
# quarter of the 64 bits, where unrelated pictures lie.
PDQ_DRAFT_MARGIN = 16
PHASH_DRAFT_MARGIN = 4
DHASH_DRAFT_MARGIN = 4


class PHash(PictureAlgorithm):
    name = "phash"
    label = "pHash"
    bits = 64
    libraries: ClassVar[dict[str, str]] = {"imagehash": "ImageHash", "PIL": "Pillow",
                                           "scipy": "scipy", "numpy": "numpy"}
    default_threshold = PHASH_MATCH_DISTANCE
    draft_margin = PHASH_DRAFT_MARGIN
    # Golden values computed with ImageHash 4.3 (pinned; a change in the library shows here).
    examples: ClassVar[dict[str, str]] = {"radial-gradient": "ee989837e69ac819",
                                          "gradient-rgb": "aa5b9c3ca30ac877"}
    preprocessing = "imagehash.phash(hash_size=8): Pillow convert('L'), resize 32x32 LANCZOS, DCT"

    def compute(self, image: Image.Image) -> tuple[str, int | None]:
        import imagehash

        return str(imagehash.phash(image)), None


class DHash(PictureAlgorithm):
    name = "dhash"
    label = "dHash"
    bits = 64
    libraries: ClassVar[dict[str, str]] = {"imagehash": "ImageHash", "PIL": "Pillow",
                                           "numpy": "numpy"}
    default_threshold = DHASH_MATCH_DISTANCE
    draft_margin = DHASH_DRAFT_MARGIN
    examples: ClassVar[dict[str, str]] = {"radial-gradient": "0f0f0f0f0f0f0f0f",
                                          "linear-gradient": "0000000000000000"}
    preprocessing = "imagehash.dhash(hash_size=8): Pillow convert('L'), resize 9x8 LANCZOS"

    def compute(self, image: Image.Image) -> tuple[str, int | None]:
        import imagehash

        return str(imagehash.dhash(image)), None


class PDQ(PictureAlgorithm):
    name = "pdq"
    label = "PDQ"
    bits = 256
    aliases = ("pdqhash",)
    libraries: ClassVar[dict[str, str]] = {"pdqhash": "pdqhash", "PIL": "Pillow",
                                           "numpy": "numpy"}
    default_threshold = PDQ_MATCH_DISTANCE
    draft_margin = PDQ_DRAFT_MARGIN
    min_quality = PDQ_MIN_QUALITY
    # Golden values computed with pdqhash 0.2 (pinned).
    examples: ClassVar[dict[str, str]] = {
        "radial-gradient": "e660f9d8e99952666e6788dc999962666666ddd89999666666661d9919992a26",
        "linear-gradient": "7ac8441700e0519416fb5381e50aa75906951160c1765921c359031976970959",
    }
    preprocessing = "pdqhash.compute(RGB uint8 array): Pillow convert('RGB') (alpha dropped)"

    def compute(self, image: Image.Image) -> tuple[str, int | None]:
        import numpy as np
        import pdqhash

        rgb = image if image.mode == "RGB" else image.convert("RGB")
        bits, quality = pdqhash.compute(np.asarray(rgb))
        # pdqhash returns 256 bits, most significant first; pack to 64 hex digits.
        value = int("".join("1" if b else "0" for b in bits), 2)
        return f"{value:064x}", int(quality)
