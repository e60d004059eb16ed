"""Carved items in the case (issue 17): linking each to a listed file with the same
content, and reading them back for reports.

A carved item whose SHA-256 equals that of a file the walk listed (a deleted file, most
often: its clusters are unallocated, so carving finds its bytes again) is the same content
found again, not a second discovery: ``carved.same_as_file_id`` names that file (a deleted
one first, then the lowest id) and ``same_location`` says whether that file's data starts
where the item was carved (the very same bytes) or elsewhere (a copy).
"""

from __future__ import annotations

import json
from typing import Any

from .case import Case
from .model import CarvingSummary

#: Said wherever carved items are listed.
CAUTION = ("Carved items were recovered without file-system metadata (no name, no times) "
           "from unallocated space, file slack or unpartitioned space: their content may be "
           "incomplete, fragmented or mixed with other data, and a partial carve is not the "
           "original file.")


def link_found_again(case: Case, evidence_id: int) -> int:
    """Set ``same_as_file_id`` / ``same_location`` of the evidence's carved items; returns
    how many are the same content as a listed file."""
    c = case.conn
    rows = c.execute(
        "SELECT k.file_id, k.image_offset, h.value FROM carved k "
        "JOIN files f ON f.id = k.file_id JOIN hashes h ON h.file_id = k.file_id "
        "AND h.algorithm = 'sha256' WHERE f.evidence_id = ? ORDER BY k.file_id",
        (evidence_id,)).fetchall()
    if not rows:
        return 0
    updates: list[tuple[Any, ...]] = []
    for file_id, offset, sha in rows:
        hit = c.execute(
            "SELECT f.id, f.locator FROM hashes h JOIN files f ON f.id = h.file_id "
            "WHERE h.algorithm = 'sha256' AND h.value = ? AND f.evidence_id = ? "
            "AND f.id NOT IN (SELECT file_id FROM carved) AND f.parent_id IS NULL "
            "ORDER BY f.deleted DESC, f.id LIMIT 1", (sha, evidence_id)).fetchone()
        same, where = (None, None)
        if hit is not None:
            same = hit[0]
            loc = json.loads(hit[1]) if hit[1] else None
            where = int(isinstance(loc, list) and len(loc) == 5 and loc[4] == offset)
        updates.append((same, where, file_id))
    with case.transaction() as t:
        t.executemany("UPDATE carved SET same_as_file_id=?, same_location=? "
                      "WHERE file_id=? AND (same_as_file_id IS NOT ? OR "
                      "same_location IS NOT ?)",
                      [(s, w, f, s, w) for s, w, f in updates])
    return sum(1 for s, _, _ in updates if s is not None)


def carved_items(case: Case, evidence_id: int | None = None) -> list[dict[str, Any]]:
    """Every carved item (of one evidence, or all), in image order, with where it lies,
    its outcome, digests and the listed file it duplicates."""
    where = "WHERE f.evidence_id = ?" if evidence_id else ""
    params: tuple[Any, ...] = (evidence_id,) if evidence_id else ()
    out = []
    for r in case.query(
            "SELECT k.*, f.display_path, f.status, f.status_reason, f.mime, f.media_kind, "
            "(SELECT value FROM hashes WHERE file_id = f.id AND algorithm = 'md5') AS md5, "
            "(SELECT value FROM hashes WHERE file_id = f.id AND algorithm = 'sha256') "
            "AS sha256, s.display_path AS same_as_path, s.deleted AS same_as_deleted "
            f"FROM carved k JOIN files f ON f.id = k.file_id "
            f"LEFT JOIN files s ON s.id = k.same_as_file_id {where} "
            "ORDER BY f.evidence_id, k.image_offset, k.file_id", params):
        out.append({k: r[k] for k in r.keys()})
    return out


#: Carved items and fragment hits listed in a scan's summary (the report lists all).
SUMMARY_ITEMS = 50


def summary(case: Case, evidence_id: int) -> CarvingSummary | None:
    """The scan summary's carving section, or None when the evidence has no carved item
    and no fragment hit (a folder, or carving off)."""
    items = carved_items(case, evidence_id)
    frags = fragment_hits(case, evidence_id)
    if not items and not frags:
        return None
    shown = tuple({k: it[k] for k in ("display_path", "area", "image_offset", "length",
                                      "format", "status", "status_reason", "md5",
                                      "sha256", "slack_of", "same_as_path", "partial")}
                  for it in items[:SUMMARY_ITEMS])
    return CarvingSummary(
        items=len(items), intact=sum(1 for i in items if not i["partial"]),
        partial=sum(1 for i in items if i["partial"]),
        found_again=sum(1 for i in items if i["same_as_file_id"] is not None),
        fragments=len(frags), caution=CAUTION, carved=shown,
        fragment_hits=tuple(frags[:SUMMARY_ITEMS]))


def fragment_hits(case: Case, evidence_id: int | None = None) -> list[dict[str, Any]]:
    """Every fragment hit (of one evidence, or all): the known file, the share found and
    where, with the area or file it was found in."""
    where = "WHERE f.evidence_id = ?" if evidence_id else ""
    params: tuple[Any, ...] = (evidence_id,) if evidence_id else ()
    out = []
    for r in case.query(
            "SELECT g.set_name, g.known_path, g.known_sha256, g.known_size, "
            "g.indexed_bytes, g.found_bytes, g.blocks, g.first_offset, g.runs, "
            "p.display_path AS found_in FROM fragments g JOIN files f ON f.id = g.file_id "
            f"JOIN files p ON p.id = f.parent_id {where} "
            "ORDER BY f.evidence_id, g.first_offset, g.file_id", params):
        d = {k: r[k] for k in r.keys()}
        d["runs"] = json.loads(d["runs"])
        d["share"] = round(d["found_bytes"] / d["indexed_bytes"], 4) if d["indexed_bytes"] \
            else 0.0
        out.append(d)
    return out
