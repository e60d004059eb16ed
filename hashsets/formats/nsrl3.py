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

from ..algorithms import get
from .base import Format, Item, ParseContext, Record, Rejected, fail

SQLITE_MAGIC = b"SQLite format 3\x00"
_ALGS = ("sha256", "sha1", "md5")


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
            normalizers = [get(a).normalize for a in algs]
            cur = conn.execute(f"SELECT {', '.join(algs)} FROM {source}")
            ref = 0
            while True:
                try:
                    rows = cur.fetchmany(50_000)
                except sqlite3.Error as e:
                    raise fail(ctx, ref + 1, f"cannot read {source}: {e}") from e
                if not rows:
                    break
                for row in rows:
                    ref += 1
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
        finally:
            conn.close()


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
