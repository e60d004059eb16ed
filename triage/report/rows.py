"""Row records of the report read layer: one frozen dataclass per kind of row.

A record's fields are its ONE column list. :meth:`Record.select` builds the SQL select list
from the fields (``column AS field``, or an SQL expression for the few fields whose stored
form differs, e.g. the path bytes as hex), and :meth:`Record.from_row` builds the record
from a row keyed by column name (the dicts sqlite-utils yields), by name, never by
position. Fields a record gets from other rows (a file's hashes, image and hits) are listed
in ``_assembled`` and passed to ``from_row`` by the reader.

Records carry metadata only (paths, sizes, times, statuses, hashes, match explanations):
the case database holds no content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

from ..model import MatchHit, grade_label

#: The note the scanner puts on a deleted file whose blocks may have been reallocated.
OVERWRITTEN_NOTE = "content may be overwritten"
NO_CATEGORY = "(none)"


def parse_json(text: str | None) -> Any:
    """A JSON column's value; text that is not JSON is shown as stored, never guessed."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def flag(v: int | None) -> bool | None:
    return None if v is None else bool(v)


def _notes(text: str | None) -> tuple[str, ...]:
    notes = parse_json(text)
    if isinstance(notes, list):
        return tuple(str(n) for n in notes)
    return () if notes is None else (str(notes),)


#: field -> SQL expression, ``{t}`` standing for the table alias prefix ("f." or "").
Exprs = Mapping[str, str]
#: field -> conversion of the stored value (JSON text, 0/1 flags).
Converters = Mapping[str, Callable[[Any], Any]]


class Record:
    """Mixin for the row dataclasses below (see module doc)."""

    _expr: ClassVar[Exprs] = {}
    _convert: ClassVar[Converters] = {}
    #: fields that are not columns (filled from other rows by the reader).
    _assembled: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """The record's column names (its fields, without the assembled ones)."""
        return tuple(name for name, _ in _plan(cls))

    @classmethod
    def select(cls, alias: str = "") -> str:
        """The SQL select list for this record, reading from table alias ``alias``."""
        t = f"{alias}." if alias else ""
        out = []
        for name in cls.columns():
            expr = cls._expr.get(name)
            out.append(f"{expr.format(t=t)} AS {name}" if expr else f"{t}{name}")
        return ", ".join(out)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **assembled: Any) -> Self:
        """The record for one row keyed by column name (extra keys are ignored)."""
        values = {name: convert(row[name]) for name, convert in _plan(cls)}
        return cls(**values, **assembled)


_PLANS: dict[type, tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def _plan(cls: type[Record]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """``(column, conversion)`` per column field of a record class (computed once)."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple(
            (f.name, cls._convert.get(f.name, _same))
            for f in fields(cls)  # type: ignore[arg-type]
            if f.name not in cls._assembled)
    return plan


def _same(v: Any) -> Any:
    return v


@dataclass(frozen=True)
class Hash(Record):
    algorithm: str
    value: str
    quality: int | None
    preprocessing: str | None


#: ``Hit.set_label`` in SQL (for the per-set summaries, which SQLite groups). Must agree with
#: the property; tests/reports/test_streaming.py checks both on the same rows.
SET_LABEL_SQL = ("{t}set_name || CASE WHEN coalesce({t}set_version, '') <> '' "
                 "THEN ' ' || {t}set_version ELSE '' END || ' (' || {t}set_id || ')'")


@dataclass(frozen=True)
class Hit(MatchHit, Record):
    """One match row: why a file hit (set, version, algorithm, exact/near, distance...): the
    result model's :class:`~triage.model.MatchHit`, read back by column name."""

    _convert: ClassVar[Converters] = {"victim_identified": flag, "offender_identified": flag,
                                      "known": bool, "entry_fields": parse_json}

    @property
    def set_label(self) -> str:
        v = f" {self.set_version}" if self.set_version else ""
        return f"{self.set_name}{v} ({self.set_id})"

    @property
    def grade_label(self) -> str:
        """The hit's grade in words (issue 14; :data:`triage.model.GRADES`)."""
        return grade_label(self.grade, self.match_type)


#: Columns of the ``images`` table a file's ``image`` dict holds (picture facts, no pixels).
IMAGE_COLUMNS = ("format", "width", "height", "mode", "frames", "decoded_width",
                 "decoded_height", "preprocessing")


@dataclass(frozen=True)
class File(Record):
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
    #: Picture or video metadata (issue 16), as the export's policy allows (redacted fields
    #: and free text already left out); None: the file has none.
    metadata: Metadata | None = None

    _expr: ClassVar[Exprs] = {"path_hex": "lower(hex({t}path))"}
    _convert: ClassVar[Converters] = {"allocated": bool, "deleted": bool, "notes": _notes}
    _assembled: ClassVar[frozenset[str]] = frozenset({"hashes", "image", "hits", "metadata"})

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
class Metadata:
    """A file's typed metadata as one export may show it (:mod:`triage.report.redact`):
    ``values`` holds every typed field the policy allows (None when the file has no
    value), ``redacted`` the redacted fields the file had a value for; ``tags`` and
    ``tags_dropped`` as stored (rows read, rows over the bound)."""

    values: dict[str, Any]
    redacted: tuple[str, ...]
    tags: int
    tags_dropped: int

    def get(self, name: str) -> Any:
        """A field's value; ``"redacted"`` for a redacted field the file had a value for."""
        return "redacted" if name in self.redacted else self.values.get(name)

    @property
    def camera(self) -> str:
        """Make and model (the model alone when it already starts with the make)."""
        make, model = self.values.get("make") or "", self.values.get("model") or ""
        if make and model.lower().startswith(make.lower()):
            return model
        return " ".join(x for x in (make, model) if x)

    @property
    def taken(self) -> str:
        """The original date-time with its offset ("" when none)."""
        t = self.values.get("datetime_original") or ""
        off = self.values.get("offset_original")
        return f"{t} {off}" if t and off else t

    @property
    def gps(self) -> str:
        """``yes``/``no`` (a latitude and longitude), ``redacted``."""
        if "gps_latitude" in self.redacted or "gps_longitude" in self.redacted:
            return "redacted"
        has = self.values.get("gps_latitude") is not None and \
            self.values.get("gps_longitude") is not None
        return "yes" if has else "no"


@dataclass(frozen=True)
class TagListing:
    """A file's metadata tags as one export may show them, and how many were left out
    (free text not asked for, redacted, binary blocks)."""

    tags: tuple[dict[str, Any], ...]  # source, name, value, truncated, free_text
    free_text_left_out: int
    redacted: int
    binary_left_out: int


@dataclass(frozen=True)
class Evidence(Record):
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

    _expr: ClassVar[Exprs] = {"path_hex": "lower(hex({t}path_bytes))"}
    _convert: ClassVar[Converters] = {"description": parse_json}


@dataclass(frozen=True)
class Run(Record):
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

    _convert: ClassVar[Converters] = {"arguments": parse_json, "options": parse_json,
                                      "versions": parse_json}


#: Hits of one hash set in the same match run, on files that exist (``hs`` = the
#: hash_sets_used row).
_SET_HITS = ("(SELECT {agg} FROM matches m JOIN files f ON f.id = m.file_id "
             "WHERE m.run_id = {t}run_id AND m.set_id = {t}set_id)")


@dataclass(frozen=True)
class HashSetUsed(Record):
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

    _expr: ClassVar[Exprs] = {"hits": _SET_HITS.replace("{agg}", "count(*)"),
             "files": _SET_HITS.replace("{agg}", "count(DISTINCT m.file_id)")}
    _convert: ClassVar[Converters] = {"category_map": parse_json, "known": bool}


@dataclass(frozen=True)
class ErrorRow(Record):
    id: int
    file_id: int | None
    display_path: str | None  # of the file the error is about (LEFT JOIN files)
    run_id: int | None
    stage: str
    error_class: str
    message: str
    time_utc: str

    _expr: ClassVar[Exprs] = {"display_path": "ef.display_path"}


@dataclass(frozen=True)
class AuditRow(Record):
    seq: int
    time_utc: str
    user: str
    host: str
    tool_version: str
    action: str
    details: str
    row_hash: str


@dataclass(frozen=True)
class SetSummary(Record):
    """Files, exact and near hits of one set label (grouped by SQLite, see the reader)."""

    label: str
    files: int
    exact: int
    near: int
