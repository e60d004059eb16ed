"""hashdeep output (HASHDEEP-1.0, see the format description shipped with hashdeep).

Line 1 is ``%%%% HASHDEEP-1.0``; line 2 ``%%%% size,md5,sha256,filename`` names the
columns (size first, filename last; extra commas belong to the file name); ``#`` lines are
comments. Columns for algorithms we do not keep (whirlpool, tiger) are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..algorithms import get
from .base import Format, Item, ParseContext, Record, Rejected, fail, open_text, text_head
from .bounds import clip

_COLUMN_ALG = {"md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256",
               "sha-256": "sha256"}


class Hashdeep(Format):
    name = "hashdeep"
    description = "hashdeep output (%%%% HASHDEEP-1.0 header)"

    def detect(self, path: Path, head: bytes) -> bool:
        return text_head(head).lstrip().startswith("%%%% HASHDEEP-")

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        columns: list[str] | None = None
        with open_text(ctx) as f:
            for lineno, line in enumerate(f, 1):
                text = line.rstrip("\r\n")
                if lineno == 1:
                    if not text.startswith("%%%% HASHDEEP-"):
                        raise fail(ctx, 1, "missing '%%%% HASHDEEP-1.0' header")
                    ctx.version = text[5:].strip()
                    continue
                if text.startswith("%%%%"):
                    columns = [c.strip().lower() for c in text[4:].strip().split(",")]
                    if len(columns) < 3 or columns[0] != "size" or columns[-1] != "filename":
                        raise fail(ctx, lineno, f"column line {clip(text)!r} must start with size "
                                                "and end with filename")
                    continue
                if not text.strip() or text.startswith("#"):
                    continue
                if columns is None:
                    raise fail(ctx, lineno, "data before the '%%%% size,...,filename' line")
                parts = text.split(",", len(columns) - 1)
                if len(parts) != len(columns):
                    yield Rejected(lineno, f"{len(parts)} fields, expected {len(columns)}")
                    continue
                hashes: dict[str, str] = {}
                bad = None
                for col, val in zip(columns[1:-1], parts[1:-1], strict=True):
                    alg = _COLUMN_ALG.get(col)
                    if alg is None:
                        continue
                    try:
                        hashes[alg] = get(alg).normalize(val)
                    except ValueError as e:
                        bad = str(e)
                        break
                if bad or not hashes:
                    yield Rejected(lineno, bad or "no md5/sha1/sha256 column")
                    continue
                yield Record(lineno, hashes, name=parts[-1] or None)
