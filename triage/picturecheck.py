"""Structural checks of picture data that the decoder does not make (issue 11, defect 10).

libjpeg does not fail on a JPEG whose entropy-coded data ends (at EOI or any other marker)
before the last block the frame header promises: it warns, fills the rest of the picture
(zero coefficients: flat grey) and returns success; Pillow never sees the warning. So a file
whose header says 65500x2700 but that holds 16x16 of data decodes "fine", and perceptual
hashes of the fill would be recorded as the picture's. :func:`jpeg_shortfall` proves such
a shortfall from the file's own structure, without decoding, and says why:

* **Scan data too short for its blocks.** Every block of a Huffman-coded sequential scan
  codes at least a DC symbol and one AC symbol (EOB), each at least as long as the shortest
  code of its table (ITU-T T.81 F.1.2, F.2.2); a progressive DC-first scan codes a DC
  symbol per block (G.1.2.1), a DC refinement scan one bit per block (G.1.2.1). Fewer bits
  than that in the scan's bytes cannot hold the frame.
* **Restart markers missing.** With a restart interval (DRI, B.2.4.4), a complete scan of
  N MCUs holds ceil(N / interval) - 1 RST markers (E.1.4).
* **Components never scanned.** A sequential frame must have a scan for each component, a
  progressive one a DC-first scan for each (G.1.1.1.1).

What this does not catch: a JPEG cut part way and closed with an EOI whose remaining data
still exceeds the minimum above and that has no restart interval (libjpeg's fill is not
visible without a second decoder); arithmetic-coded scans get the restart and component
checks only (no minimum code length).
"""

from __future__ import annotations

from dataclasses import dataclass

# Markers (T.81 Table B.1).
_SOF_HUFFMAN_SEQUENTIAL = frozenset({0xC0, 0xC1})
_SOF_HUFFMAN_PROGRESSIVE = 0xC2
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_DHT, _DRI, _SOS, _EOI, _SOI = 0xC4, 0xDD, 0xDA, 0xD9, 0xD8
_RST = frozenset(range(0xD0, 0xD8))


#: Bytes of entropy-coded data examined per step by :func:`_scan_end` (a progressive
#: JPEG's scans end early: a whole-file pass per scan would cost more than the scans).
SCAN_WINDOW = 1 << 18


def _scan_end(data: bytes, pos: int) -> tuple[int | None, int]:
    """(offset of the marker that ends the entropy-coded data starting at ``pos``, or None
    when the data ends first; the restart markers met on the way). In that data a 0xFF is
    followed by a stuffed zero, a restart marker or a fill 0xFF; anything else is the next
    marker (T.81 B.1.1.5, B.1.1.2).

    None of those cases skips a 0xFF (a stuffed zero or a restart code is not one), so the
    marker is the first 0xFF followed by any other byte, and the restart markers are the
    0xFF D0-D7 pairs before it: numpy finds both a window at a time (issue 13: a Python
    step per 0xFF cost ~2 ms per 3 MB photo, the order of its hashes)."""
    import numpy as np

    n = len(data)
    a = np.frombuffer(data, dtype=np.uint8)
    restarts = 0
    while pos + 1 < n:
        stop = min(n - 1, pos + SCAN_WINDOW)  # a 0xFF at stop - 1 is followed by a[stop]
        ff = np.flatnonzero(a[pos:stop] == 0xFF)
        nxt = a[ff + (pos + 1)]
        rst = (nxt >= 0xD0) & (nxt <= 0xD7)
        other = np.flatnonzero((nxt != 0x00) & (nxt != 0xFF) & ~rst)
        if len(other):
            first = int(other[0])
            return pos + int(ff[first]), restarts + int(np.count_nonzero(rst[:first]))
        restarts += int(np.count_nonzero(rst))
        pos = stop
    return None, restarts


class DamagedPicture(ValueError):
    """Picture data that provably holds less than its header says (the reason says how)."""


@dataclass(frozen=True)
class _Frame:
    marker: int
    width: int
    height: int
    #: (component id, horizontal sampling, vertical sampling)
    components: tuple[tuple[int, int, int], ...]

    @property
    def hmax(self) -> int:
        return max(h for _, h, _ in self.components)

    @property
    def vmax(self) -> int:
        return max(v for _, _, v in self.components)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _blocks(frame: _Frame, h: int, v: int) -> int:
    """Blocks of one component in a non-interleaved scan (T.81 A.2.2)."""
    return (_ceil(_ceil(frame.width * h, frame.hmax), 8)
            * _ceil(_ceil(frame.height * v, frame.vmax), 8))


def jpeg_shortfall(data: bytes) -> str | None:
    """Why the JPEG in ``data`` provably holds less picture than its frame header says, or
    None when no check finds a shortfall (or the data is not a JPEG this can parse: the
    decoder judges those). Reads only marker segments and scan lengths; never decodes."""
    if not data.startswith(b"\xff\xd8"):
        return None
    n = len(data)
    pos = 2
    frame: _Frame | None = None
    tables: dict[tuple[int, int], int] = {}  # (class, id) -> shortest code length in bits
    interval = 0
    scanned: set[int] = set()  # components with a sequential or a DC-first scan
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == _EOI:
            break
        if marker in _RST or marker == _SOI or marker == 0x01:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        body = data[pos + 4:pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            return None
        pos += 2 + length
        if marker in _SOF:
            if frame is not None or len(body) < 6:
                return None  # hierarchical (several frames) or damaged: not judged here
            height = int.from_bytes(body[1:3], "big")
            width = int.from_bytes(body[3:5], "big")
            count = body[5]
            if len(body) < 6 + 3 * count or not count or not width or not height:
                return None  # no components, or a height set later by DNL
            comps = tuple((body[6 + 3 * i], body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15)
                          for i in range(count))
            if any(not h or not v for _, h, v in comps):
                return None
            frame = _Frame(marker, width, height, comps)
        elif marker == _DHT:
            i = 0
            while i + 17 <= len(body):
                counts = body[i + 1:i + 17]
                shortest = next((k + 1 for k, c in enumerate(counts) if c), None)
                if shortest is not None:
                    tables[(body[i] >> 4, body[i] & 15)] = shortest
                i += 17 + sum(counts)
        elif marker == _DRI and len(body) >= 2:
            interval = int.from_bytes(body[:2], "big")
        elif marker == _SOS:
            if frame is None or not body:
                return None
            end, restarts = _scan_end(data, pos)
            why = _check_scan(frame, body, tables, interval, (end or n) - pos, restarts,
                              scanned)
            if why:
                return why
            if end is None:
                return None  # no EOI: the decoder reports a truncated file itself
            pos = end
    if frame is None:
        return None
    missing = [cid for cid, _, _ in frame.components if cid not in scanned]
    if missing and frame.marker not in (0xC3, 0xC7, 0xCB, 0xCF):  # lossless: not judged
        names = ", ".join(str(c) for c in missing)
        kind = "DC scan" if frame.marker in (0xC2, 0xC6, 0xCA, 0xCE) else "scan"
        return (f"truncated JPEG: the data ends before a {kind} of component(s) {names} of "
                f"its {frame.width}x{frame.height} frame")
    return None


def _check_scan(frame: _Frame, header: bytes, tables: dict[tuple[int, int], int],
                interval: int, have: int, restarts: int, scanned: set[int]) -> str | None:
    """The reason one scan's data (``have`` bytes holding ``restarts`` restart markers) is
    too short for the blocks it codes, or None."""
    ns = header[0]
    if len(header) < 1 + 2 * ns + 3 or not ns:
        return None
    sampling = {cid: (h, v) for cid, h, v in frame.components}
    members = [(header[1 + 2 * i], header[2 + 2 * i] >> 4, header[2 + 2 * i] & 15)
               for i in range(ns)]
    if any(cid not in sampling for cid, _, _ in members):
        return None
    ss, ah = header[1 + 2 * ns], header[3 + 2 * ns] >> 4
    progressive = frame.marker in (0xC2, 0xC6, 0xCA, 0xCE)
    if not progressive or (ss == 0 and ah == 0):
        scanned.update(cid for cid, _, _ in members)
    if ns == 1:
        h, v = sampling[members[0][0]]
        units = _blocks(frame, h, v)
        blocks = [units]
    else:
        units = (_ceil(frame.width, 8 * frame.hmax) * _ceil(frame.height, 8 * frame.vmax))
        blocks = [units * sampling[cid][0] * sampling[cid][1] for cid, _, _ in members]
    if interval:
        want = _ceil(units, interval) - 1
        got = restarts
        if got < want:
            return (f"truncated JPEG: the header says {frame.width}x{frame.height}; a scan of "
                    f"{units} MCUs with restart interval {interval} needs {want} restart "
                    f"markers, the data holds {got}")
    bits = 0
    for (_cid, td, ta), n in zip(members, blocks, strict=True):
        if frame.marker in _SOF_HUFFMAN_SEQUENTIAL:
            dc, ac = tables.get((0, td)), tables.get((1, ta))
            if dc is None or ac is None:
                return None
            bits += n * (dc + ac)
        elif frame.marker == _SOF_HUFFMAN_PROGRESSIVE and ss == 0:
            dc = 1 if ah else tables.get((0, td))
            if dc is None:
                return None
            bits += n * dc
    need = _ceil(bits, 8)
    if have < need:
        return (f"truncated JPEG: the header says {frame.width}x{frame.height}; its scan "
                f"codes {sum(blocks)} blocks, which need at least {need} bytes of data, the "
                f"file holds {have}")
    return None
