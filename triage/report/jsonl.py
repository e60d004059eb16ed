"""JSONL export for scripts: one JSON object per line, keys sorted, ASCII only.

Line 1 is ``{"type": "header", ...}`` (format version, generation time, case, evidence, method,
hash sets, summary, audit chain state); then one ``{"type": "file", ...}`` per file entry
(with its hashes and hits), one ``{"type": "duplicate_group", ...}`` per group of entries
with the same SHA-256 (files first, then items inside files, each grouped apart), then one
``{"type": "error", ...}`` per recorded error and one ``{"type": "audit", ...}`` per audit
row (export events excluded, see the model).
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from hashsets.algorithms import error_rates

from ..model import outcome_counts
from . import Exporter, Sink
from .model import DUPLICATE_SCOPES, DuplicateGroup, File, ReportModel

JSONL_VERSION = 1


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def metadata_object(model: ReportModel | None, f: File) -> dict[str, Any] | None:
    """A file's picture or video metadata (issue 16) as the export's policy allows: the
    typed fields (redacted ones left out and named in ``redacted``), ``tags_stored`` and
    ``tags_dropped`` as stored, and ``tags``: every tag the policy allows (source, name,
    value, truncated, free_text) with counts of those left out."""
    m = f.metadata
    if m is None:
        return None
    d: dict[str, Any] = dict(m.values)
    d["redacted"] = list(m.redacted)
    d["tags_stored"] = m.tags
    d["tags_dropped"] = m.tags_dropped
    if model is not None and m.tags:
        listing = model.metadata_tags(f.id)
        d["tags"] = list(listing.tags)
        d["tags_left_out"] = {"free_text": listing.free_text_left_out,
                              "redacted": listing.redacted,
                              "binary": listing.binary_left_out}
    return d


def file_object(f: File, model: ReportModel | None = None) -> dict[str, Any]:
    """A file as plain JSON data: every field, ``hashes`` keyed by algorithm, each hit without
    its ``file_id`` and with its ``set_label``, plus ``caution`` and ``type``; ``metadata``
    as :func:`metadata_object` (its tags only with ``model``). Built field by field
    (``dataclasses.asdict`` deep-copies and was most of a large export's time)."""
    d = _fields(f)
    d["metadata"] = metadata_object(model, f)
    d["hashes"] = {h.algorithm: {k: v for k, v in _fields(h).items() if k != "algorithm"}
                   for h in f.hashes}
    d["image"] = None if f.image is None else dict(f.image)
    d["notes"] = list(f.notes)
    d["caution"] = f.caution
    d["hits"] = [{k: v for k, v in _fields(h).items() if k != "file_id"}
                 | {"set_label": h.set_label, "grade_label": h.grade_label} for h in f.hits]
    d["type"] = "file"
    return d


def duplicate_object(g: DuplicateGroup) -> dict[str, Any]:
    """One duplicate group (issue 14 #8): scope (``files``: the evidence's own files;
    ``inner``: items found inside files), its number in that scope, the shared SHA-256 and
    size, the members (file id, display path, path bytes as hex) and ``other_scope``: how
    many entries of the other scope have the same SHA-256."""
    return {"type": "duplicate_group", "scope": g.scope, "group": g.number,
            "sha256": g.sha256, "size": g.size, "count": len(g.members),
            "other_scope": g.other_scope,
            "members": [{"file_id": x.file_id, "path": x.path,
                         "path_bytes_hex": x.path_bytes_hex} for x in g.members]}


def _fields(record: Any) -> dict[str, Any]:
    """A flat record's fields as a dict (shallow: values are plain JSON values)."""
    return {name: getattr(record, name) for name in _names(type(record))}


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def header(m: ReportModel) -> dict[str, Any]:
    return {
        "type": "header", "format": "triage-report-jsonl", "format_version": JSONL_VERSION,
        "tool_version": m.tool_version, "generated_utc": m.generated_utc, "case": m.case,
        "evidence": [asdict(e) for e in m.evidence],
        "method": {"match_run": m.match_run_id, "match_run_note": m.match_run_note,
                   "thresholds": m.thresholds,
                   "preprocessing": [{"algorithm": a, "preprocessing": p, "values": n}
                                     for a, p, n in m.preprocessing],
                   "runs": [asdict(r) for r in m.runs],
                   "error_rates": error_rates.method_data(m.thresholds),
                   "metadata": {**m.policy.to_record(), "files": m.metadata_count,
                                "statements": list(m.policy.statements())}},
        "hash_sets": [asdict(s) for s in m.hash_sets],
        "summary": {"status_counts": m.status_counts,
                    "by_outcome": outcome_counts(m.status_counts),
                    "coverage": [asdict(g) for g in m.coverage],
                    "hits_deleted": m.hits_deleted, "hits_overwritten": m.hits_overwritten,
                    "files_matched": m.files_matched,
                    "files_known": m.files_known, "by_category": m.by_category,
                    "by_set": [asdict(s) for s in m.by_set],
                    "known_by_set": [asdict(s) for s in m.known_by_set],
                    "skipped_reasons": [list(r) for r in m.skipped_reasons],
                    "duplicates": asdict(m.duplicates)},
        "audit": {"rows": len(m.audit), "last_row_hash": m.audit_head,
                  "problems": list(m.audit_problems)},
        "signer_fingerprint": m.signer_fingerprint,
    }


class JSONLExporter(Exporter):
    name = "jsonl"
    extension = "jsonl"
    description = "JSON Lines for scripts: a header line, then one object per file"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        # Streamed: one line at a time, straight to ``out`` (nothing kept per file).
        out.write(_line(header(model)))
        for f in model.files():
            out.write(_line(file_object(f, model)))
        for scope in DUPLICATE_SCOPES:
            for group in model.duplicate_groups(scope):
                out.write(_line(duplicate_object(group)))
        for c in model.carved():  # issue 17: carved items, then fragment hits
            out.write(_line({"type": "carved", **c}))
        for g in model.fragments():
            out.write(_line({"type": "fragment", **g}))
        for x in model.errors():
            out.write(_line({"type": "error", **asdict(x)}))
        for a in model.audit:
            out.write(_line({"type": "audit", **asdict(a)}))


def _line(obj: Any) -> bytes:
    return (_dump(obj) + "\n").encode("ascii")
