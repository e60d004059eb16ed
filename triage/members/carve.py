"""Embedded pictures: JPEG, PNG and GIF streams inside arbitrary bytes.

A candidate is a signature; its END is found by parsing the format (JPEG segments and
entropy-coded data up to EOI, PNG chunks up to IEND, GIF blocks up to the trailer), never by
guessing, so the carved bytes are the original picture byte for byte and hash the same.
Candidates that do not parse are skipped.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

from .base import Budget, ContainerError, Limits, Member

JPEG_SOI = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_SIGNATURES = (b"GIF87a", b"GIF89a")

# JPEG markers (ITU-T T.81 Table B.1).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # C4 DHT, C8 JPG, CC DAC
_RST = frozenset(range(0xD0, 0xD8))
_SOI, _EOI, _SOS, _TEM = 0xD8, 0xD9, 0xDA, 0x01


def jpeg_end(data: bytes, start: int) -> int | None:
    """End offset (exclusive) of the JPEG starting at ``start``, or None if it does not parse.

    Walks marker segments by their length fields; after each SOS, scans the entropy-coded
    data for the next marker, skipping 0xFF00 stuffing, RSTn and fill bytes, so progressive
    JPEGs (many scans) work too. Requires a SOFn before the first SOS and ends at EOI.
    """
    n = len(data)
    pos = start + 2
    seen_sof = seen_sos = False
    while pos + 1 < n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == _EOI:
            return pos + 2 if seen_sos else None
        if marker in _RST or marker == _TEM:
            pos += 2
            continue
        if marker in (0x00, _SOI) or pos + 4 > n:
            return None
        length = (data[pos + 2] << 8) | data[pos + 3]
        seg_end = pos + 2 + length
        if length < 2 or seg_end > n:
            return None
        if marker in _SOF:
            seen_sof = True
        if marker != _SOS:
            pos = seg_end
            continue
        if not seen_sof:
            return None
        seen_sos = True
        p = seg_end
        while True:  # entropy-coded data: find the next real marker
            p = data.find(b"\xff", p)
            if p < 0 or p + 1 >= n:
                return None
            nxt = data[p + 1]
            if nxt == 0x00 or nxt in _RST:
                p += 2
            elif nxt == 0xFF:
                p += 1
            else:
                break
        pos = p
    return None


def png_end(data: bytes, start: int) -> int | None:
    """End offset of the PNG at ``start`` (after the IEND chunk), or None.

    The first chunk must be a 13-byte IHDR with a correct CRC; later chunks are walked by
    their length fields (CRCs are not needed to find the end).
    """
    n = len(data)
    pos = start + 8
    if data[pos:pos + 8] != b"\x00\x00\x00\x0dIHDR" or pos + 25 > n:
        return None
    if zlib.crc32(data[pos + 4:pos + 21]) != int.from_bytes(data[pos + 21:pos + 25], "big"):
        return None
    pos += 25
    while pos + 12 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype = data[pos + 4:pos + 8]
        if length > 0x7FFFFFFF or not ctype.isalpha():
            return None
        pos += 12 + length
        if pos > n:
            return None
        if ctype == b"IEND":
            return pos
    return None


def _skip_sub_blocks(data: bytes, pos: int) -> int | None:
    n = len(data)
    while pos < n:
        size = data[pos]
        pos += 1
        if size == 0:
            return pos
        pos += size
    return None


def gif_end(data: bytes, start: int) -> int | None:
    """End offset of the GIF at ``start`` (after the 0x3B trailer), or None.

    Walks the logical screen descriptor, colour tables, extension and image blocks (GIF89a
    specification); requires at least one image.
    """
    n = len(data)
    pos = start + 13
    if pos > n:
        return None
    packed = data[start + 10]
    if packed & 0x80:
        pos += 3 << ((packed & 7) + 1)
    seen_image = False
    while pos < n:
        block = data[pos]
        if block == 0x3B:
            return pos + 1 if seen_image else None
        if block == 0x21:  # extension: label, then sub-blocks
            end = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor (10 bytes), local table, LZW size, data
            if pos + 10 > n:
                return None
            local = data[pos + 9]
            pos += 10
            if local & 0x80:
                pos += 3 << ((local & 7) + 1)
            end = _skip_sub_blocks(data, pos + 1)
            seen_image = True
        else:
            return None
        if end is None:
            return None
        pos = end
    return None


_Parser = Callable[[bytes, int], "int | None"]
_FORMATS: tuple[tuple[bytes, str, _Parser], ...] = (
    (JPEG_SOI, "jpg", jpeg_end),
    (PNG_SIGNATURE, "png", png_end),
    (b"GIF8", "gif", gif_end),
)


def find_embedded(data: bytes, limits: Limits, budget: Budget | None = None,
                  ) -> Iterator[Member]:
    """Pictures embedded in ``data`` that do not start at offset 0, in offset order.

    Each is a ``Member`` of kind ``"embedded"`` named ``@<offset>.<ext>`` with its offset,
    size and bytes (a copy of ``data[offset:end]``). A picture that starts at offset 0 is
    the file itself and is not reported; the scan resumes after every picture it parsed
    (including one at offset 0), so thumbnails inside a picture's metadata are not reported
    separately. After ``limits.max_members`` pictures ``ContainerError`` is raised; a
    picture larger than ``limits.max_member_bytes`` (or than the budget's remaining bytes)
    is yielded with ``data=None`` and a reason. ``budget``, when given, is charged and its
    time checked.
    """
    pos = 0
    found = 0
    # Next occurrence of each signature at or after ``pos`` (-1: none left). A cached hit
    # stays valid while it is >= pos, so each signature is searched forward over the data
    # only once: linear in len(data), not quadratic (issue 11, defect 6).
    nxt = [data.find(sig) for sig, _, _ in _FORMATS]
    while True:
        if budget is not None:
            budget.check_time()
        best: tuple[int, str, _Parser] | None = None
        for i, (sig, ext, parse) in enumerate(_FORMATS):
            at = nxt[i]
            if 0 <= at < pos:
                at = nxt[i] = data.find(sig, pos)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, ext, parse)
        if best is None:
            return
        at, ext, parse = best
        if ext == "gif" and data[at:at + 6] not in GIF_SIGNATURES:
            pos = at + 1
            continue
        end = parse(data, at)
        if end is None:
            pos = at + 1
            continue
        pos = end
        if at == 0:
            continue
        found += 1
        if found > limits.max_members:
            raise ContainerError(f"limit: more than {limits.max_members} embedded pictures "
                                 f"(max_members)", ("limit:members",))
        size = end - at
        name = f"@{at}.{ext}".encode()
        remaining = budget.remaining() if budget is not None else limits.max_total_bytes
        if size > limits.max_member_bytes:
            yield Member(name, "embedded", size, None, at, None, ("limit:member-bytes",),
                         f"limit: embedded picture {size} bytes > {limits.max_member_bytes} "
                         f"(max_member_bytes)")
        elif size > remaining:
            yield Member(name, "embedded", size, None, at, None, ("limit:total-bytes",),
                         f"limit: total bytes would exceed {limits.max_total_bytes} "
                         f"(max_total_bytes)")
        else:
            if budget is not None:
                budget.charge(size)
            yield Member(name, "embedded", size, None, at, data[at:end])
