"""CSV / TSV with a header row naming the hash columns.

The delimiter is sniffed among ``, ; TAB |``. Hash columns are recognised by name (case and
punctuation ignored): the name or an alias of any registered algorithm (md5, sha1/sha-1,
sha256/sha-256, phash, dhash, pdq, photodna...). Optional
columns: category/label/class, series, name/filename/file name, id/mediaid, quality.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

from ..algorithms import get, lookup
from .base import Format, Item, ParseContext, Record, Rejected, fail, open_text, text_head

_DELIMS = ",;\t|"
_CATEGORY = ("category", "label", "class", "classification")
_SERIES = ("series", "seriesname")
_NAME = ("name", "filename", "file", "path")
_ID = ("id", "mediaid", "imageid", "ref")


def column_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def hash_column(key: str) -> str | None:
    """The algorithm a column key names (registry names and aliases), or None."""
    alg = lookup(key)
    return None if alg is None else alg.name


def header_columns(line: str) -> tuple[str, list[str]] | None:
    """Delimiter and normalised column keys of a header line naming a hash column."""
    for d in _DELIMS:
        if d in line or d == ",":
            cols = [column_key(c.strip().strip('"')) for c in line.split(d)]
            if any(hash_column(c) for c in cols):
                return d, cols
    return None


class CSVTable(Format):
    name = "csv"
    description = "CSV/TSV with a header naming hash columns (md5, sha1, sha256, pdq, phash...)"

    def detect(self, path: Path, head: bytes) -> bool:
        lines = text_head(head).lstrip().splitlines()
        return bool(lines) and not lines[0].startswith("#") and \
            header_columns(lines[0]) is not None

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        with open_text(ctx, records=True) as f:
            first = next(f, "")
            found = header_columns(first.strip())
            if found is None:
                raise fail(ctx, 1, "header row names no hash column (md5, sha1, sha256, pdq, "
                                   "phash, dhash)")
            delim, cols = found
            reader = csv.reader(itertools.chain([first], f), delimiter=delim)
            next(reader)
            f.mark()
            hidx = {alg: i for i, c in enumerate(cols) if (alg := hash_column(c))}

            def pick(names: tuple[str, ...]) -> int | None:
                return next((i for i, c in enumerate(cols) if c in names), None)

            i_cat, i_series, i_name, i_id = pick(_CATEGORY), pick(_SERIES), pick(_NAME), \
                pick(_ID)

            def cell(row: list[str], i: int | None) -> str | None:
                if i is None or i >= len(row):
                    return None
                return row[i].strip() or None

            try:
                for row in reader:
                    lineno = reader.line_num
                    f.mark()
                    if not row or not any(c.strip() for c in row):
                        continue
                    if row[0].lstrip().startswith("#"):
                        continue
                    hashes: dict[str, str] = {}
                    photodna = None
                    try:
                        for alg, i in hidx.items():
                            v = cell(row, i)
                            if not v:
                                continue
                            if alg == "photodna":
                                photodna = get(alg).normalize(v)
                            else:
                                hashes[alg] = get(alg).normalize(v)
                    except ValueError as e:
                        yield Rejected(lineno, str(e))
                        continue
                    if not hashes and photodna is None:
                        yield Rejected(lineno, "no hash value in this row")
                        continue
                    yield Record(lineno, hashes, category_raw=cell(row, i_cat),
                                 series=cell(row, i_series), name=cell(row, i_name),
                                 entry_ref=cell(row, i_id), photodna=photodna)
            except csv.Error as e:
                raise fail(ctx, reader.line_num, f"malformed CSV: {e}") from e
