"""The contract every hash algorithm implements."""

from __future__ import annotations

import re
from abc import ABC
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from PIL import Image

_HEX = re.compile(r"[0-9a-f]+")


class Algorithm(ABC):
    """A named hash algorithm.

    ``name`` is stable: it is stored in case databases and hash-set stores and must never
    change once released. Values are canonical lower-case hex strings (``normalize``).
    ``distance`` is 0 for equal values; for perceptual hashes it is the Hamming distance.
    """

    name: ClassVar[str]
    kind: ClassVar[str]  # "cryptographic" | "perceptual" | "external"
    bits: ClassVar[int]
    #: Distance at or below which two values count as a near match (perceptual only).
    default_threshold: ClassVar[int | None] = None
    #: Values whose quality is below this are too unreliable to match (PDQ only).
    min_quality: ClassVar[int | None] = None
    #: Canonical values of well-known inputs, used by the shared contract tests.
    examples: ClassVar[dict[str, str]] = {}

    @property
    def hex_length(self) -> int:
        return self.bits // 4

    def normalize(self, value: str) -> str:
        """Return the canonical lower-case hex form, or raise ``ValueError`` naming the value."""
        text = value.strip().lower()
        if len(text) != self.hex_length or not _HEX.fullmatch(text):
            raise ValueError(f"{value!r} is not a valid {self.name} hash "
                             f"(expected {self.hex_length} hex digits)")
        return text

    def distance(self, a: str, b: str) -> int:
        """Hamming distance between two canonical hex values (0 when equal)."""
        return (int(a, 16) ^ int(b, 16)).bit_count()

    @property
    def is_perceptual(self) -> bool:
        return self.kind == "perceptual"


class PerceptualAlgorithm(Algorithm):
    """An algorithm computed from decoded pixels.

    ``compute`` receives an already decoded, already reduced image (the caller owns
    decoding, limits and preprocessing) and returns ``(hex, quality)``; quality is None when
    the algorithm has no notion of it.
    """

    kind = "perceptual"
    #: Human-readable description of how pixels are prepared, stored with every value.
    preprocessing: ClassVar[str] = ""

    def compute(self, image: Image.Image) -> tuple[str, int | None]:  # pragma: no cover
        raise NotImplementedError
