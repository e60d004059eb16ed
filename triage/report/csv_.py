"""CSV export: one row per file (``rows=files``, default), per hit (``rows=hits``) or per
member of a group of entries with the same SHA-256 (``rows=duplicates``).

Safe against formula injection (OWASP "CSV Injection"): every cell that starts with ``=``,
``+``, ``-``, ``@``, tab, CR or LF gets a leading apostrophe, so a spreadsheet shows it as
text; control (ESC ...), bidi and undecodable characters are escaped visibly (``\x1b``),
so no cell can act on a terminal that shows the file (``triage.textsafe.for_csv``). Every
cell is quoted (``QUOTE_ALL``). The exact path is always available unmodified as hex in
``path_bytes_hex`` (hex digits can never start a formula), so no raw-text column is needed.
UTF-8 with a byte-order mark (spreadsheets need it to read UTF-8), CRLF line ends. There is
no generation time in a CSV: the file is fully deterministic. Columns: docs/reports.md; the
hash columns follow the algorithm registry (one per computed algorithm, plus ``NAME_quality``
for algorithms with a quality gate).
"""

from __future__ import annotations

import csv
import json
from typing import Any

from hashsets.algorithms import computed, stream_algorithms

from ..model import OUTCOME_OF_STATUS
from ..textsafe import for_csv
from . import Exporter, Sink
from .model import DUPLICATE_SCOPES, File, Hit, ReportModel
from .redact import METADATA_FIELDS

#: Picture and video metadata columns (issue 16): ``meta_`` + each typed field, the number
#: of tags stored, and the redacted fields the file had a value for (their cells read
#: ``redacted``). With ``--include-free-text`` a ``meta_free_text`` column follows.
META_COLUMNS = (*(f"meta_{f}" for f in METADATA_FIELDS), "meta_tags", "meta_redacted")
FREE_TEXT_COLUMN = "meta_free_text"


def hash_columns() -> tuple[str, ...]:
    """One column per algorithm a scan computes, then ``NAME_quality`` for each algorithm
    with a quality gate (registry order)."""
    return (*(a.name for a in computed()),
            *(f"{a.name}_quality" for a in computed() if a.min_quality is not None))


def file_columns() -> tuple[str, ...]:
    return (
        "file_id", "evidence_id", "path", "path_bytes_hex", "kind", "size", "status",
        "outcome", "status_stage", "status_reason", "mime", "media_kind", "extension_mismatch",
        "allocated", "deleted", "notes", "caution", "mtime_utc", "atime_utc", "ctime_utc",
        "crtime_utc", *hash_columns(), "hits", "known_hits", "match_types", "categories",
        "categories_raw", "sets",
    )


def hit_columns() -> tuple[str, ...]:
    return (
        "file_id", "path", "path_bytes_hex", "allocated", "deleted", "caution", "set_name",
        "set_version", "set_id", "set_kind", "algorithm", "match_type", "distance",
        "threshold", "file_value", "known_value", "category", "category_raw", "series",
        "victim_identified", "offender_identified", "entry_ref",
        *(a.name for a in stream_algorithms()),
        # issue 14: graded hits
        "grade", "grade_label", "variant", "quality", "decode", "files_same_value",
        "entry_name", "entry_fields",
    )


def _meta(model: ReportModel, f: File) -> dict[str, Any]:
    """The metadata cells of a file (empty when it has none); free text as compact JSON
    (a list of source, name, value objects) when the export includes it."""
    m = f.metadata
    if m is None:
        return {}
    row: dict[str, Any] = {f"meta_{k}": m.get(k) for k in METADATA_FIELDS}
    row["meta_tags"] = m.tags
    row["meta_redacted"] = "|".join(m.redacted)
    if model.policy.include_free_text and m.tags:
        free = model.metadata_tags(f.id, free_text_only=True).tags
        row[FREE_TEXT_COLUMN] = _fields_text(
            [{k: t[k] for k in ("source", "name", "value")} for t in free])
    return row


def _meta_columns(model: ReportModel) -> tuple[str, ...]:
    return (*META_COLUMNS, *((FREE_TEXT_COLUMN,) if model.policy.include_free_text else ()))


def duplicate_columns() -> tuple[str, ...]:
    return ("scope", "group", "sha256", "size", "group_size", "other_scope", "file_id",
            "path", "path_bytes_hex")


def neutralise(value: object) -> str:
    """The cell text (``triage.textsafe.for_csv``): control, bidi and undecodable characters
    escaped visibly, and a leading apostrophe when it would start a formula."""
    return for_csv(value)


def _join(values: list[str]) -> str:
    return "|".join(dict.fromkeys(values))  # ordered, without duplicates


def _file_row(f: File) -> dict[str, Any]:
    quality = {f"{h.algorithm}_quality": h.quality for h in f.hashes}
    crit = [h for h in f.hits if not h.known]
    return {
        "file_id": f.id, "evidence_id": f.evidence_id, "path": f.display_path,
        "path_bytes_hex": f.path_hex, "kind": f.kind, "size": f.size, "status": f.status,
        "outcome": OUTCOME_OF_STATUS.get(f.status, ""), "status_stage": f.status_stage,
        "status_reason": f.status_reason, "mime": f.mime,
        "media_kind": f.media_kind, "extension_mismatch": f.ext_mismatch,
        "allocated": f.allocated, "deleted": f.deleted, "notes": "; ".join(f.notes),
        "caution": f.caution, "mtime_utc": f.mtime_utc, "atime_utc": f.atime_utc,
        "ctime_utc": f.ctime_utc, "crtime_utc": f.crtime_utc,
        **{a.name: f.hash_value(a.name) for a in computed()},
        **{c: quality.get(c) for c in hash_columns() if c.endswith("_quality")},
        "hits": len(crit), "known_hits": len(f.hits) - len(crit),
        "match_types": _join(sorted(h.match_type for h in crit)),
        "categories": _join([h.category or "(none)" for h in crit]),
        "categories_raw": _join([h.category_raw or "" for h in crit]),
        "sets": _join([h.set_label for h in f.hits]),
    }


def _hit_row(f: File, h: Hit) -> dict[str, Any]:
    return {
        "file_id": f.id, "path": f.display_path, "path_bytes_hex": f.path_hex,
        "allocated": f.allocated, "deleted": f.deleted, "caution": f.caution,
        "set_name": h.set_name, "set_version": h.set_version, "set_id": h.set_id,
        "set_kind": "known" if h.known else "", "algorithm": h.algorithm,
        "match_type": h.match_type, "distance": h.distance, "threshold": h.threshold,
        "file_value": h.file_value, "known_value": h.known_value, "category": h.category,
        "category_raw": h.category_raw, "series": h.series,
        "victim_identified": h.victim_identified, "offender_identified": h.offender_identified,
        "entry_ref": h.entry_ref, **{a.name: f.hash_value(a.name) for a in stream_algorithms()},
        "grade": h.grade, "grade_label": h.grade_label, "variant": h.variant,
        "quality": h.quality, "decode": h.decode, "files_same_value": h.files_same_value,
        "entry_name": h.entry_name, "entry_fields": _fields_text(h.entry_fields),
    }


def _fields_text(fields: object) -> str | None:
    """A matched entry's fields as one cell: compact JSON, keys sorted (None: none)."""
    if not fields:
        return None
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class CSVExporter(Exporter):
    name = "csv"
    extension = "csv"
    description = ("CSV, one row per file (--rows files), per hit (--rows hits) or per "
                   "duplicate (--rows duplicates)")

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        rows_kind = options.get("rows", "files")
        if rows_kind not in ("files", "hits", "duplicates"):
            raise ValueError(f"--rows must be 'files', 'hits' or 'duplicates', not "
                             f"{rows_kind!r}")
        # Streamed: one row at a time, straight to ``out`` (nothing kept per file).
        w = csv.writer(_Utf8(out), quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        out.write("\ufeff".encode())
        if rows_kind == "files":
            meta = _meta_columns(model)
            columns = (*file_columns(), *meta)
            w.writerow(columns)
            for f in model.files():
                r = _file_row(f) | _meta(model, f)
                w.writerow([neutralise(r.get(c)) for c in columns])
        elif rows_kind == "hits":
            meta = _meta_columns(model)
            columns = (*hit_columns(), *meta)
            w.writerow(columns)
            for f, h in model.hits():
                r = _hit_row(f, h) | _meta(model, f)
                w.writerow([neutralise(r.get(c)) for c in columns])
        else:  # one row per member of a duplicate group (issue 14 #8)
            columns = duplicate_columns()
            w.writerow(columns)
            for scope in DUPLICATE_SCOPES:
                for g in model.duplicate_groups(scope):
                    for m in g.members:
                        r = {"scope": g.scope, "group": g.number, "sha256": g.sha256,
                             "size": g.size, "group_size": len(g.members),
                             "other_scope": g.other_scope, "file_id": m.file_id,
                             "path": m.path, "path_bytes_hex": m.path_bytes_hex}
                        w.writerow([neutralise(r[c]) for c in columns])


class _Utf8:
    """The text file ``csv.writer`` needs, over a binary sink (UTF-8, row by row)."""

    def __init__(self, out: Sink) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(text.encode("utf-8"))
