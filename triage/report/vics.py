"""VICS 2.0 case export (``#Cases``) for upload to national databases (Project VIC, ICSE).

``value[0]`` is the case (``CaseID``, ``CaseNumber``, ``ContactName``, ``ContactOrganization``,
``SourceApplicationName``/``Version``, ``TotalMediaFiles``) with one ``Media`` record per
distinct content that hit a (non-known) hash set, and its ``MediaFiles`` (one per file with
that content: path, name, times, ``Deleted``, ``Unallocated``).

Kept so that :mod:`hashsets.formats.vics` reads it back (tested round trip):

* ``Category``: the hit's RAW category value (an integer when the raw value is one, else the
  raw text; null when the set had none). With hits in several categories, the first hit in
  report order (exact before near, smallest distance) gives it and ``Comments`` lists them all.
* ``MD5``/``SHA1`` in upper-case hex (as Project VIC ships them); every other computed
  algorithm of the registry (SHA-256, pHash, dHash, PDQ...) as ``AlternativeHashes``
  (``HashName`` = the algorithm's label, ``HashValue``), which the importer reads.
* Paths are the escaped display forms (non-UTF-8 bytes appear as ``\\xNN``).

Files only in known-file sets (NSRL) are not exported: they are not case media of interest.

``media="unknown"`` (``triage report --format vics --media unknown``, issue 16 item 5): the
case's pictures and videos (``media_kind`` image or video) with no exact or confirmed hit
in a case set and no known-file hit, for submission to a national database as new
material: ``Category`` null and ``IsPrecategorized`` false (the examiner categorises;
category 0 is left alone because distributed sets use it as non-pertinent), the flags
null, ``Series`` null, and ``Comments`` naming the member's cluster in the latest
completed leads run (``leads run N cluster ID, lead rank R``) and any for-review hit.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hashsets.algorithms import computed

from . import Exporter, Sink
from .document import explain
from .model import File, Hit, ReportModel

CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"
#: Algorithms with their own top-level VICS field.
TOP_LEVEL = ("md5", "sha1")


def _entry(h: Hit) -> str:
    """The matched set entry, when the set names it (issue 14): ``; set entry ID: NAME``."""
    return f"; set entry {h.entry_ref}: {h.entry_name}" if h.entry_name else ""


def _category(raw: str | None) -> int | str | None:
    if raw is None:
        return None
    return int(raw) if raw.isdigit() else raw


def _flag(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return False if any(v is False for v in values) else None


def _media_file(f: File) -> dict[str, Any]:
    name = f.display_path.rsplit("/", 1)[-1]
    return {
        "MD5": (f.hash_value("md5") or "").upper() or None, "FileName": name,
        "FilePath": f.display_path, "FileSize": f.size, "Created": f.crtime_utc,
        "Written": f.mtime_utc, "Accessed": f.atime_utc, "Unallocated": not f.allocated,
        "Deleted": f.deleted,
    }


#: ``media`` option values: hits of case sets (default), or unknown pictures and videos.
MEDIA_CHOICES = ("hits", "unknown")
#: Files of the unknown-media export (``f``): pictures and videos with no exact or
#: confirmed case-set hit and no known-file hit in the current match run (the rule of
#: ``triage.clusters``: KNOWN_GRADES, known-file sets are not known material).
_UNKNOWN_WHERE = (
    "WHERE f.media_kind IN ('image', 'video') AND NOT EXISTS (SELECT 1 FROM matches m "
    "WHERE m.file_id = f.id AND m.run_id IS ? AND (m.known <> 0 OR m.match_type = 'exact' "
    "OR m.grade IN ('exact', 'confirmed')))")


def _cluster_notes(model: ReportModel) -> dict[int, str]:
    """file id -> "leads run N cluster ID[, lead rank R]" for the latest leads run."""
    from .leadpkg import latest_leads_run

    run = latest_leads_run(model)
    if run is None:
        return {}
    run_id = int(run["id"])
    return {int(r["file_id"]): f"leads run {run_id} cluster {r['cluster_id']}"
            + (f", lead rank {r['lead_rank']}" if r["lead_rank"] is not None else "")
            for r in model.reader.rows(
                "SELECT m.file_id, m.cluster_id, c.lead_rank FROM cluster_members m "
                "JOIN clusters c ON c.run_id = m.run_id AND c.cluster_id = m.cluster_id "
                "WHERE m.run_id = ?", [run_id])}


def _alternative(f: File) -> list[dict[str, Any]]:
    return [{"HashName": a.label, "HashValue": f.hash_value(a.name)}
            for a in computed() if a.name not in TOP_LEVEL and f.hash_value(a.name)]


def _group(files: Any) -> dict[str, list[File]]:
    groups: dict[str, list[File]] = {}
    for f in files:
        key = f.hash_value("sha256") or f.hash_value("md5") or f"file:{f.id}"
        groups.setdefault(key, []).append(f)
    return groups


class VICSExporter(Exporter):
    name = "vics"
    extension = "json"
    description = "Project VIC VICS 2.0 case export (#Cases, Media, MediaFiles)"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        out.write(self.render(model, options))  # a whole document, built in memory

    def render(self, model: ReportModel, options: dict[str, Any]) -> bytes:
        kind = options.get("media") or "hits"
        if kind not in MEDIA_CHOICES:
            raise ValueError(f"--media must be one of {', '.join(MEDIA_CHOICES)}, not "
                             f"{kind!r}")
        if kind == "unknown":
            groups = _group(model.reader.files(_UNKNOWN_WHERE, [model.match_run_id]))
            media = self._unknown(model, groups)
        else:  # streamed; only case-set hits are kept
            groups = _group(f for f in model.files_with_hits()
                            if any(not h.known for h in f.hits))
            media = self._hits(groups)
        return self._document(model, media, sum(len(g) for g in groups.values()))

    @staticmethod
    def _unknown(model: ReportModel, groups: dict[str, list[File]]) -> list[dict[str, Any]]:
        clusters = _cluster_notes(model)
        media: list[dict[str, Any]] = []
        for n, files in enumerate(sorted(groups.values(), key=lambda g: g[0].display_path), 1):
            first = files[0]
            notes = list(dict.fromkeys(clusters[f.id] for f in files if f.id in clusters))
            notes += list(dict.fromkeys(explain(f, h) + _entry(h) for f in files
                                        for h in f.hits if not h.known))
            media.append({
                "MediaID": n, "Category": None,
                "MD5": (first.hash_value("md5") or "").upper() or None,
                "SHA1": (first.hash_value("sha1") or "").upper() or None,
                "MediaSize": first.size, "MimeType": first.mime,
                "IsPrecategorized": False, "VictimIdentified": None,
                "OffenderIdentified": None, "Series": None,
                "RelativeFilePath": first.display_path,
                "Comments": " | ".join(notes) or None,
                "AlternativeHashes": _alternative(first),
                "MediaFiles": [_media_file(f) for f in files],
            })
        return media

    @staticmethod
    def _hits(groups: dict[str, list[File]]) -> list[dict[str, Any]]:
        media: list[dict[str, Any]] = []
        for n, files in enumerate(sorted(groups.values(), key=lambda g: g[0].display_path), 1):
            first = files[0]
            hits = sorted(((f, h) for f in files for h in f.hits if not h.known),
                          key=lambda fh: (fh[1].match_type != "exact", fh[1].distance,
                                          fh[1].set_label, fh[1].algorithm))
            top = hits[0][1]
            media.append({
                "MediaID": n,
                "Category": _category(top.category_raw),
                "MD5": (first.hash_value("md5") or "").upper() or None,
                "SHA1": (first.hash_value("sha1") or "").upper() or None,
                "MediaSize": first.size, "MimeType": first.mime,
                "IsPrecategorized": top.category_raw is not None,
                "VictimIdentified": _flag([h.victim_identified for _, h in hits]),
                "OffenderIdentified": _flag([h.offender_identified for _, h in hits]),
                "Series": next((h.series for _, h in hits if h.series), None),
                "RelativeFilePath": first.display_path,
                "Comments": " | ".join(dict.fromkeys(explain(f, h) + _entry(h)
                                                     for f, h in hits)),
                "AlternativeHashes": _alternative(first),
                "MediaFiles": [_media_file(f) for f in files],
            })
        return media

    @staticmethod
    def _document(model: ReportModel, media: list[dict[str, Any]], total: int) -> bytes:
        c = model.case
        ident = f"triage:{c.get('number') or ''}:{c.get('created_utc') or ''}"
        case = {
            "CaseID": str(uuid.uuid5(uuid.NAMESPACE_URL, ident)),
            "CaseNumber": c.get("number"), "ContactName": c.get("examiner"),
            "ContactOrganization": c.get("agency"), "SourceApplicationName": "triage",
            "SourceApplicationVersion": model.tool_version,
            "GeneratedUtc": model.generated_utc,
            "TotalMediaFiles": total,
            "Media": media,
        }
        doc = {"@odata.context": CONTEXT, "value": [case]}
        return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()
