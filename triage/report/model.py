"""The report model: a case's summary read once, and streaming iterators over its rows.

All SQL used by reports lives here and in :mod:`triage.report.rows` (the row records and
their column lists). Exporters render a :class:`ReportModel` and never touch the database
themselves, so all formats show the same facts.

Contract:

* Only metadata is read: paths (display form and raw bytes as hex), sizes, times, statuses,
  hashes, match explanations, runs, hash sets used, errors and the audit trail. Content is
  never read (the case database holds none).
* Memory does not grow with the number of files. The model holds the summary (case,
  evidence, runs, hash sets, counts by status, category and set, the audit trail); file
  entries, hits and errors are streamed from the database by :meth:`ReportModel.files`,
  :meth:`~ReportModel.hits`, :meth:`~ReportModel.unprocessed` and
  :meth:`~ReportModel.errors`, a batch of :data:`FILE_BATCH` files at a time. The
  iterators are valid only inside :func:`reading`, which holds one read snapshot (a
  read transaction, ``PRAGMA query_only``) so every part of an export sees the same rows.
* Everything is sorted deterministically (files by display path then id; a file's hashes by
  algorithm; hits by kind (case sets before known-file sets), set, algorithm, known value),
  so the same case always gives the same model.
* The hits shown are those of the *current match run*: the latest COMPLETED run that
  recorded matching over a finished scan (:meth:`~triage.case.Case.report_match_run`; a
  failed, interrupted or mid-scan match run never counts), with a note when the case was
  scanned again since. Earlier match runs are kept in the database and listed under "runs".
* Audit rows with action ``report.export`` are not part of the model: each export appends one,
  and listing them would make two exports of the same case differ. They stay in the chain and
  ``triage verify`` checks them.

Reads go through sqlite-utils (``Database(conn).query``: one dict per row, keyed by column
name) over the case's own connection, with sqlite-utils' connection set-up (recursive
triggers, plug-ins) switched off. ``Table.rows_where`` is not used: it yields nothing for a
missing table, where a report must fail loudly.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlite_utils import Database

from ..case import Case
from .redact import METADATA_FIELDS, MetadataPolicy, binary_tag
from .rows import (
    IMAGE_COLUMNS,
    NO_CATEGORY,
    OVERWRITTEN_NOTE,
    SET_LABEL_SQL,
    AuditRow,
    ErrorRow,
    Evidence,
    File,
    Hash,
    HashSetUsed,
    Hit,
    Metadata,
    Run,
    SetSummary,
    TagListing,
    parse_json,
)

#: Audit action appended by every export (kept out of the model, see module doc).
EXPORT_ACTION = "report.export"
#: Files whose hashes, image facts and hits are fetched together (one ``IN (...)`` query per
#: table). Below SQLite's historical limit of 999 host parameters
#: (SQLITE_MAX_VARIABLE_NUMBER, https://www.sqlite.org/limits.html); memory per batch is
#: small and constant.
FILE_BATCH = 500
#: Statuses of entries that were not fully processed (listed in full in HTML/PDF): coverage
#: gaps, errors and entries never reached (triage.model outcome classes).
UNPROCESSED = ("incomplete", "error", "quarantined", "pending")
#: Example paths shown per coverage group (the full list follows in the report).
COVERAGE_EXAMPLES = 3
#: A match row of the current match run on a file that exists (``m`` and ``f`` aliases).
_RUN_HITS = "FROM matches m JOIN files f ON f.id = m.file_id WHERE m.run_id IS ?"
#: A hit's rank in reports (issue 14): case-set hits by grade (exact, confirmed, review,
#: unconfirmed; ungraded near hits of an older match run after them), known-file hits last.
GRADE_RANK_SQL = ("CASE WHEN {t}known <> 0 THEN 9 WHEN {t}grade = 'exact' OR ({t}grade IS "
                  "NULL AND {t}match_type = 'exact') THEN 0 WHEN {t}grade = 'confirmed' THEN 1 "
                  "WHEN {t}grade = 'review' THEN 2 WHEN {t}grade = 'unconfirmed' THEN 3 "
                  "ELSE 4 END")

__all__ = ["DUPLICATE_SCOPES", "NO_CATEGORY", "OVERWRITTEN_NOTE", "AuditRow", "CaseReader",
           "CoverageGroup", "DuplicateCounts", "DuplicateGroup", "DuplicateMember", "ErrorRow",
           "Evidence", "File", "Hash", "HashSetUsed", "Hit", "ReportModel", "Run",
           "SetSummary", "load", "reading"]


class CaseReader:
    """Streaming reads of one case database (see module doc). ``run_id`` is the current
    match run, whose hits files carry."""

    def __init__(self, conn: sqlite3.Connection, run_id: int | None,
                 policy: MetadataPolicy | None = None, metadata: bool = False) -> None:
        self.db = Database(conn, recursive_triggers=False, execute_plugins=False)
        self.run_id = run_id
        #: What of the metadata an export shows (applied here, before any exporter).
        self.policy = policy or MetadataPolicy()
        #: The case has metadata tables with rows (schema 10, issue 16).
        self.metadata = metadata

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """The rows of one query, lazily, as dicts keyed by column name."""
        return self.db.query(sql, params)

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """The single value ``n`` of a ``SELECT ... AS n`` query."""
        return int(next(iter(self.rows(sql, params)))["n"] or 0)

    # -- streamed rows -----------------------------------------------------------
    def files(self, where: str = "", params: Sequence[Any] = (), *,
              by_grade: bool = False) -> Iterator[File]:
        """File entries (``f``) matching ``where``, by display path then id (with
        ``by_grade``: by the best grade of their hits in the current run first), each with
        its hashes, picture facts and the current run's hits (best grade first)."""
        order = "f.display_path, f.id"
        if by_grade:
            order = (f"(SELECT min({GRADE_RANK_SQL.format(t='g.')}) FROM matches g WHERE "
                     f"g.file_id = f.id AND g.run_id IS ?), {order}")
            params = [*params, self.run_id]
        rows = self.rows(f"SELECT {File.select('f')} FROM files f {where} "
                         f"ORDER BY {order}", params)
        while batch := list(islice(rows, FILE_BATCH)):
            yield from self._assemble(batch)

    def _assemble(self, batch: list[dict[str, Any]]) -> Iterator[File]:
        ids = [r["id"] for r in batch]
        marks = ", ".join("?" * len(ids))
        hashes: dict[int, list[Hash]] = defaultdict(list)
        for r in self.rows(f"SELECT file_id, {Hash.select()} FROM hashes "
                           f"WHERE file_id IN ({marks}) ORDER BY file_id, algorithm", ids):
            hashes[r["file_id"]].append(Hash.from_row(r))
        images = {r["file_id"]: {c: r[c] for c in IMAGE_COLUMNS} for r in self.rows(
            f"SELECT file_id, {', '.join(IMAGE_COLUMNS)} FROM images "
            f"WHERE file_id IN ({marks})", ids)}
        hits: dict[int, list[Hit]] = defaultdict(list)
        for r in self.rows(f"SELECT {Hit.select()} FROM matches WHERE run_id IS ? AND "
                           f"file_id IN ({marks}) ORDER BY file_id, "
                           f"{GRADE_RANK_SQL.format(t='')}, known, set_name, set_id, "
                           "algorithm, known_value", [self.run_id, *ids]):
            hits[r["file_id"]].append(Hit.from_row(r))
        meta: dict[int, Metadata] = {}
        if self.metadata:
            for r in self.rows(f"SELECT file_id, {', '.join(METADATA_FIELDS)}, tags, "
                               f"tags_dropped FROM media_metadata WHERE file_id IN ({marks})",
                               ids):
                meta[r["file_id"]] = self._metadata(r)
        for r in batch:
            fid = r["id"]
            yield File.from_row(r, hashes=tuple(hashes.get(fid, ())), image=images.get(fid),
                                hits=tuple(hits.get(fid, ())), metadata=meta.get(fid))

    def _metadata(self, r: dict[str, Any]) -> Metadata:
        """A ``media_metadata`` row with the policy's redacted fields left out."""
        gone = set(self.policy.redacted_fields)
        values = {k: r[k] for k in METADATA_FIELDS if k not in gone}
        values["thumbnail"] = bool(values["thumbnail"])
        redacted = tuple(k for k in METADATA_FIELDS if k in gone and r[k] is not None)
        return Metadata(values, redacted, int(r["tags"]), int(r["tags_dropped"]))

    def metadata_tags(self, file_id: int, *, free_text_only: bool = False) -> TagListing:
        """One file's metadata tags in reading order, as the policy allows: free text only
        when asked for, redacted tags and binary blocks never (counted, not shown)."""
        if not self.metadata:
            return TagListing((), 0, 0, 0)
        shown: list[dict[str, Any]] = []
        free = redacted = binary = 0
        for r in self.rows("SELECT source, name, value, truncated, free_text FROM "
                           "metadata_tags WHERE file_id = ? ORDER BY seq", [file_id]):
            if binary_tag(r["source"], r["name"], r["value"]):
                binary += 1
            elif self.policy.tag_redacted(r["source"], r["name"]):
                redacted += 1
            elif r["free_text"] and not self.policy.include_free_text:
                free += 1
            elif r["free_text"] or not free_text_only:
                shown.append({"source": r["source"], "name": r["name"], "value": r["value"],
                              "truncated": bool(r["truncated"]),
                              "free_text": bool(r["free_text"])})
        return TagListing(tuple(shown), free, redacted, binary)

    def duplicate_groups(self, scope: str) -> Iterator[DuplicateGroup]:
        """Groups of entries of ``scope`` with the same SHA-256, by SHA-256; members by
        display path then id (see :class:`DuplicateGroup`)."""
        if scope not in DUPLICATE_SCOPES:
            raise ValueError(f"duplicate scope {scope!r} is not one of {DUPLICATE_SCOPES}")
        inner = 1 if scope == "inner" else 0
        mine, other = ("ni", "nf") if inner else ("nf", "ni")
        rows = self.rows(
            f"WITH {_DUP_ENTRIES}, c AS (SELECT sha256, sum(nested = 0) AS nf, "
            "sum(nested = 1) AS ni FROM d GROUP BY sha256) "
            f"SELECT d.sha256, d.id, d.display_path, d.path_hex, d.size, c.{other} AS other "
            f"FROM d JOIN c ON c.sha256 = d.sha256 WHERE d.nested = ? AND c.{mine} > 1 "
            "ORDER BY d.sha256, d.display_path, d.id", [*_EMPTY_SHA256, inner])
        number = 0
        current: list[dict[str, Any]] = []
        for r in rows:
            if current and r["sha256"] != current[0]["sha256"]:
                number += 1
                yield _group(scope, number, current)
                current = []
            current.append(r)
        if current:
            yield _group(scope, number + 1, current)

    def errors(self) -> Iterator[ErrorRow]:
        """Every recorded error, by id, with the display path of its file."""
        for r in self.rows(f"SELECT {ErrorRow.select('e')} FROM errors e "
                           "LEFT JOIN files ef ON ef.id = e.file_id ORDER BY e.id"):
            yield ErrorRow.from_row(r)


#: The SHA-256 of no bytes (FIPS 180-4; hashsets.algorithms.EMPTY_DIGESTS): every empty
#: entry has it, so it makes no duplicate group.
_EMPTY_SHA256 = ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",)
#: Entries with a SHA-256 (``d``): top-level files (``nested`` 0) and items inside files
#: (``nested`` 1, they have a parent), the empty content left out.
_DUP_ENTRIES = ("d AS (SELECT h.value AS sha256, f.id AS id, f.display_path AS display_path, "
                "lower(hex(f.path)) AS path_hex, f.size AS size, "
                "(f.parent_id IS NOT NULL) AS nested FROM hashes h JOIN files f "
                "ON f.id = h.file_id WHERE h.algorithm = 'sha256' AND h.value <> ?)")


def _group(scope: str, number: int, rows: list[dict[str, Any]]) -> DuplicateGroup:
    return DuplicateGroup(scope, number, rows[0]["sha256"], rows[0]["size"],
                          tuple(DuplicateMember(r["id"], r["display_path"], r["path_hex"])
                                for r in rows), int(rows[0]["other"] or 0))


def _duplicate_counts(rd: CaseReader) -> DuplicateCounts:
    r = next(iter(rd.rows(
        f"WITH {_DUP_ENTRIES}, g AS (SELECT nested, count(*) AS n FROM d "
        "GROUP BY sha256, nested HAVING count(*) > 1) "
        "SELECT (SELECT count(*) FROM g WHERE nested = 0) AS fg, "
        "(SELECT coalesce(sum(n), 0) FROM g WHERE nested = 0) AS fn, "
        "(SELECT count(*) FROM g WHERE nested = 1) AS ig, "
        "(SELECT coalesce(sum(n), 0) FROM g WHERE nested = 1) AS inn", _EMPTY_SHA256)))
    empty = rd.count("SELECT count(*) AS n FROM hashes WHERE algorithm = 'sha256' AND "
                     "value = ?", _EMPTY_SHA256)
    return DuplicateCounts(int(r["fg"]), int(r["fn"]), int(r["ig"]), int(r["inn"]), empty)


@dataclass(frozen=True)
class CoverageGroup:
    """Entries that ended with one status, stage and reason (anything but ``done``): how
    many, and the first :data:`COVERAGE_EXAMPLES` display paths in report order."""

    status: str
    stage: str
    reason: str
    count: int
    examples: tuple[str, ...]


#: Scopes of duplicate groups (issue 14 #8): the evidence's own files, and the items found
#: inside files (archive and document members, carved pictures), each grouped apart.
DUPLICATE_SCOPES = ("files", "inner")


@dataclass(frozen=True)
class DuplicateMember:
    file_id: int
    path: str  # display path
    path_bytes_hex: str


@dataclass(frozen=True)
class DuplicateGroup:
    """Entries of one scope with the same SHA-256 (two or more). ``other_scope`` counts the
    entries of the other scope with that SHA-256 too (a file also found inside an
    archive), so the two listings can be read together."""

    scope: str  # "files" or "inner"
    number: int  # 1, 2 ... within its scope, in SHA-256 order
    sha256: str
    size: int | None
    members: tuple[DuplicateMember, ...]
    other_scope: int


@dataclass(frozen=True)
class DuplicateCounts:
    """Groups and entries in them per scope, and the empty entries left out (every empty
    file has the same SHA-256; that says nothing about content)."""

    file_groups: int
    files: int
    inner_groups: int
    inner_items: int
    empty_left_out: int


@dataclass(frozen=True)
class ReportModel:
    """Everything a report shows: the summary as data, the rows as iterators (valid inside
    :func:`reading`). ``generated_utc`` is the only value that may differ between two
    exports of the same case; ``signer_fingerprint`` is set when the export is signed."""

    tool_version: str
    generated_utc: str
    case: dict[str, Any]
    evidence: tuple[Evidence, ...]
    runs: tuple[Run, ...]
    match_run_id: int | None
    match_run_note: str | None
    thresholds: dict[str, Any]
    preprocessing: tuple[tuple[str, str, int], ...]  # (algorithm, preprocessing, count)
    hash_sets: tuple[HashSetUsed, ...]
    status_counts: dict[str, int]
    skipped_reasons: tuple[tuple[str, int], ...]
    audit: tuple[AuditRow, ...]
    audit_problems: tuple[str, ...]
    by_category: dict[str, int]
    by_set: tuple[SetSummary, ...]
    known_by_set: tuple[SetSummary, ...]
    files_matched: int  # files with a hit in a case set
    files_known: int  # files with a hit in a known-file set
    file_count: int  # file entries
    hit_count: int  # hits of the current match run
    #: Files with a case-set hit that are deleted or unallocated / whose content may be
    #: overwritten (the cautions a reader must see first).
    hits_deleted: int
    hits_overwritten: int
    #: Every non-``done`` entry grouped by status, stage and reason (skipped included).
    coverage: tuple[CoverageGroup, ...]
    reader: CaseReader = field(repr=False, compare=False)
    signer_fingerprint: str | None = None
    duplicates: DuplicateCounts = DuplicateCounts(0, 0, 0, 0, 0)

    def duplicate_groups(self, scope: str) -> Iterator[DuplicateGroup]:
        """The duplicate groups of one scope (``files`` or ``inner``; streamed, one group
        held at a time)."""
        return self.reader.duplicate_groups(scope)
    #: Carved items and fragment hits (issue 17): counts; rows by :meth:`carved`.
    carved_count: int = 0
    fragment_count: int = 0
    #: Files with picture or video metadata (issue 16) and what of it this export shows.
    metadata_count: int = 0
    policy: MetadataPolicy = field(default_factory=MetadataPolicy)

    def metadata_tags(self, file_id: int, *, free_text_only: bool = False) -> TagListing:
        """A file's metadata tags as the export's policy allows (see
        :meth:`CaseReader.metadata_tags`)."""
        return self.reader.metadata_tags(file_id, free_text_only=free_text_only)

    def carved(self) -> Iterator[dict[str, Any]]:
        """Every carved item, in evidence then image order (streamed)."""
        if not self.carved_count:
            return iter(())
        return self.reader.rows(
            "SELECT f.display_path, k.area, k.image_offset, k.length, k.first_block, "
            "k.last_block, k.block_size, k.slack_of, k.format, k.partial, f.status, "
            "f.status_reason, (SELECT value FROM hashes WHERE file_id = f.id AND "
            "algorithm = 'md5') AS md5, s.display_path AS same_as, k.same_location "
            "FROM carved k JOIN files f ON f.id = k.file_id "
            "LEFT JOIN files s ON s.id = k.same_as_file_id "
            "ORDER BY f.evidence_id, k.image_offset, k.file_id")

    def fragments(self) -> Iterator[dict[str, Any]]:
        """Every fragment hit, in evidence then image order (streamed)."""
        if not self.fragment_count:
            return iter(())
        return self.reader.rows(
            "SELECT p.display_path AS found_in, g.set_name, g.known_path, g.known_sha256, "
            "g.indexed_bytes, g.found_bytes, g.blocks, g.first_offset, g.runs "
            "FROM fragments g JOIN files f ON f.id = g.file_id "
            "JOIN files p ON p.id = f.parent_id "
            "ORDER BY f.evidence_id, g.first_offset, g.file_id")

    def files(self) -> Iterator[File]:
        """Every file entry (streamed)."""
        return self.reader.files()

    def files_with_hits(self) -> Iterator[File]:
        """The file entries with at least one hit of the current match run, best grade
        first (exact, confirmed, for review, unconfirmed; files with known-file hits only
        last), then by display path (streamed)."""
        return self.reader.files("WHERE EXISTS (SELECT 1 FROM matches m WHERE "
                                 "m.file_id = f.id AND m.run_id IS ?)", [self.match_run_id],
                                 by_grade=True)

    def hits(self) -> Iterator[tuple[File, Hit]]:
        """Every hit with its file, files in report order (streamed)."""
        for f in self.files_with_hits():
            for h in f.hits:
                yield f, h

    def unprocessed(self) -> Iterator[File]:
        """Entries that were not fully processed (incomplete, error, quarantined, pending;
        streamed)."""
        return self.reader.files(f"WHERE f.status IN ({', '.join('?' * len(UNPROCESSED))})",
                                 UNPROCESSED)

    def errors(self) -> Iterator[ErrorRow]:
        """Every recorded error and warning (streamed)."""
        return self.reader.errors()

    @property
    def audit_head(self) -> str | None:
        return self.audit[-1].row_hash if self.audit else None


@contextmanager
def reading(case: Case, generated_utc: str, tool_version: str,
            signer_fingerprint: str | None = None,
            policy: MetadataPolicy | None = None) -> Iterator[ReportModel]:
    """One read snapshot of the case as a :class:`ReportModel`. The connection is
    ``query_only`` and inside one read transaction for the whole block (restored after);
    the model's iterators must be consumed inside it."""
    conn = case.conn
    was_query_only = bool(conn.execute("PRAGMA query_only").fetchone()[0])
    conn.execute("PRAGMA query_only = ON")
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        yield load(case, generated_utc, tool_version, signer_fingerprint, policy)
    finally:
        if began:
            conn.execute("COMMIT")  # ends the read snapshot (nothing was written)
        if not was_query_only:
            conn.execute("PRAGMA query_only = OFF")


def load(case: Case, generated_utc: str, tool_version: str,
         signer_fingerprint: str | None = None,
         policy: MetadataPolicy | None = None) -> ReportModel:
    """Read the case's summary (read-only, deterministic); rows stay in the database until
    an exporter iterates them. Prefer :func:`reading`, which holds one snapshot. ``policy``:
    what of the picture and video metadata the export shows (default: no free text,
    nothing redacted)."""
    run_id, match_note = case.report_match_run()
    probe = CaseReader(case.conn, run_id)
    metadata_count = _count_if(probe, "media_metadata")
    rd = CaseReader(case.conn, run_id, policy, metadata=bool(metadata_count))

    evidence = tuple(Evidence.from_row(r) for r in rd.rows(
        f"SELECT {Evidence.select()} FROM evidence ORDER BY id"))
    runs = tuple(Run.from_row(r) for r in rd.rows(f"SELECT {Run.select()} FROM runs "
                                                   "ORDER BY id"))
    hash_sets = tuple(HashSetUsed.from_row(r) for r in rd.rows(
        f"SELECT {HashSetUsed.select('hs')} FROM hash_sets_used hs WHERE hs.run_id IS ? "
        "ORDER BY hs.known, hs.name, hs.set_id", [run_id]))

    thresholds: dict[str, Any] = {}
    audit: list[AuditRow] = []
    for r in rd.rows(f"SELECT {AuditRow.select()} FROM audit ORDER BY seq"):
        if r["action"] == "match":
            d = parse_json(r["details"])
            if isinstance(d, dict) and d.get("run") == run_id:
                thresholds = dict(d.get("thresholds") or {})
        if r["action"] == EXPORT_ACTION:
            continue
        audit.append(AuditRow.from_row(r))

    preprocessing = tuple((r["algorithm"], r["preprocessing"] or "", int(r["n"]))
                          for r in rd.rows(
        "SELECT algorithm, preprocessing, count(*) AS n FROM hashes "
        "GROUP BY algorithm, preprocessing ORDER BY algorithm, preprocessing"))
    status_counts = {r["status"]: int(r["n"]) for r in rd.rows(
        "SELECT status, count(*) AS n FROM files GROUP BY status ORDER BY status")}
    skipped = tuple((f"{r['stage'] or ''}: {r['reason'] or ''}".strip(": "), int(r["n"]))
                    for r in rd.rows(
        "SELECT status_stage AS stage, status_reason AS reason, count(*) AS n FROM files "
        "WHERE status='skipped' GROUP BY status_stage, status_reason "
        "ORDER BY status_stage, status_reason"))

    by_category, by_set, known_by_set = _summaries(rd, run_id)
    return ReportModel(
        tool_version=tool_version, generated_utc=generated_utc, case=case.case_info(),
        evidence=evidence, runs=runs, match_run_id=run_id, match_run_note=match_note,
        thresholds=thresholds,
        preprocessing=preprocessing, hash_sets=hash_sets,
        status_counts=status_counts, skipped_reasons=skipped,
        audit=tuple(audit), audit_problems=tuple(case.verify_audit_chain()),
        by_category=by_category, by_set=by_set, known_by_set=known_by_set,
        files_matched=rd.count(f"SELECT count(DISTINCT m.file_id) AS n {_RUN_HITS} "
                               "AND m.known = 0", [run_id]),
        files_known=rd.count(f"SELECT count(DISTINCT m.file_id) AS n {_RUN_HITS} "
                             "AND m.known <> 0", [run_id]),
        file_count=rd.count("SELECT count(*) AS n FROM files"),
        hit_count=rd.count(f"SELECT count(*) AS n {_RUN_HITS}", [run_id]),
        hits_deleted=rd.count(f"SELECT count(DISTINCT m.file_id) AS n {_RUN_HITS} "
                              "AND m.known = 0 AND (f.deleted <> 0 OR f.allocated = 0)",
                              [run_id]),
        hits_overwritten=rd.count(f"SELECT count(DISTINCT m.file_id) AS n {_RUN_HITS} "
                                  "AND m.known = 0 AND f.notes LIKE ?",
                                  [run_id, f"%{OVERWRITTEN_NOTE}%"]),
        coverage=_coverage(rd),
        reader=rd, signer_fingerprint=signer_fingerprint,
        carved_count=_count_if(rd, "carved"), fragment_count=_count_if(rd, "fragments"),
        duplicates=_duplicate_counts(rd), metadata_count=metadata_count,
        policy=rd.policy)


def _count_if(rd: CaseReader, table: str) -> int:
    """Rows of a table added by schema 6 (issue 17); 0 in a case opened without it."""
    if not rd.count("SELECT count(*) AS n FROM sqlite_schema WHERE type='table' AND name=?",
                    [table]):
        return 0
    return rd.count(f"SELECT count(*) AS n FROM {table}")


def _coverage(rd: CaseReader) -> tuple[CoverageGroup, ...]:
    """Non-``done`` entries by status, stage and reason, with a few example paths each."""
    groups = []
    for r in rd.rows(
            "SELECT status, coalesce(status_stage, '') AS stage, "
            "coalesce(status_reason, '') AS reason, count(*) AS n FROM files "
            "WHERE status <> 'done' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"):
        examples = tuple(x["display_path"] for x in rd.rows(
            "SELECT display_path FROM files WHERE status = ? AND coalesce(status_stage, '') = ? "
            "AND coalesce(status_reason, '') = ? ORDER BY display_path, id LIMIT ?",
            [r["status"], r["stage"], r["reason"], COVERAGE_EXAMPLES]))
        groups.append(CoverageGroup(r["status"], r["stage"], r["reason"], int(r["n"]),
                                    examples))
    return tuple(groups)


def _summaries(rd: CaseReader, run_id: int | None) -> tuple[
        dict[str, int], tuple[SetSummary, ...], tuple[SetSummary, ...]]:
    """Files by category (case sets only) and files/exact/near by set label, case sets and
    known-file sets apart; grouped by SQLite, ordered here (by label, as Python sorts)."""
    cats = {r["category"]: int(r["files"]) for r in rd.rows(
        f"SELECT coalesce(nullif(m.category, ''), ?) AS category, "
        f"count(DISTINCT m.file_id) AS files {_RUN_HITS} AND m.known = 0 "
        "GROUP BY 1", [NO_CATEGORY, run_id])}
    by_category = dict(sorted(cats.items()))
    label = SET_LABEL_SQL.format(t="m.")
    stats: dict[tuple[bool, str], SetSummary] = {}
    for r in rd.rows(
            f"SELECT m.known <> 0 AS known, {label} AS label, "
            "count(DISTINCT m.file_id) AS files, "
            "sum(m.match_type = 'exact') AS exact, sum(m.match_type = 'near') AS near "
            f"{_RUN_HITS} GROUP BY 1, 2", [run_id]):
        stats[(bool(r["known"]), r["label"])] = SetSummary.from_row(r)
    rows = {known: tuple(s for (k, _), s in sorted(stats.items()) if k == known)
            for known in (False, True)}
    return by_category, rows[False], rows[True]


# -- chain-of-custody queries (used by export and verify) ---------------------------------
def checkpoint(case: Case) -> None:
    """Fold the WAL into the database file so its SHA-256 covers every committed row."""
    case.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def audit_head(case: Case) -> tuple[int, str] | None:
    """``(seq, row_hash)`` of the last audit row (export rows included)."""
    row = case.conn.execute("SELECT seq, row_hash FROM audit ORDER BY seq DESC LIMIT 1"
                            ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def audit_row_hash(case: Case, seq: int) -> str | None:
    row = case.conn.execute("SELECT row_hash FROM audit WHERE seq=?", (seq,)).fetchone()
    return str(row[0]) if row else None


def audit_actions_after(case: Case, seq: int) -> list[tuple[int, str]]:
    """``(seq, action)`` of every audit row after ``seq``."""
    return [(int(s), str(a)) for s, a in case.conn.execute(
        "SELECT seq, action FROM audit WHERE seq>? ORDER BY seq", (seq,))]
