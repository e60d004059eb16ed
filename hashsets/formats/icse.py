"""INTERPOL ICSE export: CSV separated by ``;`` with a header row (FORMATS.md):

``MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender identified;Series
name;Number of submissions;File Available;Media Type;Baseline``

There is no category column: the ``Baseline`` flag (INTERPOL's list of the most severe
material) becomes the raw category ``baseline`` / ``non-baseline``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
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
    parse_flag,
    text_head,
)

REQUIRED = ("md5", "sha1", "image id")


def _norm(name: str) -> str:
    return " ".join(name.strip().strip('"').lower().split())


class ICSE(Format):
    name = "icse"
    description = "INTERPOL ICSE CSV export (';' separated, header MD5;SHA1;PhotoDNA;Image ID;...)"
    default_category_map = "icse"

    def detect(self, path: Path, head: bytes) -> bool:
        first = text_head(head).lstrip().split("\n", 1)[0]
        cols = [_norm(c) for c in first.split(";")]
        return all(r in cols for r in REQUIRED)

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        with open_text(ctx, records=True) as f:
            reader = csv.reader(f, delimiter=";")
            try:
                header = [_norm(c) for c in next(reader)]
            except StopIteration:
                raise fail(ctx, 1, "empty file") from None
            f.mark()
            cols = {c: i for i, c in enumerate(header)}
            missing = [r for r in REQUIRED if r not in cols]
            if missing:
                raise fail(ctx, 1, f"ICSE header lacks {', '.join(missing)}")

            def cell(row: list[str], name: str) -> str | None:
                i = cols.get(name)
                if i is None or i >= len(row):
                    return None
                v = row[i].strip()
                return v or None

            try:
                for row in reader:
                    lineno = reader.line_num
                    f.mark()
                    if not row or not any(c.strip() for c in row):
                        continue
                    hashes: dict[str, str] = {}
                    try:
                        for alg, col in (("md5", "md5"), ("sha1", "sha1")):
                            v = cell(row, col)
                            if v:
                                hashes[alg] = get(alg).normalize(v)
                        pd = cell(row, "photodna")
                        photodna = get("photodna").normalize(pd) if pd else None
                    except ValueError as e:
                        yield Rejected(lineno, str(e))
                        continue
                    if not hashes and photodna is None:
                        yield Rejected(lineno, "no MD5, SHA1 or PhotoDNA value")
                        continue
                    baseline = parse_flag(cell(row, "baseline"))
                    yield Record(
                        lineno, hashes,
                        category_raw=None if baseline is None
                        else ("baseline" if baseline else "non-baseline"),
                        series=cell(row, "series name"),
                        victim_identified=parse_flag(cell(row, "victim identified")),
                        offender_identified=parse_flag(cell(row, "offender identified")),
                        is_distributed=parse_flag(cell(row, "is distributed")),
                        baseline=baseline, entry_ref=cell(row, "image id"), photodna=photodna)
            except csv.Error as e:
                raise fail(ctx, reader.line_num, f"malformed CSV: {e}") from e
