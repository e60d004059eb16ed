"""Digests of the case's data rows, recorded in the hash-chained audit trail (issue 12,
item 5): the audit chain covers the rows that reports are made from, not only itself.

Definition (version :data:`DIGEST_VERSION`; docs/reports.md "Data digests" says the same):

* Tables covered (:data:`TABLES`): ``case``, ``runs``, ``evidence``, ``files``, ``hashes``,
  ``images``, ``videos``, ``video_frames``, ``hash_variants`` (issue 14), ``errors``,
  ``hash_sets_used``, ``matches``, ``video_matches``, ``carved``, ``fragments``,
  ``media_metadata``, ``metadata_tags`` (issue 16), ``clusters``, ``cluster_members``
  (issue 16, written by ``triage leads``): every table an export or a match reads.
  Not covered: ``meta`` (schema version and creator; changed only by an audited migration)
  and ``audit`` itself (covered by its own chain).
* Each table's rows are split into **partitions by run**: the run column of the row
  (``files.run_id``: the run that last wrote the entry's result; ``errors.run_id``,
  ``matches.run_id``, ``video_matches.run_id``, ``hash_sets_used.run_id``,
  ``evidence.added_run_id``, ``runs.id``, ``clusters.run_id``, ``cluster_members.run_id``);
  a ``hashes``, ``images``, ``videos``,
  ``video_frames``, ``carved``, ``fragments``, ``hash_variants``, ``media_metadata`` or
  ``metadata_tags`` row belongs to the
  partition of its file. A NULL run (and the one-row ``case`` table) is the partition
  ``-``. So a failure names the table and the run.
* A partition's digest is the SHA-256 of the ASCII text::

      triage data digest 1\\n
      table NAME\\n
      columns COL1,COL2,...\\n          (every column, in the table's declared order)
      partition KEY\\n
      ROW\\n ROW\\n ...                 (the partition's rows in primary-key order)

  where ROW is every column's value as ``T:HEX`` joined by ``,``: ``T`` is the first letter
  of SQLite's ``typeof()`` (``n`` null, ``i`` integer, ``t`` text, ``b`` blob; ``r`` real,
  held by the video tables and ``media_metadata``'s GPS columns only) and ``HEX`` is
  SQLite's ``hex()`` of the value
  (upper-case hex of the text's UTF-8 bytes, of a blob's bytes, of an integer's decimal
  text, of a real's text as SQLite writes it (``%!.15g``, the video tables' seconds and
  percentages); empty for NULL). Both functions are computed by SQLite in C and stream; the encoding
  is unambiguous (type tags, no separator can occur inside hex) and keeps every byte
  (a NUL inside a text value too).
* A digest is ``{"version": 1, "tables": {TABLE: {KEY: [ROWS, SHA256], ...}, ...}}``. It is
  recorded under the key :data:`DIGEST_KEY` in the details of the audit row that records a
  change of those tables, in the same transaction (see :mod:`triage.case`); a row may
  record only some tables (``case.update`` records ``case``).

Checking (:func:`compare`): for each table, the partitions now must equal those of the
LAST audit row that recorded that table. Runs that started in the audit chain and never
ended (a process that died) may have changed rows without recording them: see
:func:`compare` for what they may change.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .util import canonical_json

DIGEST_VERSION = 1
#: The key of an audit row's details that holds a data digest.
DIGEST_KEY = "data_digest"
#: The key of an audit row's details that describes the database file as the opening that
#: recorded a table's first digest found it (see :mod:`triage.case`).
BASELINE_KEY = "data_baseline"
#: The partition of rows without a run.
NO_RUN = "-"
_FILE_RUN = "(SELECT f.run_id FROM files f WHERE f.id = t.file_id)"


@dataclass(frozen=True)
class TableSpec:
    """One covered table: its partition (an SQL expression over the alias ``t``, None for
    a single partition) and its primary-key order."""

    name: str
    partition: str | None
    order: str
    #: How a failure names the partition.
    label: str = "run"


TABLES: tuple[TableSpec, ...] = (
    TableSpec("case", None, "t.id"),
    TableSpec("runs", "t.id", "t.id"),
    TableSpec("evidence", "t.added_run_id", "t.id", "evidence added by run"),
    TableSpec("files", "t.run_id", "t.id", "entries last written by run"),
    TableSpec("hashes", _FILE_RUN, "t.file_id, t.algorithm", "hashes of entries of run"),
    TableSpec("images", _FILE_RUN, "t.file_id", "picture facts of entries of run"),
    TableSpec("videos", _FILE_RUN, "t.file_id", "video facts of entries of run"),
    TableSpec("video_frames", _FILE_RUN, "t.file_id, t.seq", "video frames of entries of run"),
    TableSpec("hash_variants", _FILE_RUN, "t.file_id, t.algorithm, t.variant",
              "picture variant hashes of entries of run"),
    TableSpec("errors", "t.run_id", "t.id"),
    TableSpec("hash_sets_used", "t.run_id", "t.id"),
    TableSpec("matches", "t.run_id", "t.id"),
    TableSpec("video_matches", "t.run_id", "t.id"),
    TableSpec("carved", _FILE_RUN, "t.file_id", "carved items of entries of run"),
    TableSpec("fragments", _FILE_RUN, "t.file_id", "fragment hits of entries of run"),
    TableSpec("media_metadata", _FILE_RUN, "t.file_id", "metadata of entries of run"),
    TableSpec("metadata_tags", _FILE_RUN, "t.file_id, t.seq",
              "metadata tags of entries of run"),
    TableSpec("clusters", "t.run_id", "t.run_id, t.cluster_id", "clusters of leads run"),
    TableSpec("cluster_members", "t.run_id", "t.run_id, t.file_id",
              "cluster members of leads run"),
)
TABLE_NAMES = tuple(t.name for t in TABLES)
#: Tables whose rows of a run are written by that run alone (``matches`` and
#: ``hash_sets_used`` in one transaction of the match; ``runs`` by its start and end): a run
#: that died cannot have changed the rows of another run there.
PER_RUN_TABLES = frozenset({"runs", "matches", "hash_sets_used", "video_matches", "clusters",
                            "cluster_members"})
#: Tables only ever changed together with a digest of them (``set_case_info``).
ALWAYS_RECORDED = frozenset({"case"})

#: {table: {partition: [rows, sha256]}}
Tables = dict[str, dict[str, list[Any]]]

#: Tables whose rows a scan may change in partitions of runs that had ended before it: a
#: resumed scan rewrites entries (``files``, and with them ``hashes`` and ``images``) of the
#: killed run that left them pending, ``--retry-quarantined`` rewrites quarantined entries
#: of earlier runs (and their ``errors``), and an evidence row gets its identity. Never the
#: ``runs``, ``matches`` or ``hash_sets_used`` rows of an ended run: a run writes only its
#: own there.
SCAN_REWRITES = frozenset({"files", "hashes", "images", "errors", "evidence", "videos",
                           "video_frames", "carved", "fragments", "hash_variants",
                           "media_metadata", "metadata_tags"})


#: ``triage match`` re-opening the evidence to decode draft-decoded near candidates again at
#: full size (issue 14, :mod:`triage.confirm`): one audited transaction that rewrites those
#: entries' results (moving them to the match run), as a resumed scan would (a confirmed
#: file's result is a picture's or a container's: its video rows are rewritten with it).
CONFIRM_ACTION = "match.confirm"
CONFIRM_REWRITES = frozenset({"files", "hashes", "images", "hash_variants", "errors",
                              "videos", "video_frames", "carved", "fragments",
                              "media_metadata", "metadata_tags"})


def tables_changed_by(action: str) -> frozenset[str]:
    """The tables an audit row of ``action`` may record a change of (any partition): a
    run's end and ``run.interrupted`` (what the run wrote), ``case.migrate`` (a migration
    may rewrite any row), ``case.create``/``case.update`` (``case``), ``image.verify``
    (``evidence``), ``match.confirm`` (the entries a full-decode confirmation rewrote). Any
    other action (``report.export`` included) changes no data row."""
    if action.endswith(".end") or action in ("run.interrupted", "case.migrate"):
        return frozenset(TABLE_NAMES)
    if action in ("case.create", "case.update"):
        return frozenset({"case"})
    if action == "image.verify":
        return frozenset({"evidence"})
    if action == CONFIRM_ACTION:
        return CONFIRM_REWRITES
    return frozenset()


def tables_of_ended_runs_changed_by(action: str) -> frozenset[str]:
    """The tables in which ``action`` may change the partitions of runs that had ended
    before it (see :data:`SCAN_REWRITES`): all for ``case.migrate``; the scan's for a
    scan's end and ``run.interrupted`` (a dead scan resumed entries too); ``evidence`` for
    ``image.verify``; the confirmed entries' for ``match.confirm``; nothing else (a
    ``match`` adds its own run's rows only)."""
    if action == "case.migrate":
        return frozenset(TABLE_NAMES)
    if action in ("scan.end", "run.interrupted"):
        return SCAN_REWRITES
    if action == "image.verify":
        return frozenset({"evidence"})
    if action == CONFIRM_ACTION:
        return CONFIRM_REWRITES
    return frozenset()


def run_partitions(table: str, parts: Mapping[str, list[Any]], runs: set[int]
                   ) -> dict[str, list[Any] | None]:
    """The partitions of ``runs`` in one table's partitions map (None: no rows)."""
    spec = next(s for s in TABLES if s.name == table)
    if spec.partition is None:
        return {}
    return {str(r): parts.get(str(r)) for r in runs}


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")')]


#: Columns per printf() call: two arguments each, below SQLite's default limit of 127
#: arguments per function (SQLITE_MAX_FUNCTION_ARG, https://www.sqlite.org/limits.html).
_PRINTF_COLUMNS = 50


def _row_sql(spec: TableSpec, columns: list[str]) -> str:
    # printf('%.1s:%s', typeof(c), hex(c)) is the ROW of the module doc, computed in one C
    # call per group of columns (about twice as fast as the same with || and substr()).
    groups = [columns[i:i + _PRINTF_COLUMNS] for i in range(0, len(columns), _PRINTF_COLUMNS)]
    values = " || ',' || ".join(
        "printf('" + ",".join(["%.1s:%s"] * len(g)) + "', "
        + ", ".join(f'typeof(t."{c}"), hex(t."{c}")' for c in g) + ")" for g in groups)
    key = spec.partition or "NULL"
    return (f"SELECT {key} AS k, {values} || char(10) AS line "
            f"FROM \"{spec.name}\" t ORDER BY {spec.order}")


def _header(table: str, columns: list[str], key: str) -> bytes:
    return (f"triage data digest {DIGEST_VERSION}\ntable {table}\n"
            f"columns {','.join(columns)}\npartition {key}\n").encode("ascii")


def table_digest(conn: sqlite3.Connection, spec: TableSpec) -> dict[str, list[Any]]:
    """``{partition: [rows, sha256]}`` of one table (see module doc), streamed: memory is
    one hasher per partition. A missing table has no partitions."""
    columns = _columns(conn, spec.name)
    if not columns:
        return {}
    hashers: dict[Any, Any] = {}
    counts: dict[Any, int] = {}
    saved = conn.text_factory
    conn.text_factory = bytes  # the lines are ASCII: hashed as SQLite returns them
    try:
        for key, line in conn.execute(_row_sql(spec, columns)):
            h = hashers.get(key)
            if h is None:
                name = NO_RUN if key is None else str(key)
                h = hashers[key] = hashlib.sha256(_header(spec.name, columns, name))
                counts[key] = 0
            h.update(line)
            counts[key] += 1
    finally:
        conn.text_factory = saved
    return {NO_RUN if k is None else str(k): [counts[k], h.hexdigest()]
            for k, h in hashers.items()}


def compute(conn: sqlite3.Connection, tables: Iterable[str] = TABLE_NAMES) -> Tables:
    """The digest of ``tables`` (default: all) as they are now on ``conn`` (call it inside
    the transaction that wrote them, so that the digest is of exactly what commits)."""
    wanted = set(tables)
    unknown = wanted - set(TABLE_NAMES)
    if unknown:
        raise ValueError(f"not a data table: {', '.join(sorted(unknown))}")
    return {s.name: table_digest(conn, s) for s in TABLES if s.name in wanted}


def record(tables: Tables) -> dict[str, Any]:
    """The value stored under :data:`DIGEST_KEY` in an audit row's details."""
    return {"version": DIGEST_VERSION, "tables": tables}


def table_sha256(partitions: Mapping[str, list[Any]]) -> str:
    """One SHA-256 for a table (of its canonical partitions map), for manifests."""
    return hashlib.sha256(canonical_json(partitions).encode("ascii")).hexdigest()


def summary(tables: Tables) -> dict[str, Any]:
    """What a manifest records: one SHA-256 over all tables and one per table."""
    return {"version": DIGEST_VERSION,
            "sha256": hashlib.sha256(canonical_json(tables).encode("ascii")).hexdigest(),
            "tables": {t: table_sha256(p) for t, p in sorted(tables.items())}}


@dataclass(frozen=True)
class Recorded:
    """The last digest of one table in the audit chain."""

    seq: int
    action: str
    partitions: dict[str, list[Any]]


@dataclass(frozen=True)
class RunState:
    """What the audit chain says about the runs: those started, and those ended (an end
    row or ``run.interrupted``); the command of each started run."""

    started: dict[int, str]
    ended: set[int]

    @property
    def unended(self) -> list[int]:
        return sorted(set(self.started) - self.ended)


def recorded(conn: sqlite3.Connection, violations: list[tuple[str, str]] | None = None
             ) -> tuple[dict[str, Recorded], list[str]]:
    """The last recorded digest of each table, and problems with recorded digests (an
    unknown digest version, unreadable JSON).

    ``violations`` (when given) receives ``(table, detail)`` for every recorded change no
    action of that name makes: a digest that differs from the previous digest of its table
    where :func:`tables_changed_by` does not allow the action to change the table, or in
    a partition of a run that had ended before the row where
    :func:`tables_of_ended_runs_changed_by` does not allow it. The first digest of a table
    is not such a change (see :func:`baselines` for what it started from)."""
    out: dict[str, Recorded] = {}
    problems: list[str] = []
    ended: set[int] = set()
    for seq, action, details in conn.execute(
            "SELECT seq, action, details FROM audit WHERE json_valid(details) AND "
            f"(json_type(details, '$.{DIGEST_KEY}') IS NOT NULL OR ((action LIKE '%.end' "
            "OR action = 'run.interrupted') AND json_type(details, '$.run') = 'integer')) "
            "ORDER BY seq"):
        full = json.loads(details)
        if DIGEST_KEY not in full:
            ended.add(int(full["run"]))
            continue
        doc = full[DIGEST_KEY]
        if not isinstance(doc, dict) or doc.get("version") != DIGEST_VERSION or \
                not isinstance(doc.get("tables"), dict):
            version = doc.get("version") if isinstance(doc, dict) else "?"
            problems.append(f"audit row {seq} ({action}): a data digest this triage cannot "
                            f"read (version {version})")
            continue
        ended_before = set(ended)
        for table, parts in doc["tables"].items():
            if table in TABLE_NAMES and isinstance(parts, dict):
                prev = out.get(table)
                if violations is not None and prev is not None and prev.partitions != parts:
                    violations.extend(_violations(table, prev, int(seq), str(action), parts,
                                                  ended_before))
                out[table] = Recorded(int(seq), str(action), parts)
        if (action.endswith(".end") or action == "run.interrupted") and \
                isinstance(full.get("run"), int):
            ended.add(int(full["run"]))
    return out, problems


def _violations(table: str, prev: Recorded, seq: int, action: str,
                parts: Mapping[str, list[Any]], ended: set[int]) -> list[tuple[str, str]]:
    where = f"audit row {seq} ({action}) records a change of table {table}"
    if table not in tables_changed_by(action):
        keys = sorted((k for k in set(prev.partitions) | set(parts)
                       if prev.partitions.get(k) != parts.get(k)),
                      key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
        runs = [k for k in keys if k != NO_RUN]
        spec = next(s for s in TABLES if s.name == table)
        at = f" (run {', '.join(runs)})" if runs and spec.partition is not None else ""
        return [(table, f"{where}{at}, which a {action} never makes (digest before: audit "
                        f"row {prev.seq}, {prev.action})")]
    if table in tables_of_ended_runs_changed_by(action):
        return []
    old = run_partitions(table, prev.partitions, ended)
    new = run_partitions(table, parts, ended)
    changed = sorted((k for k in old if old[k] != new[k]), key=int)
    return [(table, f"{where} in run {k}, which had ended before it; a {action} never "
                    f"changes an ended run's rows there (digest before: audit row "
                    f"{prev.seq}, {prev.action})") for k in changed]


#: A manifest larger than this is not read (as triage.report.manifest.MAX_MANIFEST_BYTES).
_MAX_MANIFEST_BYTES = 1 << 20
_MANIFEST_SUFFIX = ".manifest.json"


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def database_file_state(db: Path) -> dict[str, Any]:
    """SHA-256 and size of the database file and of its WAL when that holds anything (as
    :func:`triage.report.manifest.database_state` records them in a manifest)."""
    digest, size = _sha256_file(db)
    state: dict[str, Any] = {"path": db.name, "sha256": digest, "size": size, "wal": None}
    wal = db.with_name(db.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        wd, ws = _sha256_file(wal)
        state["wal"] = {"path": wal.name, "sha256": wd, "size": ws}
    return state


def manifests_anchoring(case_dir: Path, seq: int, row_hash: str
                        ) -> list[tuple[Path, dict[str, Any]]]:
    """Export manifests under ``case_dir`` (regular files, not links, folders reached
    through links not searched) whose audit anchor is ``(seq, row_hash)``: the exports made
    when the audit chain's head was that row. Unreadable ones are skipped (``triage
    verify`` reports them)."""
    root = case_dir.resolve()
    out: list[tuple[Path, dict[str, Any]]] = []
    for p in sorted(case_dir.rglob("*" + _MANIFEST_SUFFIX)):
        try:
            if p.is_symlink() or not p.is_file() or \
                    not p.parent.resolve().is_relative_to(root):
                continue
            with p.open("rb") as f:
                raw = f.read(_MAX_MANIFEST_BYTES + 1)
            if len(raw) > _MAX_MANIFEST_BYTES:
                continue
            doc = json.loads(raw)
        except (OSError, ValueError):
            continue
        audit = doc.get("audit") if isinstance(doc, dict) else None
        if isinstance(audit, dict) and audit.get("seq") == seq and \
                audit.get("row_hash") == row_hash:
            out.append((p, doc))
    return out


def baselines(conn: sqlite3.Connection) -> dict[str, tuple[int, str, dict[str, Any] | None]]:
    """For each table, the FIRST audit row that recorded its digest: ``(seq, action,
    data_baseline)``, where ``data_baseline`` (:data:`BASELINE_KEY`, None when not
    recorded) describes the database file that row's opening found before writing."""
    out: dict[str, tuple[int, str, dict[str, Any] | None]] = {}
    cur = conn.execute(
        "SELECT seq, action, details FROM audit WHERE json_valid(details) AND "
        f"json_type(details, '$.{DIGEST_KEY}.tables') = 'object' ORDER BY seq")
    try:
        for seq, action, details in cur:
            full = json.loads(details)
            base = full.get(BASELINE_KEY)
            for table in full[DIGEST_KEY]["tables"]:
                if table in TABLE_NAMES and table not in out:
                    out[table] = (int(seq), str(action),
                                  base if isinstance(base, dict) else None)
            if len(out) == len(TABLE_NAMES):
                break
    finally:
        cur.close()  # a statement left open would hold its read snapshot
    return out


def run_state(conn: sqlite3.Connection) -> RunState:
    started: dict[int, str] = {}
    ended: set[int] = set()
    for action, run in conn.execute(
            "SELECT action, json_extract(details, '$.run') FROM audit WHERE json_valid(details) "
            "AND json_type(details, '$.run') = 'integer' AND (action LIKE '%.start' OR "
            "action LIKE '%.end' OR action = 'run.interrupted') ORDER BY seq"):
        if action.endswith(".start"):
            started[int(run)] = action[: -len(".start")]
        else:
            ended.add(int(run))
    return RunState(started, ended)


@dataclass(frozen=True)
class Difference:
    """One partition whose rows differ from the last recorded digest of its table."""

    table: str
    partition: str
    recorded: list[Any] | None
    current: list[Any] | None
    at: Recorded

    def describe(self) -> str:
        spec = next(s for s in TABLES if s.name == self.table)
        if spec.partition is None:
            where = "its rows"
        elif self.partition == NO_RUN:
            where = "rows without a run"
        else:
            where = f"{spec.label} {self.partition}"
        if self.recorded is None:
            what = f"{self.current[0] if self.current else 0} rows not in the recorded digest"
        elif self.current is None:
            what = f"all {self.recorded[0]} recorded rows are gone"
        elif self.recorded[0] != self.current[0]:
            what = f"{self.current[0]} rows, {self.recorded[0]} recorded"
        else:
            what = f"{self.current[0]} rows as recorded, but their content differs"
        return (f"{where}: {what} (digest recorded by audit row {self.at.seq}, "
                f"{self.at.action})")


@dataclass(frozen=True)
class DataCheck:
    """The data compared with the audit chain. ``ok``: nothing unexplained."""

    current: Tables
    #: Differences no recorded action explains: the data was changed outside triage.
    differences: tuple[Difference, ...] = ()
    #: Differences a run that died (no end in the chain) may have made: not verifiable.
    unverifiable: tuple[Difference, ...] = ()
    #: Runs started in the chain that never ended and are still marked running.
    dead_runs: tuple[int, ...] = ()
    #: Tables with no digest in the chain at all (a case made before data digests).
    uncovered: tuple[str, ...] = ()
    #: The runs table against the chain, and unreadable digests.
    problems: tuple[str, ...] = ()
    recorded_at: dict[str, int] = field(default_factory=dict)
    #: ``(table, detail)``: recorded changes no action of that name makes (see
    #: :func:`recorded`).
    violations: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.differences and not self.problems and not self.violations

    def failures(self) -> list[tuple[str, str]]:
        """``(table or subject, detail)`` of every failure, grouped by table."""
        out: list[tuple[str, str]] = []
        for table in TABLE_NAMES:
            ds = [d for d in self.differences if d.table == table]
            if ds:
                runs = sorted({d.partition for d in ds if d.partition != NO_RUN},
                              key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
                label = f"table {table}" + (f" (run {', '.join(runs)})" if runs else "")
                out.append((label, "; ".join(d.describe() for d in ds)))
            out.extend((f"table {table}", v) for t, v in self.violations if t == table)
        out.extend(("runs vs audit trail", p) for p in self.problems)
        return out

    def message(self) -> str:
        return "; ".join(f"{s}: {d}" for s, d in self.failures())


def compare(conn: sqlite3.Connection, current: Tables | None = None) -> DataCheck:
    """Compare the data on ``conn`` with the audit chain's last recorded digests.

    A run that started in the chain but has no end there and is still ``running`` in the
    runs table died (kill -9, power loss) or is running now (callers hold the case lock, so
    it died). Such a run wrote rows without recording a digest: differences it can have made
    are *unverifiable*, not failures: in ``files``, ``hashes``, ``images``, ``errors`` and
    ``evidence`` any partition (a scan rewrites entries of earlier runs on resume); in
    ``runs``, ``matches`` and ``hash_sets_used`` only its own run's partition; ``case``
    never (it is always recorded with its change). A run the runs table calls ended whose
    end is missing from the chain is a failure: the end of the audit trail was cut off.
    """
    now = current if current is not None else compute(conn)
    violations: list[tuple[str, str]] = []
    last, problems = recorded(conn, violations)
    runs = run_state(conn)
    status = {int(i): str(s) for i, s in conn.execute("SELECT id, status FROM runs")}
    dead: list[int] = []
    for run in runs.unended:
        if status.get(run) == "running":
            dead.append(run)
        elif run in status:
            problems.append(
                f"run {run} ({runs.started[run]}) is '{status[run]}' in the runs table but "
                "its end is missing from the audit trail: audit rows were removed from its "
                "end")
    for run, st in sorted(status.items()):
        if st == "running" and run in runs.ended:
            problems.append(f"run {run} is 'running' in the runs table but the audit trail "
                            "recorded its end")
    # A dead match or leads run wrote only its own partitions of PER_RUN_TABLES.
    writers_of_all = any(runs.started.get(r) not in ("match", "leads") for r in dead)
    differences: list[Difference] = []
    unverifiable: list[Difference] = []
    uncovered: list[str] = []
    for table in TABLE_NAMES:
        rec = last.get(table)
        parts = now.get(table, {})
        if rec is None:
            if parts:
                uncovered.append(table)
            continue
        for key in sorted(set(rec.partitions) | set(parts)):
            was, cur = rec.partitions.get(key), parts.get(key)
            if was == cur:
                continue
            d = Difference(table, key, was, cur, rec)
            own = key != NO_RUN and key.isdigit() and int(key) in dead
            if table in ALWAYS_RECORDED:
                differences.append(d)
            elif table in PER_RUN_TABLES:
                (unverifiable if own else differences).append(d)
            else:
                (unverifiable if writers_of_all else differences).append(d)
    return DataCheck(now, tuple(differences), tuple(unverifiable), tuple(dead),
                     tuple(uncovered), tuple(problems),
                     {t: r.seq for t, r in last.items()}, tuple(violations))


__all__ = ["BASELINE_KEY", "DIGEST_KEY", "DIGEST_VERSION", "NO_RUN", "SCAN_REWRITES", "TABLES",
           "TABLE_NAMES", "DataCheck", "Difference", "Recorded", "TableSpec", "baselines",
           "compare", "compute", "database_file_state", "manifests_anchoring", "record",
           "run_partitions", "summary", "table_digest", "tables_changed_by",
           "tables_of_ended_runs_changed_by"]
