"""Bare hex lists: one hash per line, comments (#) and blank lines ignored.

The algorithm is fixed per file: the ``algorithm`` option, or else guessed from the first
hash's length (32 md5, 40 sha1, 64 sha256; a 64-digit PDQ list needs ``algorithm=pdq`` or
the ``perceptual`` format). Lines of another length are rejected with their line number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..algorithms import get
from .base import Format, Item, ParseContext, Record, Rejected, first_lines, open_text

_HEXLINE = re.compile(r"[0-9A-Fa-f]{16,128}")


class PlainList(Format):
    name = "plain"
    description = "bare hex list, one hash per line (md5, sha1 or sha256 by length)"

    def detect(self, path: Path, head: bytes) -> bool:
        lines = first_lines(head)
        return bool(lines) and all(_HEXLINE.fullmatch(ln) for ln in lines)

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        algorithm: str | None = ctx.options.get("algorithm")
        n_hex = get(algorithm).hex_length if algorithm else 0
        with open_text(ctx.path) as f:
            for lineno, line in enumerate(f, 1):
                text = line.strip()
                if not text or text[0] == "#":
                    continue
                if algorithm is None:
                    guess = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(text))
                    if guess is None:
                        yield Rejected(lineno, f"{len(text)} characters is no md5/sha1/sha256 "
                                               "length; give the algorithm explicitly")
                        continue
                    algorithm, n_hex = guess, len(text)
                    ctx.info["algorithm"] = algorithm
                # Fast path: bytes.fromhex validates the digits; the length is checked here.
                if len(text) != n_hex:
                    yield Rejected(lineno, f"{len(text)} characters, expected {n_hex} for "
                                           f"{algorithm}")
                    continue
                try:
                    bytes.fromhex(text)
                except ValueError:
                    yield Rejected(lineno, f"{text[:80]!r} is not hexadecimal")
                    continue
                yield Record(lineno, {algorithm: text.lower()})
