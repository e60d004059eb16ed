"""Lead packages (issue 16 item 5): the clusters of the latest completed ``triage leads``
run with what an ICSE or VICS submission needs, as one JSON document (``leads-json``) or
one CSV row per member (``leads-csv``). ``triage report --format leads-json|leads-csv``
(``--cluster ID`` repeatable; default: every lead, best first), so the export is written,
hashed, recorded in the audit trail and given a manifest by :mod:`triage.report.export`
like every other report (docs/leads.md "Lead packages").

Per cluster: id, rank, score, reasons, size, known and for-review members, capture span,
cameras (make, model, body serial), the leads and match runs; per member: path (display
form and the exact bytes as hex), size, MD5, SHA-1, SHA-256, PDQ, pHash, dHash as stored,
the member's known status, and the typed metadata fields (GPS when present). Case number,
examiner and agency from the case details.

Metadata goes through the export's :class:`~triage.report.redact.MetadataPolicy`, applied
by the read layer (:mod:`triage.report.model`): ``--redact serial`` also blanks the serial
of the cluster's ``cameras`` here ("redacted"), the one place a serial reaches this export
outside the read layer. Free-text tags only with ``--include-free-text``. Never content.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from ..textsafe import for_csv
from . import Exporter, Sink
from .csv_ import _Utf8
from .model import File, ReportModel
from .redact import METADATA_FIELDS

#: Member hashes exported, in this order (as stored: lower-case hex).
HASHES = ("sha256", "sha1", "md5", "pdq", "phash", "dhash")
#: ``cluster_members.known`` as text.
MEMBER_STATUS = {0: "unknown", 1: "known", 2: "review"}
FORMAT_VERSION = 1
CLUSTER_COLUMNS = ("case_number", "examiner", "agency", "leads_run", "cluster_id", "rank",
                   "score", "cluster_size", "known_members", "review_members",
                   "first_capture", "last_capture", "cameras", "reasons")
MEMBER_COLUMNS = ("file_id", "path", "path_bytes_hex", "size", "member_status",
                  *HASHES, *(f"meta_{f}" for f in METADATA_FIELDS), "meta_redacted")
FREE_TEXT_COLUMN = "meta_free_text"


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def latest_leads_run(model: ReportModel) -> dict[str, Any] | None:
    """The latest completed leads run (``id``, ``summary``), or None."""
    if not model.reader.count("SELECT count(*) AS n FROM sqlite_schema WHERE type='table' "
                              "AND name='clusters'"):
        return None
    for r in model.reader.rows("SELECT id, summary FROM runs WHERE command = 'leads' AND "
                               "status = 'completed' ORDER BY id DESC LIMIT 1"):
        return r
    return None


def _cameras(model: ReportModel, raw: str | None) -> list[dict[str, Any]]:
    out = []
    for c in _json(raw, []):
        if not isinstance(c, list) or len(c) != 3:
            continue
        serial = c[2]
        if serial is not None and "serial" in model.policy.redact:
            serial = "redacted"
        out.append({"make": c[0], "model": c[1], "serial": serial})
    return out


def clusters(model: ReportModel, options: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The leads run and its selected cluster rows (``clusters`` option: ids; default every
    lead by rank). An unknown id raises ValueError (nothing written)."""
    run = latest_leads_run(model)
    if run is None:
        raise ValueError("the case has no completed leads run: run 'triage leads CASE_DIR' "
                         "first")
    run_id = int(run["id"])
    wanted = list(dict.fromkeys(options.get("clusters") or ()))
    cols = ("cluster_id, size, known_members, review_members, score, lead_rank, reasons, "
            "first_capture, last_capture, cameras")
    if wanted:
        rows = {r["cluster_id"]: r for r in model.reader.rows(
            f"SELECT {cols} FROM clusters WHERE run_id = ? AND cluster_id IN "
            f"({', '.join('?' * len(wanted))})", [run_id, *wanted])}
        missing = [c for c in wanted if c not in rows]
        if missing:
            raise ValueError(f"--cluster: no cluster {', '.join(map(repr, missing))} in "
                             f"leads run {run_id} (the latest; 'triage leads --json' lists "
                             "them)")
        chosen = sorted(rows.values(), key=lambda r: (r["lead_rank"] is None,
                                                      r["lead_rank"] or 0, r["cluster_id"]))
    else:
        chosen = list(model.reader.rows(
            f"SELECT {cols} FROM clusters WHERE run_id = ? AND lead_rank IS NOT NULL "
            "ORDER BY lead_rank", [run_id]))
    return run_id, chosen


def members(model: ReportModel, run_id: int, cluster_id: str) -> Iterator[tuple[File, int]]:
    """A cluster's member files (hashes and policy-filtered metadata) by display path,
    with their ``cluster_members.known`` status."""
    status = {int(r["file_id"]): int(r["known"]) for r in model.reader.rows(
        "SELECT file_id, known FROM cluster_members WHERE run_id = ? AND cluster_id = ?",
        [run_id, cluster_id])}
    for f in model.reader.files("WHERE f.id IN (SELECT file_id FROM cluster_members "
                                "WHERE run_id = ? AND cluster_id = ?)", [run_id, cluster_id]):
        yield f, status.get(f.id, 0)


def _metadata(model: ReportModel, f: File) -> dict[str, Any] | None:
    m = f.metadata
    if m is None:
        return None
    out: dict[str, Any] = {k: m.get(k) for k in METADATA_FIELDS}
    out["redacted"] = list(m.redacted)
    if model.policy.include_free_text and m.tags:
        out["free_text"] = [{k: t[k] for k in ("source", "name", "value")}
                            for t in model.metadata_tags(f.id, free_text_only=True).tags]
    return out


def _member(model: ReportModel, f: File, known: int) -> dict[str, Any]:
    return {"file_id": f.id, "path": f.display_path, "path_bytes_hex": f.path_hex,
            "size": f.size, "member_status": MEMBER_STATUS.get(known, str(known)),
            "hashes": {a: f.hash_value(a) for a in HASHES},
            "metadata": _metadata(model, f)}


def _case(model: ReportModel) -> dict[str, Any]:
    c = model.case
    return {"case_number": c.get("number"), "examiner": c.get("examiner"),
            "agency": c.get("agency")}


def _cluster(model: ReportModel, r: dict[str, Any]) -> dict[str, Any]:
    return {"cluster_id": r["cluster_id"], "rank": r["lead_rank"], "score": r["score"],
            "size": r["size"], "known_members": r["known_members"],
            "review_members": r["review_members"],
            "capture_span": {"first": r["first_capture"], "last": r["last_capture"]},
            "cameras": _cameras(model, r["cameras"]),
            "reasons": [{"signal": s, "points": p, "reason": t}
                        for s, p, t in _json(r["reasons"], [])]}


class LeadsJSONExporter(Exporter):
    name = "leads-json"
    extension = "json"
    description = "lead package: clusters of the latest leads run, one JSON document"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        run_id, chosen = clusters(model, options)
        doc = {
            "format": "triage-lead-package", "format_version": FORMAT_VERSION,
            "tool": "triage", "tool_version": model.tool_version,
            "generated_utc": model.generated_utc, "case": _case(model),
            "leads_run": run_id, "match_run": model.match_run_id,
            "metadata_policy": model.policy.to_record(),
            "clusters": [{**_cluster(model, r), "members": [
                _member(model, f, k) for f, k in members(model, run_id, r["cluster_id"])]}
                for r in chosen],
        }
        out.write((json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n")
                  .encode())


class LeadsCSVExporter(Exporter):
    name = "leads-csv"
    extension = "csv"
    description = "lead package: one CSV row per member of the latest leads run's clusters"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        run_id, chosen = clusters(model, options)
        free = (FREE_TEXT_COLUMN,) if model.policy.include_free_text else ()
        columns = (*CLUSTER_COLUMNS, *MEMBER_COLUMNS, *free)
        # Same conventions as the CSV report (triage.report.csv_): BOM, CRLF, every cell
        # quoted and passed through textsafe.for_csv (formula injection, control chars).
        w = csv.writer(_Utf8(out), quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        out.write("\ufeff".encode())
        w.writerow(columns)
        case = _case(model)
        for r in chosen:
            c = _cluster(model, r)
            head = {**case, "leads_run": run_id, "cluster_id": c["cluster_id"],
                    "rank": c["rank"], "score": c["score"], "cluster_size": c["size"],
                    "known_members": c["known_members"],
                    "review_members": c["review_members"],
                    "first_capture": c["capture_span"]["first"],
                    "last_capture": c["capture_span"]["last"],
                    "cameras": "|".join(" / ".join(str(x[k] or "") for k in
                                                   ("make", "model", "serial"))
                                        for x in c["cameras"]),
                    "reasons": "|".join(f"+{x['points']} {x['reason']}"
                                        for x in c["reasons"])}
            for f, known in members(model, run_id, r["cluster_id"]):
                m = _member(model, f, known)
                meta = m["metadata"] or {}
                row = {**head, **{k: m[k] for k in ("file_id", "path", "path_bytes_hex",
                                                     "size", "member_status")},
                       **m["hashes"], **{f"meta_{k}": meta.get(k) for k in METADATA_FIELDS},
                       "meta_redacted": "|".join(meta.get("redacted") or ())}
                if free and meta.get("free_text"):
                    row[FREE_TEXT_COLUMN] = json.dumps(meta["free_text"], sort_keys=True,
                                                       ensure_ascii=False,
                                                       separators=(",", ":"))
                w.writerow([for_csv(row.get(col)) for col in columns])
