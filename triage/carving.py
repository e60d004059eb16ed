"""Carving pictures and videos out of a disk image's unallocated space, file slack and
unpartitioned space (issue 17), in a worker.

The enumeration child lists each volume's areas as entries (:mod:`triage.sources.unalloc`);
such an entry's locator is ``["carve", AREA, VOLUME OFFSET, BLOCK SIZE, ALIGN, RANGES]``
with ``RANGES`` a list of ``[image offset, length, owner]`` in disk order. A worker reads
the ranges in that order through the image (:func:`carve_entry`) and, in each range on its
own (an item never spans two ranges: they are not adjacent on the disk), looks for a
signature at every ``ALIGN``-th byte from the volume's start: 512 for unallocated and
unpartitioned space (files start at sector boundaries, as PhotoRec assumes by default), 1
in slack. Each candidate's END is found by parsing its format, never guessed:

* JPEG, PNG, GIF: the embedded-picture parsers of :mod:`triage.members.carve`;
* BMP: the header's file size, checked against the pixel array its header implies;
* RIFF (AVI, WebP): the RIFF chunk size;
* ISO base media (MP4, MOV, 3GP, HEIC/HEIF): the top-level boxes, walked by size while
  each is a known box type; an MP4/MOV needs ``moov``, a HEIF ``meta``;
* Matroska/WebM: the EBML header and the Segment's size;
* TIFF (classic, little- and big-endian): the furthest byte any of its structures reaches
  (:func:`tiff_end`): every IFD of the chain and of its SubIFDs/EXIF/GPS/Interoperability
  IFDs, every out-of-line tag value, every strip or tile (offsets + byte counts) and a
  JPEGInterchangeFormat thumbnail. TIFF-based camera raw files are carved the same way
  when their data hang off those structures (offsets inside maker notes are not
  followed). BigTIFF (version 43, 64-bit offsets) is not carved. Whether the first IFD
  is a picture's is decided from at most :data:`TIFF_DECIDE_ENTRIES` entries, once per
  IFD position in a scan buffer: crafted headers pointing at one huge IFD cost little.

A carved item is identified, hashed, decoded and perceptually hashed like any inner item
(``worker._member_result``). An item that was carved but does not decode strictly (a JPEG
cut short, fragmented, or with foreign data inside) is a **partial carve**: status
``incomplete``, with the decoder's reason. A candidate whose header parses but whose end is
not found within the range or the item bound is recorded too, without data (``partial``).

Bounds per carving entry (``WorkerOptions``; ``scan --carve-max-items`` and
``--carve-max-bytes``): items, carved bytes, bytes per item; each one hit is the parent's
coverage gap (``incomplete``), naming the bound, its value, the option that raises it and
where it was hit. Carved content may be incomplete or mixed with other data: reports say so.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .members.carve import gif_end, jpeg_end, png_end

#: Bytes scanned for candidates per read step (the buffer also holds one item bound ahead).
SCAN_STEP = 8 << 20
SECTOR = 512

_PICTURE_MIME_EXT = {"jpg", "png", "gif", "bmp", "webp", "heic", "tif"}


@dataclass(frozen=True)
class Carved:
    """One carved candidate: where (image offset), how long, its format (file extension),
    its bytes (None for a partial candidate whose end was not found) and why it is partial
    (None when its end was parsed)."""

    offset: int
    length: int
    ext: str
    data: bytes | None
    partial: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class Bounds:
    max_items: int
    max_bytes: int
    max_item_bytes: int


@dataclass
class CarveState:
    items: int = 0
    carved_bytes: int = 0
    #: (bound name, reason) of the first bound hit, if any.
    stopped: tuple[str, str] | None = None
    unreadable: list[tuple[int, int]] | None = None


# --------------------------------------------------------------------------- formats


def jpeg_header_ok(data: bytes, start: int) -> bool:
    """Whether a JPEG's marker segments parse from SOI through a frame header (SOFn) up to
    its first SOS: a real JPEG's start, whatever follows."""
    return jpeg_header_length(data, start) is not None


def jpeg_header_length(data: bytes, start: int) -> int | None:
    """Bytes from SOI to the end of the first SOS segment when they parse (see
    :func:`jpeg_header_ok`), else None."""
    n = len(data)
    pos = start + 2
    seen_sof = False
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x00, 0xD8, 0xD9) or 0xD0 <= marker <= 0xD7:
            return None
        length = (data[pos + 2] << 8) | data[pos + 3]
        if length < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            seen_sof = True
        if marker == 0xDA:
            return pos + 2 + length - start if seen_sof and pos + 2 + length <= n else None
        pos += 2 + length
    return None


def png_header_ok(data: bytes, start: int) -> bool:
    """Whether the PNG at ``start`` has a 13-byte IHDR with a correct CRC."""
    import zlib

    p = start + 8
    if data[p:p + 8] != b"\x00\x00\x00\x0dIHDR" or p + 25 > len(data):
        return False
    return zlib.crc32(data[p + 4:p + 21]) == int.from_bytes(data[p + 21:p + 25], "big")


def bmp_end(data: bytes, start: int) -> int | None:
    """End of a BMP (Microsoft "BITMAPFILEHEADER"/"BITMAPINFOHEADER"): ``bfSize``, if the
    header is plausible (reserved fields 0, a known DIB header size, pixel data inside the
    file) and, for uncompressed pictures, the file holds the pixel array the header implies
    (rows of ``ceil(width * bits / 32) * 4`` bytes)."""
    if len(data) < start + 26:
        return None
    size, r1, r2, off_bits, dib = struct.unpack_from("<IHHII", data, start + 2)
    if r1 or r2 or dib not in (12, 40, 52, 56, 64, 108, 124) or size < 14 + dib:
        return None
    if off_bits < 14 + dib or off_bits > size or start + size > len(data):
        return None
    if dib == 12:
        width, height, planes, bits = struct.unpack_from("<HHHH", data, start + 18)
        comp = 0
    else:
        if len(data) < start + 14 + 20:
            return None
        width, height, planes, bits, comp = struct.unpack_from("<iiHHI", data, start + 18)
        height = abs(height)
    if planes != 1 or bits not in (1, 2, 4, 8, 16, 24, 32) or width <= 0 or height <= 0:
        return None
    if comp in (0, 3):  # BI_RGB, BI_BITFIELDS: the pixel array's size is known
        need = off_bits + ((width * bits + 31) // 32) * 4 * height
        if need > size or size - need > 65536:  # a lying bfSize: more than padding after
            return None
    elif comp not in (1, 2, 4, 5):
        return None
    return start + size


def riff_end(data: bytes, start: int) -> tuple[int, str] | None:
    """(end, extension) of a RIFF AVI or WebP: 8 + the RIFF size (padded to even)."""
    if len(data) < start + 12:
        return None
    size = struct.unpack_from("<I", data, start + 4)[0]
    form = data[start + 8:start + 12]
    ext = {b"AVI ": "avi", b"WEBP": "webp"}.get(bytes(form))
    if ext is None or size < 4:
        return None
    end = start + 8 + size + (size & 1)
    if end > len(data):
        if start + 8 + size == len(data):
            return start + 8 + size, ext
        return None
    return end, ext


#: Top-level box types of ISO/IEC 14496-12 (MP4), QuickTime (MOV) and ISO/IEC 23008-12
#: (HEIF) that a carved file may hold; any other type (or garbage) ends the file.
_BMFF_BOXES = frozenset({
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"meta", b"pdin",
    b"moof", b"mfra", b"styp", b"sidx", b"ssix", b"prft", b"emsg", b"pnot", b"PICT",
    b"idat", b"iinf", b"iloc", b"junk", b"udta",
})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1",
                          b"msf1", b"avif", b"avis"})


def bmff_end(data: bytes, start: int) -> tuple[int, str] | None:
    """(end, extension) of an ISO base media file starting with ``ftyp``: top-level boxes
    walked by their sizes while each is a known type; None when it holds no ``moov`` (a
    movie) or ``meta`` (a HEIF picture), or when a box runs past the data."""
    n = len(data)
    if n < start + 16:
        return None
    size = struct.unpack_from(">I", data, start)[0]
    if data[start + 4:start + 8] != b"ftyp" or not 16 <= size <= 4096:
        return None
    brand = bytes(data[start + 8:start + 12])
    heif = brand in _HEIF_BRANDS
    ext = "heic" if heif else ("mov" if brand == b"qt  " else
                               "3gp" if brand.startswith(b"3g") else "mp4")
    pos = start
    seen: set[bytes] = set()
    while pos + 8 <= n:
        size = struct.unpack_from(">I", data, pos)[0]
        btype = bytes(data[pos + 4:pos + 8])
        if btype not in _BMFF_BOXES:
            break
        head = 8
        if size == 1:
            if pos + 16 > n:
                return None
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            head = 16
        if size == 0 or size < head:
            return None  # "to the end of the file": no end to find here
        if pos + size > n:
            return None
        seen.add(btype)
        pos += size
    if (b"meta" if heif else b"moov") not in seen:
        return None
    return pos, ext


def _vint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, length) of an EBML variable-length integer (RFC 8794 section 4)."""
    if pos >= len(data):
        return None
    first = data[pos]
    if first == 0:
        return None
    length = 9 - first.bit_length()
    if pos + length > len(data):
        return None
    value = first & ((1 << (8 - length)) - 1)
    for b in data[pos + 1:pos + length]:
        value = (value << 8) | b
    return value, length


def mkv_end(data: bytes, start: int) -> tuple[int, str] | None:
    """(end, extension) of a Matroska/WebM file: the EBML header (whose DocType must be
    ``matroska`` or ``webm``), then the Segment element (ID 0x18538067) with a known size
    (RFC 9559); an unknown-size Segment (live streams) has no end to find."""
    size = _vint(data, start + 4)
    if size is None:
        return None
    hsize, hlen = size
    body = start + 4 + hlen
    if hsize > 4096 or body + hsize > len(data):
        return None
    header = bytes(data[body:body + hsize])
    ext = "webm" if b"webm" in header else "mkv" if b"matroska" in header else None
    if ext is None:
        return None
    pos = body + hsize
    if data[pos:pos + 4] != b"\x18\x53\x80\x67":
        return None
    seg = _vint(data, pos + 4)
    if seg is None:
        return None
    ssize, slen = seg
    if ssize == (1 << (7 * slen)) - 1:
        return None  # unknown size
    end = pos + 4 + slen + ssize
    return (end, ext) if end <= len(data) else None


#: TIFF 6.0 field types (and TIFF-PT's IFD, 13): their sizes in bytes. Any other type
#: (BigTIFF's 16-18 included) makes the file unreadable here.
_TIFF_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4,
                   12: 8, 13: 4}
#: Tags whose values are offsets of child IFDs (SubIFDs, EXIF, GPS, Interoperability).
_TIFF_CHILD_IFDS = frozenset({330, 34665, 34853, 40965})
#: (offsets tag, byte counts tag) pairs whose data the file holds: strips, tiles, free
#: space, the JPEGInterchangeFormat thumbnail (513 offset, 514 length).
_TIFF_DATA = ((273, 279), (324, 325), (288, 289), (513, 514))
#: Bounds of one TIFF's walk: IFDs (pages and child IFDs), entries over all IFDs, entries
#: in one IFD, strip/tile offsets over all IFDs. A file past any of them is not carved.
TIFF_MAX_IFDS = 1024
TIFF_MAX_ENTRIES = 65536
TIFF_MAX_IFD_ENTRIES = 4096
TIFF_MAX_STRIPS = 1 << 20
#: Entries of the first IFD read to decide whether it is a picture's (ImageWidth 256,
#: ImageLength 257, StripOffsets 273 or TileOffsets 324). TIFF 6.0 sorts tags in
#: ascending order, so in a valid IFD those four lie among the entries before the first
#: tag above 324: at most 325 entries, however many private tags come first (a cap of 128
#: missed a valid TIFF with 130 low private tags: cold review). An IFD whose tags are not
#: ascending (a careless writer) is judged on its first TIFF_DECIDE_UNSORTED entries.
#: Bounds the cost of a candidate whose first IFD holds no picture (crafted headers
#: pointing at a huge IFD).
TIFF_DECIDE_ENTRIES = 326
TIFF_DECIDE_UNSORTED = 128
#: A first IFD's picture decision, by (byte order, its position in the scan buffer): many
#: headers may point at one IFD, which is then read once per buffer (:func:`carve_range`).
TiffDecisions = dict[tuple[str, int], bool]


class _TiffBad(Exception):
    """Not a TIFF that can be carved: a structure that breaks the format."""


class _TiffShort(Exception):
    """A structure lies past the bytes at hand (the file is cut short or larger)."""


def _tiff_entries(data: bytes, at: int, bo: str, count: int) -> list[tuple[int, int, int]]:
    """(tag, type, value count) of the ``count`` IFD entries at ``at`` (inside ``data``)."""
    return list(struct.iter_unpack(bo + "HHI4x", data[at:at + 12 * count]))


def _first_ifd_picture(data: bytes, at: int, bo: str,
                       decided: TiffDecisions | None) -> bool:
    """Whether the first IFD at ``at`` (absolute) names a picture (tags 256, 257 and 273
    or 324) among the entries :data:`TIFF_DECIDE_ENTRIES` describes; raises
    :class:`_TiffShort` when those lie past the data. Cached in ``decided``."""
    key = (bo, at)
    if decided is not None and key in decided:
        return decided[key]
    if at + 2 > len(data):
        raise _TiffShort(f"IFD at {at} past the data", False)
    count = struct.unpack_from(bo + "H", data, at)[0]
    m = min(count, TIFF_DECIDE_ENTRIES)
    if at + 2 + 12 * m > len(data):
        raise _TiffShort(f"IFD at {at} past the data", False)
    read = [tag for tag, _, _ in _tiff_entries(data, at + 2, bo, m)]
    if any(b <= a for a, b in itertools.pairwise(read)):
        read = read[:TIFF_DECIDE_UNSORTED]
    tags = set(read)
    picture = 256 in tags and 257 in tags and (273 in tags or 324 in tags)
    if decided is not None:
        decided[key] = picture
    return picture


def _tiff_walk(data: bytes, start: int, decided: TiffDecisions | None = None) -> int:
    """The end of the classic TIFF at ``start`` (see :func:`tiff_end`); raises
    :class:`_TiffBad` or :class:`_TiffShort`, with ``args[1]`` True once the first IFD
    has parsed as a picture's (strips or tiles whose offsets and counts agree)."""
    avail = len(data) - start
    bo = "<" if data[start:start + 2] == b"II" else ">"
    first = struct.unpack_from(bo + "I", data, start + 4)[0]
    if 8 <= first < avail and not _first_ifd_picture(data, start + first, bo, decided):
        raise _TiffBad("the first IFD holds no picture (no size, strips or tiles among "
                       f"its first {TIFF_DECIDE_ENTRIES} entries)", False)
    pending: list[int] = [first]
    seen: set[int] = set()
    end = 8
    entries_total = strips_total = 0
    picture = False

    def need(off: int, length: int, what: str) -> None:
        if off < 8 and length:
            raise _TiffBad(f"{what} at {off}, inside the header", picture)
        if off + length > 0xFFFFFFFF:  # past what 32-bit offsets can address
            raise _TiffBad(f"{what} at {off}+{length} past 4 GiB", picture)
        if off + length > avail:
            raise _TiffShort(f"{what} at {off}+{length} past the data", picture)

    def values(typ: int, count: int, field: int) -> Iterator[tuple[int, ...]]:
        """A SHORT/LONG/IFD field's values, inline or out of line, in chunks (a large
        array is never held whole)."""
        fmt = {3: "H", 4: "I", 13: "I"}.get(typ)
        if fmt is None:
            raise _TiffBad(f"offsets of type {typ}", picture)
        size = _TIFF_TYPE_SIZE[typ]
        at = field if size * count <= 4 else start + struct.unpack_from(bo + "I", data,
                                                                          field)[0]
        for k in range(0, count, 65536):
            m = min(65536, count - k)
            yield struct.unpack_from(f"{bo}{m}{fmt}", data, at + k * size)

    while pending:
        ifd = pending.pop(0)
        if ifd in seen:
            raise _TiffBad(f"IFD loop at {ifd}", picture)
        if len(seen) >= TIFF_MAX_IFDS:
            raise _TiffBad(f"more than {TIFF_MAX_IFDS} IFDs", picture)
        seen.add(ifd)
        need(ifd, 2, "IFD")
        count = struct.unpack_from(bo + "H", data, start + ifd)[0]
        if count == 0 or count > TIFF_MAX_IFD_ENTRIES:
            raise _TiffBad(f"IFD at {ifd} with {count} entries", picture)
        entries_total += count
        if entries_total > TIFF_MAX_ENTRIES:
            raise _TiffBad(f"more than {TIFF_MAX_ENTRIES} IFD entries", picture)
        ifd_end = ifd + 2 + 12 * count + 4
        need(ifd, ifd_end - ifd, "IFD")
        end = max(end, ifd_end)
        fields: dict[int, tuple[int, int, int]] = {}
        for e, (tag, typ, n) in enumerate(_tiff_entries(data, start + ifd + 2, bo, count)):
            if typ not in _TIFF_TYPE_SIZE:
                raise _TiffBad(f"tag {tag} of unknown type {typ}", picture)
            fields[tag] = (typ, n, start + ifd + 2 + 12 * e + 8)
        if ifd == first:
            if 256 not in fields or 257 not in fields or not (
                    (273 in fields) or (324 in fields)):
                raise _TiffBad("the first IFD holds no picture (no size, strips or tiles)",
                               False)
            picture = True
        for tag, (typ, n, field) in fields.items():
            size = _TIFF_TYPE_SIZE[typ] * n
            if size > 4:
                off = struct.unpack_from(bo + "I", data, field)[0]
                need(off, size, f"tag {tag} value")
                end = max(end, off + size)
        for otag, ctag in _TIFF_DATA:
            if otag not in fields and ctag not in fields:
                continue
            # Strips and tiles must come with their byte counts; free space or a
            # thumbnail without its length (old-style JPEG TIFFs) adds no end.
            strict = otag in (273, 324)
            if otag not in fields or ctag not in fields:
                if not strict:
                    continue
                raise _TiffBad(f"tag {otag} without {ctag} or the reverse", picture)
            (otyp, on, ofield), (ctyp, cn, cfield) = fields[otag], fields[ctag]
            if on != cn or on == 0:
                if not strict:
                    continue
                raise _TiffBad(f"{on} offsets and {cn} byte counts (tags {otag}, {ctag})",
                               picture)
            strips_total += on
            if strips_total > TIFF_MAX_STRIPS:
                raise _TiffBad(f"more than {TIFF_MAX_STRIPS} strips or tiles", picture)
            for offsets, counts in zip(values(otyp, on, ofield), values(ctyp, cn, cfield),
                                       strict=True):
                used = [(o, o + c) for o, c in zip(offsets, counts, strict=True) if c]
                if used:
                    low, far = min(used)[0], max(e for _, e in used)
                    need(low, far - low, f"tag {otag} data")
                    end = max(end, far)
        for tag in sorted(_TIFF_CHILD_IFDS & fields.keys()):
            typ, n, field = fields[tag]
            if n > TIFF_MAX_IFDS:
                raise _TiffBad(f"{n} child IFDs (tag {tag})", picture)
            for chunk in values(typ, n, field):
                pending.extend(v for v in chunk if v)
        nxt = struct.unpack_from(bo + "I", data, start + ifd + 2 + 12 * count)[0]
        if nxt:
            pending.append(nxt)
    return start + end


def tiff_scan(data: bytes, start: int, decided: TiffDecisions | None = None
              ) -> tuple[int | None, bool]:
    """(end or None, whether the first IFD parsed as a picture's) of the classic TIFF
    (``II*\\0`` or ``MM\\0*``) at ``start``; see :func:`tiff_end`. ``decided`` caches
    first-IFD decisions over the candidates of one buffer."""
    if len(data) < start + 8 or bytes(data[start:start + 4]) not in (b"II*\x00",
                                                                     b"MM\x00*"):
        return None, False
    try:
        return _tiff_walk(data, start, decided), True
    except (_TiffBad, _TiffShort) as e:
        return None, bool(e.args[1]) and isinstance(e, _TiffShort)
    except struct.error:  # a read past the data the checks above did not foresee
        return None, False


def tiff_end(data: bytes, start: int) -> int | None:
    """End of the classic TIFF at ``start``: the furthest byte reached by the header, each
    IFD (its entries and next-IFD offset), each out-of-line tag value (count x type size
    over 4 bytes), each strip and tile (StripOffsets/TileOffsets + their byte counts, SHORT
    or LONG, inline or out of line), free space and a JPEGInterchangeFormat thumbnail,
    walking the IFD chain and the SubIFDs, EXIF, GPS and Interoperability IFDs. None when a
    structure lies past ``data``, the first IFD holds no picture, a type is unknown, the
    IFDs loop, or a walk bound (:data:`TIFF_MAX_IFDS` ...) is passed. Bytes after the
    furthest structure (padding) are not part of it."""
    return tiff_scan(data, start)[0]


def identify_at(data: bytes, i: int, tiff_decided: TiffDecisions | None = None
                ) -> tuple[str, int | None, int] | None:
    """The candidate at ``i``: (extension, end or None, length of its header when that
    parses, else 0), or None when no signature is there. ``tiff_decided``: see
    :func:`tiff_scan`."""
    head = bytes(data[i:i + 12])
    if head.startswith(b"\xff\xd8\xff"):
        end = jpeg_end(data, i)
        return "jpg", end, (jpeg_header_length(data, i) or 0) if end is None else 1
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        end = png_end(data, i)
        return "png", end, 33 if end is not None or png_header_ok(data, i) else 0
    if head[:6] in (b"GIF87a", b"GIF89a"):
        end = gif_end(data, i)
        return "gif", end, 1
    if head.startswith(b"BM"):
        end = bmp_end(data, i)
        return ("bmp", end, 1) if end is not None else None
    if head.startswith(b"RIFF"):
        r = riff_end(data, i)
        if r is not None:
            return r[1], r[0], 1
        form = head[8:12]
        if form in (b"AVI ", b"WEBP"):
            return ("avi" if form == b"AVI " else "webp"), None, 12
        return None
    if head[4:8] == b"ftyp":
        b = bmff_end(data, i)
        if b is not None:
            return b[1], b[0], 1
        return None
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        m = mkv_end(data, i)
        return (m[1], m[0], 1) if m is not None else None
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        end, picture = tiff_scan(data, i, tiff_decided)
        # A first IFD that parses as a picture's but a structure past the data: a TIFF
        # cut short (or larger than the item bound), recorded as a partial candidate.
        return ("tif", end, 1) if end is not None else ("tif", None, 8) if picture else None
    return None


#: Every signature, as a zero-width lookahead: every position where one starts.
_SIGNATURES = re.compile(
    rb"(?=\xff\xd8\xff|\x89PNG\r\n\x1a\n|GIF8[79]a|BM|RIFF|\x1a\x45\xdf\xa3|II\*\x00|MM\x00\*"
    rb"|(?s:.{4})ftyp)")
#: A signature at the position (for reading a candidate's whole item bound).
_MAGIC = re.compile(
    rb"\xff\xd8\xff|\x89PNG\r\n\x1a\n|GIF8[79]a|BM|RIFF|\x1a\x45\xdf\xa3|II\*\x00|MM\x00\*"
    rb"|(?s:.{4})ftyp")
#: Bytes read beyond each scan step before any candidate asks for more.
LOOKAHEAD = 1 << 20
#: First bytes of every signature except ISO BMFF's (whose "ftyp" is at +4).
_FIRST = re.compile(rb"[\xff\x89GBR\x1aIM]")


def _candidates(buf: bytes, lo: int, hi: int, first_aligned: int, align: int
                ) -> Iterator[int]:
    """Positions in ``buf[lo:hi]`` where a signature may start, in order: every
    ``align``-th byte from ``first_aligned`` (align > 1), or every byte."""
    if align == 1:
        for m in _SIGNATURES.finditer(buf, lo, hi):
            yield m.start()
        return
    if first_aligned >= hi:
        return
    heads = buf[first_aligned:hi:align]
    fourth = buf[first_aligned + 4:hi + 4:align]
    picks = {m.start() for m in _FIRST.finditer(heads)}
    at = fourth.find(b"f")
    while at >= 0:
        picks.add(at)
        at = fourth.find(b"f", at + 1)
    for k in sorted(picks):
        yield first_aligned + k * align


def _items_hit(bounds: Bounds, at: int) -> str:
    return (f"limit: {bounds.max_items} carved items (max items per area, scan "
            f"--carve-max-items) reached at image byte {at}")


def carve_range(read: Callable[[int, int], bytes], offset: int, length: int, owner: str | None,
                align_base: int, align: int, bounds: Bounds, state: CarveState,
                tick: Callable[[], None] = lambda: None) -> Iterator[Carved]:
    """Carve one contiguous range of the image (``[offset, offset + length)``).

    ``read(offset, n)`` reads the image. Candidates are tried at ``align_base + k * align``
    (image offsets); after an item whose end was parsed, the search goes on after that end
    (what is inside a carved file is part of it, as in ``find_embedded``); after a partial
    candidate, at the next aligned position. Stops (setting ``state.stopped``) at the first
    bound hit."""
    end = offset + length
    buf = b""
    base = offset
    cursor = offset
    while cursor < end and state.stopped is None:
        tick()
        scan_stop = min(end, cursor + SCAN_STEP)
        # Read ahead a little; a candidate whose signature is there gets the rest of its
        # item bound read for it (below): signatures are rare, copies of the bound are not.
        want = min(end, scan_stop + min(LOOKAHEAD, bounds.max_item_bytes))
        keep = buf[cursor - base:] if base <= cursor <= base + len(buf) else b""
        if cursor + len(keep) < want:
            try:
                more = read(cursor + len(keep), want - cursor - len(keep))
            except OSError:
                more = b""
            if len(more) < want - cursor - len(keep):
                # An unreadable part of the image: carve what was read, say what was not.
                lost_at = cursor + len(keep) + len(more)
                state.unreadable = (state.unreadable or []) + [(lost_at, end - lost_at)]
                end = lost_at
                want = min(want, end)
                scan_stop = min(scan_stop, end)
            keep = keep + more
        buf, base = keep, cursor
        decided: TiffDecisions = {}  # positions in this buffer (appends keep them)
        lo = 0
        hi = scan_stop - base
        first = align_base + -(-(cursor - align_base) // align) * align if align > 1 else cursor
        nxt = cursor
        for k in _candidates(buf, lo, hi, first - base, align):
            at = base + k
            if at < nxt:
                continue
            need = min(end, at + bounds.max_item_bytes)
            if base + len(buf) < need and _MAGIC.match(buf, k):
                try:
                    more = read(base + len(buf), need - base - len(buf))
                except OSError:
                    more = b""
                buf += more  # a short read ends the item there (its parse says partial)
            found = identify_at(buf, k, decided)
            if found is None:
                continue
            ext, stop, header_ok = found
            if stop is not None:
                size = stop - k
                if size > bounds.max_item_bytes:
                    stop = None
                else:
                    if state.items >= bounds.max_items:
                        state.stopped = ("items", _items_hit(bounds, at))
                        return
                    if state.carved_bytes + size > bounds.max_bytes:
                        state.stopped = ("bytes", f"limit: {bounds.max_bytes} carved bytes "
                                         f"(max bytes per area, scan --carve-max-bytes) "
                                         f"reached at image byte {at}")
                        return
                    state.items += 1
                    state.carved_bytes += size
                    yield Carved(at, size, ext, buf[k:stop], None, owner)
                    nxt = at + size
                    continue
            if not header_ok:
                continue
            if state.items >= bounds.max_items:
                state.stopped = ("items", _items_hit(bounds, at))
                return
            state.items += 1
            reach = min(bounds.max_item_bytes, end - at)
            too_big = stop is None and found[1] is not None
            why = (f"partial carve: {ext.upper()} at image byte {at} is larger than "
                   f"{bounds.max_item_bytes} bytes (max bytes per item): not carved"
                   if too_big else
                   f"partial carve: {ext.upper()} header ({header_ok} bytes) at image byte "
                   f"{at} parses, but no valid end follows within {reach} bytes (its "
                   "structure breaks off, or the range or the item bound ends first): "
                   "truncated, fragmented or overwritten; not recovered")
            yield Carved(at, found[1] - k if too_big and found[1] else header_ok, ext, None,
                         why, owner)
        cursor = scan_stop if nxt <= scan_stop else nxt


def is_carve_locator(locator: object) -> bool:
    """Whether an entry's locator names a carving area (see the module docstring)."""
    return isinstance(locator, (list, tuple)) and len(locator) == 6 and \
        locator[0] == "carve"


#: First element of the locator of one carved item read again on its own (the full-decode
#: confirmation, :mod:`triage.confirm`): ``["carved", IMAGE OFFSET, LENGTH, EXTENSION]``.
CARVED_ITEM = "carved"


def carved_item_locator(offset: int, length: int, ext: str) -> list[object]:
    """The locator of the carved item at image bytes ``[offset, offset + length)``."""
    return [CARVED_ITEM, int(offset), int(length), str(ext)]


def is_carved_item_locator(locator: object) -> bool:
    """Whether an entry's locator names one carved item (:func:`carved_item_locator`)."""
    return isinstance(locator, (list, tuple)) and len(locator) == 4 and \
        locator[0] == CARVED_ITEM


def item_name(c: Carved) -> bytes:
    """An inner name for a carved item: ``@<image offset>.<ext>``."""
    return f"@{c.offset}.{c.ext}".encode()


def is_picture_ext(ext: str) -> bool:
    return ext in _PICTURE_MIME_EXT


# --------------------------------------------------------------------------- fragments


def block_hits(read: Callable[[int, int], bytes], ranges: list[tuple[int, int]],
               align_base: int, lookup: Callable[[list[bytes]], dict[bytes, list[
                   tuple[int, int]]]], tick: Callable[[], None] = lambda: None,
               ) -> dict[int, list[tuple[int, int]]]:
    """Blocks of known files in some ranges of the image: ``{known id: [(image offset,
    offset in the known file), ...]}``. Every 4096-byte block at ``align_base + k * 4096``
    that lies inside a range is hashed (MD5) and looked up (``lookup``, e.g.
    :meth:`hashsets.blocks.BlockIndex.lookup`); blocks of one repeated byte are skipped (the
    set holds none). An unreadable part of a range ends that range."""
    import hashlib

    from hashsets.blocks import BLOCK

    out: dict[int, list[tuple[int, int]]] = {}
    for off, length in ranges:
        pos = align_base + -(-(off - align_base) // BLOCK) * BLOCK
        end = off + length
        while pos + BLOCK <= end:
            tick()
            n = min(SCAN_STEP, (end - pos) // BLOCK * BLOCK)
            try:
                data = read(pos, n)
            except OSError:
                break
            md5s: list[bytes] = []
            where: list[int] = []
            for i in range(0, len(data) - BLOCK + 1, BLOCK):
                block = data[i:i + BLOCK]
                if block.count(block[:1]) == BLOCK:
                    continue
                md5s.append(hashlib.md5(block).digest())
                where.append(pos + i)
            found = lookup(md5s) if md5s else {}
            for md5, at in zip(md5s, where, strict=True):
                for kid, koff in found.get(md5, ()):
                    out.setdefault(kid, []).append((at, koff))
            if len(data) < n:
                break
            pos += n
    return out


def runs_of(hits: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Hits (where found, known-file offset) as runs ``(where, known offset, length)`` of
    consecutive blocks: the next block found 4096 bytes on is the known file's next."""
    from hashsets.blocks import BLOCK

    runs: list[list[int]] = []
    for at, koff in sorted(hits):
        last = runs[-1] if runs else None
        if last is not None and last[0] + last[2] == at and last[1] + last[2] == koff:
            last[2] += BLOCK
        else:
            runs.append([at, koff, BLOCK])
    return [(a, k, n) for a, k, n in runs]


class BlockCollector:
    """The MD5 of every 4096-byte block of a file at 4096-byte file offsets, fed the file's
    chunks as they are read (issue 17: fragments of known files inside files). Blocks of one
    repeated byte are left out; after :data:`MAX_FILE_BLOCKS` blocks it stops (``capped``)."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.md5s: list[bytes] = []
        self._pending = b""
        self._pos = 0
        self.capped = False

    def update(self, chunk: bytes) -> None:
        import hashlib

        from hashsets.blocks import BLOCK

        if self.capped:
            return
        data = self._pending + chunk if self._pending else chunk
        i = 0
        while i + BLOCK <= len(data):
            block = data[i:i + BLOCK]
            if block.count(block[:1]) != BLOCK:
                self.offsets.append(self._pos + i)
                self.md5s.append(hashlib.md5(block).digest())
                if len(self.md5s) >= MAX_FILE_BLOCKS:
                    self.capped = True
                    return
            i += BLOCK
        self._pos += i
        self._pending = data[i:]


#: Blocks hashed per file for fragment matching (4 GiB of a file; 16 bytes each).
MAX_FILE_BLOCKS = 1 << 20
