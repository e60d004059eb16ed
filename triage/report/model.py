"""The report model: the case read ONCE into plain, immutable data.

All SQL used by reports lives here. Every exporter renders a :class:`ReportModel` and never
touches the database, so all formats show the same facts.

Contract:

* Only metadata is read: paths (display form and raw bytes as hex), sizes, times, statuses,
  hashes, match explanations, runs, hash sets used, errors and the audit trail. Content is
  never read (the case database holds none).
* Everything is sorted deterministically (files by display path then id; hits by set, algorithm,
  known value), so the same case always gives the same model.
* The hits shown are those of the *current match run*: the latest COMPLETED run that
  recorded matching over a finished scan (:meth:`~triage.case.Case.report_match_run`; a
  failed, interrupted or mid-scan match run never counts), with a note when the case was
  scanned again since. Earlier match runs are kept in the database and listed under "runs".
* Audit rows with action ``report.export`` are not part of the model: each export appends one,
  and listing them would make two exports of the same case differ. They stay in the chain and
  ``triage verify`` checks them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..case import Case

#: The note the scanner puts on a deleted file whose blocks may have been reallocated.
OVERWRITTEN_NOTE = "content may be overwritten"
#: Audit action appended by every export (kept out of the model, see module doc).
EXPORT_ACTION = "report.export"
NO_CATEGORY = "(none)"


@dataclass(frozen=True)
class Hash:
    algorithm: str
    value: str
    quality: int | None
    preprocessing: str | None


@dataclass(frozen=True)
class Hit:
    """One match row: why a file hit (set, version, algorithm, exact/near, distance...)."""

    file_id: int
    set_id: str
    set_name: str
    set_version: str | None
    algorithm: str
    match_type: str  # exact | near
    file_value: str
    known_value: str
    distance: int
    threshold: int | None
    category: str | None
    category_raw: str | None
    series: str | None
    victim_identified: bool | None
    offender_identified: bool | None
    known: bool  # hit in a known-file (NSRL-style) set: "known", never "good"
    entry_ref: str | None

    @property
    def set_label(self) -> str:
        v = f" {self.set_version}" if self.set_version else ""
        return f"{self.set_name}{v} ({self.set_id})"


@dataclass(frozen=True)
class File:
    id: int
    evidence_id: int
    display_path: str
    path_hex: str  # the exact path bytes, hex
    kind: str
    size: int | None
    mtime_utc: str | None
    atime_utc: str | None
    ctime_utc: str | None
    crtime_utc: str | None
    allocated: bool
    deleted: bool
    notes: tuple[str, ...]
    mime: str | None
    magic: str | None
    media_kind: str | None
    extension: str | None
    ext_mismatch: int | None
    read_status: str | None
    status: str
    status_stage: str | None
    status_reason: str | None
    hashes: tuple[Hash, ...]
    image: dict[str, Any] | None
    hits: tuple[Hit, ...]

    @property
    def overwritten(self) -> bool:
        return any(OVERWRITTEN_NOTE in n for n in self.notes)

    @property
    def caution(self) -> str:
        """The label a hit on this file must carry ("" when none applies)."""
        parts = []
        if self.deleted:
            parts.append("deleted")
        if not self.allocated:
            parts.append("unallocated")
        if self.overwritten:
            parts.append("content may be overwritten: not a confident identification")
        return "; ".join(parts)

    def hash_value(self, algorithm: str) -> str | None:
        for h in self.hashes:
            if h.algorithm == algorithm:
                return h.value
        return None


@dataclass(frozen=True)
class Evidence:
    id: int
    path: str
    path_hex: str
    source_type: str
    size: int | None
    description: Any
    stored_md5: str | None
    stored_sha1: str | None
    computed_md5: str | None
    computed_sha1: str | None


@dataclass(frozen=True)
class Run:
    id: int
    command: str
    arguments: Any
    options: Any
    tool_version: str
    versions: Any
    host: str
    user: str
    started_utc: str
    ended_utc: str | None
    status: str


@dataclass(frozen=True)
class HashSetUsed:
    set_id: str
    name: str
    version: str | None
    format: str
    source_sha256: str
    entry_count: int
    category_map: Any
    known: bool
    hits: int
    files: int


@dataclass(frozen=True)
class ErrorRow:
    id: int
    file_id: int | None
    display_path: str | None
    run_id: int | None
    stage: str
    error_class: str
    message: str
    time_utc: str


@dataclass(frozen=True)
class AuditRow:
    seq: int
    time_utc: str
    user: str
    host: str
    tool_version: str
    action: str
    details: str
    row_hash: str


@dataclass(frozen=True)
class SetSummary:
    label: str
    files: int
    exact: int
    near: int


@dataclass(frozen=True)
class ReportModel:
    """Everything a report shows. ``generated_utc`` is the only value that may differ between
    two exports of the same case; ``signer_fingerprint`` is set when the export is signed."""

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
    files: tuple[File, ...]
    status_counts: dict[str, int]
    skipped_reasons: tuple[tuple[str, int], ...]
    errors: tuple[ErrorRow, ...]
    audit: tuple[AuditRow, ...]
    audit_problems: tuple[str, ...]
    by_category: dict[str, int]
    by_set: tuple[SetSummary, ...]
    known_by_set: tuple[SetSummary, ...]
    signer_fingerprint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hit_files(self) -> tuple[File, ...]:
        return tuple(f for f in self.files if f.hits)

    @property
    def hits(self) -> tuple[tuple[File, Hit], ...]:
        return tuple((f, h) for f in self.files for h in f.hits)

    @property
    def unprocessed(self) -> tuple[File, ...]:
        return tuple(f for f in self.files if f.status in ("error", "quarantined", "pending"))

    @property
    def files_matched(self) -> int:
        return sum(1 for f in self.files if any(not h.known for h in f.hits))

    @property
    def files_known(self) -> int:
        return sum(1 for f in self.files if any(h.known for h in f.hits))

    @property
    def audit_head(self) -> str | None:
        return self.audit[-1].row_hash if self.audit else None


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # shown as stored; never guessed


def _flag(v: int | None) -> bool | None:
    return None if v is None else bool(v)


def current_match_run(case: Case) -> int | None:
    """The run whose matches a report shows (:meth:`Case.report_match_run`)."""
    return case.report_match_run()[0]


def load(case: Case, generated_utc: str, tool_version: str,
         signer_fingerprint: str | None = None) -> ReportModel:
    """Read the whole case once into a :class:`ReportModel` (read-only, deterministic)."""
    c = case.conn
    run_id, match_note = case.report_match_run()

    hits_by_file: dict[int, list[Hit]] = defaultdict(list)
    for r in c.execute(
            "SELECT file_id, set_id, set_name, set_version, algorithm, match_type, file_value, "
            "known_value, distance, threshold, category, category_raw, series, "
            "victim_identified, offender_identified, known, entry_ref FROM matches "
            "WHERE run_id IS ? ORDER BY file_id, known, set_name, set_id, algorithm, "
            "known_value", (run_id,)):
        hits_by_file[int(r[0])].append(Hit(
            int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]),
            None if r[9] is None else int(r[9]), r[10], r[11], r[12], _flag(r[13]),
            _flag(r[14]), bool(r[15]), r[16]))

    hashes_by_file: dict[int, list[Hash]] = defaultdict(list)
    for fid, alg, value, quality, prep in c.execute(
            "SELECT file_id, algorithm, value, quality, preprocessing FROM hashes "
            "ORDER BY file_id, algorithm"):
        hashes_by_file[int(fid)].append(Hash(alg, value, quality, prep))

    images: dict[int, dict[str, Any]] = {}
    for r in c.execute("SELECT file_id, format, width, height, mode, frames, decoded_width, "
                       "decoded_height, preprocessing FROM images ORDER BY file_id"):
        images[int(r[0])] = {"format": r[1], "width": r[2], "height": r[3], "mode": r[4],
                             "frames": r[5], "decoded_width": r[6], "decoded_height": r[7],
                             "preprocessing": r[8]}

    files: list[File] = []
    for r in c.execute(
            "SELECT id, evidence_id, display_path, path, kind, size, mtime_utc, atime_utc, "
            "ctime_utc, crtime_utc, allocated, deleted, notes, mime, magic, media_kind, "
            "extension, ext_mismatch, read_status, status, status_stage, status_reason "
            "FROM files ORDER BY display_path, id"):
        fid = int(r[0])
        notes = _json(r[12])
        note_list = tuple(str(n) for n in notes) if isinstance(notes, list) else \
            (() if notes is None else (str(notes),))
        files.append(File(
            fid, int(r[1]), r[2], bytes(r[3]).hex(), r[4], r[5], r[6], r[7], r[8], r[9],
            bool(r[10]), bool(r[11]), note_list, r[13], r[14], r[15], r[16], r[17], r[18],
            r[19], r[20], r[21], tuple(hashes_by_file.get(fid, ())), images.get(fid),
            tuple(hits_by_file.get(fid, ()))))
    display = {f.id: f.display_path for f in files}

    evidence = tuple(Evidence(int(r[0]), r[1], bytes(r[2]).hex(), r[3], r[4], _json(r[5]),
                              r[6], r[7], r[8], r[9]) for r in c.execute(
        "SELECT id, path, path_bytes, source_type, size, description, stored_md5, "
        "stored_sha1, computed_md5, computed_sha1 FROM evidence ORDER BY id"))
    runs = tuple(Run(int(r[0]), r[1], _json(r[2]), _json(r[3]), r[4], _json(r[5]), r[6], r[7],
                     r[8], r[9], r[10]) for r in c.execute(
        "SELECT id, command, arguments, options, tool_version, versions, host, user, "
        "started_utc, ended_utc, status FROM runs ORDER BY id"))

    all_hits = [h for f in files for h in f.hits]
    per_set_hits: dict[str, int] = defaultdict(int)
    per_set_files: dict[str, set[int]] = defaultdict(set)
    for h in all_hits:
        per_set_hits[h.set_id] += 1
        per_set_files[h.set_id].add(h.file_id)
    hash_sets = tuple(HashSetUsed(
        r[0], r[1], r[2], r[3], r[4], int(r[5]), _json(r[6]), bool(r[7]),
        per_set_hits.get(r[0], 0), len(per_set_files.get(r[0], ()))) for r in c.execute(
        "SELECT set_id, name, version, format, source_sha256, entry_count, category_map, "
        "known FROM hash_sets_used WHERE run_id IS ? ORDER BY known, name, set_id", (run_id,)))

    thresholds: dict[str, Any] = {}
    audit: list[AuditRow] = []
    for seq, t, user, host, ver, action, details, row_hash in c.execute(
            "SELECT seq, time_utc, user, host, tool_version, action, details, row_hash "
            "FROM audit ORDER BY seq"):
        if action == "match":
            d = _json(details)
            if isinstance(d, dict) and d.get("run") == run_id:
                thresholds = dict(d.get("thresholds") or {})
        if action == EXPORT_ACTION:
            continue
        audit.append(AuditRow(int(seq), t, user, host, ver, action, details, row_hash))

    errors = tuple(ErrorRow(int(r[0]), r[1], display.get(r[1]) if r[1] is not None else None,
                            r[2], r[3], r[4], r[5], r[6]) for r in c.execute(
        "SELECT id, file_id, run_id, stage, error_class, message, time_utc FROM errors "
        "ORDER BY id"))
    preprocessing = tuple((r[0], r[1] or "", int(r[2])) for r in c.execute(
        "SELECT algorithm, preprocessing, count(*) FROM hashes "
        "GROUP BY algorithm, preprocessing ORDER BY algorithm, preprocessing"))
    status_counts = {r[0]: int(r[1]) for r in c.execute(
        "SELECT status, count(*) FROM files GROUP BY status ORDER BY status")}
    skipped = tuple((f"{r[0] or ''}: {r[1] or ''}".strip(": "), int(r[2])) for r in c.execute(
        "SELECT status_stage, status_reason, count(*) FROM files WHERE status='skipped' "
        "GROUP BY status_stage, status_reason ORDER BY status_stage, status_reason"))

    by_category, by_set, known_by_set = _summaries(files)
    return ReportModel(
        tool_version=tool_version, generated_utc=generated_utc, case=case.case_info(),
        evidence=evidence, runs=runs, match_run_id=run_id, match_run_note=match_note,
        thresholds=thresholds,
        preprocessing=preprocessing, hash_sets=hash_sets, files=tuple(files),
        status_counts=status_counts, skipped_reasons=skipped, errors=errors,
        audit=tuple(audit), audit_problems=tuple(case.verify_audit_chain()),
        by_category=by_category, by_set=by_set, known_by_set=known_by_set,
        signer_fingerprint=signer_fingerprint)


def _summaries(files: list[File]) -> tuple[dict[str, int], tuple[SetSummary, ...],
                                           tuple[SetSummary, ...]]:
    cat_files: dict[str, set[int]] = defaultdict(set)
    stats: dict[tuple[bool, str], dict[str, Any]] = {}
    for f in files:
        for h in f.hits:
            if not h.known:
                cat_files[h.category or NO_CATEGORY].add(f.id)
            st = stats.setdefault((h.known, h.set_label),
                                  {"files": set(), "exact": 0, "near": 0})
            st["files"].add(f.id)
            st[h.match_type] += 1
    by_category = {k: len(v) for k, v in sorted(cat_files.items())}
    rows = {known: tuple(SetSummary(label, len(st["files"]), st["exact"], st["near"])
                         for (k, label), st in sorted(stats.items()) if k == known)
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
