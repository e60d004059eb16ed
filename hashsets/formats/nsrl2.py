"""NIST NSRL RDS 2.x: ``NSRLFile.txt`` (quoted CSV with a header), alone or inside the
RDS zip. Columns are found by header name (older releases order them differently:
``"SHA-1","FileName","FileSize","ProductCode","OpSystemCode","MD4","MD5","CRC32",...``).

NSRL is a set of *known* files, not "known good" (it contains hacking tools too).
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from ..algorithms import get
from .base import (
    Format,
    Item,
    ParseContext,
    Record,
    Rejected,
    fail,
    open_text,
    read_zip_member,
    text_head,
    zip_text,
)
from .bounds import LineReader, clip

MEMBER = "NSRLFile.txt"
_HASH_COLUMNS = {"SHA-1": "sha1", "MD5": "md5", "SHA-256": "sha256"}


def _is_header(line: str) -> bool:
    return line.startswith('"SHA-1"') and '"MD5"' in line and '"FileName"' in line


class NSRLRDS2(Format):
    name = "nsrl-rds2"
    description = "NIST NSRL RDS 2.x NSRLFile.txt, or the RDS zip holding it (known files)"
    known = True
    default_category_map = "known"

    def detect(self, path: Path, head: bytes) -> bool:
        if head.startswith(b"PK\x03\x04"):
            found = read_zip_member(path, MEMBER)
            if found is None:
                return False
            found[0].close()
            return True
        return _is_header(text_head(head).lstrip())

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        with ExitStack() as stack:
            f: LineReader
            if zipfile.is_zipfile(ctx.path):
                found = read_zip_member(ctx.path, MEMBER)
                if found is None:
                    raise fail(ctx, None, f"zip holds no {MEMBER}")
                zf, member = found
                stack.callback(zf.close)
                ctx.info["member"] = member
                ctx.version = _zip_version(zf, ctx)
                f = stack.enter_context(zip_text(zf, member, ctx, records=True))
            else:
                f = stack.enter_context(open_text(ctx, records=True))
            reader = csv.reader(f)
            try:
                header = next(reader)
            except StopIteration:
                raise fail(ctx, 1, "empty file") from None
            f.mark()
            cols = {name: i for i, name in enumerate(header)}
            idx = {alg: cols[c] for c, alg in _HASH_COLUMNS.items() if c in cols}
            if not idx:
                raise fail(ctx, 1, f"header {clip(repr(header))} names no SHA-1/MD5 column")
            name_col = cols.get("FileName")
            algs = {alg: get(alg) for alg in idx}
            try:
                for row in reader:
                    lineno = reader.line_num
                    f.mark()
                    if not row:
                        continue
                    try:
                        hashes = {alg: algs[alg].normalize(row[i]) for alg, i in idx.items()}
                    except (ValueError, IndexError) as e:
                        yield Rejected(lineno, str(e) if isinstance(e, ValueError)
                                       else f"{len(row)} fields, expected {len(header)}")
                        continue
                    yield Record(lineno, hashes,
                                 name=row[name_col] if name_col is not None
                                 and name_col < len(row) else None)
            except csv.Error as e:
                raise fail(ctx, reader.line_num, f"malformed CSV: {e}") from e


def _zip_version(zf: zipfile.ZipFile, ctx: ParseContext) -> str | None:
    """RDSVersion from the zip's version.txt (its first row, read through the bounded
    reader), when it has a non-empty one."""
    for info in zf.infolist():
        if info.filename.rsplit("/", 1)[-1].lower() == "version.txt":
            with zip_text(zf, info.filename, ctx, records=True) as f:
                try:
                    row = next(csv.DictReader(f), None)
                except csv.Error:
                    row = None
            version = row.get("RDSVersion") if row else None
            if isinstance(version, str) and version:
                return clip(version)
    return None
