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


class VICSExporter(Exporter):
    name = "vics"
    extension = "json"
    description = "Project VIC VICS 2.0 case export (#Cases, Media, MediaFiles)"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        out.write(self.render(model, options))  # a whole document, built in memory

    def render(self, model: ReportModel, options: dict[str, Any]) -> bytes:
        groups: dict[str, list[File]] = {}
        for f in model.files_with_hits():  # streamed; only case-set hits are kept
            if not any(not h.known for h in f.hits):
                continue
            key = f.hash_value("sha256") or f.hash_value("md5") or f"file:{f.id}"
            groups.setdefault(key, []).append(f)
        media: list[dict[str, Any]] = []
        total = 0
        for n, files in enumerate(sorted(groups.values(), key=lambda g: g[0].display_path), 1):
            first = files[0]
            total += len(files)
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
                "AlternativeHashes": [{"HashName": a.label, "HashValue": first.hash_value(a.name)}
                                      for a in computed()
                                      if a.name not in TOP_LEVEL and first.hash_value(a.name)],
                "MediaFiles": [_media_file(f) for f in files],
            })
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
