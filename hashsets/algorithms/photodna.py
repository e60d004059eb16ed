"""PhotoDNA: values are stored and exported, never computed (the algorithm is proprietary)."""

from __future__ import annotations

import base64
import binascii
from typing import ClassVar

from .base import Algorithm

_EXAMPLE = bytes(range(144)).hex()


class PhotoDNA(Algorithm):
    """A 144-byte PhotoDNA signature.

    Hash sets carry it as 288 hex digits or as base64 (192 characters); both normalise to
    lower-case hex. ``computed_from = "none"`` and ``match = "never"``: a scan never
    produces PhotoDNA values, so PhotoDNA never matches; it is kept to round-trip VICS and
    ICSE data faithfully.
    """

    name = "photodna"
    label = "PhotoDNA"
    kind = "external"
    bits = 144 * 8
    examples: ClassVar[dict[str, str]] = {
        _EXAMPLE: _EXAMPLE,
        base64.b64encode(bytes.fromhex(_EXAMPLE)).decode("ascii"): _EXAMPLE,
    }

    def normalize(self, value: str) -> str:
        text = value.strip()
        if len(text) == self.hex_length:
            return super().normalize(text)
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 144:
            raise ValueError(f"{value[:40]!r}... is not a valid PhotoDNA hash "
                             "(expected 288 hex digits or 144 bytes in base64)")
        return raw.hex()
