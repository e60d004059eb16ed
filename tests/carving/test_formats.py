"""The carving parsers and range walk on synthetic data (no disk images): ends found by
parsing, lying headers refused, bounds kept (issue 17)."""

from __future__ import annotations

import io
import itertools
import random
import struct

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
        "limit: 5 carved items (max items per area) reached at image byte 10240")
    # An item over the bytes-per-item bound is a partial carve, not read.
    whole = _disk([(0, jpeg)], 512 * 64)
    got = list(carve_range(lambda o, n: whole[o:o + n], 0, len(whole), None, 0, 512,
                           Bounds(5, 1 << 30, len(jpeg) - 1), CarveState()))
    assert got[0].data is None and "max bytes per item" in (got[0].partial or "")


def test_runs_of_consecutive_blocks() -> None:
    hits = [(8192, 0), (12288, 4096), (40960, 8192), (45056, 12288), (4096, 99 * 4096)]
    assert runs_of(hits) == [(4096, 99 * 4096, 4096), (8192, 0, 8192), (40960, 8192, 8192)]
