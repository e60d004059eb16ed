"""Bare hex lists: one hash per line, comments (#) and blank lines ignored.

The algorithm is fixed per file: the ``algorithm`` option, or else guessed from the first
hash's length among the stream algorithms of the registry (32 md5, 40 sha1). A length that
a picture algorithm shares (64 digits: SHA-256 or PDQ) is ambiguous and is never guessed:
the import is refused with a message naming ``--algorithm sha256|pdq`` (issue 14: a PDQ
list silently imported as SHA-256 would never match). Any registered algorithm can be
given. Lines of another length are rejected with their line number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..algorithms import get, picture_algorithms, stream_algorithms
from .base import (
    Batch,
    BulkItem,
    Format,
    Item,
    ParseContext,
    Record,
    Rejected,
    fail,
    first_lines,
    open_text,
)
from .bulk import content_lengths, decode_fixed, line_blocks

_HEXLINE = re.compile(r"[0-9A-Fa-f]{16,128}")
_HEX = re.compile(r"[0-9A-Fa-f]+")


class PlainList(Format):
    name = "plain"
    description = "bare hex list, one hash per line (md5, sha1 or sha256 by length)"

    def detect(self, path: Path, head: bytes) -> bool:
        lines = first_lines(head)
        return bool(lines) and all(_HEXLINE.fullmatch(ln) for ln in lines)

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        state = _State(ctx)
        with open_text(ctx) as f:
            for lineno, line in enumerate(f, 1):
                item = state.line(lineno, line)
                if item is not None:
                    yield item

    def parse_bulk(self, ctx: ParseContext) -> Iterator[BulkItem]:
        return self._bulk(ctx)

    def _bulk(self, ctx: ParseContext) -> Iterator[BulkItem]:
        state = _State(ctx)
        for data, starts, ends, first in line_blocks(ctx.path, limits=ctx.limits):
            i = 0
            while state.algorithm is None and i < len(starts):  # until the first hash
                item = state.line(first + i, data[starts[i]:ends[i]].tobytes().decode(
                    "utf-8", errors="replace"))
                if item is not None:
                    yield item
                i += 1
            if i == len(starts):
                continue
            assert state.algorithm is not None
            st, en = starts[i:], ends[i:]
            lengths = content_lengths(data, st, en)
            fixed = np.flatnonzero(lengths == state.n_hex)
            raw, valid = decode_fixed(data, st[fixed], state.n_hex)
            good = fixed[valid]
            # Every other non-blank line goes through the per-line code (same messages).
            odd = np.ones(len(st), dtype=bool)
            odd[good] = False
            odd &= lengths > 0
            for j in np.flatnonzero(odd).tolist():
                item = state.line(first + i + j, data[st[j]:en[j]].tobytes().decode(
                    "utf-8", errors="replace"))
                if item is not None:
                    yield item
            if len(good):
                yield Batch(good.astype(np.int64) + (first + i), {state.algorithm: raw[valid]})


class _State:
    """The per-line rules of a bare list (shared by ``parse`` and ``parse_bulk``)."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.algorithm: str | None = ctx.options.get("algorithm")
        self.n_hex = get(self.algorithm).hex_length if self.algorithm else 0

    def line(self, lineno: int, line: str) -> Item | None:
        text = line.strip()
        if not text or text[0] == "#":
            return None
        if self.algorithm is None:
            lengths = {a.hex_length: a.name for a in stream_algorithms()}
            guess = lengths.get(len(text))
            if guess is None:
                return Rejected(lineno, f"{len(text)} characters is no "
                                        f"{'/'.join(lengths.values())} length; give the "
                                        "algorithm explicitly")
            same = [a.name for a in picture_algorithms() if a.hex_length == len(text)]
            if same and _HEX.fullmatch(text):
                names = "|".join([guess, *same])
                raise fail(self.ctx, lineno, f"{len(text)} hex digits is ambiguous "
                           f"({' or '.join([guess, *same])}); nothing imported: give "
                           f"--algorithm {names}")
            self.algorithm, self.n_hex = guess, len(text)
            self.ctx.info["algorithm"] = guess
        if len(text) != self.n_hex:
            return Rejected(lineno, f"{len(text)} characters, expected {self.n_hex} for "
                                    f"{self.algorithm}")
        if not _HEX.fullmatch(text):  # not bytes.fromhex: it skips inner spaces
            return Rejected(lineno, f"{text[:80]!r} is not hexadecimal")
        return Record(lineno, {self.algorithm: text.lower()})
