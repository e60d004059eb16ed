"""What of a file's picture and video metadata an export may show (issue 16 items 2 and 6).

One :class:`MetadataPolicy` per export, applied by the read layer
(:mod:`triage.report.model`) before any exporter sees a value, so every format of an export
leaves out the same things and no exporter can show what the policy removed:

* **Free text** (``metadata_tags.free_text`` = 1: comments, descriptions, titles, written by
  a person) is left out unless ``include_free_text`` (``triage report
  --include-free-text``).
* **Redaction** (``triage report --redact location,serial``):

  - ``location``: the typed fields ``gps_latitude``, ``gps_longitude``, ``gps_altitude``,
    ``gps_date``, ``gps_time``, and every tag of the EXIF GPS directory (source ``gps``) or
    whose name contains ``gps``, ``location``, ``6709`` or ``xyz`` (case-insensitive: the
    QuickTime ``©xyz``/``location``/``...location.ISO6709`` keys of videos);
  - ``serial``: the typed fields ``serial`` (body serial number) and ``image_unique_id``
    (a per-picture identifier that some cameras derive from the body serial and a counter,
    and that links pictures to one device just as a serial does), and every tag whose name
    contains ``serial`` or is ``ImageUniqueID`` (BodySerialNumber, LensSerialNumber,
    CameraSerialNumber ...).

  A redacted typed field is left out of the file's metadata and named in its ``redacted``
  list when the file had a value (whether a value existed is shown, the value never is).
* **Never content**: tags that hold opaque binary blocks, which can embed preview pictures
  or anything else (MakerNote, the XMP packet, Photoshop image resources, IPTC, the ICC
  profile, DNG private data, PrintIM, JPEG tables), and any EXIF tag whose value is a hex
  dump of more than :data:`MAX_HEX_BYTES` bytes, are never exported (they stay in the
  case). The embedded thumbnail is only a flag (``thumbnail``); it is never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: The values ``--redact`` accepts, in the order the method section names them.
REDACT_CHOICES = ("location", "serial")
#: The typed fields each redaction leaves out.
REDACTED_FIELDS: dict[str, tuple[str, ...]] = {
    "location": ("gps_latitude", "gps_longitude", "gps_altitude", "gps_date", "gps_time"),
    "serial": ("serial", "image_unique_id"),
}
#: The typed fields of ``media_metadata`` an export shows (in this order).
METADATA_FIELDS = ("make", "model", "serial", "lens_make", "lens_model", "software",
                   "datetime_original", "offset_original", "datetime_digitized",
                   "offset_digitized", "gps_latitude", "gps_longitude", "gps_altitude",
                   "gps_date", "gps_time", "orientation", "image_unique_id", "thumbnail")
#: Tag names (lower case) that hold opaque binary blocks: never exported.
BINARY_TAGS = frozenset({"makernote", "xmlpacket", "imageresources", "iptcnaa",
                         "intercolorprofile", "dngprivatedata", "printimagematching",
                         "jpegtables"})
#: EXIF sources (the directories triage.metadata reads); container tags are FFmpeg's text.
EXIF_SOURCES = frozenset({"ifd0", "exif", "gps", "interop", "ifd1"})
#: A longer hex dump in an EXIF tag is a binary block (64 bytes, a choice: ImageUniqueID,
#: the longest hex-like identifier EXIF defines, is 32 characters).
MAX_HEX_BYTES = 64
_HEX = re.compile(r"[0-9a-f]+")
_LOCATION_WORDS = ("gps", "location", "6709", "xyz")
_SERIAL_WORDS = ("serial", "imageuniqueid")


class RedactError(ValueError):
    """An unknown ``--redact`` value."""


def parse_redact(text: str | None) -> tuple[str, ...]:
    """``--redact``'s comma list as known values in :data:`REDACT_CHOICES` order (empty
    items ignored); an unknown value raises :class:`RedactError` naming it."""
    if not text:
        return ()
    given = [v.strip().lower() for v in text.split(",") if v.strip()]
    unknown = [v for v in given if v not in REDACT_CHOICES]
    if unknown:
        raise RedactError(f"--redact: unknown value(s) {', '.join(map(repr, unknown))} "
                          f"(known: {', '.join(REDACT_CHOICES)})")
    return tuple(c for c in REDACT_CHOICES if c in given)


@dataclass(frozen=True)
class MetadataPolicy:
    """What one export shows of metadata (see module doc)."""

    redact: tuple[str, ...] = ()
    include_free_text: bool = False

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> MetadataPolicy:
        """The policy of an export's options (``redact``: a list or comma text;
        ``include_free_text``)."""
        opts = options or {}
        raw = opts.get("redact") or ()
        redact = parse_redact(raw if isinstance(raw, str) else ",".join(raw))
        return cls(redact, bool(opts.get("include_free_text")))

    @property
    def redacted_fields(self) -> tuple[str, ...]:
        return tuple(f for r in self.redact for f in REDACTED_FIELDS[r])

    def tag_redacted(self, source: str, name: str) -> str | None:
        """The redaction that removes this tag (``location``/``serial``), or None."""
        low = name.lower()
        if "location" in self.redact and (source == "gps" or any(
                w in low for w in _LOCATION_WORDS)):
            return "location"
        if "serial" in self.redact and any(w in low for w in _SERIAL_WORDS):
            return "serial"
        return None

    def statements(self) -> tuple[str, ...]:
        """Sentences for the method section: what of the metadata this export holds."""
        out = ["Picture and video metadata (EXIF, container tags) is shown as read from the "
               "files, escaped; tags holding binary blocks (maker notes, XMP, Photoshop "
               "resources, IPTC, ICC profiles) and embedded thumbnails are never exported."]
        if self.include_free_text:
            out.append("Free-text tags (comments, descriptions, titles written by a person) "
                       "ARE included in this export (--include-free-text).")
        else:
            out.append("Free-text tags (comments, descriptions, titles written by a person) "
                       "are NOT included in this export (they are kept in the case; "
                       "--include-free-text includes them).")
        if not self.redact:
            out.append("Nothing was redacted.")
            return tuple(out)
        for r in self.redact:
            fields = ", ".join(REDACTED_FIELDS[r])
            if r == "location":
                out.append(f"REDACTED (--redact location): GPS location. Left out: the fields "
                           f"{fields}, every tag of the EXIF GPS directory, and every tag "
                           "whose name contains gps, location, 6709 or xyz (video location "
                           "keys). Where a file had such a value it reads 'redacted'.")
            else:
                out.append(f"REDACTED (--redact serial): serial numbers. Left out: the fields "
                           f"{fields} (body serial number; image unique id, which some cameras "
                           "derive from the serial), and every tag whose name contains "
                           "'serial' or is ImageUniqueID. Where a file had such a value it "
                           "reads 'redacted'.")
        if self.include_free_text:
            out.append("Caution: free text is written by a person and is not searched for "
                       "places or serial numbers; it is included as written.")
        return tuple(out)

    def to_record(self) -> dict[str, Any]:
        """What the export's manifest and audit row record about the policy."""
        return {"redact": list(self.redact), "redacted_fields": list(self.redacted_fields),
                "redacted_tags": [_TAG_RULES[r] for r in self.redact],
                "include_free_text": self.include_free_text}


_TAG_RULES = {
    "location": "source gps, or name containing gps, location, 6709 or xyz",
    "serial": "name containing serial, or ImageUniqueID",
}


def binary_tag(source: str, name: str, value: str) -> bool:
    """A tag holding an opaque binary block (never exported, see module doc)."""
    if name.lower() in BINARY_TAGS:
        return True
    return (source in EXIF_SOURCES and len(value) > 2 * MAX_HEX_BYTES
            and _HEX.fullmatch(value) is not None)
