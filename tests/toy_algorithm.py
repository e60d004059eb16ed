"""A toy perceptual algorithm for the tests: 40 "mean brightness" bits.

The picture is reduced to 8x5 grey pixels (Pillow ``convert("L")``, ``resize`` with
BOX filtering); each bit says whether a pixel is brighter than the mean of the 40. It is
NOT registered on import: a test registers it in-process (``hashsets.algorithms.registered``)
to prove that one module is all a new algorithm needs. Its width (40 bits) is deliberately
not a multiple of 64.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from hashsets.algorithms import PictureAlgorithm

if TYPE_CHECKING:
    from PIL import Image

#: Chosen for the tests: 6 of 40 bits (15%), in the spirit of pHash's 10 of 64.
TOY_MATCH_DISTANCE = 6
WIDTH, HEIGHT = 8, 5


class MeanBits(PictureAlgorithm):
    name = "meanbits"
    label = "MeanBits"
    bits = WIDTH * HEIGHT
    aliases = ("mean-bits",)
    default_threshold = TOY_MATCH_DISTANCE
    preprocessing = "toy: Pillow convert('L'), resize 8x5 BOX, bit = pixel > mean"
    libraries: ClassVar[dict[str, str]] = {"PIL": "Pillow"}
    examples: ClassVar[dict[str, str]] = {"linear-gradient": "0000ffffff",
                                          "radial-gradient": "ff818181ff"}

    def compute(self, image: Image.Image) -> tuple[str, int | None]:
        from PIL import Image

        small = image.convert("L").resize((WIDTH, HEIGHT), Image.Resampling.BOX)
        pixels = list(small.tobytes())
        mean = sum(pixels) / len(pixels)
        value = 0
        for p in pixels:
            value = (value << 1) | (p > mean)
        return f"{value:0{self.bits // 4}x}", None
