"""How far the case's videos were examined (issue 15): the coverage line of the scan
summary and ``--json`` (``videos``). Light: imports no decoder."""

from __future__ import annotations

import sqlite3

from .model import VideoCoverage

#: Reasons listed per class, at most.
MAX_REASONS = 20


def _reason_class(status: str, reason: str | None, no_stream: bool) -> str:
    """A short class for why a video was not (fully) decoded: the reason's head, without
    numbers that differ per file."""
    if no_stream:
        return "no video stream"
    if status == "pending":
        return "not processed yet (pending)"
    text = (reason or status).removeprefix("video not decoded: ")
    text = text.removeprefix("video decoded in part: ")
    head = text.split(";")[0]
    if head.startswith("limit:"):
        head = head.split(" of ")[0].split(" is ")[0].split(" used up")[0]
        for bound in ("--video-max-pixels", "--video-max-frames", "time budget"):
            if bound in text:
                return f"limit: {bound}"
        return head[:80]
    if head.startswith("decoding failed at frame"):
        return "decoding failed part way"
    return "".join(c for c in head.split(":")[0] if not c.isdigit()).strip()[:80] or status


def video_coverage(c: sqlite3.Connection, evidence_id: int | None = None
                   ) -> VideoCoverage | None:
    """Counts over the files identified as video (None when there are none)."""
    where = "AND f.evidence_id=?" if evidence_id else ""
    params: tuple[object, ...] = (evidence_id,) if evidence_id else ()
    rows = c.execute(
        "SELECT f.status, f.status_reason, v.file_id IS NOT NULL, v.stopped, "
        "(SELECT count(*) FROM video_frames vf WHERE vf.file_id = f.id), "
        "EXISTS (SELECT 1 FROM errors e WHERE e.file_id = f.id AND "
        "e.error_class = 'NoVideoStream') "
        f"FROM files f LEFT JOIN videos v ON v.file_id = f.id WHERE f.media_kind = 'video' "
        f"{where}", params).fetchall()
    if not rows:
        return None
    decoded = partly = 0
    frames = 0
    reasons: dict[str, int] = {}
    for status, reason, has, stopped, n, no_stream in rows:
        frames += int(n)
        if has and not stopped:
            decoded += 1
            continue
        if has:
            partly += 1
        key = _reason_class(status, stopped or reason, bool(no_stream))
        reasons[key] = reasons.get(key, 0) + 1
    shown = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_REASONS])
    return VideoCoverage(videos=len(rows), decoded=decoded, decoded_in_part=partly,
                         not_decoded=len(rows) - decoded - partly, frames=frames,
                         reasons=dict(sorted(shown.items())))
