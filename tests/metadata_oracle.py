"""exiftool as the independent oracle of the metadata fields (issue 16): what
``exiftool -n -j -G1`` says each typed column of ``media_metadata`` should hold.

exiftool names a tag by its group (``-G1``: ``IFD0``, ``ExifIFD``, ``GPS``, ``IFD1``;
``QuickTime``, ``Keys``, ``UserData``, ``RIFF`` for videos): only the groups that hold the
same tag triage reads are asked (never MakerNotes or XMP, which triage does not read:
docs/metadata.md). ``-n`` gives numbers unconverted (signed decimal GPS degrees in the
Composite group, orientation as a number).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Typed column -> exiftool tags (group:name), first present wins.
PICTURE_FIELDS: dict[str, tuple[str, ...]] = {
    "make": ("IFD0:Make",),
    "model": ("IFD0:Model",),
    "serial": ("ExifIFD:SerialNumber",),
    "lens_make": ("ExifIFD:LensMake",),
    "lens_model": ("ExifIFD:LensModel",),
    "software": ("IFD0:Software",),
    "datetime_original": ("ExifIFD:DateTimeOriginal",),
    "offset_original": ("ExifIFD:OffsetTimeOriginal",),
    "datetime_digitized": ("ExifIFD:CreateDate",),
    "offset_digitized": ("ExifIFD:OffsetTimeDigitized",),
    "gps_latitude": ("Composite:GPSLatitude",),
    "gps_longitude": ("Composite:GPSLongitude",),
    "gps_altitude": ("Composite:GPSAltitude",),
    "gps_date": ("GPS:GPSDateStamp",),
    "gps_time": ("GPS:GPSTimeStamp",),
    "orientation": ("IFD0:Orientation",),
    "image_unique_id": ("ExifIFD:ImageUniqueID",),
    "thumbnail": ("IFD1:ThumbnailOffset",),
}
VIDEO_FIELDS: dict[str, tuple[str, ...]] = {
    "make": ("Keys:Make", "UserData:Make", "ItemList:Make"),
    "model": ("Keys:Model", "UserData:Model", "ItemList:Model"),
    "software": ("Keys:Software", "UserData:Software", "RIFF:Software"),
    "datetime_original": ("Keys:CreationDate", "QuickTime:CreateDate",
                          "RIFF:DateTimeOriginal"),
    "gps_latitude": ("Composite:GPSLatitude",),
    "gps_longitude": ("Composite:GPSLongitude",),
    "gps_altitude": ("Composite:GPSAltitude",),
}
FIELDS = tuple(PICTURE_FIELDS)
#: Degrees and metres compared to this many decimals (exiftool prints 15 digits).
PLACES = 9


def available() -> bool:
    return shutil.which("exiftool") is not None


def run(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """exiftool's tags of each file, by file name."""
    names = [str(p) for p in paths]
    if not names:
        return {}
    proc = subprocess.run(["exiftool", "-n", "-j", "-G1", "-charset", "filename=utf8",
                           *names], capture_output=True, text=True, check=False, timeout=300)
    out = {}
    for item in json.loads(proc.stdout or "[]"):
        out[Path(item["SourceFile"]).name] = item
    return out


def _first(tags: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in tags:
            return tags[k]
    return None


def expected(tags: dict[str, Any], video: bool) -> dict[str, Any]:
    """The typed columns exiftool's tags give, in triage's forms (dates as EXIF writes them
    with the offset apart, GPS date with dashes)."""
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    out["thumbnail"] = 0
    for field, keys in (VIDEO_FIELDS if video else PICTURE_FIELDS).items():
        value = _first(tags, keys)
        if value is None or value == "":
            continue
        if field == "thumbnail":
            out[field] = 1
        elif field == "gps_date":
            out[field] = str(value).replace(":", "-")
        elif field in ("gps_latitude", "gps_longitude", "gps_altitude"):
            out[field] = round(float(value), PLACES)
        elif field == "orientation":
            out[field] = int(value)
        elif field == "datetime_original" and video:
            text = str(value)
            date, zone = text[:19], text[19:]
            out[field] = date
            if zone == "Z":
                out["offset_original"] = "+00:00"
            elif len(zone) == 6:
                out["offset_original"] = zone
        else:
            # exiftool's JSON writes a number-like text as a number ("1.00" as 1.0)
            out[field] = str(value).strip() if isinstance(value, str) else value
    return out


def ours(row: Any) -> dict[str, Any]:
    """The typed columns of a ``media_metadata`` row, in the same forms."""
    out = {f: row[f] for f in FIELDS}
    for f in ("gps_latitude", "gps_longitude", "gps_altitude"):
        if out[f] is not None:
            out[f] = round(float(out[f]), PLACES)
    if out["gps_time"] is not None and isinstance(out["gps_time"], str):
        out["gps_time"] = out["gps_time"]
    return out


def differences(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{field: (triage, exiftool)} where they differ."""
    out = {}
    for f in FIELDS:
        a, b = mine.get(f), theirs.get(f)
        if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b,
                                                                          abs_tol=1e-9):
            continue
        if isinstance(b, int | float) and not isinstance(b, bool) and isinstance(a, str):
            try:
                if float(a) == float(b):
                    continue
            except ValueError:
                pass
        if a != b:
            out[f] = (a, b)
    return out
