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

``verify`` reads every value back from SQLite. At import the entry table and the set row
are read back too; a hash table written in one sorted pass (imports up to
``SPILL_ROWS`` values) is digested from the arrays written, which are its rows in key order
(a test checks both ways agree), so that large imports do not pay for a read-back.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

#: Version of the digest layout (stored with it; a digest of another version is not
#: compared but reported).
DIGEST_VERSION = 1
#: Rows fetched per step while digesting a hash table (about 10 MB of Python objects).
FETCH_ROWS = 200_000
#: Entry rows fetched per step (each up to 12 text values).
ENTRY_FETCH_ROWS = 20_000
#: Rows digested per slice from the import's arrays (about 24 MB for MD5).
DIGEST_ROWS = 1 << 20


def _sha(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"),
                      default=str).encode("ascii")


def rows_digest(values: npt.NDArray[np.uint8], refs: npt.NDArray[np.int64],
                hasher: Any | None = None) -> Any:
    """Feed rows (``values``: ``(n, nbytes)`` uint8, ``refs``: int64, already in key order)
    to a SHA-256 hasher (a new one when None): value bytes, then ref as 8 bytes big-endian,
    per row. Returns the hasher."""
    h = hasher if hasher is not None else hashlib.sha256()
    n, nbytes = values.shape
    for i in range(0, n, DIGEST_ROWS):  # a slice at a time: bounded extra memory
        v, r = values[i:i + DIGEST_ROWS], refs[i:i + DIGEST_ROWS]
        block = np.empty((len(v), nbytes + 8), dtype=np.uint8)
        block[:, :nbytes] = v
        block[:, nbytes:] = r.astype(">i8").view(np.uint8).reshape(-1, 8)
        h.update(block.tobytes())
    return h


def hash_table_digest(conn: sqlite3.Connection, table: str, nbytes: int) -> str:
    """SHA-256 over the rows of one hash table in key order (:func:`rows_digest`), read
    back from SQLite. A value of the wrong length (a damaged or altered row) is digested
    as it is, so it changes the result."""
    h = hashlib.sha256()
    cur = conn.execute(f"SELECT value, ref FROM {table} ORDER BY value, ref")
    while rows := cur.fetchmany(FETCH_ROWS):
        values, refs = zip(*rows, strict=True)
        if all(isinstance(v, bytes) for v in values) and set(map(len, values)) == {nbytes}:
            rows_digest(np.frombuffer(b"".join(values), dtype=np.uint8).reshape(-1, nbytes),
                        np.array(refs, dtype=np.int64), h)
        else:
            for v, r in zip(values, refs, strict=True):
                raw = bytes(v) if isinstance(v, bytes | memoryview) else _canonical(v)
                h.update(raw + int(r).to_bytes(8, "big", signed=True))
    return h.hexdigest()


def entry_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")')]


def entry_digests(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """One SHA-256 per column of an entry table: its values in ``ref`` order, each as
    SQLite's ``quote()`` literal (type and value, self-delimiting) followed by 0x1e. The
    ``ref`` column is one of them, so the row a value belongs to is covered too."""
    columns = entry_columns(conn, table)
    hashers = {c: hashlib.sha256() for c in columns}
    cur = conn.execute(f"SELECT {', '.join(f'quote({c})' for c in columns)} FROM {table} "
                       "ORDER BY ref")
    while rows := cur.fetchmany(ENTRY_FETCH_ROWS):
        _update(hashers, columns, zip(*rows, strict=True))
    return {c: h.hexdigest() for c, h in hashers.items()}


def _update(hashers: Mapping[str, Any], columns: Sequence[str],
            values: Iterable[Sequence[str]]) -> None:
    for c, col in zip(columns, values, strict=True):
        hashers[c].update(("\x1e".join(col) + "\x1e").encode("utf-8", "surrogatepass"))


class EntryDigest:
    """The entry digests of :func:`entry_digests`, computed while the importer writes the
    rows (in ``ref`` order, the values as it binds them), so that an import does not read
    its entries back. ``result`` is None when a value's literal cannot be told here (the
    caller then reads the table back)."""

    def __init__(self, columns: Sequence[str], integer: Iterable[str] = ()) -> None:
        self.columns = list(columns)
        self.hashers = {c: hashlib.sha256() for c in self.columns}
        self.exact = True
        #: Per column: True for INTEGER affinity, False for TEXT (SQLite converts a value
        #: bound to a column of the other affinity; such a row is read back instead).
        self.integer = [c in set(integer) for c in self.columns]

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """Digest a batch of rows as bound (column by column: list comprehensions and C
        string joins, no Python call per value)."""
        if not self.exact or not rows:
            return
        none = type(None)
        for c, col, as_int in zip(self.columns, zip(*rows, strict=True), self.integer,
                                  strict=True):
            kinds = set(map(type, col)) - {none}
            if kinds - ({int} if as_int else {str}):
                self.exact = False  # SQLite would convert it: read the table back
                return
            if as_int:
                text = "\x1e".join(["NULL" if v is None else str(v) for v in col])
            else:
                text = "\x1e".join(["NULL" if v is None else "'" + v.replace("'", "''") + "'"
                                    for v in col])
                if "\x00" in text:  # quote() stops at a NUL: read the table back
                    self.exact = False
                    return
            self.hashers[c].update((text + "\x1e").encode("utf-8", "surrogatepass"))

    def result(self) -> dict[str, str] | None:
        return {c: h.hexdigest() for c, h in self.hashers.items()} if self.exact else None


def set_row_digests(row: Mapping[str, Any]) -> dict[str, str]:
    """One SHA-256 per field of the set's row (as stored: text, numbers, JSON text)."""
    return {k: _sha([_canonical(v)]) for k, v in sorted(row.items())}


def compute(conn: sqlite3.Connection, row: Mapping[str, Any], tables: Mapping[str, str],
            nbytes: Mapping[str, int], entry_table: str | None,
            known: Mapping[str, str] | None = None,
            entries: Mapping[str, str] | None = None,
            video_table: str | None = None) -> dict[str, Any]:
    """The digest of one set: ``row`` is its ``sets`` row without ``num`` and ``digest``,
    ``tables`` maps algorithm to hash table, ``nbytes`` algorithm to value length.
    ``known`` holds hash-table digests the importer computed from the very arrays it wrote
    in one sorted pass (the table's rows in key order: the same bytes, without reading
    them back); the other tables are read back. ``entries``: the entry digests the
    importer computed while writing (:class:`EntryDigest`), else the table is read back."""
    known = known or {}
    return {
        "version": DIGEST_VERSION,
        "set": set_row_digests(row),
        "hashes": {alg: known[alg] if alg in known else hash_table_digest(conn, t, nbytes[alg])
                   for alg, t in sorted(tables.items())},
        "entries": (dict(entries) if entries is not None else
                    entry_digests(conn, entry_table) if entry_table else {}),
        # A video set's frames (``v{num}``, read back: one row per video), per column.
        **({"videos": entry_digests(conn, video_table)} if video_table else {}),
    }


def differences(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The parts that differ, named for a reader: ``md5 values``, ``entry field
    'category'``, ``set field 'known'``, ``entry table missing``..."""
    out: list[str] = []
    for part, what in (("set", "set field"), ("hashes", "stored values of"),
                       ("entries", "entry field"), ("videos", "video field")):
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
