"""CSV export: one row per file (``rows=files``, default) or per hit (``rows=hits``).

Safe against formula injection (OWASP "CSV Injection"): every cell that starts with ``=``,
``+``, ``-``, ``@``, tab, CR or LF gets a leading apostrophe, so a spreadsheet shows it as
text; control (ESC ...), bidi and undecodable characters are escaped visibly (``\x1b``),
so no cell can act on a terminal that shows the file (``triage.textsafe.for_csv``). Every
cell is quoted (``QUOTE_ALL``). The exact path is always available unmodified as hex in
``path_bytes_hex`` (hex digits can never start a formula), so no raw-text column is needed.
UTF-8 with a byte-order mark (spreadsheets need it to read UTF-8), CRLF line ends. There is
no generation time in a CSV: the file is fully deterministic. Columns: docs/reports.md.
"""

from __future__ import annotations

import csv
from typing import Any

from ..textsafe import for_csv
from . import Exporter, Sink
from .model import File, Hit, ReportModel

HASH_COLUMNS = ("md5", "sha1", "sha256", "phash", "dhash", "pdq")

FILE_COLUMNS = (
    "file_id", "evidence_id", "path", "path_bytes_hex", "kind", "size", "status",
    "status_stage", "status_reason", "mime", "media_kind", "extension_mismatch", "allocated",
    "deleted", "notes", "caution", "mtime_utc", "atime_utc", "ctime_utc", "crtime_utc",
    *HASH_COLUMNS, "pdq_quality", "hits", "known_hits", "match_types", "categories",
    "categories_raw", "sets",
)
HIT_COLUMNS = (
    "file_id", "path", "path_bytes_hex", "allocated", "deleted", "caution", "set_name",
    "set_version", "set_id", "set_kind", "algorithm", "match_type", "distance", "threshold",
    "file_value", "known_value", "category", "category_raw", "series", "victim_identified",
    "offender_identified", "entry_ref", "md5", "sha1", "sha256",
)


def neutralise(value: object) -> str:
    """The cell text (``triage.textsafe.for_csv``): control, bidi and undecodable characters
    escaped visibly, and a leading apostrophe when it would start a formula."""
    return for_csv(value)


def _join(values: list[str]) -> str:
    return "|".join(dict.fromkeys(values))  # ordered, without duplicates


def _file_row(f: File) -> dict[str, Any]:
    pdq_q = next((h.quality for h in f.hashes if h.algorithm == "pdq"), None)
    crit = [h for h in f.hits if not h.known]
    return {
        "file_id": f.id, "evidence_id": f.evidence_id, "path": f.display_path,
        "path_bytes_hex": f.path_hex, "kind": f.kind, "size": f.size, "status": f.status,
        "status_stage": f.status_stage, "status_reason": f.status_reason, "mime": f.mime,
        "media_kind": f.media_kind, "extension_mismatch": f.ext_mismatch,
        "allocated": f.allocated, "deleted": f.deleted, "notes": "; ".join(f.notes),
        "caution": f.caution, "mtime_utc": f.mtime_utc, "atime_utc": f.atime_utc,
        "ctime_utc": f.ctime_utc, "crtime_utc": f.crtime_utc,
        **{a: f.hash_value(a) for a in HASH_COLUMNS}, "pdq_quality": pdq_q,
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
        "entry_ref": h.entry_ref, "md5": f.hash_value("md5"), "sha1": f.hash_value("sha1"),
        "sha256": f.hash_value("sha256"),
    }


class CSVExporter(Exporter):
    name = "csv"
    extension = "csv"
    description = "CSV, one row per file (--rows files) or per hit (--rows hits)"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        rows_kind = options.get("rows", "files")
        if rows_kind not in ("files", "hits"):
            raise ValueError(f"--rows must be 'files' or 'hits', not {rows_kind!r}")
        # Streamed: one row at a time, straight to ``out`` (nothing kept per file).
        w = csv.writer(_Utf8(out), quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        out.write("\ufeff".encode())
        if rows_kind == "files":
            w.writerow(FILE_COLUMNS)
            for f in model.files():
                r = _file_row(f)
                w.writerow([neutralise(r[c]) for c in FILE_COLUMNS])
        else:
            w.writerow(HIT_COLUMNS)
            for f, h in model.hits():
                r = _hit_row(f, h)
                w.writerow([neutralise(r[c]) for c in HIT_COLUMNS])


class _Utf8:
    """The text file ``csv.writer`` needs, over a binary sink (UTF-8, row by row)."""

    def __init__(self, out: Sink) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(text.encode("utf-8"))
