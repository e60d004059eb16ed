"""BSD-style checksum lines: ``MD5 (name) = hex`` (also SHA1, SHA256; ``md5 -r`` is the
md5sum format)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..algorithms import get
from .base import (
    Format,
    Item,
    ParseContext,
    Record,
    Rejected,
    content_lines,
    first_lines,
    open_text,
)

_LINE = re.compile(r"^(?P<alg>MD5|SHA1|SHA-1|SHA256|SHA-256|SHA2-256) \((?P<name>.*)\) = "
                   r"(?P<hex>\S+)\s*$", re.IGNORECASE)
_ALG = {"md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256",
        "sha-256": "sha256", "sha2-256": "sha256"}


class BSDChecksums(Format):
    name = "bsd"
    description = "BSD checksum lines: 'MD5 (name) = hex', 'SHA256 (name) = hex'"

    def detect(self, path: Path, head: bytes) -> bool:
        lines = first_lines(head)
        return bool(lines) and all(_LINE.match(ln) for ln in lines)

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        with open_text(ctx) as f:
            for lineno, text in content_lines(f):
                m = _LINE.match(text)
                if not m:
                    yield Rejected(lineno, "not an 'ALG (name) = hex' line")
                    continue
                algorithm = _ALG[m.group("alg").lower()]
                try:
                    value = get(algorithm).normalize(m.group("hex"))
                except ValueError as e:
                    yield Rejected(lineno, str(e))
                    continue
                yield Record(lineno, {algorithm: value}, name=m.group("name") or None)
