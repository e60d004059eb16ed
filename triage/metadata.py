"""Metadata of pictures and videos (issue 16), read in the worker from what is already open.

Pictures: Pillow's EXIF reader (``Image.getexif()``) on the picture the worker opened to
decode, before any pixel is decoded (a PNG's metadata chunks that follow its pixel data are
read from the bytes in memory, :func:`png_tail`, so that what is read never depends on
whether the picture was decoded): IFD0, the Exif IFD (0x8769), the GPS IFD (0x8825), the
Interoperability IFD (0xA005) and IFD1 (the thumbnail's directory: whether it holds a JPEG
thumbnail is recorded, the thumbnail itself is never read out). Videos: the container's and
streams' tags as FFmpeg gives them through PyAV (``creation_time``, ``com.apple.quicktime.*``,
``location`` from QuickTime's ``©xyz`` ...), from the container the worker opened to hash
frames.

Everything is bounded (:data:`MAX_TAGS` tags a file, :data:`MAX_VALUE` characters a value,
cut values flagged, bytes as hex of at most ``MAX_VALUE // 2`` bytes). A value is text
escaped by :func:`triage.textsafe.visible` (controls, bidi and undecodable characters as
visible escapes), never interpreted. A problem reading metadata (hostile EXIF: offsets out
of range, loops, huge counts) is recorded as a note naming the exception class only, never
the library's message (it may quote data); the file's status is not affected.

Nothing here is ever logged or shown on the terminal: values go to the case's
``media_metadata`` and ``metadata_tags`` tables only (README "What goes into the case").
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import MediaMetadata, MetaTag, Problem
from .textsafe import visible

#: Most tags kept per file; further tags are counted (``tags_dropped``), not kept.
MAX_TAGS = 2_000
#: Longest value kept, in characters (bytes: hex of at most half as many bytes).
MAX_VALUE = 4096
#: Most items of a multi-valued tag rendered before the value is cut.
MAX_ITEMS = 1024

# EXIF tag numbers (EXIF 2.32 / CIPA DC-008; TIFF 6.0).
EXIF_IFD, GPS_IFD, INTEROP_IFD, SUB_IFDS = 0x8769, 0x8825, 0xA005, 0x014A
IFD_POINTERS = frozenset({EXIF_IFD, GPS_IFD, INTEROP_IFD, SUB_IFDS})
MAKE, MODEL, SOFTWARE, ORIENTATION = 0x010F, 0x0110, 0x0131, 0x0112
DATETIME_ORIGINAL, DATETIME_DIGITIZED = 0x9003, 0x9004
OFFSET_ORIGINAL, OFFSET_DIGITIZED = 0x9011, 0x9012
BODY_SERIAL, LENS_MAKE, LENS_MODEL, IMAGE_UNIQUE_ID = 0xA431, 0xA433, 0xA434, 0xA420
USER_COMMENT = 0x9286
JPEG_IF = 0x0201  # IFD1 JPEGInterchangeFormat: the thumbnail's offset
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 0x01, 0x02, 0x03, 0x04
GPS_ALT_REF, GPS_ALT, GPS_TIME, GPS_DATE = 0x05, 0x06, 0x07, 0x1D
GPS_PROCESSING, GPS_AREA = 0x1B, 0x1C
#: Windows' XP tags: UTF-16LE text in a BYTE array.
XP_TAGS = frozenset({0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F})

#: Free text: written by a person, not by the device (DESIGN.md: kept apart, left out of
#: exports unless asked for). EXIF by number; container tags by their last name part.
#: Free text, and text naming a person (Artist 0x013B, Copyright 0x8298, CameraOwnerName
#: 0xA430): stored, left out of exports unless asked for (cold review: the owner's name).
FREE_TEXT_EXIF = frozenset({0x010D, 0x010E, 0x011D, 0x013B, 0x8298, 0xA430, USER_COMMENT,
                            *XP_TAGS})
FREE_TEXT_GPS = frozenset({GPS_PROCESSING, GPS_AREA})
FREE_TEXT_KEYS = frozenset({
    "title", "comment", "description", "synopsis", "keywords", "keyword", "album",
    "artist", "album_artist", "composer", "lyrics", "genre", "grouping", "copyright",
    "author", "performer", "publisher", "subtitle", "show", "episode_id", "network",
    "information", "displayname", "collection.user", "user", "name", "text", "usercomment",
    "imagedescription", "cameraownername", "ownername", "xpcomment", "xptitle",
    "xpsubject", "xpkeywords", "xpauthor",
    "documentname", "pagename", "encoded_by", "purl", "remark", "remarks", "notes", "note",
    "caption", "sort_name", "sort_artist", "sort_album", "sort_album_artist"})


@dataclass
class _Builder:
    tags: list[MetaTag] = field(default_factory=list)
    dropped: int = 0

    def add(self, source: str, name: str, value: Any, free_text: bool) -> None:
        if len(self.tags) >= MAX_TAGS:
            self.dropped += 1
            return
        text, cut = render(value)
        self.tags.append(MetaTag(source, name, text, cut, free_text))


def render(value: Any) -> tuple[str, bool]:
    """A tag value as bounded, escaped text and whether it was cut: text as is (trailing
    NULs dropped), bytes as hex, rationals as decimals, sequences space-separated (as
    ``exiftool -n`` writes them)."""
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
        cut = len(data) > MAX_VALUE // 2
        return data[:MAX_VALUE // 2].hex(), cut
    if isinstance(value, tuple | list):
        parts, cut = [], len(value) > MAX_ITEMS
        for v in value[:MAX_ITEMS]:
            text, c = render(v)
            parts.append(text)
            cut = cut or c
        text = " ".join(parts)
    elif isinstance(value, str):
        text, cut = visible(value.rstrip("\x00")), False
    elif isinstance(value, bool) or isinstance(value, int):
        text, cut = str(int(value)), False
    elif _is_number(value):
        f = _float(value)
        text, cut = ("" if f is None else repr(f)), False
    elif isinstance(value, dict):
        text, cut = f"(directory of {len(value)} entries)", False
    else:
        text, cut = visible(str(value)), False
    if len(text) > MAX_VALUE:
        return text[:MAX_VALUE], True
    return text, cut


def _is_number(value: Any) -> bool:
    return isinstance(value, float) or hasattr(value, "numerator")


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def _text(value: Any) -> str | None:
    """A typed text field: bounded, escaped, None when empty or not text."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    text = visible(value.rstrip("\x00").strip())
    return text[:MAX_VALUE] or None


def _user_comment(raw: Any, endian: str | None) -> Any:
    """EXIF UserComment: an 8-byte character code, then the text."""
    if not isinstance(raw, bytes) or len(raw) < 8:
        return raw
    code, body = raw[:8], raw[8:]
    if code.startswith(b"ASCII"):
        return body.decode("ascii", "replace")
    if code.startswith(b"UNICODE"):
        return body.decode("utf-16-be" if endian == ">" else "utf-16-le", "replace")
    if code == b"\x00" * 8:
        return body.decode("latin-1")  # undefined code: exiftool reads it as text too
    return raw


def _xp(raw: Any) -> Any:
    if isinstance(raw, tuple) and all(isinstance(b, int) for b in raw):
        raw = bytes(b & 0xFF for b in raw[:MAX_VALUE * 2])
    if isinstance(raw, bytes):
        return raw.decode("utf-16-le", "replace")
    return raw


def _dms(value: Any) -> float | None:
    if not isinstance(value, tuple | list) or not 1 <= len(value) <= 3:
        f = _float(value)
        return f
    parts = [_float(v) for v in value]
    if any(p is None for p in parts):
        return None
    total = 0.0
    for p, div in zip(parts, (1.0, 60.0, 3600.0), strict=False):
        total += (p or 0.0) / div
    return total


def _ref(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip("\x00 ").upper()[:1]


def _gps_time(value: Any) -> str | None:
    if not isinstance(value, tuple | list) or len(value) != 3:
        return None
    parts = [_float(v) for v in value]
    if any(p is None or p < 0 for p in parts):
        return None
    h, m, s = (p or 0.0 for p in parts)
    # Rounded to the microsecond first, so that 59.9999999 s reads 60 and not "59."
    micro = round(s * 1_000_000)
    whole, frac = divmod(micro, 1_000_000)
    text = f"{int(h):02d}:{int(m):02d}:{whole:02d}"
    if frac:
        text += f".{frac:06d}".rstrip("0")
    return text


def _gps_date(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    m = re.fullmatch(r"(\d{4})[:\-](\d{2})[:\-](\d{2})", text)
    return f"{m[1]}-{m[2]}-{m[3]}" if m else None


def _offset(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return text if re.fullmatch(r"[+-]\d{2}:\d{2}", text) else None


#: SQLite's INTEGER range: a typed field outside it (an EXIF LONG8 of 2**64 - 1, say) is
#: left empty; the tag's row keeps the value as text (cold review: it crashed the write).
_INT64 = range(-(2**63), 2**63)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value in _INT64 else None


def failure(e: BaseException, what: str) -> Problem:
    # The library's message is not kept: it may quote bytes of the file.
    return Problem("metadata", "MetadataNotRead",
                   f"{what} not fully read ({e.__class__.__name__}); what was read is kept")


#: PNG chunks whose values Pillow's EXIF reader uses: ``eXIf``, and the text chunks that
#: may carry ImageMagick's ``Raw profile type exif``.
PNG_METADATA_CHUNKS = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt"})
#: The only text chunk keyword read after the pixel data (the one Pillow's ``getexif``
#: reads EXIF from; an XMP packet's orientation is not EXIF, see :data:`XMP_INFO_KEYS`).
#: Other text chunks are skipped by their keyword, before anything is decompressed:
#: Pillow's zTXt and iTXt handlers decompress up to 1 MiB before they look at the keyword,
#: and count it against their 64 MiB text bound only for a valid one, so a tail of chunks
#: with empty keywords cost seconds of CPU for nothing.
PNG_EXIF_TEXT_KEYWORD = b"Raw profile type exif"
_EXIF_TEXT_KEY = PNG_EXIF_TEXT_KEYWORD.decode("ascii")
#: PNG chunks of pixel data (IDAT; APNG's fdAT): Pillow's open stops at the first one.
PNG_PIXEL_CHUNKS = frozenset({b"IDAT", b"fdAT"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Most chunks of a PNG walked for its metadata (about 0.7 s of CPU; a 12 MP photograph in
#: libpng's 8 KiB pixel chunks has about 3,000, a 1 GiB PNG 130,000): a hostile file of
#: empty chunks stops here, with a note.
MAX_PNG_CHUNKS = 1_000_000


def png_tail(data: bytes) -> tuple[dict[Any, Any], list[Problem]]:
    """The EXIF a PNG holds after its first pixel data chunk (an ``eXIf`` chunk, or a text
    chunk keyed :data:`PNG_EXIF_TEXT_KEYWORD`), read from its bytes without decoding
    anything; other text chunks there are skipped by their keyword, never decompressed.

    Pillow's open reads the chunks before the pixel data only and reads the rest while
    decoding (and then only up to an APNG's second frame): without this, a PNG whose
    ``eXIf`` chunk follows its pixel data (the PNG 1.5 specification allows it) had its
    EXIF read when the picture was decoded and not with ``--no-perceptual``, after a
    decoding failure or a memory-budget refusal. Each chunk is read by Pillow's own chunk
    handler (the same values, and bounds, as when decoding). Chunks are read in file order
    up to ``IEND``, the end of the data or a chunk cut short; CRCs are not checked (neither
    does Pillow after the pixel data, nor exiftool). The first value of each key is kept,
    and the caller keeps those read before the pixel data: of two ``eXIf`` chunks the first
    is read, as exiftool does. A chunk its handler refuses (text over Pillow's bound, an
    unknown compression) ends the reading, with a note, as does :data:`MAX_PNG_CHUNKS`.
    """
    from PIL import PngImagePlugin

    info: dict[Any, Any] = {}
    if not data.startswith(_PNG_SIGNATURE):
        return info, []
    stream = PngImagePlugin.PngStream(io.BytesIO(data))
    pos, pixels_seen, walked = len(_PNG_SIGNATURE), False, 0
    try:
        while pos + 8 <= len(data):
            walked += 1
            if walked > MAX_PNG_CHUNKS:
                return info, [Problem(
                    "metadata", "MetadataNotRead", f"PNG metadata after the pixel data not "
                    f"fully read (more than {MAX_PNG_CHUNKS:,} chunks); what was read is kept")]
            length, cid = struct.unpack_from(">I4s", data, pos)
            start = pos + 8
            if cid == b"IEND" or start + length > len(data):
                break
            pos = start + length + 4  # data and CRC
            if cid in PNG_PIXEL_CHUNKS:
                pixels_seen = True
            elif pixels_seen and cid in PNG_METADATA_CHUNKS:
                if cid == b"eXIf":
                    if "exif" in info:
                        continue  # the first is kept: a later one is not even read
                elif (data[start:start + len(PNG_EXIF_TEXT_KEYWORD) + 1]
                      != PNG_EXIF_TEXT_KEYWORD + b"\0" or _EXIF_TEXT_KEY in info):
                    continue  # a text chunk that is not EXIF (or a second one): not read
                assert stream.fp is not None
                stream.fp.seek(start)
                stream.call(cid, start, length)
                for key, value in stream.im_info.items():
                    info.setdefault(key, value)
                stream.im_info.clear()
    except Exception as e:  # the handler's refusal: what was read is kept
        return info, [failure(e, "PNG metadata after the pixel data")]
    return info, []


#: ``info`` keys of a picture's XMP packet (JPEG APP1, PNG iTXt or tEXt, WebP ``XMP ``,
#: TIFF tag 700, AVIF). Pillow's getexif, when the EXIF has no Orientation tag, copies the
#: packet's ``tiff:Orientation`` into it as tag 0x0112: a picture whose orientation is in
#: its XMP only was recorded as holding an IFD0 Orientation tag (exiftool: XMP-tiff only).
XMP_INFO_KEYS = frozenset({"xmp", "XML:com.adobe.xmp"})


def _shell_exif(info: dict[Any, Any]) -> Any:
    """Pillow's EXIF read from ``info`` alone (``exif``, or ImageMagick's ``Raw profile
    type exif``) by ``Image.Image``'s own getexif, on a picture without pixels."""
    from PIL import Image

    shell = Image.Image()
    shell.info = info
    return shell.getexif()


def _avif_exif(image: Any) -> bytes | None:
    """The EXIF block an AVIF holds, as libavif gives it (None: none).

    Pillow's AVIF open replaces ``info["exif"]`` by one carrying the orientation of the
    AVIF's own transformations (``irot`` rotation, ``imir`` mirror) as tag 0x0112,
    re-serialised (``Exif.tobytes``), when they differ from the EXIF's Orientation (none:
    1): an AVIF with no EXIF, or whose EXIF says 1, was recorded as holding an IFD0
    Orientation of 5, 6 ... (exiftool: QuickTime Rotation, no such EXIF tag). The
    decoder's ``get_info()`` (Pillow 11.3 to 13: size, frames, mode, ICC, EXIF,
    orientation, XMP) is private: if it changes, this raises and the EXIF is a note,
    never a made-up tag."""
    _size, _frames, _mode, _icc, exif, _orientation, _xmp = image._decoder.get_info()
    return bytes(exif) if exif else None


def _heif_exif(image: Any) -> bytes | None:
    """The EXIF block of a HEIF picture's current image, as libheif gives it (None: none).

    pillow-heif's opener (``set_orientation``) rewrites the EXIF's Orientation to 1 in
    ``info["exif"]`` (it applies the HEIF's ``irot``/``imir`` itself): a HEIC whose EXIF
    says 6 was recorded as saying 1 (exiftool: 6). The block is read again from the
    image's libheif metadata by pillow-heif's own reader; all three names are private
    (pillow-heif 1.x): if they change, this raises and the EXIF is a note."""
    from pillow_heif.misc import _retrieve_exif

    exif = _retrieve_exif(image._heif_file[image.tell()]._c_image.metadata)
    return bytes(exif) if exif else None


def _with_own_exif(image: Any, own: bytes | None) -> dict[Any, Any]:
    """``image.info`` with ``own`` as its EXIF block (None: none); ``image.info`` itself
    when it already is."""
    if own == image.info.get("exif"):
        return image.info
    info = {k: v for k, v in image.info.items() if k != "exif"}
    if own is not None:
        info["exif"] = own
    return info


def _exif_without_xmp(image: Any, info: Mapping[Any, Any]) -> Any:
    """Pillow's EXIF of ``image`` read from ``info`` without the XMP keys
    (:data:`XMP_INFO_KEYS`): the file's EXIF tags only, their values unchanged.

    Read on a picture without pixels (:func:`_shell_exif`), the open picture untouched,
    but for a TIFF: its EXIF is its own IFD, which its getexif reads from the file
    (``tag_v2``, Pillow's own test): that getexif runs with the XMP keys hidden and the
    cached EXIF cleared, both put back after."""
    without = {k: v for k, v in info.items() if k not in XMP_INFO_KEYS}
    if not hasattr(image, "tag_v2"):
        return _shell_exif(without)
    own_info, own_exif = image.info, image._exif
    image.info, image._exif = without, None
    try:
        return image.getexif()
    finally:
        image.info, image._exif = own_info, own_exif


def from_picture(image: Any, data: bytes | None = None
                 ) -> tuple[MediaMetadata | None, list[Problem]]:
    """The EXIF metadata of an open Pillow picture, never decoding its pixels. ``data``,
    the picture's bytes, is needed for a PNG's metadata chunks that follow the pixel data
    (:func:`png_tail`; without it, only those before are read). Never raises for a problem
    with the data: what was read is kept, the problem is a note."""
    from PIL import ExifTags

    notes: list[Problem] = []
    b = _Builder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's "Possibly corrupt EXIF data" and such
        try:
            if image.format == "PNG":
                # Pillow's PNG getexif() decodes the picture to look for a later eXIf
                # chunk: the chunks are read here, the EXIF from them on a picture without
                # pixels (Image.Image's own getexif reads ``info`` only).
                tail, notes = png_tail(data) if data is not None else ({}, [])
                info = {**tail, **image.info}
                exif = _shell_exif(info)
            elif image.format in ("AVIF", "HEIF"):
                # the EXIF as the file holds it: both openers rewrite its orientation
                info = _with_own_exif(image, _avif_exif(image) if image.format == "AVIF"
                                      else _heif_exif(image))
                exif = image.getexif() if info is image.info else _shell_exif(info)
            else:
                info = image.info
                exif = image.getexif()
            if ORIENTATION in exif and not XMP_INFO_KEYS.isdisjoint(info):
                own = _exif_without_xmp(image, info)
                if ORIENTATION not in own:  # Pillow's, from the XMP packet
                    exif = own
        except Exception as e:  # hostile EXIF: any exception of the library's parser
            return None, [*notes, failure(e, "EXIF")]
        if not exif and not getattr(exif, "_info", None):
            return None, notes
        endian = getattr(exif, "endian", None)
        ifd0 = dict(exif.items())
        ifds: dict[str, Mapping[int, Any]] = {"ifd0": ifd0}
        for name, tag, needs in (("exif", EXIF_IFD, EXIF_IFD), ("gps", GPS_IFD, GPS_IFD),
                                 ("interop", INTEROP_IFD, EXIF_IFD),
                                 ("ifd1", ExifTags.IFD.IFD1, None)):
            if needs is not None and needs not in ifd0:
                continue
            if name == "interop" and INTEROP_IFD not in ifds.get("exif", {}):
                continue
            try:
                ifds[name] = dict(exif.get_ifd(tag) or {})
            except Exception as e:
                notes.append(failure(e, f"EXIF {name} directory"))
    for source, entries in ifds.items():
        names = ExifTags.GPSTAGS if source == "gps" else ExifTags.TAGS
        for tag, raw in entries.items():
            if not isinstance(tag, int) or (tag in IFD_POINTERS and source != "gps"):
                continue
            value = raw
            if tag == USER_COMMENT and source == "exif":
                value = _user_comment(raw, endian)
            elif tag in XP_TAGS and source == "ifd0":
                value = _xp(raw)
            free = (tag in FREE_TEXT_GPS) if source == "gps" else tag in FREE_TEXT_EXIF
            b.add(source, names.get(tag) or f"0x{tag:04x}", value, free)
    ex, gps, ifd1 = ifds.get("exif", {}), ifds.get("gps", {}), ifds.get("ifd1", {})
    lat, lon = _dms(gps.get(GPS_LAT)), _dms(gps.get(GPS_LON))
    if lat is not None and _ref(gps.get(GPS_LAT_REF)) == "S":
        lat = -lat
    if lon is not None and _ref(gps.get(GPS_LON_REF)) == "W":
        lon = -lon
    alt = _float(gps.get(GPS_ALT)) if not isinstance(gps.get(GPS_ALT), tuple) else None
    if alt is not None and gps.get(GPS_ALT_REF) in (1, b"\x01"):
        alt = -alt
    meta = MediaMetadata(
        make=_text(ifd0.get(MAKE)), model=_text(ifd0.get(MODEL)),
        serial=_text(ex.get(BODY_SERIAL)), lens_make=_text(ex.get(LENS_MAKE)),
        lens_model=_text(ex.get(LENS_MODEL)), software=_text(ifd0.get(SOFTWARE)),
        datetime_original=_text(ex.get(DATETIME_ORIGINAL)),
        offset_original=_offset(ex.get(OFFSET_ORIGINAL)),
        datetime_digitized=_text(ex.get(DATETIME_DIGITIZED)),
        offset_digitized=_offset(ex.get(OFFSET_DIGITIZED)),
        gps_latitude=_bounded(lat, 90.0), gps_longitude=_bounded(lon, 180.0),
        gps_altitude=alt, gps_date=_gps_date(gps.get(GPS_DATE)),
        gps_time=_gps_time(gps.get(GPS_TIME)), orientation=_int(ifd0.get(ORIENTATION)),
        image_unique_id=_text(ex.get(IMAGE_UNIQUE_ID)), thumbnail=JPEG_IF in ifd1,
        tags=tuple(b.tags), tags_dropped=b.dropped)
    return meta, notes


def _bounded(value: float | None, limit: float) -> float | None:
    """A coordinate, None when out of range (damaged or hostile data); the tag rows keep
    what was written."""
    return value if value is not None and -limit <= value <= limit else None


# -- videos ------------------------------------------------------------------------------
#: Container keys of the typed fields, first found wins (FFmpeg's names; ``©mak``/``©mod``
#: are ``make``/``model``, ``©xyz`` is ``location``, ``©swr`` ``encoder``).
VIDEO_MAKE = ("com.apple.quicktime.make", "make", "com.android.manufacturer")
VIDEO_MODEL = ("com.apple.quicktime.model", "model", "com.android.model")
VIDEO_SOFTWARE = ("com.apple.quicktime.software", "software", "com.android.version")
VIDEO_CREATED = ("com.apple.quicktime.creationdate", "creation_time", "date_recorded")
VIDEO_LOCATION = ("com.apple.quicktime.location.ISO6709", "location", "location-eng")
_ISO6709 = re.compile(r"([+-]\d+(?:\.\d*)?)([+-]\d+(?:\.\d*)?)([+-]\d+(?:\.\d*)?)?")
_DATE = re.compile(r"(\d{4})[-:](\d{2})[-:](\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
                   r"\s*(Z|[+-]\d{2}:?\d{2})?")


def _video_date(text: str | None) -> tuple[str | None, str | None]:
    """A container date as EXIF writes one (``YYYY:MM:DD HH:MM:SS``) and its offset
    (``Z`` is ``+00:00``; none written: None)."""
    if not text:
        return None, None
    m = _DATE.match(text.strip())
    if not m:
        return None, None
    date = f"{m[1]}:{m[2]}:{m[3]} {m[4]}:{m[5]}:{m[6]}"
    zone = m[8]
    if zone is None:
        return date, None
    if zone == "Z":
        return date, "+00:00"
    zone = zone.replace(":", "")
    return date, f"{zone[:3]}:{zone[3:]}"


def _iso6709(text: str | None) -> tuple[float | None, float | None, float | None]:
    """Latitude, longitude and altitude of an ISO 6709 string in decimal degrees
    (``+35.6895+139.6917+040.000/``); the degree-minute forms are not decoded."""
    m = _ISO6709.match((text or "").strip())
    if not m:
        return None, None, None
    try:
        lat, lon = float(m[1]), float(m[2])
        alt = float(m[3]) if m[3] else None
    except ValueError:
        return None, None, None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None, alt
    return lat, lon, alt


def from_container(container: Any) -> tuple[MediaMetadata | None, list[Problem]]:
    """The tags of an open PyAV container and its streams."""
    b = _Builder()
    notes: list[Problem] = []
    found: dict[str, str] = {}
    sources: list[tuple[str, Mapping[str, Any]]] = []
    try:
        sources.append(("container", dict(container.metadata or {})))
        for i, stream in enumerate(list(container.streams)[:64]):
            sources.append((f"stream{i}", dict(stream.metadata or {})))
    except Exception as e:
        notes.append(failure(e, "container tags"))
    for source, tags in sources:
        for key, value in _sorted(tags.items()):
            name = visible(str(key))[:200]
            b.add(source, name, str(value), _free_key(str(key)))
            if source == "container" or str(key) not in found:
                found.setdefault(str(key), str(value))
    if not b.tags and not b.dropped:
        return None, notes
    lowered = {k.lower(): v for k, v in found.items()}

    def first(keys: Iterable[str]) -> str | None:
        for k in keys:
            if k.lower() in lowered and lowered[k.lower()].strip():
                return lowered[k.lower()]
        return None

    created, offset = _video_date(first(VIDEO_CREATED))
    if created is not None and first(VIDEO_CREATED[:1]) is None:
        # FFmpeg writes every ``creation_time`` with a ``Z`` of its own: QuickTime's
        # header times should be UTC, but cameras often store local time there (exiftool
        # assumes no zone either), so no offset is claimed for them.
        offset = None
    lat, lon, alt = _iso6709(first(VIDEO_LOCATION))
    meta = MediaMetadata(
        make=_text(first(VIDEO_MAKE)), model=_text(first(VIDEO_MODEL)),
        software=_text(first(VIDEO_SOFTWARE)), datetime_original=created,
        offset_original=offset, gps_latitude=lat, gps_longitude=lon, gps_altitude=alt,
        tags=tuple(b.tags), tags_dropped=b.dropped)
    return meta, notes


def _sorted(items: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    return sorted(items, key=lambda kv: str(kv[0]))


def _free_key(key: str) -> bool:
    last = key.lower().rsplit(".", 1)[-1]
    for suffix in ("-eng", "_eng"):
        last = last.removesuffix(suffix)
    return last in FREE_TEXT_KEYS or re.sub(r"-[a-z]{3}$", "", last) in FREE_TEXT_KEYS
