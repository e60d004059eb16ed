"""HashKeeper (the former US NDIC format, read by Autopsy): a quoted CSV whose header is
``"file_id","hashset_id","file_name","directory","hash","file_size","date_modified",...``.
The ``hash`` column is an MD5.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..algorithms import get
from .base import Format, Item, ParseContext, Record, Rejected, fail, open_text, text_head


def _cols(line: str) -> list[str]:
    return [c.strip().strip('"').lower() for c in line.split(",")]


class HashKeeper(Format):
    name = "hashkeeper"
    description = "HashKeeper CSV (header \"file_id\",\"hashset_id\",...,\"hash\",...; MD5)"

    def detect(self, path: Path, head: bytes) -> bool:
        lines = text_head(head).lstrip().splitlines()
        if not lines:
            return False
        cols = _cols(lines[0])
        return "hash" in cols and "file_id" in cols and "hashset_id" in cols

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        md5 = get("md5")
        with open_text(ctx, records=True) as f:
            reader = csv.reader(f)
            try:
                header = [c.strip().lower() for c in next(reader)]
            except StopIteration:
                raise fail(ctx, 1, "empty file") from None
            f.mark()
            if "hash" not in header:
                raise fail(ctx, 1, "HashKeeper header has no 'hash' column")
            i_hash = header.index("hash")
            i_name = header.index("file_name") if "file_name" in header else None
            i_id = header.index("file_id") if "file_id" in header else None
            try:
                for row in reader:
                    lineno = reader.line_num
                    f.mark()
                    if not row or not any(c.strip() for c in row):
                        continue
                    if i_hash >= len(row):
                        yield Rejected(lineno, f"{len(row)} fields, no hash column")
                        continue
                    try:
                        value = md5.normalize(row[i_hash])
                    except ValueError as e:
                        yield Rejected(lineno, str(e))
                        continue
                    yield Record(
                        lineno, {"md5": value},
                        name=row[i_name] or None if i_name is not None and i_name < len(row)
                        else None,
                        entry_ref=row[i_id] or None if i_id is not None and i_id < len(row)
                        else None)
            except csv.Error as e:
                raise fail(ctx, reader.line_num, f"malformed CSV: {e}") from e
