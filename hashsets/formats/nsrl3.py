"""NIST NSRL RDSv3: a SQLite database (minimal or full edition).

Hashes are read from the ``DISTINCT_HASH`` view (sha256, sha1, md5, crc32; one row per
distinct file content) when present, else from ``FILE`` (a table in the minimal edition, a
view over ``METADATA`` in the full one). Hashes are upper-case hex; the record number is
the row's position in that query.

The database is someone else's file and is read as hostile (SQLite's "Defense Against the
Dark Arts", https://sqlite.org/security.html): opened read-only and ``immutable`` (what is
read is exactly the bytes that were hashed: no journal or WAL beside it is consulted),
``trusted_schema`` off, no memory map, a bounded page cache with temporary data on disk,
``SQLITE_LIMIT_LENGTH`` at ``sqlite_value_bytes`` (a view returning ``zeroblob(900 MB)``
fails with SQLITE_TOOBIG instead of allocating it), a progress handler that interrupts a
query producing no row for ``sqlite_stall_seconds`` or running longer than
``sqlite_seconds``, and every object read (``DISTINCT_HASH``, ``FILE``, ``VERSION``) is
refused when its query plan holds a recursive common table expression (a view that never
ends).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..algorithms import get
from ..errors import HashSetFileError
from .base import Batch, BulkItem, Format, Item, ParseContext, Record, Rejected, fail
from .bounds import ImportLimits, clip, exceeded
from .bulk import decode_hex_column

SQLITE_MAGIC = b"SQLite format 3\x00"
_ALGS = ("sha256", "sha1", "md5")
#: Rows fetched (and turned into one Batch) at a time.
FETCH_ROWS = 100_000


#: Page cache of the hostile database's connection (negative: KiB; SQLite's PRAGMA
#: cache_size convention): 64 MiB, temporary B-trees beyond it go to temporary files.
CACHE_KIB = 64 * 1024
#: SQLite virtual-machine instructions between two calls of the progress handler.
PROGRESS_STEPS = 100_000


def _connect(path: Path, limits: ImportLimits | None = None) -> sqlite3.Connection:
    """A read-only, immutable connection with the bounds of the module doc applied."""
    limits = limits or ImportLimits()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.sqlite_value_bytes)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        for pragma in ("trusted_schema=OFF", "mmap_size=0", "cell_size_check=ON",
                       "temp_store=FILE", f"cache_size=-{CACHE_KIB}"):
            conn.execute(f"PRAGMA {pragma}")
    except BaseException:
        conn.close()
        raise
    return conn


class _Clock:
    """The progress handler: interrupts SQLite when no row came for ``stall`` seconds or
    the read has run ``total`` seconds; ``reason`` then says which bound."""

    def __init__(self, limits: ImportLimits) -> None:
        self.limits = limits
        self.start = self.last = time.monotonic()
        self.reason: str | None = None

    def row(self) -> None:
        self.last = time.monotonic()

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self.last > self.limits.sqlite_stall_seconds:
            self.reason = "sqlite_stall_seconds"
        elif now - self.start > self.limits.sqlite_seconds:
            self.reason = "sqlite_seconds"
        return 1 if self.reason else 0


def _refuse_recursive(ctx: ParseContext, conn: sqlite3.Connection, sql: str,
                      source: str) -> None:
    """Raise when the plan of ``sql`` holds a recursive CTE (NIST's views do not)."""
    try:
        plan = [str(r[3]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    except sqlite3.Error as e:
        raise fail(ctx, None, f"cannot read {source}: {e}") from e
    if any("RECURSIVE" in step.upper() for step in plan):
        raise fail(ctx, None, f"{source} is a view over a recursive query, which no RDSv3 "
                              "database has (it may never end); refused, nothing imported")


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
        limits = ctx.limits
        try:
            conn = _connect(ctx.path, limits)
        except sqlite3.Error as e:
            raise fail(ctx, None, f"cannot open as SQLite: {e}") from e
        clock = _Clock(limits)
        conn.set_progress_handler(clock, PROGRESS_STEPS)
        source = "the schema"
        ref = 0
        try:
            names = _objects(conn)
            source = "DISTINCT_HASH" if "DISTINCT_HASH" in names else "FILE"
            if source not in names:
                raise fail(ctx, None, "no FILE table/view or DISTINCT_HASH view: not an "
                                      "RDSv3 database")
            ctx.info["read_from"] = source
            ctx.version = _version(ctx, conn, names, clock)
            cols = {r[1].lower() for r in conn.execute(f"PRAGMA table_info({source})")}
            algs = [a for a in _ALGS if a in cols]
            if not algs:
                raise fail(ctx, None, f"{source} has no sha256/sha1/md5 column")
            sql = f"SELECT {', '.join(algs)} FROM {source}"
            _refuse_recursive(ctx, conn, sql, source)
            clock.row()
            cur = conn.execute(sql)
            while True:
                rows = cur.fetchmany(FETCH_ROWS)
                if not rows:
                    break
                yield ref, algs, rows
                clock.row()  # the time the consumer took is not SQLite's stall
                ref += len(rows)
        except sqlite3.Error as e:
            raise _sqlite_error(ctx, e, clock, source, ref + 1) from e
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


def _sqlite_error(ctx: ParseContext, e: sqlite3.Error, clock: _Clock, source: str,
                  ref: int) -> HashSetFileError:
    """The error of a failed read: the bound hit (time, value length) or SQLite's words."""
    limits = ctx.limits
    name = getattr(e, "sqlite_errorname", "")
    if clock.reason == "sqlite_stall_seconds":
        return exceeded(ctx.path, f"reading {source}", "no row for "
                        f"{limits.sqlite_stall_seconds:g} s", limits, clock.reason)
    if clock.reason == "sqlite_seconds":
        return exceeded(ctx.path, f"reading {source}", "the read ran "
                        f"{limits.sqlite_seconds:g} s", limits, clock.reason)
    if name == "SQLITE_TOOBIG":
        return exceeded(ctx.path, f"record {ref} of {source}", "a value too long",
                        limits, "sqlite_value_bytes")
    return fail(ctx, ref, f"cannot read {source}: {e}")


def _version(ctx: ParseContext, conn: sqlite3.Connection, names: set[str], clock: _Clock
             ) -> str | None:
    if "VERSION" not in names:
        return None
    _refuse_recursive(ctx, conn, "SELECT * FROM VERSION LIMIT 1", "VERSION")
    try:
        clock.row()
        row = conn.execute("SELECT * FROM VERSION LIMIT 1").fetchone()
        cols = [d[0].lower() for d in conn.execute("SELECT * FROM VERSION LIMIT 0").description]
    except sqlite3.Error:
        if clock.reason:
            raise
        return None
    if not row:
        return None
    data = dict(zip(cols, row, strict=True))
    parts = [clip(str(data[k]), 80) for k in ("version", "build_set", "build_date")
             if data.get(k)]
    return " ".join(parts) or None
