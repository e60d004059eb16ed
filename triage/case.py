"""The case database: one SQLite file per case, created private, append-only audit chain.

All SQL of the application lives here (and in :mod:`triage.matching`); callers hand in
plain values. Writes happen in batches, one transaction per batch, so that a crash loses at
most the batch in flight and never leaves half a batch (RELIABILITY.md #21).
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from hashsets.algorithms import stream_algorithms
from hashsets.versioning import (
    Migration,
    SchemaError,
    SchemaLine,
    is_sqlite_file,
    keep_copy,
)

from . import __version__, datadigest, faults
from .errors import CaseDataError, CaseError, CaseInUseError, EvidenceMismatchError
from .evidence_identity import differences as evidence_differences
from .identify import extension_of
from .model import (
    FileEntry,
    FileResult,
    InnerItem,
    MediaMetadata,
    PendingEntry,
    Problem,
    StoredEntry,
    VideoFacts,
)
from .util import canonical_json, display_bytes, utc_from_timestamp, utc_now

if TYPE_CHECKING:
    from .sources.base import EntryAmendment

#: Ids of items found inside files start here: entry ids stay below, in enumeration order,
#: and an item's id is derived from its top-level file's id and its ordinal (deterministic).
CHILD_ID_BASE = 1 << 60
CHILD_SLOTS = 1_000_000


def child_identity(parent_identity: str, ordinal: int, inner: tuple[bytes, ...]) -> str:
    """The identity of a file's inner item: the top-level file's identity, the item's
    ordinal (from 1) in the file's walk and its inner names (see
    :meth:`Case._insert_children`)."""
    return f"{parent_identity}!{ordinal}:{b'!'.join(inner).hex()}"
#: Stages whose error rows come from a file's result (rewritten with the result).
RESULT_STAGES = ("open", "read", "identify", "decode", "hash", "expand", "container",
                 "worker", "idle", "send", "unknown", "metadata")
DB_NAME = "case.sqlite"
GENESIS_HASH = "0" * 64
#: The triggers of schema.sql that refuse UPDATE and DELETE on the audit table.
APPEND_ONLY_TRIGGERS = ("audit_no_update", "audit_no_delete")
LOCK_NAME = "case.lock"
#: Files of a case that triage opens and must never reach through a symbolic link.
CASE_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", LOCK_NAME)
#: ``hash_variants.variant`` of a draft-decoded value that a full-decode confirmation
#: replaced in ``hashes`` (issue 14), and the preprocessing step that marks a draft decode
#: (written by :func:`triage.worker.decode_image`).
DRAFT_VARIANT = "draft"
DRAFT_STEP = "JPEG draft decode"
#: Tables of a file's metadata (issue 16), rewritten with its result.
METADATA_TABLES = ("media_metadata", "metadata_tags")
VARIANT_INSERT = ("INSERT OR REPLACE INTO hash_variants(file_id, algorithm, variant, value, "
                  "quality, preprocessing) VALUES (?, ?, ?, ?, ?, ?)")


def _v4_no_libmagic_description(c: sqlite3.Connection) -> None:
    # libmagic's description can quote text from inside a file (a script's shebang line,
    # JPEG comments): nothing from inside files is kept, so the column goes, old values too.
    c.execute("ALTER TABLE files DROP COLUMN magic")
    # A '!' in a file-system name is shown as \x21 (a bare '!' only ever means "inside"):
    # the display paths of such files, and of the items found inside them, are redone.
    for fid, path, display in c.execute(
            "SELECT id, path, display_path FROM files WHERE parent_id IS NULL AND "
            "instr(path, X'21') > 0").fetchall():
        new = display_bytes(bytes(path))
        if new == display:
            continue
        c.execute("UPDATE files SET display_path=? WHERE id=?", (new, fid))
        first = CHILD_ID_BASE + int(fid) * CHILD_SLOTS
        c.execute("UPDATE files SET display_path = ? || substr(display_path, ?) "
                  "WHERE id BETWEEN ? AND ? AND substr(display_path, 1, ?) = ?",
                  (new + "!", len(display) + 2, first, first + CHILD_SLOTS - 1,
                   len(display) + 1, display + "!"))
    for fid, target in c.execute(
            "SELECT id, link_target FROM files WHERE link_target IS NOT NULL AND "
            "instr(link_target, X'21') > 0").fetchall():
        c.execute("UPDATE files SET link_display=? WHERE id=?",
                  (display_bytes(bytes(target)), fid))


def _v2_evidence_identity(c: sqlite3.Connection) -> None:
    c.execute("ALTER TABLE evidence ADD COLUMN identity TEXT")


def _v3_worker_crashes(c: sqlite3.Connection) -> None:
    # Older cases counted every dispatch towards quarantine; their crashes are unknown and
    # start at 0 (issue 11 #7: a scan killed while a file was in flight is no fault of it).
    c.execute("ALTER TABLE files ADD COLUMN worker_crashes INTEGER NOT NULL DEFAULT 0")


_V4_STATUS_CHECK = ("CHECK (status IN ('pending', 'done', 'error', 'skipped', "
                    "'quarantined'))")
_V5_STATUS_CHECK = ("CHECK (status IN ('pending', 'done', 'skipped', 'incomplete', 'error',\n"
                    "                                      'quarantined'))")


def _v5_incomplete_status(c: sqlite3.Connection) -> None:
    # Issue 12's outcome classes add the status 'incomplete' (a coverage gap). A CHECK
    # constraint cannot be altered; widening one so that every existing row still passes is
    # SQLite's documented "simpler procedure" for constraint changes (lang_altertable.html,
    # section 7): rewrite the table's SQL in sqlite_schema, bump schema_version, and check.
    sql = c.execute("SELECT sql FROM sqlite_schema WHERE type='table' AND name='files'"
                    ).fetchone()[0]
    if _V5_STATUS_CHECK in sql:
        return  # already widened (a case stamped older by hand, as in a test)
    if _V4_STATUS_CHECK not in sql:
        raise sqlite3.DatabaseError("files table: status constraint not as written by "
                                    "version 4; not migrating")
    version = c.execute("PRAGMA schema_version").fetchone()[0]
    c.execute("PRAGMA writable_schema=ON")
    try:
        c.execute("UPDATE sqlite_schema SET sql=? WHERE type='table' AND name='files'",
                  (sql.replace(_V4_STATUS_CHECK, _V5_STATUS_CHECK),))
        c.execute(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        c.execute("PRAGMA writable_schema=OFF")
    problems = c.execute("PRAGMA integrity_check").fetchall()
    if problems != [("ok",)]:
        raise sqlite3.DatabaseError(f"after widening the status constraint: {problems[:3]}")


def _v6_videos(c: sqlite3.Connection) -> None:
    # Issue 15: videos, their vPDQ frames and video hits, in tables of their own (schema.sql
    # holds their definitions: the same statements create them in a fresh case).
    sql = resources.files("triage").joinpath("schema.sql").read_text(encoding="utf-8")
    for name in ("videos", "video_frames", "video_matches"):
        start = sql.index(f"CREATE TABLE IF NOT EXISTS {name} (")
        c.execute(sql[start:sql.index(") STRICT;", start) + len(") STRICT")])
_V7_CARVED = """CREATE TABLE IF NOT EXISTS carved (
    file_id         INTEGER PRIMARY KEY REFERENCES files(id),
    area            TEXT NOT NULL CHECK (area IN ('unallocated', 'slack', 'unpartitioned')),
    volume_offset   INTEGER,              -- byte offset of the volume in the image
    image_offset    INTEGER NOT NULL,     -- byte offset of the item in the image
    length          INTEGER NOT NULL,     -- bytes carved (or searched, for a partial one)
    block_size      INTEGER,              -- the volume's block size
    first_block     INTEGER,              -- block range within the volume
    last_block      INTEGER,
    slack_of        TEXT,                 -- display path of the file whose slack held it
    format          TEXT NOT NULL,        -- jpg, png, gif, bmp, webp, heic, mp4, mov, ...
    partial         INTEGER NOT NULL DEFAULT 0,  -- 1: known incomplete (no end, no decode)
    same_as_file_id INTEGER REFERENCES files(id),  -- a listed file with the same SHA-256
    same_location   INTEGER               -- 1: that file's data starts at image_offset
) STRICT"""


_V7_FRAGMENTS = """CREATE TABLE IF NOT EXISTS fragments (
    file_id       INTEGER PRIMARY KEY REFERENCES files(id),  -- the hit (an inner item)
    set_name      TEXT NOT NULL,          -- the block-hash set
    known_path    TEXT NOT NULL,          -- the known file, as imported
    known_sha256  TEXT NOT NULL,
    known_size    INTEGER NOT NULL,
    indexed_bytes INTEGER NOT NULL,       -- bytes of the known file its kept blocks cover
    found_bytes   INTEGER NOT NULL,       -- of those, bytes found here
    blocks        INTEGER NOT NULL,       -- matching 4 KiB blocks
    first_offset  INTEGER NOT NULL,       -- where the first one was found
    runs          TEXT NOT NULL           -- JSON [[where found, known-file offset, length]]
) STRICT"""


def _v7_carved(c: sqlite3.Connection) -> None:
    c.execute(_V7_CARVED)
    c.execute(_V7_FRAGMENTS)


def _v8_picture_variants(c: sqlite3.Connection) -> None:
    # Issue 14: hashes of rotated, mirrored and unletterboxed forms of pictures, and what a
    # hit needs to be weighed (variant, quality, grade, decode, files with the same value).
    # Old cases have no variants (a rescan computes them) and their old hits no grade.
    # (Idempotent: a case stamped older by hand, as in a test, may have them already.)
    have = {r[1] for r in c.execute("PRAGMA table_info(matches)")}
    for column, kind in (("variant", "TEXT"), ("quality", "INTEGER"), ("grade", "TEXT"),
                         ("decode", "TEXT"), ("files_same_value", "INTEGER")):
        if column not in have:
            c.execute(f"ALTER TABLE matches ADD COLUMN {column} {kind}")
    c.execute("""CREATE TABLE IF NOT EXISTS hash_variants (
    file_id       INTEGER NOT NULL REFERENCES files(id),
    algorithm     TEXT NOT NULL,
    variant       TEXT NOT NULL,          -- rot90, flipx, unletterboxed+rot90, draft, ...
    value         TEXT NOT NULL,          -- canonical lower-case hex
    quality       INTEGER,
    preprocessing TEXT,
    PRIMARY KEY (file_id, algorithm, variant)
) STRICT""")


def _v9_match_entry(c: sqlite3.Connection) -> None:
    # Issue 14 #6: the matched set entry's name and fields, copied from the store, so that
    # the case alone says which record matched (older matches have none: NULL).
    have = {r[1] for r in c.execute("PRAGMA table_info(matches)")}
    for column in ("entry_name", "entry_fields"):
        if column not in have:  # (a case stamped older by hand, as in a test, has them)
            c.execute(f"ALTER TABLE matches ADD COLUMN {column} TEXT")


def _v10_metadata(c: sqlite3.Connection) -> None:
    # Issue 16: pictures' and videos' metadata in tables of their own (schema.sql holds
    # their definitions: the same statements create them in a fresh case). Older cases have
    # none (a rescan reads it).
    sql = resources.files("triage").joinpath("schema.sql").read_text(encoding="utf-8")
    for name in ("media_metadata", "metadata_tags"):
        start = sql.index(f"CREATE TABLE IF NOT EXISTS {name} (")
        c.execute(sql[start:sql.index(") STRICT;", start) + len(") STRICT")])


def _v11_clusters(c: sqlite3.Connection) -> None:
    # Issue 16 items 3 and 4: series clusters and the leads queue, in tables of their own
    # (schema.sql holds their definitions). Older cases have none ('triage leads' makes them).
    sql = resources.files("triage").joinpath("schema.sql").read_text(encoding="utf-8")
    for name in ("clusters", "cluster_members"):
        start = sql.index(f"CREATE TABLE IF NOT EXISTS {name} (")
        c.execute(sql[start:sql.index(") STRICT;", start) + len(") STRICT")])


def _v12_processed_by(c: sqlite3.Connection) -> None:
    # Issue 19: which Dask worker processed each file of a `scan --cluster` (NULL: the
    # scanning machine's own workers, as every file of an older case).
    have = {r[1] for r in c.execute("PRAGMA table_info(files)")}
    if "processed_by" not in have:
        c.execute("ALTER TABLE files ADD COLUMN processed_by TEXT")


#: The case database's schema versions (see :mod:`hashsets.versioning`). Version 1: the
#: first release (no application id). Each later version is one migration here, and
#: ``schema.sql`` always creates the newest (a test checks both give the same schema).
CASE_SCHEMA = SchemaLine(
    what="case database",
    application_id=0x74726763,  # "trgc": triage case
    migrations=(
        Migration(2, "evidence identity (refuse resuming against other evidence)",
                  _v2_evidence_identity),
        Migration(3, "worker crashes counted apart from dispatches (quarantine)",
                  _v3_worker_crashes),
        Migration(4, "no libmagic description (it can quote text from inside files); '!' "
                  "in file-system names displayed as \\x21",
                  _v4_no_libmagic_description),
        Migration(5, "status 'incomplete': a coverage gap (issue 12's outcome classes)",
                  _v5_incomplete_status),
        Migration(6, "videos, vPDQ frames and video hits (issue 15)", _v6_videos),
        Migration(7, "carved items and block-hash fragment hits in disk images (issue 17)",
                  _v7_carved),
        Migration(8, "picture variants and graded hits (issue 14: rotations, mirror images, "
                  "unletterboxing, full-decode confirmation)", _v8_picture_variants),
        Migration(9, "matched set entry's name and fields in each match (issue 14 hash sets)",
                  _v9_match_entry),
        Migration(10, "picture and video metadata: typed fields and tags (issue 16)",
                  _v10_metadata),
        Migration(11, "series clusters and the ranked leads queue (issue 16)",
                  _v11_clusters),
        Migration(12, "the Dask worker that processed each file (issue 19, scan --cluster)",
                  _v12_processed_by),
    ),
)
SCHEMA_VERSION = str(CASE_SCHEMA.current)


def _os_reason(e: OSError) -> str:
    if e.errno == errno.EROFS:
        return "read-only location"
    if e.errno == errno.ELOOP:
        return "it is a symbolic link (never followed)"
    return e.strerror or str(e)


def _lexists(p: Path) -> bool:
    try:
        os.lstat(p)
    except FileNotFoundError:
        return False
    return True


def _refuse_links(directory: Path) -> None:
    """No file of the case may be a symbolic link: a link could make triage write to (or
    switch to WAL mode) a database elsewhere, for example inside the evidence."""
    for name in CASE_FILES:
        p = directory / name
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise CaseError(f"{p}: cannot inspect: {_os_reason(e)}") from e
        if stat.S_ISLNK(st.st_mode):
            raise CaseError(f"{p}: is a symbolic link; triage never opens a case file "
                            "through a link (replace it with the real file)")
        if not stat.S_ISREG(st.st_mode):
            raise CaseError(f"{p}: is not a regular file")


def _check_sqlite_file(db: Path) -> None:
    """Before SQLite opens it: an SQLite 3 file (or empty: a case created by a process that
    died before writing its schema)."""
    try:
        if db.stat().st_size and not is_sqlite_file(db):
            raise CaseError(f"{db}: not a triage case database (not an SQLite file)")
    except OSError as e:
        raise CaseError(f"{db}: cannot read: {_os_reason(e)}") from e


def _take_lock(directory: Path, *, exclusive: bool) -> int | None:
    """The case lock: exclusive for runs that change the case, shared for readers.

    A reader that cannot open the lock file (none there, or read-only media where no
    writer can run either) goes on without it; a writer that cannot create it fails."""
    path = directory / LOCK_NAME
    flags = (os.O_RDWR | os.O_CREAT if exclusive else os.O_RDONLY) | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        if not exclusive and e.errno in (errno.ENOENT, errno.EROFS, errno.EACCES):
            return None
        raise CaseError(f"{path}: cannot take the case lock: {_os_reason(e)}") from e
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CaseInUseError(f"{directory}: the case is in use by another triage process (a scan, "
                        "match or report); wait for it to finish") from None
    return fd


def _connect_readonly(db: Path) -> sqlite3.Connection:
    """Open without writing or creating anything. With an empty (or no) write-ahead log the
    file is read as immutable; a log with content needs SQLite's shared-memory file, which
    cannot be made on read-only media (refused there with a clear message)."""
    uri = db.resolve().as_uri()
    wal = db.with_name(db.name + "-wal")
    if not (wal.exists() and wal.stat().st_size > 0):
        # Nothing in a write-ahead log: read the file alone, creating nothing beside it
        # (mode=ro would create -wal and -shm files in a writable folder). Exact: the
        # caller holds the case's shared lock, so no triage writer is running.
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True,
                                   isolation_level=None)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error as e:
            raise CaseError(f"{db}: cannot read the case database: {e}") from e
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as first:
        raise CaseError(f"{db}: its write-ahead log ({wal.name}) holds changes that "
                        "cannot be read on this read-only location; copy the case folder "
                        "to writable storage and open the copy") from first


def _is_access_problem(e: sqlite3.Error) -> bool:
    return getattr(e, "sqlite_errorname", "") in (
        "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_READONLY_DIRECTORY",
        "SQLITE_CANTOPEN_ISDIR", "SQLITE_IOERR_SHMOPEN", "SQLITE_READONLY_CANTINIT",
        "SQLITE_READONLY_CANTLOCK", "SQLITE_IOERR_WRITE", "SQLITE_BUSY")


def _write_error(db: Path, e: sqlite3.Error, what: str) -> CaseError:
    """One translation of SQLite's write failures: a read-only location is never called
    corrupt."""
    name = getattr(e, "sqlite_errorname", "")
    if name.startswith("SQLITE_READONLY") or "readonly" in str(e):
        return CaseError(f"{db}: {what}: read-only location ({e})")
    return CaseError(f"{db}: {what}: {e}")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers); still record something honest
        return f"uid:{os.getuid()}"


def _host() -> str:
    return socket.gethostname()  # local name only; no resolution, no network


class Case:
    """An open case directory. Use :meth:`open` (creates it when missing)."""

    def __init__(self, directory: Path, conn: sqlite3.Connection) -> None:
        self.directory = directory
        self.conn = conn
        self._lock_fd: int | None = None
        self._temp_dir: Path | None = None
        #: Opened without write access (nothing is ever written through it).
        self.readonly = False
        #: The schema version found in the file (after a migration: the current one).
        self.schema_found = CASE_SCHEMA.current
        #: The version a migration at this opening started from, if any.
        self.migrated_from: int | None = None
        #: The data rows against the audit chain when the case was opened for writing
        #: (None: a new case, or opened read-only; see :meth:`check_data`).
        self.data_at_open: datadigest.DataCheck | None = None
        #: The last passed data check while it still describes the data: cleared by every
        #: write transaction of this object (the case lock keeps other triage writers out).
        self._intact: datadigest.DataCheck | None = None
        #: The database file as this opening found it, recorded with the first digest of
        #: the tables in ``_uncovered`` (see :meth:`_check_baseline`).
        self._baseline: dict[str, Any] | None = None
        self._uncovered: set[str] = set()

    @property
    def needs_migration(self) -> bool:
        """True for an older case opened read-only (see :meth:`upgraded_copy`)."""
        return self.schema_found < CASE_SCHEMA.current

    # -- opening ---------------------------------------------------------------------
    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, create: bool = True,
             readonly: bool = False) -> Case:
        """Open a case directory.

        Writable (the default): takes the case's exclusive lock first (:class:`CaseError`
        when another triage process holds it), then checks the database before anything is
        written to it: no symbolic links (the database, its WAL, its shared-memory file, the
        lock), an SQLite file that passes ``integrity_check`` and is a triage case of a
        schema version this triage knows. Only then is it configured, created (``create``)
        or migrated forward (the old file kept beside it, audited). Runs left ``running`` by
        a process that died are marked ``interrupted``.

        ``readonly``: nothing is written, nothing is created, no migration (a case on
        read-only media, or verification); a case that another process is changing is
        refused. See :attr:`schema_found`.
        """
        path = Path(directory)
        if readonly:
            return cls._open_readonly(path)
        if not path.exists():
            if not create:
                raise CaseError(f"{path}: no such case directory")
            try:
                path.mkdir(mode=0o700, parents=True)
            except OSError as e:
                raise CaseError(f"{path}: cannot create case directory: {_os_reason(e)}") from e
        elif not path.is_dir():
            raise CaseError(f"{path}: exists and is not a directory")
        _refuse_links(path)
        db = path / DB_NAME
        existed = _lexists(db)
        if not existed and not create:
            raise CaseError(f"{path}: no case database ({DB_NAME}) here")
        if existed:
            _check_sqlite_file(db)
        new_lock = not _lexists(path / LOCK_NAME)
        lock_fd = _take_lock(path, exclusive=True)
        assert lock_fd is not None  # a writer's lock is taken or refused, never skipped
        try:
            case = cls._open_writable(path, db, existed)
        except BaseException:
            if new_lock and existed:  # not a case after all: leave the folder as it was
                (path / LOCK_NAME).unlink(missing_ok=True)
            os.close(lock_fd)
            raise
        case._lock_fd = lock_fd
        try:
            case._mark_interrupted_runs()
        except BaseException:
            case.close()
            raise
        return case

    @classmethod
    def _open_writable(cls, path: Path, db: Path, existed: bool) -> Case:
        if not existed:
            # Create the file private before SQLite touches it (0600).
            try:
                fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except OSError as e:
                raise CaseError(f"{db}: cannot create the case database: {_os_reason(e)}"
                                ) from e
            os.close(fd)
        try:
            conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        except sqlite3.Error as e:
            raise CaseError(f"{db}: cannot open case database: {e}") from e
        case = cls(path, conn)
        try:
            fresh = not existed or db.stat().st_size == 0
            if not fresh:
                case._check_integrity(db)
                case.schema_found = case._found_version(db)
                plan = CASE_SCHEMA.plan(case.schema_found, db)
                # Before _configure (which may rewrite the file's header): the file as found.
                case._check_baseline(db, bool(plan))
            case._configure()
            if fresh:
                case._create_schema()
                case.schema_found = CASE_SCHEMA.current
            else:
                # Before anything is written (a migration, a run marked interrupted, a new
                # run): rows changed outside triage are refused, never recorded as if ours.
                case.data_at_open = case._require_data_intact(db)
                if plan:
                    case._migrate(db, plan)
        except SchemaError as e:
            case.conn.close()  # (case.conn: _check_baseline reopens it)
            raise CaseError(str(e)) from e
        except sqlite3.Error as e:
            case.conn.close()
            raise _write_error(db, e, "cannot open the case database") from e
        except BaseException:
            case.conn.close()
            raise
        return case

    @classmethod
    def _open_readonly(cls, path: Path) -> Case:
        db = path / DB_NAME
        if not path.is_dir():
            raise CaseError(f"{path}: no such case directory")
        _refuse_links(path)
        if not _lexists(db):
            raise CaseError(f"{path}: no case database ({DB_NAME}) here")
        _check_sqlite_file(db)
        lock_fd = _take_lock(path, exclusive=False)
        try:
            conn = _connect_readonly(db)
            case = cls(path, conn)
            case.readonly = True
            case._check_integrity(db)
            case.schema_found = case._found_version(db)
            CASE_SCHEMA.plan(case.schema_found, db)  # refuses a newer version
        except SchemaError as e:
            if lock_fd is not None:
                os.close(lock_fd)
            raise CaseError(str(e)) from e
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        case._lock_fd = lock_fd
        return case

    def _check_baseline(self, db: Path, migrating: bool) -> None:
        """Before a migration or the first digest of a table that has none (a case made by
        a triage without data digests): nothing in the chain covers those rows, so the
        first digest would vouch for whatever is there. When an export's manifest in the
        case directory anchors the audit chain's current head (nothing was audited since
        that export), the database file must be byte-identical to the one the manifest
        recorded; else :class:`CaseDataError` (exit 7) naming the manifest, nothing written.
        What the opening found is recorded (:data:`datadigest.BASELINE_KEY`) in the audit
        row that records the first digest, for ``triage verify``."""
        try:
            first = datadigest.baselines(self.conn)
            uncovered = set(datadigest.TABLE_NAMES) - set(first)
            if not migrating and not uncovered:
                return
            head = self.conn.execute(
                "SELECT seq, row_hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.Error as e:
            self.conn.close()
            raise CaseError(f"{db}: cannot read the case's audit trail: {e}") from e
        # Hashed with no SQLite connection open in this process: closing another descriptor
        # of the file would drop SQLite's POSIX locks on it (https://www.sqlite.org/
        # howtocorrupt.html, section 2.2), and another process could then remove the WAL.
        self.conn.close()
        try:
            state = datadigest.database_file_state(db)
        except OSError as e:
            raise CaseError(f"{db}: cannot read the case database: {_os_reason(e)}") from e
        try:
            self.conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        except sqlite3.Error as e:
            raise CaseError(f"{db}: cannot open case database: {e}") from e
        checked: list[str] = []
        if head is not None:
            for path, doc in datadigest.manifests_anchoring(self.directory, int(head[0]),
                                                            str(head[1])):
                rec = doc.get("case_database") or {}
                wal = (rec.get("wal") or {}).get("sha256") if isinstance(rec, dict) else None
                if not isinstance(rec, dict) or rec.get("sha256") != state["sha256"] or \
                        wal != (state.get("wal") or {}).get("sha256"):
                    self.conn.close()
                    raise CaseDataError(
                        f"{db}: the case database (SHA-256 {state['sha256']}) is not the one "
                        f"the export manifest {path} recorded "
                        f"({rec.get('sha256') if isinstance(rec, dict) else '?'}), and "
                        "nothing was audited since that export: the database was changed "
                        "outside triage. Nothing was written (no migration, no data digest "
                        "of the changed rows). 'triage verify' shows the details; work from "
                        "a copy you trust.")
                checked.append(str(path.relative_to(self.directory)))
        self._uncovered = uncovered | (set(datadigest.TABLE_NAMES) if migrating else set())
        self._baseline = {"sha256": state["sha256"], "size": state["size"],
                          "wal": state.get("wal"),
                          "audit_head": int(head[0]) if head is not None else None,
                          "schema_version": self.schema_found,
                          "checked_against_manifests": checked}

    def _require_data_intact(self, db: Path) -> datadigest.DataCheck:
        try:
            return self.require_data_intact()
        except BaseException:
            self.conn.close()
            raise

    def require_data_intact(self) -> datadigest.DataCheck:
        """:meth:`check_data`, refusing (:class:`CaseDataError`, exit 7) data rows that do
        not match the audit chain's digests: nothing that would record or export them as
        the case's may go on (a new digest would launder the change). A passed check is
        reused until this object writes again (the case lock keeps other writers out)."""
        if self._intact is not None:
            return self._intact
        try:
            check = self.check_data()
        except sqlite3.Error as e:
            raise CaseError(f"{self.db_path}: cannot read the case's data rows: {e}") from e
        if not check.ok:
            raise CaseDataError(
                f"{self.db_path}: the case's data rows do not match the digests recorded in "
                f"its audit trail ({check.message()}); they were changed outside triage. "
                "Nothing was written. 'triage verify' shows the details; work from a copy "
                "you trust.")
        self._intact = check
        return check

    def _found_version(self, db: Path) -> int:
        try:
            return CASE_SCHEMA.found_version(self.conn, db)
        except SchemaError:
            self.conn.close()
            raise

    def _check_integrity(self, db: Path) -> None:
        try:
            rows = self.conn.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as e:
            self.conn.close()
            if _is_access_problem(e):
                raise CaseError(f"{db}: cannot read the case database ({e})") from e
            raise CaseError(f"{db}: the case database is corrupt ({e}); refusing to use it. "
                            "Work on a copy restored from backup.") from e
        if rows != [("ok",)]:
            self.conn.close()
            detail = "; ".join(str(r[0]) for r in rows[:5])
            raise CaseError(f"{db}: the case database failed its integrity check ({detail}); "
                            "refusing to append to it.")

    def _configure(self) -> None:
        c = self.conn
        # WAL: readers never block the writer and a crash never leaves half a transaction.
        # Case metadata, runs and audit rows commit with synchronous=FULL; the per-file
        # progress transactions use NORMAL (see record_progress()).
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("PRAGMA foreign_keys=ON")
        c.execute("PRAGMA busy_timeout=30000")
        for suffix in ("-wal", "-shm"):
            p = self.directory / (DB_NAME + suffix)
            if p.exists():
                os.chmod(p, 0o600)

    def _create_schema(self) -> None:
        sql = resources.files("triage").joinpath("schema.sql").read_text("utf-8")
        # executescript commits on its own, so the whole schema is one explicit script.
        meta = (f"INSERT INTO meta(key, value) VALUES ('schema_version', "
                f"'{CASE_SCHEMA.current}');"
                f"INSERT INTO meta(key, value) VALUES ('created_by', 'triage {__version__}');"
                f"PRAGMA application_id={CASE_SCHEMA.application_id};")
        self.conn.executescript("BEGIN IMMEDIATE;" + sql + meta + "COMMIT;")

    def _migrate(self, db: Path, plan: Sequence[Migration]) -> None:
        """Bring an older case forward in one transaction (audited); the file as it was is
        kept beside it first."""
        found = self.schema_found
        try:
            kept = keep_copy(self.conn, db, found)
        except (OSError, sqlite3.Error) as e:
            raise CaseError(f"{db}: cannot keep a copy of the case before migrating it from "
                            f"schema version {found}: {e}") from e
        with self.transaction() as c:
            for step in plan:
                step.apply(c)
            CASE_SCHEMA.stamp(c)
            self._audit(c, "case.migrate", {
                "from_version": found, "to_version": CASE_SCHEMA.current,
                "steps": [f"{m.version}: {m.summary}" for m in plan],
                "previous_file": kept.name}, covers=datadigest.TABLE_NAMES)
        self.schema_found = CASE_SCHEMA.current
        self.migrated_from = found

    def _mark_interrupted_runs(self) -> None:
        """Runs still marked ``running`` while we hold the exclusive lock can only be left
        over from a process that died: mark them ``interrupted`` (audited)."""
        stale = [r[0] for r in self.conn.execute(
            "SELECT id FROM runs WHERE status='running' ORDER BY id")]
        # The rows such a run wrote were never recorded: its end row records them as found
        # (the tables it may have changed are named; see datadigest.compare for which).
        found = self.data_at_open
        unverified = (sorted({d.table for d in found.unverifiable} | set(found.uncovered))
                      if found else [])
        for run_id in stale:
            with self.transaction() as c:
                c.execute("UPDATE runs SET status='interrupted', ended_utc=? WHERE id=?",
                          (utc_now(), run_id))
                details: dict[str, object] = {"run": run_id,
                                              "detected": "process gone at next start"}
                if unverified:
                    details["data_recorded_as_found"] = unverified
                self._audit(c, "run.interrupted", details, covers=datadigest.TABLE_NAMES)

    def upgraded_copy(self) -> Case:
        """A read-only case of an older schema, migrated in a private temporary copy (the
        original is not touched): for reading an old case on read-only media. The copy is
        removed when the returned case is closed."""
        tmp = Path(tempfile.mkdtemp(prefix="triage-case-"))  # 0700
        copy = tmp / DB_NAME
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        dest = sqlite3.connect(copy, isolation_level=None)
        self.conn.backup(dest)
        up = Case(self.directory, dest)
        up._temp_dir = tmp
        up.readonly = True
        with up.transaction() as c:
            for step in CASE_SCHEMA.plan(self.schema_found, self.db_path):
                step.apply(c)
            CASE_SCHEMA.stamp(c)
        up.schema_found = self.schema_found
        up.migrated_from = self.schema_found
        return up

    def close(self) -> None:
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        return self.directory / DB_NAME

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; SQLite failures (disk full, I/O error, locked, read-only
        location) become a :class:`CaseError` naming the database, and nothing of the
        transaction remains."""
        if self.readonly and self._temp_dir is None:
            raise CaseError(f"{self.db_path}: opened read-only; nothing can be recorded")
        self._intact = None
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise _write_error(self.db_path, e, "cannot write to the case database") from e
        try:
            yield self.conn
        except sqlite3.Error as e:
            self._rollback()
            raise _write_error(self.db_path, e, "cannot write to the case database; the "
                               "batch in progress was rolled back") from e
        except BaseException:
            self._rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise _write_error(self.db_path, e, "cannot commit to the case database; "
                                   "the batch in progress was rolled back") from e

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled back (e.g. after SQLITE_FULL)

    # -- case metadata ---------------------------------------------------------------
    #: Case details in the order they are shown, with the scan option that sets each.
    CASE_FIELDS: ClassVar[Mapping[str, str]] = {
        "number": "--case-number", "examiner": "--examiner", "agency": "--agency",
        "notes": "--notes"}

    def set_case_info(self, *, number: str | None, examiner: str | None, agency: str | None,
                      notes: str | None) -> list[tuple[str, str | None, str]]:
        """Record case metadata; on an existing case only given fields change (audited as
        ``case.update`` with the old and new values). Returns the changes of an existing
        case as ``(field, old, new)``; callers that must not change a recorded value check
        :meth:`case_info` first (``scan`` refuses without ``--update-case``)."""
        new = {"number": number, "examiner": examiner, "agency": agency, "notes": notes}
        row = self.conn.execute(
            'SELECT number, examiner, agency, notes FROM "case" WHERE id=1').fetchone()
        with self.transaction() as c:
            if row is None:
                c.execute('INSERT INTO "case"(id, number, examiner, agency, notes, created_utc) '
                          "VALUES (1, ?, ?, ?, ?, ?)", (number, examiner, agency, notes,
                                                        utc_now()))
                self._audit(c, "case.create", {k: v for k, v in new.items() if v is not None},
                            covers=("case",))
            else:
                old = dict(zip(("number", "examiner", "agency", "notes"), row, strict=True))
                changes = {k: v for k, v in new.items() if v is not None and v != old[k]}
                if changes:
                    sets = ", ".join(f"{k}=?" for k in changes)
                    c.execute(f'UPDATE "case" SET {sets} WHERE id=1', tuple(changes.values()))
                    self._audit(c, "case.update", {"old": {k: old[k] for k in changes},
                                                   "new": changes}, covers=("case",))
                return [(k, old[k], v) for k, v in changes.items()]
        return []

    def case_info(self) -> dict[str, Any]:
        cur = self.conn.execute(
            'SELECT number, examiner, agency, notes, created_utc FROM "case" WHERE id=1')
        row = cur.fetchone()
        if row is None:
            return {}
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    # -- audit -----------------------------------------------------------------------
    @staticmethod
    def audit_row_hash(prev_hash: str, time_utc: str, user: str, host: str,
                       tool_version: str, action: str, details: str) -> str:
        payload = canonical_json([prev_hash, time_utc, user, host, tool_version, action,
                                  details])
        return hashlib.sha256(payload.encode("ascii")).hexdigest()

    def _audit(self, c: sqlite3.Connection, action: str, details: Mapping[str, object],
               covers: Iterable[str] = ()) -> None:
        """Append one audit row in the transaction ``c``. ``covers``: data tables this
        transaction changed; their digest (:mod:`triage.datadigest`, computed here, after
        the change, so it is of exactly what commits) goes into the row's details."""
        tables = tuple(covers)
        if tables:
            details = {**details, datadigest.DIGEST_KEY: datadigest.record(
                datadigest.compute(c, tables))}
        if self._baseline is not None and self._uncovered:
            digest = details.get(datadigest.DIGEST_KEY)
            digested = set(digest.get("tables", {})) if isinstance(digest, dict) else set()
            if digested & self._uncovered:
                # The first digest of these tables: say what the opening found before it.
                details = {**details, datadigest.BASELINE_KEY: self._baseline}
                self._uncovered -= digested
        row = c.execute("SELECT row_hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS_HASH
        t, user, host = utc_now(), _user(), _host()
        d = canonical_json(details)
        h = self.audit_row_hash(prev, t, user, host, __version__, action, d)
        c.execute("INSERT INTO audit(time_utc, user, host, tool_version, action, details, "
                  "prev_hash, row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (t, user, host, __version__, action, d, prev, h))

    def audit(self, action: str, details: Mapping[str, object],
              covers: Iterable[str] = ()) -> None:
        """Append one row to the hash-chained audit trail (its own transaction), with the
        digest of the data tables named in ``covers`` (see :meth:`_audit`)."""
        with self.transaction() as c:
            self._audit(c, action, details, covers)

    @contextmanager
    def audited_change(self, action: str, details: Mapping[str, object],
                       covers: Iterable[str]) -> Iterator[sqlite3.Connection]:
        """One transaction that changes data tables outside a run (``covers``: the tables
        it changes) and ends with its audit row recording their digest: every writer of
        data rows outside :func:`triage.runs.case_run` uses this, or ``triage verify`` and
        the next opening for writing report the change as made outside triage. ``action``
        must be one that may change those tables
        (:func:`triage.datadigest.tables_changed_by`), or verification fails."""
        tables = tuple(covers)
        with self.transaction() as c:
            yield c
            self._audit(c, action, details, tables)

    def check_data(self) -> datadigest.DataCheck:
        """The data rows now against the digests recorded in the audit chain
        (:func:`triage.datadigest.compare`). Only reads."""
        return datadigest.compare(self.conn)

    def current_data(self) -> datadigest.Tables:
        """The digest of every data table as it is now (only reads)."""
        return datadigest.compute(self.conn)

    def verify_audit_chain(self) -> list[str]:
        """Return problems found in the audit chain (empty when it is intact): a row whose
        hash does not match its content, a broken link, a missing row, and missing
        append-only triggers (dropped to edit or delete rows). Rows removed from the END of
        the chain leave no gap: they are caught against an export's manifest (see
        :mod:`triage.report.verify`) and by the data digests."""
        problems: list[str] = []
        prev = GENESIS_HASH
        expected_seq = None
        for seq, t, user, host, ver, action, details, prev_hash, row_hash in self.conn.execute(
                "SELECT seq, time_utc, user, host, tool_version, action, details, prev_hash, "
                "row_hash FROM audit ORDER BY seq"):
            if expected_seq is not None and seq != expected_seq:
                problems.append(f"audit row {expected_seq}: missing (next is {seq})")
            expected_seq = seq + 1
            if prev_hash != prev:
                problems.append(f"audit row {seq}: prev_hash does not chain to row before")
            if self.audit_row_hash(prev_hash, t, user, host, ver, action, details) != row_hash:
                problems.append(f"audit row {seq}: content does not match its row_hash")
            prev = row_hash
        triggers = {str(r[0]) for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit'")}
        problems.extend(f"the audit table's trigger {name} is missing (it keeps the table "
                        "append-only; was it dropped to change rows?)"
                        for name in APPEND_ONLY_TRIGGERS if name not in triggers)
        return problems

    # -- runs ------------------------------------------------------------------------
    def start_run(self, command: str, arguments: Sequence[str], options: Mapping[str, object],
                  versions: Mapping[str, object]) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO runs(command, arguments, options, tool_version, versions, host, "
                "user, started_utc, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running')",
                (command, canonical_json(list(arguments)), canonical_json(options),
                 __version__, canonical_json(versions), _host(), _user(), utc_now()))
            run_id = int(cur.lastrowid or 0)
            self._audit(c, f"{command}.start", {"run": run_id, "arguments": list(arguments),
                                                "options": options})
        return run_id

    def end_run(self, run_id: int, status: str, summary: Mapping[str, object]) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET ended_utc=?, status=?, summary=? WHERE id=?",
                      (utc_now(), status, canonical_json(summary), run_id))
            command = c.execute("SELECT command FROM runs WHERE id=?", (run_id,)).fetchone()[0]
            # The end of every run records the digest of all data rows (whatever it
            # wrote, resumed entries of earlier runs included): see triage.datadigest.
            self._audit(c, f"{command}.end", {"run": run_id, "status": status,
                                              "summary": summary},
                        covers=datadigest.TABLE_NAMES)

    # -- evidence --------------------------------------------------------------------
    def check_evidence(self, path: str, path_bytes: bytes, source_type: str,
                       identity: dict[str, Any]) -> str | None:
        """Before anything is recorded: refuse (:class:`EvidenceMismatchError`) evidence at a
        path the case holds whose identity differs. Returns a warning when the case holds
        that path without a recorded identity (made before schema 2): such a resume cannot
        be checked."""
        row = self.conn.execute(
            "SELECT identity FROM evidence WHERE path_bytes=? AND source_type=?",
            (path_bytes, source_type)).fetchone()
        if row is None:
            return None
        if row[0] is None:
            return (f"{path}: this case was made by an older triage that did not record what "
                    "identifies the evidence; this resume cannot be checked against swapped "
                    "evidence (its identity is recorded now). If another exhibit may sit at "
                    "this path, scan it into a new case.")
        diffs = evidence_differences(json.loads(row[0]), identity)
        if diffs:
            raise EvidenceMismatchError(
                f"{path}: this is not the evidence this case scanned at that path "
                f"({'; '.join(diffs)}). Nothing was changed. Scan it into a new case "
                "(or give this exhibit its own path).")
        return None

    def evidence_list(self) -> list[tuple[int, str, bytes, str]]:
        """Every evidence of the case: ``(id, display path, path bytes, source type)``."""
        return [(int(i), p, bytes(b), t) for i, p, b, t in self.conn.execute(
            "SELECT id, path, path_bytes, source_type FROM evidence ORDER BY id")]

    def entry_tally(self, evidence_id: int, run_id: int) -> tuple[int, int, int]:
        """Top-level entries of an evidence (not the items found inside files): ``(all,
        pending, final from runs before run_id)``."""
        row = self.conn.execute(
            "SELECT count(*), coalesce(sum(status='pending'), 0), "
            "coalesce(sum(status!='pending' AND run_id<?), 0) FROM files "
            "WHERE evidence_id=? AND parent_id IS NULL", (run_id, evidence_id)).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def image_evidence(self, image: str) -> int | None:
        """The evidence of this case that is the disk image at ``image`` (the same file:
        device and inode, through symbolic links), or None."""
        try:
            st = os.stat(image)
        except OSError:
            return None
        for ev, _, path_bytes, source_type in self.evidence_list():
            if source_type == "directory":
                continue
            try:
                other = os.stat(path_bytes)
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return ev
        return None

    def record_image_verification(self, evidence_id: int | None, result: Mapping[str, Any],
                                  run_id: int | None = None) -> None:
        """Record a recomputed image hash (:func:`triage.sources.image.verify_image`'s
        result): the computed MD5/SHA-1 in the evidence row ``evidence_id`` (None: the image
        is not evidence of this case; only audited) and the whole result, verdict included,
        in the audit row ``image.verify`` (one transaction)."""
        computed = result.get("computed") or {}
        with self.transaction() as c:
            if evidence_id is not None:
                c.execute("UPDATE evidence SET computed_md5=?, computed_sha1=? WHERE id=?",
                          (computed.get("md5"), computed.get("sha1"), evidence_id))
            # The changed evidence row is recorded with its digest (verify-image --case runs
            # outside any run, whose end would record it; cheap: one row per evidence).
            self._audit(c, "image.verify", {**result, "evidence": evidence_id,
                                            **({"run": run_id} if run_id else {})},
                        covers=("evidence",) if evidence_id is not None else ())

    def add_evidence(self, *, path: str, path_bytes: bytes, source_type: str,
                     size: int | None, description: Mapping[str, object], run_id: int,
                     stored_md5: str | None = None, stored_sha1: str | None = None,
                     identity: dict[str, Any] | None = None) -> int:
        """The evidence's row, added on first sight (audited).

        Evidence already in the case (same path and type) is only the SAME evidence when
        its ``identity`` agrees (:mod:`triage.evidence_identity`); otherwise resuming would
        silently report another exhibit's listing, so it is refused (:class:`CaseError`).
        A row from a case written before identities were recorded gets one now (audited)."""
        row = self.conn.execute(
            "SELECT id, identity, stored_md5, stored_sha1 FROM evidence "
            "WHERE path_bytes=? AND source_type=?", (path_bytes, source_type)).fetchone()
        if row:
            ev, recorded = int(row[0]), row[1]
            if recorded is not None and identity is not None:
                diffs = evidence_differences(json.loads(recorded), identity)
                if diffs:
                    raise EvidenceMismatchError(
                        f"{path}: this is not the evidence this case scanned at that path "
                        f"({'; '.join(diffs)}). Nothing was changed. Scan it into a new "
                        "case (or give this exhibit its own path).")
            if row[2] is None and row[3] is None and (stored_md5 or stored_sha1):
                # Recorded by a triage that left the stored acquisition hashes out of their
                # columns (they were only in the description): filled in now, audited.
                with self.transaction() as c:
                    c.execute("UPDATE evidence SET stored_md5=?, stored_sha1=? WHERE id=?",
                              (stored_md5, stored_sha1, ev))
                    self._audit(c, "evidence.stored_hashes", {
                        "evidence": ev, "stored_md5": stored_md5, "stored_sha1": stored_sha1,
                        "note": "read from the image on resume"})
            if identity is None:
                return ev
            if recorded is None:
                with self.transaction() as c:
                    c.execute("UPDATE evidence SET identity=? WHERE id=?",
                              (canonical_json(identity), ev))
                    self._audit(c, "evidence.identity", {
                        "evidence": ev, "identity": identity,
                        "note": "recorded on resume; the earlier run did not record one, "
                                "so this resume could not be checked"})
                return ev
            return ev
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO evidence(path, path_bytes, source_type, size, description, "
                "stored_md5, stored_sha1, added_run_id, identity) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (path, path_bytes, source_type, size, canonical_json(description),
                 stored_md5, stored_sha1, run_id,
                 canonical_json(identity) if identity is not None else None))
            ev = int(cur.lastrowid or 0)
            self._audit(c, "evidence.add", {"evidence": ev, "path": path,
                                            "type": source_type, "size": size})
        return ev

    # -- files -----------------------------------------------------------------------
    FILE_COLUMNS = ("identity", "parent_id", "path", "display_path", "kind", "size",
                    "mtime_utc", "atime_utc", "ctime_utc", "crtime_utc", "times_raw",
                    "allocated", "deleted", "inode", "link_target", "link_display",
                    "extension", "locator", "notes")

    def insert_entries(self, evidence_id: int, run_id: int,
                       entries: Iterable[FileEntry]) -> list[StoredEntry]:
        """Insert enumerated entries (status pending) in one transaction.

        Entries that are never read (directories, links, FIFOs, enumeration errors: an entry
        with ``preset_status`` or of another kind than ``file``) get their final status here.
        Returns one :class:`StoredEntry` per entry: an entry already present (from an
        earlier run of the same evidence) keeps its id, and ``already_final`` says whether
        it has a final status, so a resumed scan does not redo it.
        """
        cols = ("id", "evidence_id", "run_id", *self.FILE_COLUMNS, "status", "status_stage",
                "status_reason")
        sql = (f"INSERT INTO files({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               "ON CONFLICT(evidence_id, identity) DO NOTHING")
        out: list[StoredEntry] = []
        with self.transaction() as c:
            # Entries take the ids below CHILD_ID_BASE in enumeration order; the items found
            # inside them live above it (see _insert_children).
            next_id = int(c.execute("SELECT coalesce(max(id), 0) FROM files WHERE id < ?",
                                    (CHILD_ID_BASE,)).fetchone()[0]) + 1
            for e in entries:
                cur = c.execute(sql, (next_id, evidence_id, run_id, *_entry_values(e)))
                if cur.rowcount == 1:
                    out.append(StoredEntry(next_id, False))
                    next_id += 1
                else:
                    fid, status = c.execute(
                        "SELECT id, status FROM files WHERE evidence_id=? AND identity=?",
                        (evidence_id, e.identity)).fetchone()
                    out.append(StoredEntry(int(fid), status != "pending"))
        return out

    def write_results(self, run_id: int, results: Sequence[FileResult]) -> None:
        """Record final results for a batch of files in one transaction."""
        with self.transaction() as c:
            self._write_results(c, run_id, results)

    def write_results_in(self, c: sqlite3.Connection, run_id: int,
                         results: Sequence[FileResult]) -> None:
        """Record final results inside a transaction the caller holds (an
        :meth:`audited_change`: ``triage match``'s full-decode confirmation)."""
        self._write_results(c, run_id, results)

    def _write_results(self, c: sqlite3.Connection, run_id: int,
                       results: Sequence[FileResult]) -> None:
        now = utc_now()
        pending = list(results)
        for i, r in enumerate(pending):  # grows while iterating: inner items follow
            if r.children:
                pending[i], inner = self._insert_children(c, run_id, r)
                if r.processed_by is not None:  # items inside: the same worker
                    inner = [replace(x, processed_by=r.processed_by) for x in inner]
                pending.extend(inner)
        if len({r.file_id for r in pending}) != len(pending):
            for r in pending:  # the same file twice: one at a time, in order
                self._write_result(c, run_id, r, now)
            return
        # Each result touches only its own file's rows, so the same statements for all of
        # them run as one executemany each (issue 13: five statements per file made the
        # supervisor's share of many small files); the errors rows keep the per-file order
        # of the one-at-a-time path, so their ids are the same.
        kept = {r.file_id for r in pending if self._keeps_checkpoint(c, r)}
        plain = [r for r in pending if r.file_id not in kept]
        c.executemany(
            "UPDATE files SET status=?, status_stage=?, status_reason=?, attempts=?, "
            "read_status=?, mime=?, media_kind=?, ext_mismatch=?, run_id=?, processed_by=? "
            "WHERE id=?",
            [(r.status, r.stage, r.reason, r.attempts, r.read_status, r.mime, r.media_kind,
              r.ext_mismatch, run_id, r.processed_by, r.file_id) for r in plain])
        # The deletes below all come before any insert, so one statement per table for the
        # whole batch removes the same rows as one per file (issue 13: a statement per file
        # and table was most of the supervisor's database time on many small files).
        # Variants are replaced one file at a time when a full-decode confirmation copies
        # rows (its inserts must see the same table as before).
        if any(r.full_decode for r in plain):
            for r in plain:
                self._replace_variants(c, r)
        else:
            _delete_files_rows(c, "hash_variants", [r.file_id for r in plain])
        _delete_files_rows(c, "hashes", [r.file_id for r in plain])
        for r in pending:
            if r.file_id in kept:
                self._keep_checkpoint(c, run_id, r)
        ids = [r.file_id for r in pending]
        for table in ("images", "videos", "video_frames", *METADATA_TABLES):
            _delete_files_rows(c, table, ids)
        c.executemany(
            "INSERT INTO hashes(file_id, algorithm, value, quality, preprocessing) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r.file_id, h.algorithm, h.value, h.quality, h.preprocessing)
             for r in pending for h in r.hashes if h.variant is None])
        c.executemany(VARIANT_INSERT, [(r.file_id, h.algorithm, h.variant, h.value, h.quality,
                                        h.preprocessing)
                                       for r in pending for h in r.hashes
                                       if h.variant is not None])
        c.executemany(
            "INSERT INTO images(file_id, format, width, height, mode, frames, "
            "decoded_width, decoded_height, preprocessing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.file_id, im.format, im.width, im.height, im.mode, im.frames,
              im.decoded_width, im.decoded_height, im.preprocessing)
             for r in pending if (im := r.image)])
        for r in pending:
            if r.video:
                _write_video(c, r.file_id, r.video)
        _write_metadata(c, [(r.file_id, r.metadata) for r in pending if r.metadata])
        if self._has_result_errors(c, run_id, ids):
            for r in pending:  # a result written again: delete and insert file by file
                self._write_errors(c, run_id, r, now)
        else:
            # Nothing to delete: the same rows, in the same order (so the same ids), as
            # file by file, with one statement (the errors table has no index on file_id:
            # each per-file delete read all of it).
            c.executemany(ERROR_INSERT, [row for r in pending
                                         for row in _error_rows(run_id, r, now)])

    @staticmethod
    def _has_result_errors(c: sqlite3.Connection, run_id: int, file_ids: Sequence[int]
                           ) -> bool:
        """Whether this run already recorded result errors (those :meth:`_write_errors`
        replaces) for any of ``file_ids``: looked up in the connection's mirror of those
        rows (:func:`_result_errors_mirror`), not in the errors table, which has no index on
        file_id (issue 13: reading all of it for every batch of results grew with the
        square of the warnings)."""
        _result_errors_mirror(c)
        for i in range(0, len(file_ids), IN_CHUNK):
            marks, chunk = _in_list(file_ids[i:i + IN_CHUNK])
            if c.execute(f"SELECT 1 FROM temp.{_MIRROR} WHERE run_id=? AND file_id IN "
                         f"({marks}) LIMIT 1", (run_id, *chunk)).fetchone() is not None:
                return True
        return False

    @staticmethod
    def _keeps_checkpoint(c: sqlite3.Connection, r: FileResult) -> bool:
        """A file given up before this attempt read it in full keeps what an earlier
        attempt's checkpoint recorded (identification and digests)."""
        return r.status == "quarantined" and not r.hashes and c.execute(
            "SELECT 1 FROM hashes WHERE file_id=? AND algorithm='sha256'",
            (r.file_id,)).fetchone() is not None

    @staticmethod
    def _keep_checkpoint(c: sqlite3.Connection, run_id: int, r: FileResult) -> None:
        c.execute("UPDATE files SET status=?, status_stage=?, status_reason=?, "
                  "attempts=?, run_id=?, processed_by=? WHERE id=?",
                  (r.status, r.stage, r.reason, r.attempts, run_id, r.processed_by,
                   r.file_id))
        streams = [a.name for a in stream_algorithms()]
        c.execute(f"DELETE FROM hashes WHERE file_id=? AND algorithm NOT IN "
                  f"({', '.join('?' * len(streams))})", (r.file_id, *streams))
        c.execute("DELETE FROM hash_variants WHERE file_id=?", (r.file_id,))

    @staticmethod
    def _replace_variants(c: sqlite3.Connection, r: FileResult) -> None:
        """Before a result's ``hashes`` are replaced: drop its picture variants (issue 14),
        except that a full-decode confirmation keeps the draft-decoded values it replaces,
        as variant "draft", for the record."""
        if r.full_decode:
            c.execute("DELETE FROM hash_variants WHERE file_id=? AND variant != ?",
                      (r.file_id, DRAFT_VARIANT))
            c.execute(
                "INSERT OR REPLACE INTO hash_variants(file_id, algorithm, variant, value, "
                "quality, preprocessing) SELECT file_id, algorithm, ?, value, quality, "
                "preprocessing FROM hashes WHERE file_id=? AND instr(preprocessing, ?) > 0",
                (DRAFT_VARIANT, r.file_id, DRAFT_STEP))
        else:
            c.execute("DELETE FROM hash_variants WHERE file_id=?", (r.file_id,))

    @staticmethod
    def _write_errors(c: sqlite3.Connection, run_id: int, r: FileResult, now: str) -> None:
        # Writing the same result twice (an interrupt between commit and bookkeeping)
        # must not duplicate its error rows; enumeration/file-system rows stay.
        c.execute(f"DELETE FROM errors WHERE file_id=? AND run_id=? AND stage IN "
                  f"({', '.join('?' * len(RESULT_STAGES))})",
                  (r.file_id, run_id, *RESULT_STAGES))
        c.executemany(ERROR_INSERT, _error_rows(run_id, r, now))

    def _write_result(self, c: sqlite3.Connection, run_id: int, r: FileResult,
                      now: str) -> None:
        """One result's rows (the batched path of :meth:`_write_results`, one file)."""
        if self._keeps_checkpoint(c, r):
            self._keep_checkpoint(c, run_id, r)
        else:
            c.execute(
                "UPDATE files SET status=?, status_stage=?, status_reason=?, attempts=?, "
                "read_status=?, mime=?, media_kind=?, ext_mismatch=?, run_id=?, "
                "processed_by=? WHERE id=?",
                (r.status, r.stage, r.reason, r.attempts, r.read_status, r.mime,
                 r.media_kind, r.ext_mismatch, run_id, r.processed_by, r.file_id))
            self._replace_variants(c, r)
            c.execute("DELETE FROM hashes WHERE file_id=?", (r.file_id,))
        c.execute("DELETE FROM images WHERE file_id=?", (r.file_id,))
        c.execute("DELETE FROM videos WHERE file_id=?", (r.file_id,))
        c.execute("DELETE FROM video_frames WHERE file_id=?", (r.file_id,))
        for table in METADATA_TABLES:
            c.execute(f"DELETE FROM {table} WHERE file_id=?", (r.file_id,))
        if r.hashes:
            c.executemany(
                "INSERT INTO hashes(file_id, algorithm, value, quality, preprocessing) "
                "VALUES (?, ?, ?, ?, ?)",
                [(r.file_id, h.algorithm, h.value, h.quality, h.preprocessing)
                 for h in r.hashes if h.variant is None])
            c.executemany(VARIANT_INSERT, [(r.file_id, h.algorithm, h.variant, h.value,
                                            h.quality, h.preprocessing)
                                           for h in r.hashes if h.variant is not None])
        if r.image:
            im = r.image
            c.execute(
                "INSERT INTO images(file_id, format, width, height, mode, frames, "
                "decoded_width, decoded_height, preprocessing) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (r.file_id, im.format, im.width, im.height, im.mode, im.frames,
                 im.decoded_width, im.decoded_height, im.preprocessing))
        if r.video:
            _write_video(c, r.file_id, r.video)
        if r.metadata:
            _write_metadata(c, [(r.file_id, r.metadata)])
        self._write_errors(c, run_id, r, now)

    def _insert_children(self, c: sqlite3.Connection, run_id: int,
                         parent: FileResult) -> tuple[FileResult, list[FileResult]]:
        """Create (or find again, on a resumed scan) the rows of a file's inner items and
        return the parent's result (with a warning added when not every item fits) and the
        items' results with ``file_id`` set.

        * Identity: the parent's identity, the item's ordinal in the (deterministic) walk of
          the parent and its inner names, so duplicate member names and names containing
          ``!`` never collide.
        * Id: ``CHILD_ID_BASE + parent id * CHILD_SLOTS + ordinal``: the same on every run
          whatever order the workers finish in.
        * Path: the parent's path, ``!`` and the inner names joined by ``!``; in the display
          form a ``!`` inside any name (file or member, ``display_bytes``) is ``\\x21``, so
          a bare ``!`` is always this separator. The path bytes of an item are a label,
          not unique on their own (a real file may be named ``a.zip!x.jpg``): identity,
          ``parent_id`` and the display path are. Member names are data, never paths.
        * A deleted or unallocated parent's state and cautions carry over to its items: a
          picture inside a deleted archive is no more certain than the archive.
        """
        ev, identity, path, display, allocated, deleted, pnotes = c.execute(
            "SELECT evidence_id, identity, path, display_path, allocated, deleted, notes "
            "FROM files WHERE id=?", (parent.file_id,)).fetchone()
        inherited = [n for n in (json.loads(pnotes) if pnotes else [])
                     if n.startswith("deleted") or "overwritten" in n]
        ids: dict[tuple[bytes, ...], int] = {(): parent.file_id}
        out: list[FileResult] = []
        child: InnerItem
        for ordinal, child in enumerate(parent.children, start=1):
            if ordinal >= CHILD_SLOTS:
                why = (f"limit: more than {CHILD_SLOTS - 1} items inside (the case's item "
                       "slots per file); the rest are not recorded")
                if parent.status == "done":  # a coverage gap, as any other bound
                    parent = replace(parent, status="incomplete", stage="expand",
                                     error_class="ContainerLimit", reason=why)
                else:
                    parent = replace(parent, warnings=(*parent.warnings, Problem(
                        "container", "ContainerLimit", why)))
                break
            inner = b"!".join(child.inner)
            child_path = bytes(path) + b"!" + inner
            child_display = display + "!" + "!".join(
                display_bytes(name) for name in child.inner)
            item_identity = child_identity(identity, ordinal, child.inner)
            notes = [*inherited, f"inside {child.member_kind}"]
            if child.offset is not None:
                notes.append(f"embedded at offset {child.offset}")
            notes.extend(child.flags)
            child_id = CHILD_ID_BASE + parent.file_id * CHILD_SLOTS + ordinal
            target = child.link_target
            row = (child_id, ev, item_identity, ids.get(child.inner[:-1], parent.file_id),
                   child_path, child_display, child.kind, child.size,
                   utc_from_timestamp(child.mtime),
                   extension_of(child.inner[-1]) if child.kind == "file" else None,
                   canonical_json(notes), allocated, deleted, run_id, target,
                   display_bytes(target) if target is not None else None)
            c.execute(
                "INSERT INTO files(id, evidence_id, identity, parent_id, path, display_path, "
                "kind, size, mtime_utc, extension, notes, allocated, deleted, run_id, "
                "link_target, link_display) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(evidence_id, identity) DO NOTHING", row)
            fid = c.execute("SELECT id FROM files WHERE evidence_id=? AND identity=?",
                            (ev, item_identity)).fetchone()[0]
            ids[child.inner] = fid
            c.execute("DELETE FROM errors WHERE file_id=?", (fid,))
            if child.carve is not None:
                cf = child.carve
                c.execute(
                    "INSERT INTO carved(file_id, area, volume_offset, image_offset, length, "
                    "block_size, first_block, last_block, slack_of, format, partial) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(file_id) DO UPDATE SET "
                    "partial=excluded.partial",
                    (fid, cf.area, cf.volume_offset, cf.image_offset, cf.length,
                     cf.block_size, cf.first_block, cf.last_block, cf.slack_of, cf.format,
                     int(cf.partial)))
            if child.fragment is not None:
                fr = child.fragment
                c.execute(
                    "INSERT OR REPLACE INTO fragments(file_id, set_name, known_path, "
                    "known_sha256, known_size, indexed_bytes, found_bytes, blocks, "
                    "first_offset, runs) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (fid, fr.set_name, fr.known_path, fr.known_sha256, fr.known_size,
                     fr.indexed_bytes, fr.found_bytes, fr.blocks,
                     fr.runs[0][0] if fr.runs else 0,
                     canonical_json([list(r) for r in fr.runs])))
            out.append(replace(child.result, file_id=fid))
        return parent, out

    def amend_entries(self, evidence_id: int, run_id: int,
                      amendments: Sequence[EntryAmendment]) -> None:
        """Apply :class:`~triage.sources.base.EntryAmendment` items: notes are appended to
        the entry's notes, problems become rows of the errors table."""
        now = utc_now()
        with self.transaction() as c:
            for a in amendments:
                row = c.execute("SELECT id, notes FROM files WHERE evidence_id=? AND identity=?",
                                (evidence_id, a.identity)).fetchone()
                if row is None:
                    continue
                fid, notes = row
                if a.notes:
                    merged = (json.loads(notes) if notes else []) + [
                        n for n in a.notes if n not in (json.loads(notes) if notes else [])]
                    c.execute("UPDATE files SET notes=? WHERE id=?",
                              (canonical_json(merged), fid))
                for p in a.problems:
                    c.execute("INSERT INTO errors(file_id, run_id, stage, error_class, message, "
                              "time_utc) VALUES (?, ?, ?, ?, ?, ?)",
                              (fid, run_id, p.stage, p.error_class, p.message, now))

    def record_progress(self, run_id: int, results: Sequence[FileResult],
                        dispatched: Sequence[tuple[int, int]] = (), *,
                        checkpoints: Sequence[FileResult] = (),
                        crashes: Sequence[tuple[int, int]] = ()) -> None:
        """One transaction with the results that came back, the files about to be handed
        to a worker (``(file_id, attempt)``), the digests of files read in full whose
        decoding or expansion is still running (``checkpoints``, see
        :meth:`_write_checkpoint`) and the worker crashes counted against files
        (``(file_id, crashes so far)``).

        Writing results and dispatches together keeps the resume rule exact: a file counts
        as "in flight when the scan died" only if its dispatch is recorded and its result is
        not, and no result is ever recorded later than the next dispatch. Only
        ``worker_crashes`` counts towards quarantine: a file in flight when the whole scan
        died (kill -9, power loss) is simply redone. These frequent, small transactions use
        synchronous=NORMAL: in WAL mode they survive a killed process; after a power loss the
        last few may be rolled back (never half-written), and a resumed scan redoes them.
        """
        try:
            faults.check("write", "*")
        except faults.InjectedFault as e:
            raise CaseError(f"{self.db_path}: cannot write to the case database: {e}") from e
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with self.transaction() as c:
                if results:
                    self._write_results(c, run_id, results)
                for r in checkpoints:
                    self._write_checkpoint(c, r)
                if crashes:
                    c.executemany("UPDATE files SET worker_crashes=? WHERE id=?",
                                  [(n, i) for i, n in crashes])
                if dispatched:
                    c.executemany("UPDATE files SET attempts=? WHERE id=?",
                                  [(a, i) for i, a in dispatched])
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")

    @staticmethod
    def _write_checkpoint(c: sqlite3.Connection, r: FileResult) -> None:
        """Keep what is known of a file still in flight once it was read in full: its
        identification and its digests (MD5, SHA-1, SHA-256). The file stays ``pending``; its
        final result replaces all of this. Whatever happens to the scan later (kill -9,
        worker crashes, quarantine), the digests of a fully read file are never lost."""
        cur = c.execute(
            "UPDATE files SET read_status=?, mime=?, media_kind=?, ext_mismatch=? "
            "WHERE id=? AND status='pending'",
            (r.read_status, r.mime, r.media_kind, r.ext_mismatch, r.file_id))
        if cur.rowcount != 1:
            return
        c.execute("DELETE FROM hashes WHERE file_id=?", (r.file_id,))
        c.executemany(
            "INSERT INTO hashes(file_id, algorithm, value, quality, preprocessing) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r.file_id, h.algorithm, h.value, h.quality, h.preprocessing) for h in r.hashes
             if h.algorithm in ("md5", "sha1", "sha256")])

    def quarantine_repeated_inflight(self, evidence_id: int, run_id: int,
                                     max_attempts: int) -> int:
        """Quarantine pending files on which ``max_attempts`` workers died (a scan killed
        after counting the last crash and before writing the quarantine). A file that was
        merely in flight while the whole scan died is not counted. What a checkpoint kept
        (identification, digests) stays. Returns how many."""
        now = utc_now()
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM files WHERE evidence_id=? AND status='pending' "
            "AND worker_crashes>=? ORDER BY id", (evidence_id, max_attempts))]
        reason = (f"{max_attempts} crashes of a worker on this file (the worker handling it "
                  "died each time); quarantined")
        with self.transaction() as c:
            for i in ids:
                c.execute("UPDATE files SET status='quarantined', status_stage='worker', "
                          "status_reason=?, run_id=? WHERE id=?", (reason, run_id, i))
                c.execute("INSERT INTO errors(file_id, run_id, stage, error_class, message, "
                          "time_utc) VALUES (?, ?, 'worker', 'WorkerCrash', ?, ?)",
                          (i, run_id, reason, now))
        return len(ids)

    def requeue_quarantined(self, evidence_id: int, run_id: int) -> int:
        """Put the quarantined files of an evidence back to ``pending`` with their crash
        count reset, so that this run tries them again (``scan --retry-quarantined``);
        audited with the files' ids. Their earlier error rows stay. Returns how many."""
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM files WHERE evidence_id=? AND status='quarantined' ORDER BY id",
            (evidence_id,))]
        if not ids:
            return 0
        with self.transaction() as c:
            c.executemany("UPDATE files SET status='pending', status_stage=NULL, "
                          "status_reason=NULL, worker_crashes=0 WHERE id=?",
                          [(i,) for i in ids])
            self._audit(c, "files.retry_quarantined", {"run": run_id, "evidence": evidence_id,
                                                       "files": ids})
        return len(ids)

    def record_error(self, run_id: int, stage: str, error_class: str, message: str,
                     file_id: int | None = None) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO errors(file_id, run_id, stage, error_class, message, "
                      "time_utc) VALUES (?, ?, ?, ?, ?, ?)",
                      (file_id, run_id, stage, error_class, message, utc_now()))

    def pending_page(self, evidence_id: int, after_id: int, limit: int = 1000
                     ) -> list[PendingEntry]:
        """Pending entries with id > after_id, in id order, for the worker queue (the entry
        rebuilt with what a worker needs to open it again).

        Read in id order from ``after_id`` on (``+evidence_id``: not through the index on
        (evidence_id, identity), which made SQLite read every entry of the evidence and sort
        the pending ones for each page, quadratic in the number of entries; issue 13)."""
        return [PendingEntry(file_id=fid, entry=FileEntry(
                    identity=identity, path=path, kind=kind, size=size, inode=inode,
                    locator=json.loads(locator) if locator else None),
                    display_path=display, extension=ext, attempts=attempts,
                    worker_crashes=crashes)
                for fid, identity, path, display, kind, size, inode, locator, ext, attempts,
                crashes in self.conn.execute(
                    "SELECT id, identity, path, display_path, kind, size, inode, locator, "
                    "extension, attempts, worker_crashes FROM files WHERE +evidence_id=? "
                    "AND status='pending' AND id>? ORDER BY id LIMIT ?",
                    (evidence_id, after_id, limit))]

    def entries_by_id(self, evidence_id: int, file_ids: Sequence[int]) -> list[PendingEntry]:
        """Entries of one evidence by id (as :meth:`pending_page` rebuilds them, whatever
        their status), in id order: the second pass of a scan (issue 14's full-decode
        confirmation) hands them to workers again."""
        out: list[PendingEntry] = []
        ids = sorted(set(file_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out.extend(
                PendingEntry(file_id=fid, entry=FileEntry(
                    identity=identity, path=path, kind=kind, size=size, inode=inode,
                    locator=json.loads(locator) if locator else None),
                    display_path=display, extension=ext, attempts=attempts,
                    worker_crashes=crashes)
                for fid, identity, path, display, kind, size, inode, locator, ext, attempts,
                crashes in self.conn.execute(
                    "SELECT id, identity, path, display_path, kind, size, inode, locator, "
                    "extension, attempts, worker_crashes FROM files WHERE evidence_id=? "
                    f"AND id IN ({', '.join('?' * len(chunk))}) ORDER BY id",
                    (evidence_id, *chunk)))
        return out

    def pending_totals(self, evidence_id: int) -> tuple[int, int]:
        n, size = self.conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM files "
            "WHERE evidence_id=? AND status='pending'", (evidence_id,)).fetchone()
        return int(n), int(size)

    def pending_count(self) -> int:
        """Entries of any evidence without a final status (an unfinished scan)."""
        return int(self.conn.execute(
            "SELECT count(*) FROM files WHERE status='pending'").fetchone()[0])

    def report_match_run(self) -> tuple[int | None, str | None]:
        """The run whose matches a report shows, and a caveat for the reader, if any.

        The latest COMPLETED run that recorded matching (a scan with matching, or
        ``triage match``) over a finished scan: a match run that found entries still
        pending is passed over while a later or earlier complete one exists, and a run
        that failed or was interrupted never counts. The caveat says when the case was
        scanned again after those matches, or when only a run over an unfinished scan
        exists."""
        rows = self.conn.execute(
            "SELECT r.id, r.command, r.summary FROM runs r WHERE r.status='completed' AND "
            "(r.id IN (SELECT run_id FROM hash_sets_used) OR "
            " r.id IN (SELECT run_id FROM matches)) ORDER BY r.id DESC").fetchall()
        chosen: tuple[int, str] | None = None
        partial: tuple[int, str, str] | None = None
        passed_over: list[str] = []
        for run_id, command, summary in rows:
            doc = json.loads(summary) if summary else {}
            damaged = doc.get("damaged_sets") or (doc.get("matches") or {}).get("damaged_sets")
            if damaged:
                # Hits of a set that could not be read are missing: such a run never stands
                # for the case's matches while a complete one exists.
                names = ", ".join(str(d.get("name")) for d in damaged)
                passed_over.append(f"{command} run {run_id} could not read hash set(s) "
                                   f"{names}, whose hits are therefore missing from it")
                partial = partial or (int(run_id), command, "damaged")
                continue
            if doc.get("pending_entries"):
                partial = partial or (int(run_id), command, "unfinished")
                continue
            chosen = (int(run_id), command)
            break
        if chosen is None and partial is None:
            return None, None
        if chosen is None:
            assert partial is not None
            if partial[2] == "damaged":
                return partial[0], (f"INCOMPLETE: {'; '.join(passed_over)}; no complete "
                                    "match run exists: repair or re-import the set(s), then "
                                    "run 'triage match'")
            return partial[0], (f"matches are those of {partial[1]} run {partial[0]}, made "
                                "while the scan was unfinished; run the scan again, then "
                                "'triage match'")
        later = self.conn.execute(
            "SELECT min(id) FROM runs WHERE command='scan' AND id>?", (chosen[0],)
        ).fetchone()[0]
        notes = []
        if passed_over:
            notes.append(f"a later {'; '.join(passed_over)}; the last complete match run "
                         f"({chosen[0]}) is shown instead")
        if later is not None:
            notes.append(f"the case was scanned again (run {later}) after these matches; run "
                         "'triage match' to match what that scan added")
        return chosen[0], "; ".join(notes) or None

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Read-only helper for reports and tests."""
        self.conn.row_factory = sqlite3.Row
        try:
            return list(self.conn.execute(sql, params))
        finally:
            self.conn.row_factory = None


def _write_video(c: sqlite3.Connection, file_id: int, v: VideoFacts) -> None:
    """A video's facts and frames (issue 15)."""
    c.execute(
        "INSERT INTO videos(file_id, container, codec, width, height, frame_rate, duration, "
        "streams, video_streams, audio_streams, creation_time, tags, frames_decoded, "
        "frames_hashed, seconds_per_hash, hashed_width, hashed_height, preprocessing, "
        "stopped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (file_id, v.container, v.codec, v.width, v.height, v.frame_rate, v.duration,
         v.streams, v.video_streams, v.audio_streams, v.creation_time,
         canonical_json(dict(v.tags)), v.frames_decoded, v.frames_hashed,
         float(v.seconds_per_hash), v.hashed_width, v.hashed_height, v.preprocessing,
         v.stopped))
    c.executemany(
        "INSERT INTO video_frames(file_id, seq, frame_number, timestamp, pdq, quality, "
        "repeats) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(file_id, i, f.frame_number, f.timestamp, f.pdq, f.quality, f.repeats)
         for i, f in enumerate(v.frames)])


def _write_metadata(c: sqlite3.Connection,
                    rows: Sequence[tuple[int, MediaMetadata]]) -> None:
    """Pictures' and videos' metadata (issue 16): typed fields and tag rows."""
    c.executemany(
        "INSERT INTO media_metadata(file_id, make, model, serial, lens_make, lens_model, "
        "software, datetime_original, offset_original, datetime_digitized, offset_digitized, "
        "gps_latitude, gps_longitude, gps_altitude, gps_date, gps_time, orientation, "
        "image_unique_id, thumbnail, tags, tags_dropped) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(fid, m.make, m.model, m.serial, m.lens_make, m.lens_model, m.software,
          m.datetime_original, m.offset_original, m.datetime_digitized, m.offset_digitized,
          m.gps_latitude, m.gps_longitude, m.gps_altitude, m.gps_date, m.gps_time,
          m.orientation, m.image_unique_id, int(m.thumbnail), len(m.tags), m.tags_dropped)
         for fid, m in rows])
    c.executemany(
        "INSERT INTO metadata_tags(file_id, seq, source, name, value, truncated, free_text) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(fid, i, t.source, t.name, t.value, int(t.truncated), int(t.free_text))
         for fid, m in rows for i, t in enumerate(m.tags)])


#: File ids per ``IN (...)`` list (well under SQLite's limit on bound parameters).
IN_CHUNK = 500
ERROR_INSERT = ("INSERT INTO errors(file_id, run_id, stage, error_class, message, time_utc) "
                "VALUES (?, ?, ?, ?, ?, ?)")


#: The connection-local (TEMP) mirror of the errors rows whose stage is one of
#: RESULT_STAGES: ``(id, file_id, run_id)``, indexed on ``(run_id, file_id)``.
_MIRROR = "result_errors_mirror"
_MIRROR_STAGES = ", ".join(f"'{s}'" for s in RESULT_STAGES)
_MIRROR_OBJECTS = (_MIRROR, f"{_MIRROR}_run_file", f"{_MIRROR}_insert", f"{_MIRROR}_delete",
                   f"{_MIRROR}_update")
_MIRROR_SETUP = (
    # Whatever part of an earlier mirror is left (its triggers dropped with a rebuilt errors
    # table, say) goes first: the mirror is always made whole, from the table as it is.
    *(f"DROP TRIGGER IF EXISTS temp.{_MIRROR}_{t}" for t in ("insert", "delete", "update")),
    f"DROP TABLE IF EXISTS temp.{_MIRROR}",
    f"CREATE TEMP TABLE {_MIRROR} (id INTEGER PRIMARY KEY, file_id INTEGER, run_id INTEGER)",
    f"CREATE INDEX temp.{_MIRROR}_run_file ON {_MIRROR}(run_id, file_id)",
    # (INSERT OR REPLACE: an errors row that replaced another of the same id.)
    f"CREATE TEMP TRIGGER {_MIRROR}_insert AFTER INSERT ON main.errors "
    f"WHEN new.stage IN ({_MIRROR_STAGES}) BEGIN "
    f"INSERT OR REPLACE INTO {_MIRROR}(id, file_id, run_id) "
    f"VALUES (new.id, new.file_id, new.run_id); END",
    f"CREATE TEMP TRIGGER {_MIRROR}_delete AFTER DELETE ON main.errors BEGIN "
    f"DELETE FROM {_MIRROR} WHERE id = old.id; END",
    f"CREATE TEMP TRIGGER {_MIRROR}_update AFTER UPDATE ON main.errors BEGIN "
    f"DELETE FROM {_MIRROR} WHERE id = old.id; "
    f"INSERT OR REPLACE INTO {_MIRROR}(id, file_id, run_id) "
    f"SELECT new.id, new.file_id, new.run_id WHERE new.stage IN ({_MIRROR_STAGES}); END",
    f"INSERT INTO {_MIRROR}(id, file_id, run_id) "
    f"SELECT id, file_id, run_id FROM main.errors WHERE stage IN ({_MIRROR_STAGES})",
)


def _result_errors_mirror(c: sqlite3.Connection) -> None:
    """Make sure the connection has its mirror of the result errors rows (issue 13).

    A TEMP table and TEMP triggers live in the connection's temporary database, never in
    the case file: the case's contents do not change. Filled from the errors table when
    made, then kept equal to it by the triggers, which fire on every change of the table
    through this connection (the only one that writes while the case lock is held), and
    roll back with it. Made inside a savepoint (all or nothing); made again, whole, when
    any part of it is missing (a new connection, the transaction that made it rolled back,
    a trigger dropped with the table it watched)."""
    if c.execute("SELECT count(*) FROM sqlite_temp_master WHERE name IN "
                 f"({', '.join('?' * len(_MIRROR_OBJECTS))})", _MIRROR_OBJECTS
                 ).fetchone()[0] == len(_MIRROR_OBJECTS):
        return
    c.execute(f"SAVEPOINT {_MIRROR}")
    try:
        for sql in _MIRROR_SETUP:
            c.execute(sql)
    except BaseException:
        try:
            c.execute(f"ROLLBACK TO {_MIRROR}")
            c.execute(f"RELEASE {_MIRROR}")
        except sqlite3.Error:
            pass  # SQLite rolled the whole transaction back already: the first error tells why
        raise
    c.execute(f"RELEASE {_MIRROR}")


def _delete_files_rows(c: sqlite3.Connection, table: str, file_ids: Sequence[int]) -> None:
    """``DELETE FROM table WHERE file_id=?`` for every id, a statement per chunk of ids;
    none when the table has no row (issue 13: a crypto scan leaves the picture, video,
    variant and metadata tables empty, and a delete costs as much there as anywhere)."""
    if not file_ids or c.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None:
        return
    for i in range(0, len(file_ids), IN_CHUNK):
        marks, chunk = _in_list(file_ids[i:i + IN_CHUNK])
        c.execute(f"DELETE FROM {table} WHERE file_id IN ({marks})", chunk)


def _in_list(ids: Sequence[int]) -> tuple[str, list[int]]:
    """Placeholders and values for ``IN (...)`` of ``ids`` (not empty): their number
    rounded up to a power of two by repeating the last id (the same set), so that
    statements differ in a few lengths only and stay in the statement cache."""
    n = 1 << (len(ids) - 1).bit_length()
    values = [*ids, *[ids[-1]] * (n - len(ids))]
    return ", ".join("?" * n), values


def _error_rows(run_id: int, r: FileResult, now: str) -> list[tuple[object, ...]]:
    """The errors rows of a result, in order: its error (if it is one), then its
    warnings."""
    rows: list[tuple[object, ...]] = []
    if r.status in ("error", "quarantined"):
        rows.append((r.file_id, run_id, r.stage or "unknown", r.error_class or "Error",
                     r.reason or "", now))
    rows.extend((r.file_id, run_id, w.stage, w.error_class, w.message, now)
                for w in r.warnings)
    return rows


def _entry_values(entry: FileEntry) -> tuple[object, ...]:
    """The values of :attr:`Case.FILE_COLUMNS` and the status columns for one entry."""
    if entry.preset_status:
        status, stage, reason = entry.preset_status
    elif entry.kind != "file":
        # Whatever the source, only regular files (and streams) are ever read.
        status, stage, reason = "skipped", "enumerate", f"not a regular file: {entry.kind}"
    else:
        status, stage, reason = "pending", None, None
    # A file's times are often equal (written once: mtime = ctime): each formatted once.
    mtime = utc_from_timestamp(entry.mtime)
    atime = mtime if entry.atime == entry.mtime else utc_from_timestamp(entry.atime)
    ctime = mtime if entry.ctime == entry.mtime else utc_from_timestamp(entry.ctime)
    crtime = mtime if entry.crtime == entry.mtime else utc_from_timestamp(entry.crtime)
    return (entry.identity, None, entry.path, display_bytes(entry.path), entry.kind,
            entry.size, mtime, atime, ctime, crtime,
            json.dumps(entry.times_raw, sort_keys=True) if entry.times_raw else None,
            int(entry.allocated), int(entry.deleted), entry.inode, entry.link_target,
            display_bytes(entry.link_target) if entry.link_target is not None else None,
            extension_of(entry.path) if entry.kind == "file" else None,
            json.dumps(entry.locator) if entry.locator is not None else None,
            json.dumps(list(entry.notes)) if entry.notes else None,
            status, stage, reason)

