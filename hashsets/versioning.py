"""Schema versions of the SQLite files this project writes, with forward migrations.

A file records its schema version in ``meta('schema_version')`` and, from version 2 on, in
SQLite's ``application_id`` header field too, so that a file can be recognised before
anything reads a table. Each kind of file (the hash-set store here, the case database in
``triage``) declares a :class:`SchemaLine`: its current version and the migrations that
lead to it, one per version step, in the manner of plaso's storage format versions: an
older file is brought forward step by step in ONE transaction, a newer one is refused with
a message that says which version of the software it needs.

The caller owns the transaction and the audit trail; :func:`keep_copy` keeps the file as it
was before a migration (SQLite's online backup, so the copy is consistent, WAL included).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: The first 16 bytes of every SQLite 3 database file (https://sqlite.org/fileformat.html).
SQLITE_HEADER = b"SQLite format 3\x00"


class SchemaError(Exception):
    """The file is not of this kind, or of a version this software cannot use."""


@dataclass(frozen=True)
class Migration:
    """One step: from ``version - 1`` to ``version``. ``apply`` runs inside the caller's
    transaction and must not commit."""

    version: int
    summary: str
    apply: Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class SchemaLine:
    """The versions of one kind of file (``what``: "case database", "hash-set store")."""

    what: str
    application_id: int
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        for i, m in enumerate(self.migrations):
            if m.version != i + 2:
                raise ValueError(f"{self.what}: migration {i} produces version {m.version}, "
                                 f"expected {i + 2} (one step per version, no gaps)")

    @property
    def current(self) -> int:
        return len(self.migrations) + 1

    def found_version(self, conn: sqlite3.Connection, path: Path) -> int:
        """The version recorded in the file; :class:`SchemaError` when it is not one of ours
        (another application's id, no ``meta`` table, a version that is not a number)."""
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        if app not in (0, self.application_id):
            raise SchemaError(f"{path}: not a triage {self.what} (SQLite application id "
                              f"{app:#010x})")
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise SchemaError(f"{path}: not a triage {self.what} ({e})") from e
        if row is None:
            raise SchemaError(f"{path}: not a triage {self.what} (no schema version)")
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise SchemaError(f"{path}: not a triage {self.what} (schema version "
                              f"{str(row[0])[:40]!r})") from None

    def plan(self, found: int, path: Path) -> tuple[Migration, ...]:
        """The migrations that bring ``found`` to :attr:`current` (empty when current);
        :class:`SchemaError` for a file written by a newer version."""
        if found > self.current:
            raise SchemaError(
                f"{path}: this {self.what} has schema version {found}, written by a newer "
                f"triage; this triage reads versions 1 to {self.current}. Open it with the "
                "newer version (nothing was changed).")
        if found < 1:
            raise SchemaError(f"{path}: schema version {found} is not valid")
        return self.migrations[found - 1:]

    def stamp(self, conn: sqlite3.Connection, version: int | None = None) -> None:
        """Record the version (inside the caller's transaction)."""
        conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                     (str(version or self.current),))
        # A PRAGMA cannot take a parameter; the id is this module's own integer.
        conn.execute(f"PRAGMA application_id={int(self.application_id)}")


def is_sqlite_file(path: Path) -> bool:
    """True when ``path`` starts with the SQLite 3 header (read without SQLite)."""
    with open(path, "rb") as f:
        return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def keep_copy(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """Keep the database as it is now in ``<name>.schema-v<version>[.N]`` beside it (created
    0600, never overwriting); return the copy's path.

    The caller holds the file's exclusive use. With no write-ahead log content the copy is
    the file's exact bytes; otherwise SQLite's online backup makes a consistent copy that
    includes the log (same rows, not the same bytes)."""
    n = 0
    while True:
        suffix = f".schema-v{version}" + (f".{n}" if n else "")
        target = path.with_name(path.name + suffix)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            n += 1
            continue
        break
    wal = path.with_name(path.name + "-wal")
    try:
        if not wal.exists() or wal.stat().st_size == 0:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            return target
        os.close(fd)
        dest = sqlite3.connect(target)
        try:
            conn.backup(dest)
        finally:
            dest.close()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
