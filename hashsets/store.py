"""The hash-set store: one SQLite file holding every imported set, its provenance and its
entries, indexed for exact lookup.

Layout (created explicitly, never inferred):

* ``sets``: one row per imported set: stable ``set_id`` (the first 16 hex digits of the
  source file's SHA-256, so the same file has the same id in every store), name, format,
  version, source path/SHA-256/size, import time, accepted/rejected/empty/duplicate counts,
  examples of rejected records, the category mapping used, and ``known`` (NSRL-style sets
  of known files; "known", never "good").
* ``e{num}``: the set's entries that carry metadata (category, series, flags, ids, names,
  PhotoDNA), keyed by ``ref`` (the line or record number in the source).
* ``h{num}_{algorithm}``: ``(value BLOB, ref)``: one row per hash value, a ``WITHOUT ROWID``
  table whose primary key ``(value, ref)`` is the index (sets imported by earlier versions
  have a rowid table with an index on ``(value, ref)``; readers see no difference).
* ``v{num}`` (video sets, schema 3, issue 15): one row per video ``(ref, frames, pdq,
  quality, frame_number, timestamp)``, each column but the first two an array of all the
  video's frames in file order (:func:`hashsets.video.pack`: 32-byte PDQ values, quality
  u8, frame number u32 LE, timestamp f64 LE), so that 10,000 videos load as 10,000 rows;
  the video's name and category are its ``e{num}`` row (``name``, ``category``).

One table per set and algorithm keeps imports fast (values sorted in memory, then appended
to the b-tree in key order by a few large statements) and makes
``remove`` a ``DROP TABLE``. An import is ONE transaction: a failure leaves the store as it
was. Hashes of the empty file are counted and never stored, so they can never match.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import __version__
from .algorithms import ALGORITHMS, EMPTY_DIGESTS
from .errors import DamagedSetError, HashSetFileError
from .formats import (
    Batch,
    BulkItem,
    Format,
    ParseContext,
    Record,
    VideoRecord,
    detect_format,
)
from .formats import get as get_format
from .formats.bounds import ImportLimits, exceeded
from .formats.categories import label, resolve
from .paths import STORE_ENV, STORE_FILE, default_store_path  # noqa: F401 - re-exported
from .versioning import Migration, SchemaError, SchemaLine, is_sqlite_file, keep_copy


def _v2_application_id(c: sqlite3.Connection) -> None:
    """Version 2 changes no table: it stamps SQLite's application id (done by ``stamp``),
    so that a store is recognised before any table is read."""


def _v3_video_sets(c: sqlite3.Connection) -> None:
    """Version 3 changes no existing table: it adds video sets (per-set ``v{num}`` tables,
    created on import). The version is raised so that an older triage, which would take a
    video set for an empty one and report it "used" without matching it, refuses the store
    instead."""


def _v4_digest_and_fields(c: sqlite3.Connection) -> None:
    """Version 4 (issue 14): a content digest per set (``sets.digest``, what ``verify``
    checks the stored values against; NULL for sets imported before) and the source's other
    fields per entry (``e{num}.fields``, JSON)."""
    c.execute("ALTER TABLE sets ADD COLUMN digest TEXT")
    for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type='table' AND "
                             "name GLOB 'e[0-9]*'").fetchall():
        c.execute(f'ALTER TABLE "{name}" ADD COLUMN fields TEXT')


#: The store's schema versions (see :mod:`hashsets.versioning`). Version 1: the first
#: release. ``_SCHEMA`` always creates the newest.
STORE_SCHEMA = SchemaLine(
    what="hash-set store",
    application_id=0x74726773,  # "trgs": triage hash-set store
    migrations=(Migration(2, "application id", _v2_application_id),
                Migration(3, "vPDQ video sets (issue 15)", _v3_video_sets),
                Migration(4, "issue 14: content digest per set (hashset verify checks stored "
                          "values), entry fields", _v4_digest_and_fields)),
)
SCHEMA_VERSION = str(STORE_SCHEMA.current)
#: Entry (metadata) rows per executemany call; also the size of packed hash batches.
BATCH = 100_000
#: Hash values held in memory during an import before a sorted run is written out (about
#: 40 bytes each). Imports up to this size are written in one sorted pass, which is what
#: makes them fast; bigger ones are written in several sorted runs.
SPILL_ROWS = 16_000_000
#: Rows per INSERT ... SELECT FROM json_each statement.
INSERT_ROWS = 1_000_000
#: Rejected records kept as examples (all are counted).
REJECT_EXAMPLES = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS sets (
    num             INTEGER PRIMARY KEY,
    set_id          TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    format          TEXT NOT NULL,
    version         TEXT,
    source_path     TEXT NOT NULL,
    source_sha256   TEXT NOT NULL UNIQUE,
    source_size     INTEGER NOT NULL,
    imported_utc    TEXT NOT NULL,
    accepted        INTEGER NOT NULL,
    rejected        INTEGER NOT NULL,
    empty_digests   INTEGER NOT NULL,
    duplicates      TEXT NOT NULL,      -- JSON {algorithm: duplicate values}
    hash_counts     TEXT NOT NULL,      -- JSON {algorithm: stored values}
    rejected_examples TEXT NOT NULL,    -- JSON [[ref, reason], ...]
    category_map    TEXT,               -- JSON mapping used at import
    known           INTEGER NOT NULL,
    info            TEXT NOT NULL,      -- JSON: format details (VICS context, member...)
    tool_version    TEXT NOT NULL,
    digest          TEXT                -- JSON: content digest (hashsets.digest); NULL for
                                        -- sets imported before schema 4
) STRICT;
"""

_ENTRY_COLUMNS = ("ref", "category", "category_raw", "series", "victim_identified",
                  "offender_identified", "is_distributed", "baseline", "entry_ref", "name",
                  "photodna", "fields")


#: An entry table (``_ENTRY_COLUMNS``; ``fields`` since schema 4).
_ENTRY_TABLE = ("CREATE TABLE e{num} (ref INTEGER PRIMARY KEY, category TEXT, category_raw TEXT, "
                "series TEXT, victim_identified INTEGER, offender_identified INTEGER, "
                "is_distributed INTEGER, baseline INTEGER, entry_ref TEXT, name TEXT, "
                "photodna TEXT, fields TEXT)")
#: The INTEGER columns of an entry table (the others are TEXT).
_ENTRY_INTEGER_COLUMNS = ("ref", "victim_identified", "offender_identified", "is_distributed",
                          "baseline")


def source_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a set's source: a file's own, or for a folder (a video set, one
    file per video) the SHA-256 of its listing: one line ``SHA256  SIZE  NAME`` per regular
    file, sorted by name (links and subfolders are not read), and the total size."""
    if not path.is_dir():
        return sha256_file(path)
    lines: list[str] = []
    total = 0
    for p in sorted(path.iterdir(), key=lambda p: p.name):
        if p.is_symlink() or not p.is_file():
            continue
        digest, size = sha256_file(p)
        total += size
        lines.append(f"{digest}  {size}  {p.name}\n")
    return hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape")).hexdigest(), total


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _flag(v: bool | None) -> int | None:
    return None if v is None else int(v)


@dataclass
class SetInfo:
    """One imported set, as recorded in the store."""

    num: int
    set_id: str
    name: str
    format: str
    version: str | None
    source_path: str
    source_sha256: str
    source_size: int
    imported_utc: str
    accepted: int
    rejected: int
    empty_digests: int
    duplicates: dict[str, int]
    hash_counts: dict[str, int]
    rejected_examples: list[list[Any]]
    category_map: dict[str, str] | None
    known: bool
    info: dict[str, Any]
    tool_version: str
    #: The content digest recorded at import (:mod:`hashsets.digest`); None for sets
    #: imported before the store had one (schema 4).
    digest: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("num")
        d.pop("digest")
        d["content_digest"] = "recorded" if self.digest else "none (imported before " \
            "digests were recorded)"
        return d

    @property
    def entry_count(self) -> int:
        return self.accepted


@dataclass
class ImportResult:
    """What an import did. ``noop`` is True when the same file (same SHA-256) was already
    imported; ``set`` is then the existing set."""

    set: SetInfo
    noop: bool = False
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"noop": self.noop, "messages": self.messages, "set": self.set.to_dict()}


@dataclass
class VerifyResult:
    set_id: str
    name: str
    source_path: str
    status: str  # ok | changed | missing | damaged | altered | unverified
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_EMPTY_RAW = [np.frombuffer(bytes.fromhex(d), dtype=np.uint8) for d in sorted(EMPTY_DIGESTS)]


def _empty_rows(batch: Batch) -> npt.NDArray[np.bool_]:
    """Rows of a batch with an empty-file digest in any algorithm (never stored)."""
    out = np.zeros(len(batch), dtype=bool)
    for alg, values in batch.values.items():
        for digest in _EMPTY_RAW:
            if values.shape[1] == len(digest):
                hit = (values == digest).all(axis=1)
                out |= hit & batch.present[alg] if alg in batch.present else hit
    return out


def _sort_rows(values: npt.NDArray[np.uint8], refs: npt.NDArray[np.int64]
               ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Rows in SQLite's BLOB order (memcmp), then by ref. Digests almost never share their
    first 8 bytes, so one stable sort on them usually decides (refs arrive ascending);
    only when some do is the full multi-key sort needed."""
    n_words = -(-values.shape[1] // 8)
    padded = np.zeros((len(values), n_words * 8), dtype=np.uint8)
    padded[:, :values.shape[1]] = values
    words = padded.view(">u8").astype(np.uint64)
    order = np.argsort(words[:, 0], kind="stable")
    first = words[order, 0]
    if not np.all(refs[1:] >= refs[:-1]) or bool((first[1:] == first[:-1]).any()):
        order = np.lexsort((refs, *(words[:, j] for j in reversed(range(n_words)))))
    return values[order], refs[order]


class _Column:
    """The accepted values of one algorithm of an import, gathered in memory and written
    sorted by (value, ref) into a ``WITHOUT ROWID`` table keyed by them: sorted b-tree
    appends are several times faster than random inserts followed by an index build."""

    def __init__(self, table: str, nbytes: int) -> None:
        self.table = table
        self.nbytes = nbytes
        self.parts: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]] = []
        self.hex_values: list[bytes] = []
        self.hex_refs: list[int] = []
        self.in_memory = 0
        self.stored = 0
        self.runs = 0
        self._dups = 0
        #: SHA-256 of the rows written, in key order (:func:`hashsets.digest.rows_digest`),
        #: while they were written in one sorted run; None once a second run is written.
        self.digest: str | None = None

    def add(self, values: npt.NDArray[np.uint8], refs: npt.NDArray[np.int64]) -> None:
        if len(refs):
            self.parts.append((values, refs))
            self.in_memory += len(refs)

    def add_hex(self, value: str, ref: int) -> bool:
        """Add one canonical hex value; True when a packed batch was just completed."""
        raw = bytes.fromhex(value)
        if len(raw) != self.nbytes:
            raise HashSetFileError(f"record {ref}: {value!r} is {len(raw)} bytes, "
                                   f"{self.table} holds {self.nbytes}")
        self.hex_values.append(raw)
        self.hex_refs.append(ref)
        self.in_memory += 1
        if len(self.hex_refs) >= BATCH:
            self._pack()
            return True
        return False

    def _pack(self) -> None:
        if self.hex_refs:
            values = np.frombuffer(b"".join(self.hex_values), dtype=np.uint8)
            self.parts.append((values.reshape(-1, self.nbytes),
                               np.array(self.hex_refs, dtype=np.int64)))
            self.hex_values, self.hex_refs = [], []

    def write(self, c: sqlite3.Connection) -> None:
        """Sort what is in memory and append it to the table (created on first write)."""
        self._pack()
        if not self.parts:
            return
        values = np.concatenate([p[0] for p in self.parts])
        refs = np.concatenate([p[1] for p in self.parts])
        self.parts = []
        self.in_memory = 0
        values, refs = _sort_rows(values, refs)
        from .digest import rows_digest

        self.digest = rows_digest(values, refs).hexdigest() if self.runs == 0 else None
        if self.runs == 0:
            c.execute(f"CREATE TABLE {self.table} (value BLOB NOT NULL, ref INTEGER NOT NULL, "
                      "PRIMARY KEY (value, ref)) WITHOUT ROWID")
        self.runs += 1
        self._dups += int((values[1:] == values[:-1]).all(axis=1).sum())
        nb = self.nbytes
        sql = (f"INSERT INTO {self.table}(value, ref) "
               f"SELECT substr(?1, key * {nb} + 1, {nb}), value FROM json_each(?2)")
        for i in range(0, len(refs), INSERT_ROWS):
            # One statement per slice: the values as one blob, the refs as a JSON array,
            # so no Python object is made per row.
            c.execute(sql, (values[i:i + INSERT_ROWS].tobytes(),
                            "[" + ",".join(map(str, refs[i:i + INSERT_ROWS].tolist())) + "]"))
        self.stored += len(refs)

    def duplicates(self, c: sqlite3.Connection) -> int:
        """Rows whose value an earlier row already has."""
        if self.runs <= 1:
            return self._dups
        distinct = c.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT value FROM {self.table})").fetchone()[0]
        return self.stored - int(distinct)


class HashSetStore:
    """An open store. ``HashSetStore(path)`` creates it (0600, directory 0700) when missing."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 readonly: bool = False) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.readonly = readonly
        #: Hash-table digests of the import in progress (see ``_Column.digest``).
        self._written: dict[str, str] = {}
        self._written_entries: dict[str, str] | None = None
        #: The version a migration at this opening started from, if any.
        self.migrated_from: int | None = None
        try:
            if self.path.is_symlink():
                raise HashSetFileError(f"{self.path}: is a symbolic link; the store is "
                                       "never opened through a link")
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            if not fresh and not is_sqlite_file(self.path):
                raise HashSetFileError(f"{self.path}: not a hash-set store (not an SQLite "
                                       "file)")
            if readonly:
                if fresh:
                    raise HashSetFileError(f"{self.path}: no hash-set store here (import a "
                                           "set first)")
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro",
                                            uri=True, isolation_level=None)
            else:
                if not self.path.exists():
                    self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    os.close(fd)
                self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=60)
            found = STORE_SCHEMA.current if fresh else STORE_SCHEMA.found_version(
                self.conn, self.path)
            plan = STORE_SCHEMA.plan(found, self.path)
            if not readonly:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: index builds sort
            self.conn.execute("PRAGMA temp_store=MEMORY")
            if fresh:
                self.conn.executescript(_SCHEMA)
                with self._transaction() as c:
                    STORE_SCHEMA.stamp(c)
            elif not readonly:
                if plan:
                    self._migrate(found, plan)
                self.conn.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS)
        except SchemaError as e:
            raise HashSetFileError(str(e)) from e
        except sqlite3.Error as e:
            raise HashSetFileError(f"{self.path}: not a usable hash-set store: {e}") from e
        except OSError as e:
            raise HashSetFileError(f"{self.path}: cannot create the hash-set store: "
                                   f"{e.strerror or e}") from e

    def _migrate(self, found: int, plan: tuple[Migration, ...]) -> None:
        """Bring an older store forward in one transaction; the file as it was is kept
        beside it (``<name>.schema-v<N>``) and the step is noted in ``meta``."""
        kept = keep_copy(self.conn, self.path, found)
        with self._transaction() as c:
            for step in plan:
                step.apply(c)
            STORE_SCHEMA.stamp(c)
            c.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                      "SET value=excluded.value",
                      (f"migrated_from_{found}", json.dumps({
                          "time_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "tool_version": __version__, "previous_file": kept.name})))
        self.migrated_from = found

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HashSetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # -- reading -----------------------------------------------------------------------
    _SET_COLUMNS = ("num", "set_id", "name", "format", "version", "source_path",
                    "source_sha256", "source_size", "imported_utc", "accepted", "rejected",
                    "empty_digests", "duplicates", "hash_counts", "rejected_examples",
                    "category_map", "known", "info", "tool_version", "digest")

    def _row_to_set(self, row: tuple[Any, ...]) -> SetInfo:
        d = dict(zip(self._SET_COLUMNS, row, strict=True))
        for k in ("duplicates", "hash_counts", "rejected_examples", "info"):
            d[k] = json.loads(d[k])
        d["category_map"] = json.loads(d["category_map"]) if d["category_map"] else None
        d["known"] = bool(d["known"])
        d["digest"] = json.loads(d["digest"]) if d["digest"] else None
        return SetInfo(**d)

    def _set_columns(self) -> tuple[str, ...]:
        """The set-row columns a read-only store has (a store of schema 2 or older, read
        without migrating, has no ``digest`` column)."""
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(sets)")}
        return tuple(c if c in have else f"NULL AS {c}" for c in self._SET_COLUMNS)

    def sets(self) -> list[SetInfo]:
        """All sets, in import order (deterministic). Raises :class:`DamagedSetError` for
        the first set whose row cannot be read (see :meth:`readable_sets`)."""
        good, damaged = self.readable_sets()
        if damaged:
            raise damaged[0]
        return good

    def readable_sets(self) -> tuple[list[SetInfo], list[DamagedSetError]]:
        """The sets whose rows can be read, in import order, and one error per set whose
        row is damaged (so that one bad set need not hide the others). Raises
        :class:`HashSetFileError` when the set table itself cannot be read."""
        try:
            rows = self.conn.execute(
                f"SELECT {', '.join(self._set_columns())} FROM sets ORDER BY num").fetchall()
        except sqlite3.Error as e:
            raise HashSetFileError(f"{self.path}: the store's set table cannot be read: "
                                   f"{e}") from e
        good: list[SetInfo] = []
        damaged: list[DamagedSetError] = []
        for r in rows:
            try:
                good.append(self._row_to_set(r))
            except (ValueError, TypeError, KeyError) as e:
                damaged.append(DamagedSetError(
                    f"{self.path}: set {r[1]} ({r[2]}) is damaged: its record cannot be "
                    f"read: {e}", str(r[1]), str(r[2])))
        return good, damaged

    def get_set(self, ident: str) -> SetInfo:
        """A set by set_id (or a unique prefix of it) or by unique name."""
        matches = [s for s in self.sets() if s.set_id == ident]
        if not matches:
            matches = [s for s in self.sets() if s.set_id.startswith(ident.lower())
                       or s.name == ident]
        if not matches:
            raise HashSetFileError(f"{self.path}: no hash set {ident!r}")
        if len(matches) > 1:
            ids = ", ".join(f"{s.set_id} ({s.name})" for s in matches)
            raise HashSetFileError(f"{ident!r} names several sets ({ids}); use the set id")
        return matches[0]

    def tables(self, s: SetInfo) -> dict[str, str]:
        """Algorithm -> hash table name of a set (only algorithms it has values for)."""
        return {alg: f"h{s.num}_{alg}" for alg, n in s.hash_counts.items() if n}

    def video_table(self, s: SetInfo) -> str | None:
        """The table of a video set's frames (``v{num}``), None for other sets."""
        return f"v{s.num}" if s.info.get("videos") else None

    def entry_table(self, s: SetInfo) -> str | None:
        name = f"e{s.num}"
        row = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                (name,)).fetchone()
        return name if row else None

    # -- importing ---------------------------------------------------------------------
    def import_file(self, path: str | os.PathLike[str], *, name: str | None = None,
                    format: str = "auto", category_map: str | dict[str, str] | None = None,
                    known: bool | None = None,
                    options: dict[str, Any] | None = None,
                    limits: ImportLimits | None = None) -> ImportResult:
        """Import one hash-set file as one set, in one transaction.

        Re-importing a file with the same SHA-256 is a no-op (``noop=True``). Raises
        :class:`HashSetFileError` naming the file (and record) when the file cannot be
        imported, including when it exceeds one of ``limits`` (default
        :class:`~hashsets.formats.bounds.ImportLimits`: line and record length, JSON depth,
        record count, unzipped size, SQLite value length and time); the store is then
        unchanged.
        """
        src = Path(path)
        chosen = None if format == "auto" else get_format(format)
        if self.readonly:
            raise HashSetFileError(f"{self.path}: store opened read-only")
        if not src.is_file() and not (src.is_dir() and not src.is_symlink()):
            raise HashSetFileError(f"{src}: no such file")
        named = (options or {}).get("algorithm")
        if named is not None and str(named).lower() not in ALGORITHMS:
            raise HashSetFileError(f"{src}: unknown hash algorithm {named!r} (known: "
                                   f"{', '.join(ALGORITHMS)})")
        try:
            digest, size = source_digest(src)
        except OSError as e:
            raise HashSetFileError(f"{src}: cannot read: {e.strerror or e}") from e
        row = self.conn.execute("SELECT set_id FROM sets WHERE source_sha256=?",
                                (digest,)).fetchone()
        if row:
            existing = self.get_set(row[0])
            return ImportResult(existing, noop=True, messages=[
                f"{src}: already imported as set {existing.set_id} ({existing.name!r}, "
                f"{existing.imported_utc}); nothing to do"])
        fmt = chosen if chosen is not None else detect_format(src)
        mapping = resolve(category_map, fmt.default_category_map)
        is_known = fmt.known if known is None else (known or fmt.known)
        ctx = ParseContext(path=src, options=dict(options or {}),
                           limits=limits or ImportLimits())
        try:
            with self._transaction() as c:
                info = self._load(c, src, digest, size, fmt, ctx, mapping, is_known,
                                  name or src.name, chosen_known=known is not None,
                                  chosen_name=name is not None)
        except HashSetFileError:
            raise
        except sqlite3.Error as e:
            raise HashSetFileError(f"{src}: import failed, store unchanged: {e}") from e
        except OSError as e:
            raise HashSetFileError(f"{src}: read failed, store unchanged: "
                                   f"{e.strerror or e}") from e
        msgs = [f"{src}: imported {info.accepted} records as set {info.set_id} "
                f"({info.format}{', version ' + info.version if info.version else ''})"]
        if info.rejected:
            ex = "; ".join(f"record {r}: {why}" for r, why in info.rejected_examples[:5])
            msgs.append(f"{info.rejected} records rejected (first: {ex})")
        if info.empty_digests:
            msgs.append(f"{info.empty_digests} records are the empty file's digest: kept out, "
                        "never matched")
        for alg, n in info.duplicates.items():
            if n:
                msgs.append(f"{n} duplicate {alg} values (the first record is used)")
        msgs.extend(f"{src}: {note}" for note in ctx.notes)
        return ImportResult(info, messages=msgs)

    def _load(self, c: sqlite3.Connection, src: Path, digest: str, size: int, fmt: Format,
              ctx: ParseContext, mapping: dict[str, str] | None, known: bool,
              name: str, *, chosen_known: bool = False, chosen_name: bool = False) -> SetInfo:
        """Parse and store one set (inside the caller's transaction). The set's name and
        known flag are the caller's when chosen, else what the file itself says
        (``ctx.name``, ``ctx.known``: a HashKeeper ``.hke``), else the defaults given."""
        self._written, self._written_entries = {}, None
        set_id = digest[:16]
        cur = c.execute(
            "INSERT INTO sets(set_id, name, format, source_path, source_sha256, source_size, "
            "imported_utc, accepted, rejected, empty_digests, duplicates, hash_counts, "
            "rejected_examples, known, info, tool_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, '{}', '{}', '[]', ?, '{}', ?)",
            (set_id, name, fmt.name, str(src.resolve()), digest, size, _utc_now(), int(known),
             f"hashsets {__version__}"))
        num = int(cur.lastrowid or 0)
        columns: dict[str, _Column] = {}
        entry_rows: list[tuple[Any, ...]] = []
        accepted = rejected = empty = 0
        examples: list[list[Any]] = []
        has_entries = False
        videos = video_frames = 0
        entry_sql = (f"INSERT INTO e{num}({', '.join(_ENTRY_COLUMNS)}) "
                     f"VALUES ({', '.join('?' * len(_ENTRY_COLUMNS))})")
        from .digest import EntryDigest

        entry_digest = EntryDigest(_ENTRY_COLUMNS, _ENTRY_INTEGER_COLUMNS)

        def column(alg: str, ref: int) -> _Column:
            col = columns.get(alg)
            if col is None:
                if alg not in ALGORITHMS:
                    raise HashSetFileError(f"{src}: record {ref}: unknown algorithm {alg!r}")
                col = columns[alg] = _Column(f"h{num}_{alg}", ALGORITHMS[alg].hex_length // 2)
            return col

        def spill_if_large() -> None:
            if sum(col.in_memory for col in columns.values()) >= SPILL_ROWS:
                for col in columns.values():
                    col.write(c)

        bulk = fmt.parse_bulk(ctx)
        items: Iterator[BulkItem] = bulk if bulk is not None else iter(fmt.parse(ctx))
        seen = 0
        for item in items:
            seen += len(item) if isinstance(item, Batch) else 1
            if seen > ctx.limits.records:
                raise exceeded(src, "records", "too many records",
                               ctx.limits, "records")
            if isinstance(item, Batch):
                keep = ~_empty_rows(item)
                n_keep = int(keep.sum())
                accepted += n_keep
                empty += len(item) - n_keep
                for alg, values in item.values.items():
                    mask = keep & item.present[alg] if alg in item.present else keep
                    column(alg, int(item.refs[0])).add(values[mask], item.refs[mask])
                spill_if_large()
                continue
            if isinstance(item, VideoRecord):
                from .video import pack

                if not videos:
                    c.execute(f"CREATE TABLE v{num} (ref INTEGER PRIMARY KEY, frames INTEGER "
                              "NOT NULL, pdq BLOB NOT NULL, quality BLOB NOT NULL, "
                              "frame_number BLOB NOT NULL, timestamp BLOB NOT NULL)")
                c.execute(f"INSERT INTO v{num} VALUES (?, ?, ?, ?, ?, ?)",
                          (item.ref, len(item.frames), *pack(item.frames)))
                if not has_entries:
                    c.execute(_ENTRY_TABLE.format(num=num))
                    has_entries = True
                entry_rows.append((item.ref, label(mapping, item.category_raw),
                                   item.category_raw, None, None, None, None, None,
                                   item.source, item.name, None, None))
                videos += 1
                video_frames += len(item.frames)
                accepted += 1
                continue
            if not isinstance(item, Record):
                rejected += 1
                if len(examples) < REJECT_EXAMPLES:
                    examples.append([item.ref, item.reason])
                continue
            hashes = item.hashes
            if not EMPTY_DIGESTS.isdisjoint(hashes.values()):
                empty += 1
                continue
            accepted += 1
            ref = item.ref
            for alg, value in hashes.items():
                if column(alg, ref).add_hex(value, ref):
                    spill_if_large()
            if item.has_metadata:
                if not has_entries:
                    c.execute(_ENTRY_TABLE.format(num=num))
                    has_entries = True
                entry_rows.append((
                    item.ref, label(mapping, item.category_raw), item.category_raw, item.series,
                    _flag(item.victim_identified), _flag(item.offender_identified),
                    _flag(item.is_distributed), _flag(item.baseline), item.entry_ref,
                    item.name, item.photodna,
                    json.dumps(item.fields, sort_keys=True) if item.fields else None))
                if len(entry_rows) >= BATCH:
                    c.executemany(entry_sql, entry_rows)
                    entry_digest.add(entry_rows)
                    entry_rows.clear()
        if entry_rows:
            c.executemany(entry_sql, entry_rows)
            entry_digest.add(entry_rows)
        self._written_entries = entry_digest.result() if has_entries else None
        if accepted == 0:
            detail = ""
            if examples:
                detail = " (first rejected: " + "; ".join(
                    f"record {r}: {why}" for r, why in examples[:3]) + ")"
            raise HashSetFileError(f"{src}: no usable records as format {fmt.name} "
                                   f"({rejected} rejected, {empty} empty-file digests)"
                                   f"{detail}; nothing imported")
        if videos:
            ctx.info.update(videos=videos, video_frames=video_frames)
        counts: dict[str, int] = {}
        duplicates: dict[str, int] = {}
        for alg, col in columns.items():
            col.write(c)
            if col.digest is not None:
                self._written[alg] = col.digest
            if col.stored:
                counts[alg] = col.stored
                duplicates[alg] = col.duplicates(c)
        c.execute(
            "UPDATE sets SET name=?, known=?, version=?, accepted=?, rejected=?, "
            "empty_digests=?, duplicates=?, hash_counts=?, rejected_examples=?, category_map=?, "
            "info=? WHERE num=?",
            (name if chosen_name or not ctx.name else ctx.name,
             int(known if chosen_known or ctx.known is None else (known or ctx.known)),
             ctx.version, accepted, rejected, empty, json.dumps(duplicates, sort_keys=True),
             json.dumps(counts, sort_keys=True), json.dumps(examples),
             json.dumps(mapping, sort_keys=True) if mapping is not None else None,
             json.dumps(ctx.info, sort_keys=True, default=str), num))
        info = self._row_to_set(c.execute(
            f"SELECT {', '.join(self._SET_COLUMNS)} FROM sets WHERE num=?", (num,)).fetchone())
        content = self._content_digest(info, self._written, self._written_entries)
        self._written, self._written_entries = {}, None
        c.execute("UPDATE sets SET digest=? WHERE num=?",
                  (json.dumps(content, sort_keys=True), num))
        info.digest = content
        return info

    def _content_digest(self, s: SetInfo, written: dict[str, str] | None = None,
                        entries: dict[str, str] | None = None) -> dict[str, Any]:
        """The set's content digest as stored now (:mod:`hashsets.digest`); ``written`` and
        ``entries``: hash-table and entry digests an import computed while writing (see
        ``_Column.digest`` and :class:`hashsets.digest.EntryDigest`)."""
        from . import digest as dg

        names = [c for c in self._SET_COLUMNS if c not in ("num", "digest")]
        row = self.conn.execute(f"SELECT {', '.join(names)} FROM sets WHERE num=?",
                                (s.num,)).fetchone()
        return dg.compute(self.conn, dict(zip(names, row, strict=True)), self.tables(s),
                          {alg: ALGORITHMS[alg].hex_length // 2 if alg in ALGORITHMS else 0
                           for alg in s.hash_counts}, self.entry_table(s), written,
                          entries, self.video_table(s))

    # -- removing and verifying --------------------------------------------------------
    def remove(self, ident: str) -> SetInfo:
        """Remove a set and its tables (one transaction)."""
        s = self.get_set(ident)
        with self._transaction() as c:
            for table in self.tables(s).values():
                c.execute(f"DROP TABLE IF EXISTS {table}")
            c.execute(f"DROP TABLE IF EXISTS e{s.num}")
            c.execute(f"DROP TABLE IF EXISTS v{s.num}")
            c.execute("DELETE FROM sets WHERE num=?", (s.num,))
        return s

    def verify(self, ident: str | None = None) -> list[VerifyResult]:
        """Check each set: its stored values and fields against the content digest recorded
        at import (:mod:`hashsets.digest`), its row counts against the recorded counts, and
        its source file against the recorded SHA-256.

        Status, the first that applies: ``damaged`` (a table cannot be read or holds another
        number of rows than recorded), ``altered`` (stored values or fields differ from the
        digest; the detail names each part: ``md5 values``, ``entry field 'category'``),
        ``missing`` / ``changed`` (the source file), ``unverified`` (a set imported before
        digests were recorded: its stored values cannot be checked; the detail says how to
        record one or re-import), else ``ok``."""
        from . import digest as dg

        sets = [self.get_set(ident)] if ident else self.sets()
        out: list[VerifyResult] = []
        for s in sets:
            def result(status: str, detail: str, s: SetInfo = s) -> None:
                out.append(VerifyResult(s.set_id, s.name, s.source_path, status, detail))

            damaged = []
            for alg, table in self.tables(s).items():
                try:
                    n = self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                except sqlite3.Error as e:
                    damaged.append(f"{table}: {e}")
                    continue
                if n != s.hash_counts[alg]:
                    damaged.append(f"{alg}: {n} values stored, {s.hash_counts[alg]} recorded")
            if (vt := self.video_table(s)) is not None:
                try:
                    n, f = self.conn.execute(f"SELECT count(*), coalesce(sum(frames), 0) "
                                             f"FROM {vt}").fetchone()
                except sqlite3.Error as e:
                    damaged.append(f"{vt}: {e}")
                else:
                    if (n, f) != (s.info.get("videos"), s.info.get("video_frames")):
                        damaged.append(f"videos: {n} videos of {f} frames stored, "
                                       f"{s.info.get('videos')} of "
                                       f"{s.info.get('video_frames')} recorded")
            if damaged:
                result("damaged", "; ".join(damaged))
                continue
            altered: list[str] = []
            if s.digest is not None:
                if s.digest.get("version") != dg.DIGEST_VERSION:
                    result("unverified", f"content digest of version "
                           f"{s.digest.get('version')!r}, this triage checks version "
                           f"{dg.DIGEST_VERSION}")
                    continue
                try:
                    altered = dg.differences(s.digest, self._content_digest(s))
                except sqlite3.Error as e:
                    result("damaged", f"cannot read the set's rows: {e}")
                    continue
            if altered:
                result("altered", "stored content differs from the digest recorded at "
                       "import: " + "; ".join(altered) + "; remove the set and re-import "
                       "it from its source file")
                continue
            source = self._source_state(s)
            if source is not None:
                result(*source)
            elif s.digest is None:
                result("unverified", "source unchanged, but the stored values cannot be "
                       "checked: the set was imported before content digests were recorded. "
                       f"Re-import it ('triage hashset remove {s.set_id}', then 'triage "
                       f"hashset import {s.source_path}'), or record a digest of the store as "
                       f"it is now ('triage hashset verify {s.set_id} --record-digest')")
            else:
                result("ok", "stored values and fields match the digest recorded at import; "
                       "source unchanged")
        return out

    def _source_state(self, s: SetInfo) -> tuple[str, str] | None:
        """``(status, detail)`` when the source file is missing or changed, else None."""
        src = Path(s.source_path)
        if not src.is_file() and not src.is_dir():
            return "missing", "source file no longer at its recorded path"
        try:
            digest, size = source_digest(src)
        except OSError as e:
            return "missing", f"cannot read: {e.strerror or e}"
        if digest != s.source_sha256:
            return "changed", (f"SHA-256 is now {digest} ({size} bytes), was "
                               f"{s.source_sha256} ({s.source_size} bytes) at import; "
                               "re-import it")
        return None

    def record_digest(self, ident: str | None = None) -> list[VerifyResult]:
        """Record a content digest for each set (or the one named) that has none, of its
        rows AS STORED NOW, after checking its row counts and source file (a set whose
        source is missing or changed gets none). Statuses: ``recorded``, ``ok`` (it had
        one already; nothing changed), or the failing :meth:`verify` status."""
        if self.readonly:
            raise HashSetFileError(f"{self.path}: store opened read-only")
        out: list[VerifyResult] = []
        for r in self.verify(ident):
            if r.status != "unverified" or self.get_set(r.set_id).digest is not None:
                out.append(r)
                continue
            s = self.get_set(r.set_id)
            with self._transaction() as c:
                digest = self._content_digest(s)
                c.execute("UPDATE sets SET digest=? WHERE num=?",
                          (json.dumps(digest, sort_keys=True), s.num))
            out.append(VerifyResult(s.set_id, s.name, s.source_path, "recorded",
                                    "content digest recorded of the store as it is now (it "
                                    "vouches for later checks, not for the time before; "
                                    "re-importing from the source is the stronger check)"))
        return out
