"""Content digests of an imported set (issue 14 #6): what ``hashset verify`` checks the
stored values and fields against.

At import the store records, in the set's ``digest`` column, one SHA-256 per part of the
set as stored:

* ``set``: one per field of the set's row (name, format, version, source, counts, category
  mapping, known flag, format details...);
* ``hashes``: one per algorithm, over the rows of ``h{num}_{algorithm}`` in key order, each
  row the raw value bytes followed by its ``ref`` as 8 bytes big-endian;
* ``entries``: one per column of the entry table ``e{num}`` (``ref``, category, series,
  flags, name, fields...), over ``[ref, value]`` JSON lines in ``ref`` order.

``verify`` recomputes them from the store and names every part that differs (an ``UPDATE``
of one stored MD5 changes ``hashes/md5``; of one category, ``entries/category``). The
digest lives in the same file as the rows it covers: it detects changes made with SQL, by
another program, or by damage, not by someone who recomputes it; the source file's SHA-256
(checked by ``verify`` too) and a re-import from it remain the independent anchor.

Every value is read back from SQLite (never taken from the importer's memory), so import
and verify compute the digest with the same code over the same rows.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: Version of the digest layout (stored with it; a digest of another version is not
#: compared but reported).
DIGEST_VERSION = 1
#: Rows fetched per step while digesting a hash table.
FETCH_ROWS = 200_000


def _sha(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"),
                      default=str).encode("ascii")


def hash_table_digest(conn: sqlite3.Connection, table: str, nbytes: int) -> str:
    """SHA-256 over the rows of one hash table in key order: value bytes, then ref as 8
    bytes big-endian, per row. A value of the wrong length (a damaged or altered row) is
    digested as it is, so it changes the result."""
    h = hashlib.sha256()
    cur = conn.execute(f"SELECT value, ref FROM {table} ORDER BY value, ref")
    while rows := cur.fetchmany(FETCH_ROWS):
        values = [bytes(v) if isinstance(v, bytes | memoryview) else _canonical(v)
                  for v, _ in rows]
        refs = np.array([int(r) for _, r in rows], dtype=">i8")
        if all(len(v) == nbytes for v in values):
            block = np.empty((len(rows), nbytes + 8), dtype=np.uint8)
            block[:, :nbytes] = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(
                -1, nbytes)
            block[:, nbytes:] = refs.view(np.uint8).reshape(-1, 8)
            h.update(block.tobytes())
        else:
            for v, r in zip(values, refs.tolist(), strict=True):
                h.update(v + int(r).to_bytes(8, "big", signed=True))
    return h.hexdigest()


def entry_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")')]


def entry_digests(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """One SHA-256 per column of an entry table, over ``[ref, value]`` lines by ref."""
    columns = entry_columns(conn, table)
    hashers = {c: hashlib.sha256() for c in columns}
    cur = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY ref")
    while rows := cur.fetchmany(FETCH_ROWS):
        for row in rows:
            ref = row[0]
            for c, v in zip(columns, row, strict=True):
                hashers[c].update(_canonical([ref, v]) + b"\n")
    return {c: h.hexdigest() for c, h in hashers.items()}


def set_row_digests(row: Mapping[str, Any]) -> dict[str, str]:
    """One SHA-256 per field of the set's row (as stored: text, numbers, JSON text)."""
    return {k: _sha([_canonical(v)]) for k, v in sorted(row.items())}


def compute(conn: sqlite3.Connection, row: Mapping[str, Any], tables: Mapping[str, str],
            nbytes: Mapping[str, int], entry_table: str | None) -> dict[str, Any]:
    """The digest of one set: ``row`` is its ``sets`` row without ``num`` and ``digest``,
    ``tables`` maps algorithm to hash table, ``nbytes`` algorithm to value length."""
    return {
        "version": DIGEST_VERSION,
        "set": set_row_digests(row),
        "hashes": {alg: hash_table_digest(conn, t, nbytes[alg])
                   for alg, t in sorted(tables.items())},
        "entries": entry_digests(conn, entry_table) if entry_table else {},
    }


def differences(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The parts that differ, named for a reader: ``md5 values``, ``entry field
    'category'``, ``set field 'known'``, ``entry table missing``..."""
    out: list[str] = []
    for part, what in (("set", "set field"), ("hashes", "stored values of"),
                       ("entries", "entry field")):
        a = recorded.get(part) or {}
        b = now.get(part) or {}
        for key in sorted(set(a) | set(b)):
            if key not in b:
                out.append(f"{what} {key!r} is missing")
            elif key not in a:
                out.append(f"{what} {key!r} was not there at import")
            elif a[key] != b[key]:
                out.append(f"{what} {key!r}" if part != "hashes" else f"{key} values")
    return out
