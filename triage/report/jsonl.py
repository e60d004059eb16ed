"""JSONL export for scripts: one JSON object per line, keys sorted, ASCII only.

Line 1 is ``{"type": "header", ...}`` (format version, generation time, case, evidence, method,
hash sets, summary, audit chain state); then one ``{"type": "file", ...}`` per file entry
(with its hashes and hits), then one ``{"type": "error", ...}`` per recorded error and one
``{"type": "audit", ...}`` per audit row (export events excluded, see the model).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from . import Exporter
from .model import File, ReportModel

JSONL_VERSION = 1


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def file_object(f: File) -> dict[str, Any]:
    """A file as plain JSON data (shared with the VICS exporter's tests)."""
    d = asdict(f)
    d["hashes"] = {h["algorithm"]: {k: v for k, v in h.items() if k != "algorithm"}
                   for h in d["hashes"]}
    d["notes"] = list(f.notes)
    d["caution"] = f.caution
    d["hits"] = [{k: v for k, v in h.items() if k != "file_id"} | {"set_label": x.set_label}
                 for h, x in zip(d["hits"], f.hits, strict=True)]
    d["type"] = "file"
    return d


def header(m: ReportModel) -> dict[str, Any]:
    return {
        "type": "header", "format": "triage-report-jsonl", "format_version": JSONL_VERSION,
        "tool_version": m.tool_version, "generated_utc": m.generated_utc, "case": m.case,
        "evidence": [asdict(e) for e in m.evidence],
        "method": {"match_run": m.match_run_id, "match_run_note": m.match_run_note,
                   "thresholds": m.thresholds,
                   "preprocessing": [{"algorithm": a, "preprocessing": p, "values": n}
                                     for a, p, n in m.preprocessing],
                   "runs": [asdict(r) for r in m.runs]},
        "hash_sets": [asdict(s) for s in m.hash_sets],
        "summary": {"status_counts": m.status_counts, "files_matched": m.files_matched,
                    "files_known": m.files_known, "by_category": m.by_category,
                    "by_set": [asdict(s) for s in m.by_set],
                    "known_by_set": [asdict(s) for s in m.known_by_set],
                    "skipped_reasons": [list(r) for r in m.skipped_reasons]},
        "audit": {"rows": len(m.audit), "last_row_hash": m.audit_head,
                  "problems": list(m.audit_problems)},
        "signer_fingerprint": m.signer_fingerprint,
    }


class JSONLExporter(Exporter):
    name = "jsonl"
    extension = "jsonl"
    description = "JSON Lines for scripts: a header line, then one object per file"

    def render(self, model: ReportModel, options: dict[str, Any]) -> bytes:
        lines = [_dump(header(model))]
        lines.extend(_dump(file_object(f)) for f in model.files)
        lines.extend(_dump({"type": "error", **asdict(x)}) for x in model.errors)
        lines.extend(_dump({"type": "audit", **asdict(a)}) for a in model.audit)
        return ("\n".join(lines) + "\n").encode("ascii")
