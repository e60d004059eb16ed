"""iLook hash sets (``.hsh``), versions 3 and 4 (FORMATS.md "iLook hash sets").

Comma-separated text with a header row, as hashdeep reads them (its ``ILOOK3_HEADER`` and
``ILOOK4_HEADER``):

* v3: ``V3Hash,HashSHA1,FileName,FilePath,FileSize,HashSHA256,HashSHA384,HashSHA512``
* v4: the same, then ``CreateTime,ModTime,LastAccessTime``

``V3Hash``/``V4Hash`` is the MD5 (upper-case hex); ``HashSHA1`` and ``HashSHA256`` are kept
when present (empty columns are allowed: SHA-256 often is). ``FileName`` is the entry's
name; ``FilePath`` (a Windows path), ``FileSize``, the SHA-384/512 values and the times
(local, day-first, as written: ``16.4.2008 14:29:24``) are kept as the entry's fields,
never reinterpreted. A row with another number of fields than the header is rejected
with its line number (hashdeep's own sample ends with such a row). These sets carry no
category: they import as alert sets, or as known-file sets with ``--known``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..algorithms import get
from .base import Format, Item, ParseContext, Record, Rejected, fail, open_text, text_head

#: The header columns of each version (hashdeep, ``ILOOK3_HEADER``/``ILOOK4_HEADER``).
V3 = ("V3Hash", "HashSHA1", "FileName", "FilePath", "FileSize", "HashSHA256", "HashSHA384",
      "HashSHA512")
V4 = ("V4Hash", *V3[1:], "CreateTime", "ModTime", "LastAccessTime")
#: Column -> algorithm kept in the store (the others are the entry's fields).
_HASH_COLUMNS = {"v3hash": "md5", "v4hash": "md5", "hashsha1": "sha1",
                 "hashsha256": "sha256"}


def _header(line: str) -> tuple[str, ...] | None:
    cols = tuple(c.strip().strip('"') for c in line.strip().split(","))
    for version in (V3, V4):
        if tuple(c.lower() for c in cols) == tuple(c.lower() for c in version):
            return cols
    return None


class ILook(Format):
    name = "ilook"
    description = "iLook v3/v4 hash set (.hsh; header V3Hash/V4Hash,HashSHA1,FileName,...)"

    def detect(self, path: Path, head: bytes) -> bool:
        lines = text_head(head).lstrip().splitlines()
        return bool(lines) and _header(lines[0]) is not None

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        with open_text(ctx, records=True) as f:
            reader = csv.reader(f)
            try:
                first = next(reader)
            except StopIteration:
                raise fail(ctx, 1, "empty file") from None
            except csv.Error as e:
                raise fail(ctx, 1, f"malformed CSV: {e}") from e
            f.mark()
            header = _header(",".join(first))
            if header is None:
                raise fail(ctx, 1, "not an iLook v3/v4 header (V3Hash or V4Hash,HashSHA1,"
                                   "FileName,FilePath,FileSize,HashSHA256,...)")
            ctx.version = header[0][:2].lower()  # "v3" or "v4"
            keys = [c.lower() for c in header]
            i_name = keys.index("filename")
            try:
                for row in reader:
                    lineno = reader.line_num
                    f.mark()
                    if not row or not any(c.strip() for c in row):
                        continue
                    if len(row) != len(header):
                        yield Rejected(lineno, f"{len(row)} fields, the {ctx.version} header "
                                               f"has {len(header)}")
                        continue
                    hashes: dict[str, str] = {}
                    bad = None
                    for key, value in zip(keys, row, strict=True):
                        alg = _HASH_COLUMNS.get(key)
                        if alg is None or not value.strip():
                            continue
                        try:
                            hashes[alg] = get(alg).normalize(value)
                        except ValueError as e:
                            bad = f"{header[keys.index(key)]}: {e}"
                            break
                    if bad or "md5" not in hashes:
                        yield Rejected(lineno, bad or f"no {header[0]} (MD5) value")
                        continue
                    fields = {h: v.strip() for h, k, v in zip(header, keys, row, strict=True)
                              if k not in _HASH_COLUMNS and k != "filename" and v.strip()}
                    yield Record(lineno, hashes, name=row[i_name].strip() or None,
                                 fields=fields or None)
            except csv.Error as e:
                raise fail(ctx, reader.line_num, f"malformed CSV: {e}") from e
