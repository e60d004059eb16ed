"""The report's "Leads" section (issue 16 item 4): the ranked clusters of the latest
completed ``triage leads`` run, with their reasons and counts. No pictures, no paths, no
camera serial numbers or positions: cluster ids, counts, capture spans, camera makes and
models, and the one-line reasons (docs/leads.md)."""

from __future__ import annotations

import json
from typing import Any

from .document import Col, Para, Section, Table, lines
from .model import ReportModel

SECTION_ID = "leads"
TITLE = "Leads: series clusters of unknown media, ranked"
#: Rows of the leads table (the case holds every lead; ``triage leads --limit 0`` lists all).
MAX_ROWS = 200


def _latest_run(m: ReportModel) -> dict[str, Any] | None:
    for r in m.reader.rows("SELECT id, summary FROM runs WHERE command = 'leads' AND "
                           "status = 'completed' ORDER BY id DESC LIMIT 1"):
        return r
    return None


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def section(m: ReportModel) -> Section | None:
    """The section, or None when the case has no completed leads run."""
    run = _latest_run(m)
    if run is None:
        return None
    run_id = int(run["id"])
    summary = _json(run["summary"], {})
    summary = summary if isinstance(summary, dict) else {}
    blocks: list[Para | Table] = [Para(
        f"Clusters and leads of leads run {run_id}: {summary.get('media', '?')} pictures and "
        f"videos in {summary.get('clusters', '?')} clusters, "
        f"{summary.get('multi_member_clusters', '?')} of them of two or more files, "
        f"{summary.get('known_clusters', '?')} with known material; "
        f"{summary.get('leads', '?')} leads. Files join a cluster when their PDQ values are "
        "within the PDQ threshold, when both their pHash and dHash values are within those "
        "thresholds (any rotation or mirror image, the unletterboxed picture, video "
        "frames), or when their cameras have the same make and body serial number. A lead "
        "is a cluster with at least one file without an exact or confirmed known hit and "
        "at least one signal; the score is the sum of the signals' points "
        "(docs/leads.md). Camera serial numbers and positions are not shown here.")]
    later = [r for r in m.runs if r.id > run_id and r.command in ("scan", "match")]
    if later:
        blocks.append(Para(f"Note: the case changed after these leads ({later[0].command} "
                           f"run {later[0].id}); run 'triage leads' again to include it."))
    match_run = summary.get("match_run")
    if match_run != m.match_run_id:
        blocks.append(Para(f"Note: the leads used the hits of match run {match_run}; this "
                           f"report shows those of match run {m.match_run_id}."))
    for note in summary.get("notes") or ():
        blocks.append(Para(f"Note: {note}."))
    table_rows = []
    for r in m.reader.rows(
            "SELECT cluster_id, size, known_members, review_members, score, lead_rank, "
            "reasons, first_capture, last_capture, cameras FROM clusters WHERE run_id = ? "
            "AND lead_rank IS NOT NULL ORDER BY lead_rank LIMIT ?", [run_id, MAX_ROWS]):
        cameras = _json(r["cameras"], [])
        makes = sorted({" ".join(str(x) for x in c[:2] if x) for c in cameras
                        if isinstance(c, list)} - {""})
        span = lines(r["first_capture"] or "", "to " + r["last_capture"]
                     if r["last_capture"] and r["last_capture"] != r["first_capture"] else "")
        reasons = [f"+{p} {text}" for _, p, text in _json(r["reasons"], [])]
        table_rows.append((
            str(r["lead_rank"]), r["cluster_id"], str(r["score"]),
            lines(f"{r['size']} files", f"{r['known_members']} known",
                  f"{r['review_members']} for review" if r["review_members"] else ""),
            span if span.parts else "-", lines(*makes) if makes else "-", lines(*reasons)))
    if table_rows:
        blocks.append(Table(
            (Col("#", 5, "num"), Col("cluster", 15, "mono"), Col("score", 7, "num"),
             Col("files", 11), Col("capture times", 15, "nowrap"), Col("cameras", 12),
             Col("reasons", 35)), tuple(table_rows),
            caption="Leads, best first (reasons: points and one line each)", name="leads"))
    else:
        blocks.append(Para("No leads: no cluster of unknown media has a signal."))
    return Section(SECTION_ID, TITLE, tuple(blocks))
