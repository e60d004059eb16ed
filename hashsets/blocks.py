"""Block-hash sets: recognising fragments of known files by the MD5 of their 4 KiB blocks
(issue 17; the method of hashdb with bulk_extractor, Garfinkel et al., "Using purpose-built
functions and block hashes to enable small block and sub-file forensics", DFRWS 2010).

Import (:func:`import_blocks`): for every file of a folder, the MD5 of every 4096-byte block
that starts at a multiple of 512 bytes in the file (hashdb's defaults: 4096-byte blocks,
512-byte sectors). Dropped, because they say nothing about which file they came from:
blocks of one repeated byte (zeros, 0xFF fill), and blocks found in more than
``max_files`` different known files or more than :data:`MAX_REPEATS` times in one file.

Matching (:class:`BlockIndex`): data on a disk starts at a sector boundary, so any 4096
bytes of a known file's fragment that start at a sector boundary of its file equal one
imported block; a scan hashes the searched data every 4096 bytes and looks each MD5 up.

The block set lives beside the hash-set store, in its own SQLite file
(``<store>.blocks.sqlite``, :func:`block_store_path`), so the store's schema is untouched.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

BLOCK = 4096
STEP = 512
#: A block found more often than this within one known file is a pattern, not evidence.
MAX_REPEATS = 8
DEFAULT_MAX_FILES = 4
SCHEMA = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS known (
    id            INTEGER PRIMARY KEY,
    set_name      TEXT NOT NULL,
    path          TEXT NOT NULL,     -- relative to the folder imported
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    indexed_bytes INTEGER NOT NULL,  -- bytes of the file covered by kept blocks
    UNIQUE (set_name, path)
) STRICT;
CREATE TABLE IF NOT EXISTS blocks (
    md5      BLOB NOT NULL,
    known_id INTEGER NOT NULL REFERENCES known(id),
    offset   INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS blocks_md5 ON blocks(md5);
"""


def block_store_path(store: Path) -> Path:
    """The block set beside a hash-set store file: ``hashsets.sqlite`` ->
    ``hashsets.blocks.sqlite``."""
    return store.with_name(store.stem + ".blocks.sqlite")


def _windows(path: Path) -> Iterator[tuple[int, bytes]]:
    """(offset, MD5) of every BLOCK-byte window at a multiple of STEP, read once."""
    buf = b""
    base = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            buf = buf + chunk if buf else chunk
            last = not chunk
            pos = 0
            while pos + BLOCK <= len(buf):
                window = buf[pos:pos + BLOCK]
                if window.count(window[:1]) != BLOCK:  # not one repeated byte
                    yield base + pos, hashlib.md5(window).digest()
                pos += STEP
            base += pos
            buf = buf[pos:]
            if last:
                return


@dataclass(frozen=True)
class ImportStats:
    files: int
    blocks_kept: int
    blocks_dropped_common: int
    files_without_blocks: tuple[str, ...]


def import_blocks(folder: Path, db: Path, *, name: str | None = None,
                  max_files: int = DEFAULT_MAX_FILES) -> ImportStats:
    """Import every regular file under ``folder`` (symbolic links not followed, sorted by
    path) as set ``name`` (default: the folder's name), replacing a set of that name."""
    set_name = name or folder.resolve().name
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    try:
        conn.executescript(_DDL)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
        with conn:
            old = [r[0] for r in conn.execute("SELECT id FROM known WHERE set_name=?",
                                              (set_name,))]
            conn.executemany("DELETE FROM blocks WHERE known_id=?", [(i,) for i in old])
            conn.execute("DELETE FROM known WHERE set_name=?", (set_name,))
            conn.execute("CREATE TEMP TABLE staged (md5 BLOB, known_id INTEGER, "
                         "offset INTEGER)")
            files = 0
            empty: list[str] = []
            for path in _files(folder):
                rel = path.relative_to(folder).as_posix()
                sha = hashlib.sha256()
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        sha.update(chunk)
                cur = conn.execute(
                    "INSERT INTO known(set_name, path, size, sha256, indexed_bytes) "
                    "VALUES (?, ?, ?, ?, 0)",
                    (set_name, rel, path.stat().st_size, sha.hexdigest()))
                kid = cur.lastrowid
                files += 1
                conn.executemany("INSERT INTO staged VALUES (?, ?, ?)",
                                 ((md5, kid, off) for off, md5 in _windows(path)))
            total = conn.execute("SELECT count(*) FROM staged").fetchone()[0]
            conn.execute("CREATE TEMP TABLE counts AS SELECT md5, known_id, count(*) AS n "
                         "FROM staged GROUP BY md5, known_id")
            conn.execute("CREATE TEMP TABLE common AS SELECT md5 FROM counts GROUP BY md5 "
                         "HAVING count(*) > ? OR max(n) > ?", (max_files, MAX_REPEATS))
            conn.execute("CREATE INDEX temp.common_md5 ON common(md5)")
            conn.execute("INSERT INTO blocks SELECT md5, known_id, offset FROM staged "
                         "WHERE md5 NOT IN (SELECT md5 FROM common) "
                         "ORDER BY known_id, offset")
            kept = conn.execute("SELECT count(*) FROM blocks b JOIN known k ON "
                                "k.id = b.known_id WHERE k.set_name=?",
                                (set_name,)).fetchone()[0]
            for kid, rel in conn.execute("SELECT id, path FROM known WHERE "
                                               "set_name=?", (set_name,)).fetchall():
                offsets = [r[0] for r in conn.execute(
                    "SELECT offset FROM blocks WHERE known_id=? ORDER BY offset", (kid,))]
                covered = _union([(o, o + BLOCK) for o in offsets])
                conn.execute("UPDATE known SET indexed_bytes=? WHERE id=?", (covered, kid))
                if not offsets:
                    empty.append(rel)
            conn.execute("DROP TABLE staged")
            conn.execute("DROP TABLE counts")
            conn.execute("DROP TABLE common")
        return ImportStats(files, kept, total - kept, tuple(empty))
    finally:
        conn.close()


def _files(folder: Path) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for n in sorted(names):
            p = Path(root) / n
            if p.is_file() and not p.is_symlink():
                yield p


def _union(intervals: Iterable[tuple[int, int]]) -> int:
    total = 0
    end = -1
    for s, e in sorted(intervals):
        if s >= end:
            total += e - s
        elif e > end:
            total += e - end
        end = max(end, e)
    return total


@dataclass(frozen=True)
class Known:
    set_name: str
    path: str
    size: int
    sha256: str
    indexed_bytes: int


class BlockIndex:
    """A block set opened read-only for lookups (in a worker)."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)

    def lookup(self, md5s: list[bytes]) -> dict[bytes, list[tuple[int, int]]]:
        """{md5: [(known id, offset in the known file), ...]} for the MD5s that are in
        the set (asked 500 at a time)."""
        out: dict[bytes, list[tuple[int, int]]] = {}
        for i in range(0, len(md5s), 500):
            part = md5s[i:i + 500]
            for md5, kid, off in self.conn.execute(
                    f"SELECT md5, known_id, offset FROM blocks WHERE md5 IN "
                    f"({','.join('?' * len(part))})", part):
                out.setdefault(bytes(md5), []).append((int(kid), int(off)))
        return out

    def known(self, kid: int) -> Known:
        r = self.conn.execute("SELECT set_name, path, size, sha256, indexed_bytes FROM known "
                              "WHERE id=?", (kid,)).fetchone()
        return Known(str(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4]))

    def close(self) -> None:
        self.conn.close()


def covered_bytes(offsets: Iterable[int]) -> int:
    """Bytes of a known file covered by matched blocks at these file offsets."""
    return _union((o, o + BLOCK) for o in offsets)
