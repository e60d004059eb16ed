"""md5sum / sha1sum / sha256sum output and md5deep output (with or without ``-z`` sizes).

Lines are ``HEX  name`` (text mode) or ``HEX *name`` (binary mode); md5deep ``-z`` puts the
file size first (``   669416  HEX  name``). The algorithm is the ``algorithm`` option or is
guessed from the first hash's length (32 md5, 40 sha1). 64 hex digits are SHA-256 or PDQ
(``<64 hex>  <label>`` is a common PDQ list layout): taken as SHA-256 only when the line
carries sha256sum's binary-mode marker (``HEX *name``, which no PDQ list uses); otherwise
the import is refused with a message naming ``--algorithm sha256|pdq`` (issue 14).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..algorithms import get, picture_algorithms
from .base import (
    Format,
    Item,
    ParseContext,
    Record,
    Rejected,
    content_lines,
    fail,
    first_lines,
    open_text,
)

_LINE = re.compile(r"^\s*(?:(?P<size>\d+)\s+)?(?P<hex>[0-9A-Fa-f]{16,})\s(?P<mode>[ *])"
                   r"(?P<name>.*)$")
#: Most lines among the first 20 that detection lets pass without the sum-line shape.
MAX_BAD_LINES = 2
_STRICT = re.compile(r"^\s*(?:\d+\s+)?[0-9A-Fa-f]{32}(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{32})?"
                     r"\s[ *].+$")


class SumFile(Format):
    name = "md5sum"
    description = ("md5sum/sha1sum/sha256sum output ('HEX  name', 'HEX *name'), also md5deep "
                   "output with or without sizes")

    def detect(self, path: Path, head: bytes) -> bool:
        """The first content lines are sum lines, but for a few bad ones (a damaged or
        hand-edited list): at most :data:`MAX_BAD_LINES` of them, and fewer than the good
        ones. The bad lines are rejected at import, each with its line number."""
        lines = first_lines(head)
        good = sum(1 for ln in lines if _STRICT.match(ln))
        return good > 0 and len(lines) - good <= min(MAX_BAD_LINES, good - 1)

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        algorithm: str | None = ctx.options.get("algorithm")
        with open_text(ctx) as f:
            for lineno, text in content_lines(f):
                m = _LINE.match(text)
                if not m:
                    yield Rejected(lineno, "not a 'HEX  name' line")
                    continue
                hex_text = m.group("hex")
                if algorithm is None:
                    algorithm = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(hex_text))
                    same = [a.name for a in picture_algorithms()
                            if a.hex_length == len(hex_text)]
                    if algorithm is not None and same and m.group("mode") != "*":
                        raise fail(ctx, lineno, f"{len(hex_text)} hex digits is ambiguous "
                                   f"({' or '.join([algorithm, *same])}); nothing imported: "
                                   f"give --algorithm {'|'.join([algorithm, *same])}")
                    if algorithm is None:
                        yield Rejected(lineno, f"{len(hex_text)} hex digits is no md5/sha1/"
                                               "sha256 length")
                        continue
                    ctx.info["algorithm"] = algorithm
                try:
                    value = get(algorithm).normalize(hex_text)
                except ValueError as e:
                    yield Rejected(lineno, str(e))
                    continue
                name = m.group("name")
                yield Record(lineno, {algorithm: value}, name=name or None)
