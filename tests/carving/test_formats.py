"""The carving parsers and range walk on synthetic data (no disk images): ends found by
parsing, lying headers refused, bounds kept (issue 17)."""

from __future__ import annotations

import io
import itertools
import random
import struct
import time

import pytest

from triage.carving import (
    Bounds,
    CarveState,
    bmff_end,
    bmp_end,
    carve_range,
    mkv_end,
    riff_end,
    runs_of,
    tiff_end,
    tiff_scan,
)
from triage.sources.unalloc import _runs_from_bits, complement


def _picture(fmt: str, seed: int, size: tuple[int, int] = (40, 30)) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    im = Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(size[0] *
                                                                             size[1] * 3)))
    out = io.BytesIO()
    im.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("count", [1, 7, 8, 9, 4095, 4096, 5000])
def test_bitmap_runs_equal_a_bit_by_bit_walk(count: int) -> None:
    rng = random.Random(count)
    bitmap = bytes(rng.choice((0, 0xFF, rng.randrange(256))) for _ in range((count + 7) // 8))
    free = [i for i in range(count) if not bitmap[i // 8] >> (i % 8) & 1]
    got = [i for s, n in _runs_from_bits(bitmap, count) for i in range(s, s + n)]
    assert got == free
    runs = list(_runs_from_bits(bitmap, count))
    assert all(a[0] + a[1] < b[0] for a, b in itertools.pairwise(runs))


def test_complement_of_allocated_runs() -> None:
    assert complement([(2, 4), (3, 6), (9, 10)], 0, 11) == [(0, 2), (6, 3), (10, 2)]
    assert complement([], 5, 9) == [(5, 5)]


def test_bmp_end_and_a_lying_size() -> None:
    bmp = _picture("BMP", 1)
    assert bmp_end(bmp + b"\x00" * 100, 0) == len(bmp)
    lying = bmp[:2] + struct.pack("<I", 60_000_000) + bmp[6:]
    assert bmp_end(lying + bytes(60_000_000), 0) is None  # far more than its pixels need


def test_riff_webp_end() -> None:
    webp = _picture("WEBP", 2)
    assert riff_end(webp + b"junk", 0) == (len(webp), "webp")
    assert riff_end(webp[:-10], 0) is None


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def test_bmff_end_walks_known_boxes() -> None:
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2")
    movie = ftyp + _box(b"moov", b"\x00" * 50) + _box(b"mdat", b"\x01" * 300)
    assert bmff_end(movie + b"\x00" * 64, 0) == (len(movie), "mp4")
    assert bmff_end(ftyp + _box(b"mdat", b"\x01" * 300), 0) is None  # no moov
    heif = _box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + _box(b"meta", b"\x00" * 20)
    assert bmff_end(heif + b"\xff" * 8, 0) == (len(heif), "heic")
    endless = ftyp + b"\x00\x00\x00\x00moov"
    assert bmff_end(endless, 0) is None


def test_mkv_end_needs_a_sized_segment() -> None:
    doctype = b"\x42\x82\x88matroska"
    header = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(doctype)]) + doctype
    segment = b"\x18\x53\x80\x67" + bytes([0x80 | 20]) + b"\x00" * 20
    assert mkv_end(header + segment + b"tail", 0) == (len(header + segment), "mkv")
    unknown = b"\x18\x53\x80\x67\xff" + b"\x00" * 20
    assert mkv_end(header + unknown, 0) is None


def _disk(items: list[tuple[int, bytes]], size: int) -> bytes:
    rng = random.Random(7)
    data = bytearray(rng.randbytes(size).replace(b"\xff", b"\x00"))
    for at, blob in items:
        data[at:at + len(blob)] = blob
    return bytes(data)


def test_carve_range_finds_sector_aligned_pictures_with_their_bytes() -> None:
    pics = [(512 * 3, _picture("JPEG", 3)), (512 * 40, _picture("PNG", 4)),
            (512 * 90, _picture("GIF", 5)), (512 * 130, _picture("BMP", 6))]
    # One more picture NOT at a sector boundary: unallocated space is searched per sector.
    disk = _disk([*pics, (512 * 200 + 7, _picture("PNG", 8))], 512 * 256)
    state = CarveState()
    got = list(carve_range(lambda o, n: disk[o:o + n], 0, len(disk), None, 0, 512,
                           Bounds(100, 1 << 30, 1 << 20), state))
    assert [(c.offset, c.data) for c in got] == [(at, blob) for at, blob in pics]
    assert state.stopped is None
    # Searched at every byte (slack), the unaligned one is found too.
    got = list(carve_range(lambda o, n: disk[o:o + n], 0, len(disk), "f", 0, 1,
                           Bounds(100, 1 << 30, 1 << 20), CarveState()))
    assert [c.offset for c in got][-1] == 512 * 200 + 7


def test_carve_range_bounds_and_partial_candidates() -> None:
    jpeg = _picture("JPEG", 9)
    disk = _disk([(512 * i, jpeg[:1000]) for i in range(0, 64, 4)], 512 * 64)
    state = CarveState()
    got = list(carve_range(lambda o, n: disk[o:o + n], 0, len(disk), None, 0, 512,
                           Bounds(5, 1 << 30, 1 << 20), state))
    assert len(got) == 5 and all(c.data is None and c.partial for c in got)
    assert state.stopped is not None and state.stopped[1].startswith(
        "limit: 5 carved items (max items per area, scan --carve-max-items) reached at "
        "image byte 10240")
    # An item over the bytes-per-item bound is a partial carve, not read.
    whole = _disk([(0, jpeg)], 512 * 64)
    got = list(carve_range(lambda o, n: whole[o:o + n], 0, len(whole), None, 0, 512,
                           Bounds(5, 1 << 30, len(jpeg) - 1), CarveState()))
    assert got[0].data is None and "max bytes per item" in (got[0].partial or "")


def test_runs_of_consecutive_blocks() -> None:
    hits = [(8192, 0), (12288, 4096), (40960, 8192), (45056, 12288), (4096, 99 * 4096)]
    assert runs_of(hits) == [(4096, 99 * 4096, 4096), (8192, 0, 8192), (40960, 8192, 8192)]


# --------------------------------------------------------------------------- TIFF


def _pillow_tiff(seed: int, **kw: object) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    im = Image.frombytes("RGB", (61, 37), rng.randbytes(61 * 37 * 3))
    if kw.pop("bilevel", False):
        im = im.convert("1")
    out = io.BytesIO()
    im.save(out, "TIFF", **kw)
    return out.getvalue()


def _exif() -> object:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0110] = "Model X"  # an out-of-line ASCII value
    exif.get_ifd(0x8769)[0x9003] = "2020:01:01 00:00:00"  # the EXIF IFD: a child IFD
    exif.get_ifd(0x8769)[0x927C] = b"maker note " * 30
    return exif


@pytest.mark.parametrize("kw", [
    {}, {"compression": "tiff_lzw"}, {"compression": "tiff_adobe_deflate"},
    {"compression": "packbits"}, {"compression": "jpeg"},
    {"compression": "group4", "bilevel": True},
    {"strip_size": 1000},  # 13 strips, SHORT byte counts
    {"compression": "tiff_lzw", "strip_size": 700},
    {"exif": "exif"}, {"exif": "exif", "compression": "tiff_adobe_deflate"},
], ids=repr)
def test_tiff_end_of_pillow_tiffs(kw: dict[str, object]) -> None:
    """Pillow (its own writer and libtiff's) as the independent writer: the end found is
    the file's length, wherever the TIFF starts and whatever follows it."""
    if kw.get("exif") == "exif":
        kw = {**kw, "exif": _exif()}
    tif = _pillow_tiff(11, **kw)
    assert tiff_end(tif + b"\xff" * 300, 0) == len(tif)
    assert tiff_end(b"junk" * 25 + tif + bytes(300), 100) == 100 + len(tif)
    assert tiff_end(tif, 0) == len(tif)
    for cut in (len(tif) - 1, len(tif) // 2, 9):
        assert tiff_end(tif[:cut], 0) is None


def test_tiff_end_of_a_pillow_multipage_tiff_leaves_its_padding() -> None:
    """Pillow's multi-page writer pads the file to 16 bytes after the last page's
    structures: nothing in the file says those bytes are part of it, so the carve ends
    before them (its digests are not the file's; documented in docs/carving.md)."""
    from PIL import Image

    rng = random.Random(3)
    pages = [Image.frombytes("L", (20 + i, 10), rng.randbytes((20 + i) * 10))
             for i in range(3)]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    tif = out.getvalue()
    end = tiff_end(tif, 0)
    assert end is not None and 0 <= len(tif) - end < 16 and tif[end:] == bytes(len(tif) - end)
    # Every page is inside the end: the third page's strip is the last structure.
    with Image.open(io.BytesIO(tif[:end])) as im:
        assert im.n_frames == 3
        im.seek(2)
        assert im.tobytes() == pages[2].tobytes()


def _field(bo: str, typ: int, value: int) -> bytes:
    """A 4-byte value field holding one inline SHORT (left-justified) or LONG."""
    return struct.pack(bo + "HH", value, 0) if typ == 3 else struct.pack(bo + "I", value)


def _ifd(bo: str, entries: list[tuple[int, int, int, bytes | int]], nxt: int = 0) -> bytes:
    """An IFD: (tag, type, count, 4-byte value field or one inline value) entries."""
    out = struct.pack(bo + "H", len(entries))
    for tag, typ, count, value in entries:
        field = value if isinstance(value, bytes) else _field(bo, typ, value)
        out += struct.pack(bo + "HHI", tag, typ, count) + field
    return out + struct.pack(bo + "I", nxt)


def _head(bo: str, first: int) -> bytes:
    return (b"II*\x00" if bo == "<" else b"MM\x00*") + struct.pack(bo + "I", first)


@pytest.mark.parametrize("bo", ["<", ">"])
def test_tiff_end_walks_every_structure(bo: str) -> None:
    """Hand-built TIFFs of both byte orders whose furthest structure is each kind in turn:
    a strip (SHORT offsets inline), a tile (out-of-line LONG arrays), an out-of-line
    value, a SubIFD's strip, the second page's IFD, a JPEGInterchangeFormat thumbnail."""
    pic = [(256, 3, 1, 4), (257, 3, 1, 4)]
    # Strips: two SHORT offsets inline (100, 300), byte counts 50 and 80: end 380.
    ifd = _ifd(bo, [*pic, (273, 3, 2, struct.pack(bo + "HH", 100, 300)),
                    (279, 3, 2, struct.pack(bo + "HH", 50, 80))])
    tif = _head(bo, 8) + ifd
    tif = tif.ljust(380, b"\x01")
    assert tiff_end(tif + b"\x00" * 64, 0) == 380
    # Tiles: LONG arrays out of line at 200 and 220; the last tile 1000-1100; a zero-length
    # tile at offset 0 (a sparse file's) does not count.
    ifd = _ifd(bo, [*pic, (322, 3, 1, 16), (323, 3, 1, 16),
                    (324, 4, 3, 200), (325, 4, 3, 220)])
    body = bytearray(_head(bo, 8) + ifd)
    body = body.ljust(1100, b"\x02")
    body[200:212] = struct.pack(bo + "3I", 300, 1000, 0)
    body[220:232] = struct.pack(bo + "3I", 40, 100, 0)
    assert tiff_end(bytes(body) + bytes(50), 0) == 1100
    # An out-of-line ASCII value past the strip: its end is the file's.
    ifd = _ifd(bo, [*pic, (270, 2, 30, 500), (273, 4, 1, 100), (279, 4, 1, 10)])
    body = bytearray((_head(bo, 8) + ifd).ljust(530, b"\x03"))
    assert tiff_end(bytes(body) + bytes(50), 0) == 530
    # A SubIFD (at 300) whose strip (2000+500) is the furthest; the IFD chain's second
    # page (at 400), a JPEGInterchangeFormat thumbnail (3000+77).
    ifd0 = _ifd(bo, [*pic, (273, 4, 1, 100), (279, 4, 1, 10), (330, 4, 1, 300)], nxt=400)
    sub = _ifd(bo, [*pic, (273, 4, 1, 2000), (279, 4, 1, 500)])
    page2 = _ifd(bo, [*pic, (273, 4, 1, 150), (279, 4, 1, 10), (513, 4, 1, 3000),
                      (514, 4, 1, 77)])
    body = bytearray((_head(bo, 8) + ifd0).ljust(3077, b"\x04"))
    body[300:300 + len(sub)] = sub
    body[400:400 + len(page2)] = page2
    assert tiff_end(bytes(body) + bytes(99), 0) == 3077
    assert tiff_end(bytes(body[:3076]), 0) is None
    # Without the thumbnail, the SubIFD's strip; a thumbnail offset without its length
    # (old-style JPEG TIFFs) adds no end.
    for entries in ([], [(513, 4, 1, 2900)]):
        page = _ifd(bo, [*pic, (273, 4, 1, 150), (279, 4, 1, 10), *entries])
        body[400:400 + len(page2)] = page.ljust(len(page2), b"\x04")
        assert len(body) == 3077
        assert tiff_end(bytes(body) + bytes(99), 0) == 2500


def _hostile(bo: str) -> dict[str, bytes]:
    pic = [(256, 3, 1, 1), (257, 3, 1, 1)]
    strip = [(273, 4, 1, 100), (279, 4, 1, 10)]
    pad = bytes(200)
    chain = bytearray(_head(bo, 8))
    for k in range(2000):  # 2000 pages, each IFD pointing at the next: over the bound
        at = len(chain)
        entries = [*pic, *strip] if k == 0 else [(256, 3, 1, 1)]
        chain += _ifd(bo, entries, nxt=at + 2 + 12 * len(entries) + 4 if k < 1999 else 0)
    return {
        "IFD past the data": _head(bo, 0x7FFFFFF0) + pad,
        "no IFD": _head(bo, 0) + pad,
        "IFD inside the header": _head(bo, 4) + pad,
        "IFD loop": _head(bo, 8) + _ifd(bo, [*pic, *strip], nxt=8) + pad,
        "SubIFD loop": _head(bo, 8) + _ifd(bo, [*pic, *strip, (330, 4, 1, 8)]) + pad,
        "65535 entries": _head(bo, 8) + struct.pack(bo + "H", 65535) + bytes(65535 * 12 + 4),
        "no entries": _head(bo, 8) + bytes(6) + pad,
        "unknown type": _head(bo, 8) + _ifd(bo, [*pic, (273, 16, 1, 100), (279, 4, 1, 10)]
                                             ) + pad,
        "huge ASCII count": _head(bo, 8) + _ifd(bo, [*pic, (270, 2, 0xFFFFFFFF, 60), *strip]
                                                 ) + pad,
        "huge strip count": _head(bo, 8) + _ifd(bo, [*pic, (273, 4, 0x7FFFFFFF, 60),
                                                     (279, 4, 0x7FFFFFFF, 80)]) + pad,
        "4M strips": _head(bo, 8) + _ifd(bo, [*pic, (273, 4, 1 << 22, 60),
                                              (279, 4, 1 << 22, 60)]) + bytes(1 << 24),
        "counts disagree": _head(bo, 8) + _ifd(bo, [*pic, (273, 4, 2, 60), (279, 4, 1, 10)]
                                                ) + pad,
        "offsets without counts": _head(bo, 8) + _ifd(bo, [*pic, (273, 4, 1, 100)]) + pad,
        "strip inside the header": _head(bo, 8) + _ifd(bo, [*pic, (273, 4, 1, 2),
                                                            (279, 4, 1, 10)]) + pad,
        "strip past 4 GiB": _head(bo, 8) + _ifd(bo, [*pic, (273, 4, 1, 0xFFFFFF00),
                                                     (279, 4, 1, 0x1000)]) + pad,
        "no picture (an EXIF block)": _head(bo, 8) + _ifd(bo, [(0x8769, 4, 1, 40)]) + pad,
        "2000 IFDs": bytes(chain) + pad,
        "BigTIFF": (b"II+\x00" if bo == "<" else b"MM\x00+") + struct.pack(bo + "HHQ", 8, 0,
                                                                           16) + pad,
    }


@pytest.mark.parametrize("bo", ["<", ">"])
def test_tiff_lying_headers_are_refused_quickly(bo: str) -> None:
    for name, data in _hostile(bo).items():
        started = time.monotonic()
        assert tiff_scan(data, 0) == (None, False), name
        assert time.monotonic() - started < 1.0, name
    # A picture's first IFD whose strip lies past the data: a TIFF cut short (or larger
    # than the item bound): no end, but recorded as a partial candidate.
    short = _head(bo, 8) + _ifd(bo, [(256, 3, 1, 1), (257, 3, 1, 1), (273, 4, 1, 1 << 30),
                                     (279, 4, 1, 1000)]) + bytes(100)
    assert tiff_scan(short, 0) == (None, True)


def test_tiff_mutations_never_raise() -> None:
    """Random byte changes of real TIFFs: the walk never raises, and an end it finds is
    inside the data."""
    rng = random.Random(17)
    tiffs = [_pillow_tiff(1), _pillow_tiff(2, compression="tiff_lzw", strip_size=500),
             _pillow_tiff(3, exif=_exif())]
    for _ in range(3000):
        data = bytearray(rng.choice(tiffs))
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(4, min(len(data), 400)) if rng.random() < 0.7 else \
                rng.randrange(4, len(data))
            data[at] = rng.randrange(256)
        end, _ = tiff_scan(bytes(data), 0)
        assert end is None or 8 <= end <= len(data)


def test_carve_range_finds_tiffs_of_both_byte_orders() -> None:
    le = _pillow_tiff(21, compression="tiff_lzw", strip_size=900)
    # Big-endian, hand built: header, IFD, one strip of 700 bytes.
    ifd = _ifd(">", [(256, 3, 1, 20), (257, 3, 1, 35), (273, 4, 1, 64), (279, 4, 1, 700)])
    be = (_head(">", 8) + ifd).ljust(64, b"\x00") + random.Random(5).randbytes(700)
    assert tiff_end(be, 0) == len(be)
    disk = _disk([(512 * 4, le), (512 * 80, be), (512 * 120 + 3, be)], 512 * 160)
    got = list(carve_range(lambda o, n: disk[o:o + n], 0, len(disk), None, 0, 512,
                           Bounds(100, 1 << 30, 1 << 20), CarveState()))
    assert [(c.offset, c.ext, c.data) for c in got] == [(512 * 4, "tif", le),
                                                        (512 * 80, "tif", be)]
    got = list(carve_range(lambda o, n: disk[o:o + n], 0, len(disk), "f", 0, 1,
                           Bounds(100, 1 << 30, 1 << 20), CarveState()))
    assert [(c.offset, c.data) for c in got if c.ext == "tif"] == [
        (512 * 4, le), (512 * 80, be), (512 * 120 + 3, be)]


def _shared_ifd_headers(size: int, entries: int = 4096) -> bytes:
    """The review's crafted region: ``II*\\0`` at every 512-byte boundary, each pointing at
    one shared IFD near the end that holds ``entries`` entries and no picture."""
    buf = bytearray(size)
    at = size - (2 + 12 * entries + 4) - 16
    buf[at:at + 2 + 12 * entries + 4] = _ifd("<", [(1000 + i, 3, 1, 1)
                                                   for i in range(entries)])
    for p in range(0, at - 8, 512):
        buf[p:p + 8] = _head("<", at - p)
    return bytes(buf)


def test_tiff_headers_sharing_a_huge_ifd_cost_little(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of TIFF headers pointing at one 4096-entry IFD without a picture carve
    nothing, and the IFD entries read over the whole range stay bounded: before the fix,
    each header read all 4096 entries (16 M entries here, 22 s per 8 MiB)."""
    import triage.carving

    read_entries = [0]
    original = triage.carving._tiff_entries

    def counting(data: bytes, at: int, bo: str, count: int) -> list[tuple[int, int, int]]:
        read_entries[0] += count
        return original(data, at, bo, count)

    monkeypatch.setattr(triage.carving, "_tiff_entries", counting)
    disk = _shared_ifd_headers(2 << 20)
    headers = disk.count(b"II*\x00")
    assert headers >= 4000
    state = CarveState()
    got = list(carve_range(lambda o, n: disk[o:o + n], 0, len(disk), None, 0, 512,
                           Bounds(10000, 4 << 30, 64 << 20), state))
    assert got == [] and state.stopped is None and state.items == 0
    # Each first IFD is decided once per scan buffer from its first entries.
    assert 0 < read_entries[0] <= 4 * triage.carving.TIFF_DECIDE_ENTRIES
    # Without the cache, the cap alone still bounds each header's cost.
    read_entries[0] = 0
    assert tiff_scan(disk, 0) == (None, False)
    assert read_entries[0] == triage.carving.TIFF_DECIDE_ENTRIES


@pytest.mark.parametrize("bo", ["<", ">"])
def test_tiff_with_a_large_first_ifd_still_carved(bo: str) -> None:
    """A real first IFD with many entries (sorted tags: the picture's come first) is
    walked in full: its furthest out-of-line value gives the end."""
    many = [(40000 + i, 3, 1, 1) for i in range(TIFF_MANY)]
    ifd = _ifd(bo, [(256, 3, 1, 4), (257, 3, 1, 4), (273, 4, 1, 16), (279, 4, 1, 8),
                    *many[:-1], (40000 + TIFF_MANY, 2, 40, 8 + 2 + 12 * (TIFF_MANY + 4) + 4)])
    tif = _head(bo, 8) + ifd + b"an ASCII value forty bytes long........."
    assert tiff_end(tif + bytes(100), 0) == len(tif)


#: Entries of the large IFD above: past the decision's entries.
TIFF_MANY = 300


@pytest.mark.parametrize(("private", "bo"), [(130, "<"), (250, ">")])
def test_tiff_with_many_low_private_tags_before_the_size_still_carved(private: int,
                                                                       bo: str) -> None:
    """Cold review: a valid TIFF (tags ascending, as TIFF 6.0 requires) with 130 private
    tags numbered below 256 was no longer carved once the first IFD's picture decision
    read only 128 entries. Decoded by Pillow, carved to its length."""
    from PIL import Image

    pix = bytes(range(256))
    std = [(256, 3, 1, 16), (257, 3, 1, 16), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
           (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, 16), (279, 4, 1, len(pix))]
    entries = sorted([(t, 3, 1, 7) for t in range(1, 1 + private)] + std)
    at = 8 + 2 + 12 * len(entries) + 4
    entries = [(t, typ, c, at if t == 273 else v) for t, typ, c, v in entries]
    tif = _head(bo, 8) + _ifd(bo, entries) + pix
    with Image.open(io.BytesIO(tif)) as im:
        im.load()
        assert im.size == (16, 16)
    assert tiff_end(bytes(1000) + tif + bytes(1000), 1000) == 1000 + len(tif)
