"""The contract every hash algorithm implements (python-threatexchange's signal types are
the model: one class per algorithm, a stable name, validation, distance and examples).

Three ways to compute a value, one base class each:

* :class:`StreamAlgorithm` - from the byte stream, through an incremental hasher
  (``new()``), fed by the scanner's single read pass;
* :class:`PictureAlgorithm` - from one decoded picture (a PIL image) returning
  ``(hex, quality)``; a video algorithm would be a third subclass taking frames, with
  ``computed_from = "video"``;
* :class:`Algorithm` itself with ``computed_from = "none"`` - values that are only stored
  and exported, never computed (PhotoDNA).

Everything else (CLI threshold options, set-file columns, exporter columns, the worker's
preload list and work, the run's version record) is derived from these attributes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from PIL import Image

_HEX = re.compile(r"[0-9a-f]+")


class Hasher(Protocol):
    """What ``hashlib`` objects offer: the incremental interface of a stream algorithm."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class Algorithm(ABC):
    """A named hash algorithm.

    ``name`` is stable: it is stored in case databases and hash-set stores and must never
    change once released. ``bits`` is a multiple of 8 (values are stored as bytes). Values
    are canonical lower-case hex strings of ``bits / 4`` digits (``normalize``).
    ``distance`` is 0 for equal values; for perceptual hashes it is the Hamming distance.
    """

    name: ClassVar[str]
    #: Display name (CLI help, VICS ``HashName``): "SHA256", "pHash", "PDQ".
    label: ClassVar[str]
    kind: ClassVar[Literal["cryptographic", "perceptual", "external"]]
    bits: ClassVar[int]
    computed_from: ClassVar[Literal["bytes", "picture", "none"]] = "none"
    #: How a value is matched: "exact" (indexed SQL equality), "near" (Hamming radius, with
    #: ``index_class``), "never" (stored and exported only).
    match: ClassVar[Literal["exact", "near", "never"]] = "never"
    #: Other spellings in set files and column headers (compared without case/punctuation).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Distance at or below which two values count as a near match ("near" only).
    default_threshold: ClassVar[int | None] = None
    #: Values whose quality (0-100) is below this are too unreliable to match; None: the
    #: algorithm has no notion of quality.
    min_quality: ClassVar[int | None] = None
    #: Bits beyond the threshold within which a value computed from a reduced (JPEG draft)
    #: decode is a candidate worth decoding again at full size (issue 14); 0: none.
    draft_margin: ClassVar[int] = 0
    #: How the input is prepared, stored with every computed value.
    preprocessing: ClassVar[str] = ""
    #: Import name -> distribution name of every library a value depends on: preloaded in
    #: the worker processes and recorded in each run's version record.
    libraries: ClassVar[dict[str, str]] = {}
    #: Example input -> canonical value, checked by the contract suite against ``compute``
    #: (inputs: text for stream algorithms, a name from :func:`example_picture` for
    #: picture algorithms; external algorithms list valid values as ``value -> value``).
    examples: ClassVar[dict[str, str]] = {}

    @property
    def hex_length(self) -> int:
        return self.bits // 4

    def normalize(self, value: str) -> str:
        """Return the canonical lower-case hex form, or raise ``ValueError`` naming the value."""
        text = value.strip().lower()
        if len(text) != self.hex_length or not _HEX.fullmatch(text):
            raise ValueError(f"{value[:80]!r} is not a valid {self.label} hash "
                             f"(expected {self.hex_length} hex digits)")
        return text

    def distance(self, a: str, b: str) -> int:
        """Hamming distance between two canonical hex values (0 when equal)."""
        return (int(a, 16) ^ int(b, 16)).bit_count()

    def index_class(self) -> Any:
        """The index for near matching (``match == "near"``): built from an ``(n, words)``
        uint64 array and ``bits``, searched by radius (see :class:`hashsets.matching.NearIndex`)."""
        from ..matching import NearIndex

        return NearIndex

    def compute_example(self, key: str) -> str:
        """The value of example input ``key`` (the contract suite compares it with
        ``examples[key]``); external algorithms return the normalised key."""
        return self.normalize(key)

    @property
    def is_perceptual(self) -> bool:
        return self.kind == "perceptual"

    def __repr__(self) -> str:
        return f"<algorithm {self.name}>"


class StreamAlgorithm(Algorithm):
    """Computed from the byte stream: ``new()`` returns a fresh incremental hasher that the
    scanner's single read pass feeds chunk by chunk."""

    kind = "cryptographic"
    computed_from = "bytes"
    match = "exact"

    @abstractmethod
    def new(self) -> Hasher:
        """A fresh incremental hasher."""

    def compute_example(self, key: str) -> str:
        h = self.new()
        h.update(key.encode("utf-8"))
        return h.hexdigest()


class PictureAlgorithm(Algorithm):
    """Computed from one decoded picture.

    ``compute`` receives an already decoded, already reduced image (the caller owns
    decoding, limits and JPEG draft mode; those steps are described in the caller's own
    preprocessing text) and returns ``(hex, quality)``; quality is None when the algorithm
    has no notion of it. It must not keep or write out pixels.
    """

    kind = "perceptual"
    computed_from = "picture"
    match = "near"

    @abstractmethod
    def compute(self, image: Image.Image) -> tuple[str, int | None]:
        """``(canonical hex, quality or None)`` of a decoded picture."""

    def compute_example(self, key: str) -> str:
        return self.compute(example_picture(key))[0]


#: Synthetic example pictures (no evidence, built from Pillow's own generators).
EXAMPLE_PICTURES = ("linear-gradient", "radial-gradient", "gradient-rgb")


@cache
def _example(name: str) -> Image.Image:
    from PIL import Image

    if name == "linear-gradient":
        return Image.linear_gradient("L")
    if name == "radial-gradient":
        return Image.radial_gradient("L")
    if name == "gradient-rgb":
        g = Image.linear_gradient("L")
        return Image.merge("RGB", (g, g.rotate(90), Image.radial_gradient("L")))
    raise KeyError(f"no example picture {name!r} (known: {', '.join(EXAMPLE_PICTURES)})")


def example_picture(name: str) -> Image.Image:
    """A fresh copy of a deterministic 256x256 example picture (see EXAMPLE_PICTURES)."""
    return _example(name).copy()
