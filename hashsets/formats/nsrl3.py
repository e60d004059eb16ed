"""NIST NSRL RDSv3: a SQLite database (minimal or full edition).

Hashes are read from the ``DISTINCT_HASH`` view (sha256, sha1, md5, crc32; one row per
distinct file content) when present, else from ``FILE`` (a table in the minimal edition, a
view over ``METADATA`` in the full one). Hashes are upper-case hex; the record number is
the row's position in that query. The database is opened read-only and never changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..algorithms import get
from .base import Batch, BulkItem, Format, Item, ParseContext, Record, Rejected, fail
from .bulk import decode_hex_column

SQLITE_MAGIC = b"SQLite format 3\x00"
_ALGS = ("sha256", "sha1", "md5")
#: Rows fetched (and turned into one Batch) at a time.
FETCH_ROWS = 100_000


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _objects(conn: sqlite3.Connection) -> set[str]:
    return {r[0].upper() for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


class NSRLRDS3(Format):
    name = "nsrl-rds3"
    description = "NIST NSRL RDSv3 SQLite database, minimal or full edition (known files)"
    known = True
    default_category_map = "known"

    def detect(self, path: Path, head: bytes) -> bool:
        if not head.startswith(SQLITE_MAGIC):
            return False
        try:
            conn = _connect(path)
            try:
                names = _objects(conn)
            finally:
                conn.close()
        except sqlite3.Error:
            return False
        return "FILE" in names or "DISTINCT_HASH" in names

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        for _ref, algs, rows in self._blocks(ctx):
            yield from _rows(_ref, algs, rows)

    def parse_bulk(self, ctx: ParseContext) -> Iterator[BulkItem]:
        return self._bulk(ctx)

    def _bulk(self, ctx: ParseContext) -> Iterator[BulkItem]:
        for ref0, algs, rows in self._blocks(ctx):
            batch = _batch(ref0, algs, rows)
            if batch is None:  # some value is odd: the per-row code says which and why
                yield from _rows(ref0, algs, rows)
            else:
                yield batch

    def _blocks(self, ctx: ParseContext
                ) -> Iterator[tuple[int, list[str], list[tuple[str | None, ...]]]]:
        """``(record number before the block, algorithms, rows)`` per fetched block."""
        try:
            conn = _connect(ctx.path)
        except sqlite3.Error as e:
            raise fail(ctx, None, f"cannot open as SQLite: {e}") from e
        try:
            names = _objects(conn)
            source = "DISTINCT_HASH" if "DISTINCT_HASH" in names else "FILE"
            if source not in names:
                raise fail(ctx, None, "no FILE table/view or DISTINCT_HASH view: not an "
                                      "RDSv3 database")
            ctx.info["read_from"] = source
            ctx.version = _version(conn, names)
            cols = {r[1].lower() for r in conn.execute(f"PRAGMA table_info({source})")}
            algs = [a for a in _ALGS if a in cols]
            if not algs:
                raise fail(ctx, None, f"{source} has no sha256/sha1/md5 column")
            cur = conn.execute(f"SELECT {', '.join(algs)} FROM {source}")
            ref = 0
            while True:
                try:
                    rows = cur.fetchmany(FETCH_ROWS)
                except sqlite3.Error as e:
                    raise fail(ctx, ref + 1, f"cannot read {source}: {e}") from e
                if not rows:
                    break
                yield ref, algs, rows
                ref += len(rows)
        finally:
            conn.close()


def _rows(ref0: int, algs: list[str], rows: list[tuple[str | None, ...]]) -> Iterator[Item]:
    """One Record or Rejected per row (the reference rules)."""
    normalizers = [get(a).normalize for a in algs]
    for ref, row in enumerate(rows, ref0 + 1):
        hashes: dict[str, str] = {}
        try:
            for alg, norm, v in zip(algs, normalizers, row, strict=True):
                if v:  # an absent hash column value is not an error
                    hashes[alg] = norm(v)
        except ValueError as e:
            yield Rejected(ref, str(e))
            continue
        if not hashes:
            yield Rejected(ref, "no hash values")
            continue
        yield Record(ref, hashes)


def _batch(ref0: int, algs: list[str], rows: list[tuple[str | None, ...]]) -> Batch | None:
    """The block as one Batch, or None unless every row is plainly valid."""
    columns = list(zip(*rows, strict=True))
    values: dict[str, npt.NDArray[np.uint8]] = {}
    present: dict[str, npt.NDArray[np.bool_]] = {}
    any_value = np.zeros(len(rows), dtype=bool)
    for alg, col in zip(algs, columns, strict=True):
        n_hex = get(alg).hex_length
        mask = np.fromiter(map(bool, col), dtype=bool, count=len(col))
        if mask.all():
            raw = decode_hex_column(list(col), n_hex)
        else:
            raw = decode_hex_column([v for v in col if v], n_hex)
            if raw is not None:
                full = np.zeros((len(col), n_hex // 2), dtype=np.uint8)
                full[mask] = raw
                raw = full
                present[alg] = mask
        if raw is None:
            return None
        values[alg] = raw
        any_value |= mask
    if not any_value.all():
        return None
    return Batch(np.arange(ref0 + 1, ref0 + 1 + len(rows), dtype=np.int64), values, present)


def _version(conn: sqlite3.Connection, names: set[str]) -> str | None:
    if "VERSION" not in names:
        return None
    try:
        row = conn.execute("SELECT * FROM VERSION LIMIT 1").fetchone()
        cols = [d[0].lower() for d in conn.execute("SELECT * FROM VERSION LIMIT 0").description]
    except sqlite3.Error:
        return None
    if not row:
        return None
    data = dict(zip(cols, row, strict=True))
    parts = [str(data[k]) for k in ("version", "build_set", "build_date") if data.get(k)]
    return " ".join(parts) or None
