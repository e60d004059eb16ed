"""Container expansion and carving: every picture found with the original's MD5, every
hostile container recorded with a reason, nothing written anywhere."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import random
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import py7zr
import pytest

from tests.members import builders as b
from tests.support import TESTDATA
from triage.members import (
    Budget,
    ContainerError,
    Found,
    Limits,
    Member,
    Note,
    Problem,
    container_kind,
    expand,
    find_embedded,
    inner_path,
    walk,
)
from triage.members.carve import JPEG_SOI, PNG_SIGNATURE, gif_end, jpeg_end, png_end

JPEG = b.jpeg(1)
PNG = b.png(2)
MD5_JPEG = hashlib.md5(JPEG).hexdigest()
MD5_PNG = hashlib.md5(PNG).hexdigest()

# ------------------------------------------------------------ no writes, no paths opened

_WATCH: list[tuple[str, tuple[Any, ...]]] | None = None
_WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.symlink", "os.link", "os.chmod",
                 "os.utime", "shutil.copyfile", "shutil.move", "tempfile.mkstemp",
                 "tempfile.mkdtemp", "os.truncate"}


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _WATCH is None:
        return
    if event == "open":
        path, mode, flags = [*args, None, None][:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        # Reading library files (lazy imports) is fine; any write, or opening a path that
        # came from evidence (a member name), is not.
        if writing or (isinstance(path, str | bytes) and b"x.jpg" in os.fsencode(path)):
            _WATCH.append((event, args))
    elif event in _WRITE_EVENTS:
        _WATCH.append((event, args))


sys.addaudithook(_hook)


@contextmanager
def no_writes() -> Iterator[None]:
    """Fail if anything inside the block opens a file for writing or touches the disk."""
    global _WATCH
    _WATCH = []
    try:
        yield
    finally:
        seen, _WATCH = _WATCH, None
    assert not seen, f"file-system writes during expansion: {seen[:5]}"


def run(data: bytes, name: bytes = b"evidence", limits: Limits | None = None,
        ) -> list[Found | Problem]:
    with no_writes():
        return list(walk(data, limits or Limits(), name=name))


def found(events: list[Found | Problem]) -> list[Found]:
    return [e for e in events if isinstance(e, Found)]


def problems(events: list[Found | Problem]) -> list[Problem]:
    return [e for e in events if isinstance(e, Problem)]


def md5s(events: list[Found | Problem]) -> dict[str, tuple[bytes, ...]]:
    """MD5 of every member with data -> the path where it was first found."""
    out: dict[str, tuple[bytes, ...]] = {}
    for e in found(events):
        if e.member.data is not None:
            out.setdefault(hashlib.md5(e.member.data).hexdigest(), e.path)
    return out


def test_the_write_guard_itself_catches_writes(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="file-system writes"), no_writes():
        (tmp_path / "x.jpg").write_bytes(b"x")


# --------------------------------------------------------------------- carriers


def _gz(data: bytes, name: str) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=1_600_000_000) as f:
        f.write(data)
    return out.getvalue()


def _7z(members: list[tuple[str, bytes]], password: str | None = None,
        header: bool = False) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password, header_encryption=header) as z:
        for name, data in members:
            z.writestr(data, name)
    return out.getvalue()


RANDOM_1572 = hashlib.shake_256(b"triage-carving").digest(1572)

CARRIERS = {
    # name -> (container bytes, the inner path at which the JPEG must be found)
    "zip": (b.zip_bytes([("dir/photo.jpg", JPEG), ("p.png", PNG)]),
            (b"dir/photo.jpg",)),
    "zip-stored.boo": (b.zip_bytes([("photo.jpg", JPEG), ("p.png", PNG)], deflate=False),
                       (b"photo.jpg",)),
    "tar.gz": (_gz(b.tar_bytes([("a/photo.jpg", JPEG), ("p.png", PNG)]), "t.tar"),
               (b"t.tar", b"a/photo.jpg")),
    "tar.bz2": (bz2.compress(b.tar_bytes([("photo.jpg", JPEG), ("p.png", PNG)])),
                (b"tar", b"photo.jpg")),
    "tar.xz": (lzma.compress(b.tar_bytes([("photo.jpg", JPEG), ("p.png", PNG)])),
               (b"tar", b"photo.jpg")),
    "nested3.zip": (b.nested_zip(b.zip_bytes([("photo.jpg", JPEG), ("p.png", PNG)]),
                                 "inner.zip", 2),
                    (b"level2.zip", b"inner.zip", b"photo.jpg")),
    "docx": (b.docx(JPEG), (b"word/media/image1.jpeg",)),
    "doc": (b.old_doc(JPEG), (b"Data", b"@93.jpg")),
    "pdf": (b.pdf_with_images([(JPEG, "/DCTDecode"),
                               (zlib.compress(JPEG), "[/FlateDecode /DCTDecode]")]),
            (b"obj5-0.jpg",)),
    "appended.bin": (RANDOM_1572 + JPEG + b"trailing", (b"@1572.jpg",)),
    "7z": (_7z([("d/photo.jpg", JPEG), ("p.png", PNG)]), (b"d/photo.jpg",)),
}


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_picture_found_with_original_md5(carrier: str) -> None:
    data, where = CARRIERS[carrier]
    events = run(data, name=carrier.encode())
    assert not problems(events), problems(events)
    got = md5s(events)
    assert MD5_JPEG in got, [e.path for e in found(events)]
    assert got[MD5_JPEG] == where
    if carrier.startswith(("zip", "tar", "nested", "7z")):
        assert MD5_PNG in got
    if carrier == "pdf":  # the [/FlateDecode /DCTDecode] copy too
        assert [hashlib.md5(e.member.data or b"").hexdigest() for e in found(events)] == \
            [MD5_JPEG, MD5_JPEG]


def test_boo_extension_is_irrelevant() -> None:
    data, _ = CARRIERS["zip-stored.boo"]
    assert container_kind(data[:4096], "application/octet-stream") == "zip"


def test_nested_paths_and_kinds() -> None:
    data, _ = CARRIERS["nested3.zip"]
    events = found(run(data))
    assert [(e.path, e.container) for e in events] == [
        ((b"level2.zip",), "zip"), ((b"level2.zip", b"inner.zip"), "zip"),
        ((b"level2.zip", b"inner.zip", b"photo.jpg"), None),
        ((b"level2.zip", b"inner.zip", b"p.png"), None)]
    assert inner_path(events[2].path) == b"level2.zip!inner.zip!photo.jpg"


def test_pdf_members_and_flags() -> None:
    raw_pixels = zlib.compress(bytes(8 * 8 * 3))
    data = b.pdf_with_images([(JPEG, "/DCTDecode"), (raw_pixels, "/FlateDecode")])
    events = found(run(data))
    assert [(e.member.name, e.member.flags) for e in events] == [
        (b"obj5-0.jpg", ()), (b"obj6-0.flatedecode", ("pdf-image-flatedecode",))]
    assert events[1].member.data == raw_pixels  # raw stream, never decoded


def test_gzip_names_stored_and_derived() -> None:
    events = found(run(_gz(JPEG, "holiday.jpg"), name=b"x.gz"))
    assert events[0].member.name == b"holiday.jpg" and events[0].member.flags == ()
    assert events[0].member.mtime == 1_600_000_000
    events = found(run(gzip.compress(JPEG), name=b"dir/holiday.jpg.gz"))
    assert events[0].member.name == b"holiday.jpg"
    assert "derived-name" in events[0].member.flags
    events = found(run(bz2.compress(JPEG), name=b"a.tbz2"))
    assert events[0].member.name == b"a.tar"


# ------------------------------------------------------------------- hostile input


def test_zip_bomb_declared_ratio() -> None:
    events = run(b.zip_bomb(1), name=b"bomb.zip")
    (m,) = [e.member for e in found(events)]
    assert m.data is None and "limit:ratio" in m.flags
    assert m.reason is not None and m.reason.startswith("limit: compression ratio 1011.2 > 200")
    assert "(max_ratio" in m.reason


def test_zip_bomb_lying_header_is_not_expanded() -> None:
    events = run(b.zip_bomb(1, declared=1000), name=b"bomb.zip")
    (m,) = [e.member for e in found(events)]
    assert m.data is None and "corrupt" in m.flags and "CRC" in (m.reason or "")


def test_gzip_bomb_counted_while_streaming() -> None:
    payload = zlib.compress(bytes(64 << 20), 9)  # 64 MiB of zeros, ~64 KiB compressed
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
    d = zlib.decompressobj()
    raw = payload[2:-4]  # strip the zlib header and Adler-32: a raw deflate stream
    assert d.decompress(payload)
    gz = header + raw + zlib.crc32(bytes(64 << 20)).to_bytes(4, "little") + \
        (64 << 20).to_bytes(4, "little")
    events = run(gz, name=b"zeros.gz")
    (m,) = [e.member for e in found(events)]
    assert m.data is None and "limit:ratio" in m.flags
    assert m.reason is not None and "or more > 200 (max_ratio" in m.reason


def test_member_and_total_byte_limits() -> None:
    big = os.urandom(300_000)
    data = b.zip_bytes([("a.bin", big), ("b.bin", big), ("c.bin", big)], deflate=False)
    events = found(run(data, limits=Limits(max_member_bytes=200_000)))
    assert all(e.member.data is None and "limit:member-bytes" in e.member.flags
               for e in events)
    assert "(max_member_bytes)" in (events[0].member.reason or "")
    events = found(run(data, limits=Limits(max_total_bytes=700_000)))
    assert [e.member.data is not None for e in events] == [True, True, False]
    assert "(max_total_bytes)" in (events[2].member.reason or "")


def test_twenty_deep_nesting_stops_at_max_depth() -> None:
    data = b.nested_zip(JPEG, "deep.jpg", 20)
    events = run(data, name=b"deep.zip")
    (p,) = problems(events)
    assert p.reason == "limit: nesting depth 6 > 5 (max_depth)"
    assert len(p.path) == 5  # the 6th container is the member at depth 5
    assert p.path == tuple(f"level{i}.zip".encode() for i in range(2, 7))
    assert MD5_JPEG not in md5s(events)
    events = run(data, limits=Limits(max_depth=25))
    assert not problems(events) and MD5_JPEG in md5s(events)


def test_traversal_and_absolute_names_are_flagged_and_hashed(tmp_path: Path) -> None:
    data = b.raw_zip([b.stored_entry(b"../../x.jpg", JPEG),
                      b.stored_entry(b"/etc/x.jpg", JPEG),
                      b.stored_entry(b"C:\\x.jpg", JPEG)])
    cwd = os.getcwd()
    os.chdir(tmp_path / ".")
    try:
        events = found(run(data))
    finally:
        os.chdir(cwd)
    assert [(e.member.name, e.member.flags) for e in events] == [
        (b"../../x.jpg", ("traversal-name", "dos-local-time")),
        (b"/etc/x.jpg", ("absolute-name", "dos-local-time")),
        (b"C:\\x.jpg", ("absolute-name", "dos-local-time"))]
    assert all(hashlib.md5(e.member.data or b"").hexdigest() == MD5_JPEG for e in events)
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "x.jpg").exists()
    assert not Path("/etc/x.jpg").exists()


def test_encrypted_zip_member_is_recorded() -> None:
    data = b.raw_zip([b.stored_entry(b"secret.jpg", JPEG, flags=0x1),
                      b.stored_entry(b"open.jpg", JPEG)])
    events = found(run(data))
    assert [e.member.name for e in events] == [b"secret.jpg", b"open.jpg"]
    assert events[0].member.data is None and "encrypted" in events[0].member.flags
    assert events[0].member.reason == "encrypted: zip member is encrypted (no password tried)"
    assert hashlib.md5(events[1].member.data or b"").hexdigest() == MD5_JPEG


def test_encrypted_7z_member_and_header() -> None:
    events = run(_7z([("p.jpg", JPEG)], password="pw"))
    (e,) = found(events)
    assert e.member.data is None and "encrypted" in e.member.flags
    events = run(_7z([("p.jpg", JPEG)], password="pw", header=True))
    (p,) = problems(events)
    assert p.path == () and "encrypted" in p.flags


def test_corrupt_and_truncated_containers() -> None:
    zdata = b.zip_bytes([("photo.jpg", JPEG)])
    events = run(zdata[: len(zdata) // 2])  # central directory cut off
    (p,) = problems(events)
    assert p.reason.startswith("corrupt zip:")
    gz = _gz(JPEG, "p.jpg")
    (e,) = found(run(gz[:-20]))
    assert e.member.data is None and "truncated" in (e.member.reason or "")
    bad_tar = b.tar_bytes([("a.jpg", JPEG)])
    bad_tar = bad_tar[:512] + bytes(100)  # header says more data than there is
    events = run(bad_tar, name=b"t.tar")
    assert any(e.member.reason for e in found(events)) or problems(events)


def test_member_count_and_time_limits() -> None:
    data = b.zip_bytes([(f"f{i}.txt", b"x") for i in range(20)])
    events = run(data, limits=Limits(max_members=5))
    assert len(found(events)) == 5
    (p,) = problems(events)
    assert p.reason == "limit: 20 members > 5 (max_members)"
    ticks = iter(range(0, 10_000, 10))
    budget = Budget(Limits(max_seconds=25), clock=lambda: float(next(ticks)))
    with pytest.raises(ContainerError, match=r"limit: time .* > 25 s \(max_seconds\)"):
        list(expand("zip", data, Limits(max_seconds=25), budget))


def test_rar_is_reported_unsupported() -> None:
    (p,) = problems(run(b"Rar!\x1a\x07\x01\x00" + bytes(40)))
    assert p.reason.startswith("unsupported: RAR") and p.flags == ("unsupported",)


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a container kind"):
        list(expand("iso", b"", Limits(), Budget(Limits())))


def test_expansion_is_deterministic() -> None:
    for data, _ in CARRIERS.values():
        first = [(e.path, e.member.size, e.member.flags) for e in found(run(data))]
        assert first == [(e.path, e.member.size, e.member.flags) for e in found(run(data))]


# ----------------------------------------------------------------------- carving


def _carve(data: bytes) -> list[Member]:
    return list(find_embedded(data, Limits()))


@pytest.mark.parametrize("picture", [
    JPEG, b.jpeg(3, (200, 150), progressive=True), b.jpeg(4, (33, 17), quality=100),
    PNG, b.gif(5)], ids=["jpeg", "progressive-rst", "odd-size", "png", "gif"])
def test_carved_bytes_equal_the_original(picture: bytes) -> None:
    data = RANDOM_1572 + picture + os.urandom(500) + picture
    got = _carve(data)
    assert [(m.offset, m.size) for m in got][:1] == [(1572, len(picture))]
    assert got[0].data == picture
    assert any(m.offset == 1572 + len(picture) + 500 and m.data == picture for m in got)


def test_progressive_jpeg_has_stuffing_and_many_scans() -> None:
    pic = b.jpeg(3, (200, 150), progressive=True)
    assert pic.count(b"\xff\xda") > 1 and b"\xff\x00" in pic
    assert jpeg_end(pic, 0) == len(pic)


def test_picture_at_offset_zero_is_not_reported_nor_its_thumbnail() -> None:
    # A JPEG whose APP1 segment holds another JPEG (like an EXIF thumbnail).
    thumb = b.jpeg(9, (16, 16))
    app1 = b"\xff\xe1" + (len(thumb) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + thumb
    outer = JPEG[:2] + app1 + JPEG[2:]
    assert jpeg_end(outer, 0) == len(outer)
    assert _carve(outer) == []
    assert [m.offset for m in _carve(outer + JPEG)] == [len(outer)]


def test_broken_candidates_are_skipped() -> None:
    truncated = JPEG[: len(JPEG) // 2]
    assert jpeg_end(truncated, 0) is None
    assert png_end(PNG[:-5], 0) is None
    assert gif_end(b.gif(1)[:-1], 0) is None
    fake = b"\xff\xd8\xff\xe0\x00\x10JFIF" + os.urandom(50) + b"\x89PNG\r\n\x1a\nxxxxGIF89a"
    data = RANDOM_1572 + fake + truncated + b"...." + PNG
    got = _carve(data)
    assert [(m.data == PNG) for m in got] == [True]


def test_carving_limits() -> None:
    data = RANDOM_1572 + (JPEG + b"gap") * 4
    with pytest.raises(ContainerError, match=r"more than 2 embedded pictures \(max_members\)"):
        list(find_embedded(data, Limits(max_members=2)))
    got = list(find_embedded(data, Limits(max_member_bytes=100)))
    assert all(m.data is None and "(max_member_bytes)" in (m.reason or "") for m in got)


class _ScanCountingBytes(bytes):
    """``bytes`` that adds up how many bytes the searches for carving signatures cover."""

    signatures = frozenset((JPEG_SOI, PNG_SIGNATURE, b"GIF8"))
    scanned = 0

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        at = super().find(sub, start, end)
        if sub in self.signatures:
            lo = start or 0
            hi = len(self) if end is None else end
            self.scanned += (at + len(sub) if at >= 0 else hi) - lo
        return at


def test_carving_thousands_of_pictures_is_linear() -> None:
    """Issue 11, defect 6: a blob of 3,000 small pictures (1,000 GIFs, then 1,000 PNGs,
    then 1,000 JPEGs, random gaps of 0-40 bytes, some back to back) yields every one, in
    order, at its offset, with the original's MD5; and each signature is searched forward
    over the data about once (the quadratic version searched again for the JPEG and PNG
    signatures after every GIF, up to the first JPEG: hundreds of times the data)."""
    rng = random.Random(11)
    makers = (b.gif, b.png, b.jpeg)
    blob = bytearray(rng.randbytes(100))
    expected = []
    for i in range(3000):
        pic = makers[i // 1000](i, (8 + i % 5, 8 + i % 7))
        at = len(blob)
        expected.append((at, f"@{at}.{('gif', 'png', 'jpg')[i // 1000]}".encode(), len(pic),
                         hashlib.md5(pic).hexdigest()))
        blob += pic + rng.randbytes(rng.choice((0, 1, 7, 40)))
    data = _ScanCountingBytes(blob)
    got = list(find_embedded(data, Limits()))
    assert [(m.offset, m.name, m.size, hashlib.md5(m.data or b"").hexdigest())
            for m in got] == expected
    assert all(m.kind == "embedded" and m.reason is None for m in got)
    scanned, size = data.scanned, len(data)
    assert scanned <= 2 * 3 * size  # 3 signatures, each searched over the data ~once


# -------------------------------------------------------------------- detection


@pytest.mark.parametrize(("head", "kind"), [
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06" + bytes(18), "zip"), (b"\x1f\x8b\x08\x00", "gzip"),
    (b"BZh91AY&SY", "bzip2"), (b"BZh9\x17\x72\x45\x38\x50\x90", "bzip2"), (b"BZh9xx", None),
    (b"\xfd7zXZ\x00", "xz"), (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"), (b"%PDF-1.7", "pdf"),
    (b"Rar!\x1a\x07\x00", "rar"), (JPEG, None), (PNG, None), (b"", None),
    (b"hello %PDF-1.4", None)])
def test_container_kind_by_content(head: bytes, kind: str | None) -> None:
    assert container_kind(head, "") == kind


def test_tar_detection_ustar_and_v7() -> None:
    assert container_kind(b.tar_bytes([("a", b"x")])[:4096], "") == "tar"
    v7 = (TESTDATA / "media/small/tar.tar").read_bytes()
    assert container_kind(v7, "") == "tar"
    assert container_kind(b"%PDF" + bytes(600), "") is None


# ----------------------------------------------------------- the shared test data

#: Reasons these files really deserve: (path relative to media/, reason prefix).
EXPECTED_PROBLEMS = {
    "small/rar14.rar": "unsupported: RAR", "small/rar4.rar": "unsupported: RAR",
    "small/rar5.rar": "unsupported: RAR", "exiftool/ZIP.rar": "unsupported: RAR",
    # 130 bytes: no xref table, no /Type keys; qpdf's recovery finds no pages.
    "small/pdf.pdf": "corrupt PDF: PdfError",
}
#: Notes these files deserve (not problems): a hybrid ISO 9660 + GPT boot image cut to
#: 40 KiB is recognised as a disk image inside the evidence (GPT header) that declares far
#: more than it holds: a truncated image, a note (no readable volume in what is left).
EXPECTED_NOTES = {
    "exiftool/ISO.iso": "nested disk image (raw, gpt): not opened: a boot record or a "
                        "truncated image: it declares 391118848 bytes and holds 40960",
}
#: Members the sweep must find (path, inner path).
EXPECTED_MEMBERS = {
    ("exiftool/OOXML.docx", b"docProps/thumbnail.jpeg"),
    ("exiftool/OpenDoc.ods", b"Thumbnails/thumbnail.png"),
    ("exiftool/ZIP.zip", b"test.txt"), ("exiftool/ZIP.gz", b"test.txt"),
    ("exiftool/PDF.pdf", b"obj6-0.jpg"), ("exiftool/PDF2.pdf", b"obj5-0.jpg"),
    ("exiftool/FlashPix.ppt", b"PowerPoint Document"),
    ("small/gzip-name.gz", b"n"), ("small/tar.tar", b"n"), ("small/bzip2.bz2", b"bzip2"),
}


def test_shared_testdata_archives_and_documents() -> None:
    media = TESTDATA / "media"
    if not media.is_dir():
        pytest.fail(f"shared test data not found at {media}")
    seen_problems: dict[str, str] = {}
    seen_notes: dict[str, str] = {}
    seen_members: set[tuple[str, bytes]] = set()
    kinds: dict[str, str] = {}
    for sub in ("small", "exiftool"):
        for path in sorted((media / sub).iterdir()):
            rel = f"{sub}/{path.name}"
            data = path.read_bytes()
            kind = container_kind(data[:4096], "")
            if kind is None:
                continue
            kinds[rel] = kind
            for e in run(data, name=path.name.encode()):
                if isinstance(e, Problem):
                    seen_problems[rel] = e.reason
                    continue
                if isinstance(e, Note):
                    if "not opened" in e.text:
                        seen_notes[rel] = e.text
                    continue
                seen_members.add((rel, inner_path(e.path)))
                if e.member.entry_kind == "directory":  # listed, as on a file system
                    assert e.member.status == "skipped"
                    continue
                assert e.member.data is not None, (rel, e.member.reason)
    assert {k: v.split(":")[0] for k, v in seen_problems.items()} == {
        k: v.split(":")[0] for k, v in EXPECTED_PROBLEMS.items()}
    for rel, prefix in EXPECTED_PROBLEMS.items():
        assert seen_problems[rel].startswith(prefix), (rel, seen_problems[rel])
    assert set(seen_notes) == set(EXPECTED_NOTES)
    for rel, prefix in EXPECTED_NOTES.items():
        assert seen_notes[rel].startswith(prefix), (rel, seen_notes[rel])
    assert EXPECTED_MEMBERS <= seen_members, EXPECTED_MEMBERS - seen_members
    assert {kinds[p] for p in ("exiftool/OOXML.docx", "exiftool/OpenDoc.ods",
                               "exiftool/iWork.numbers", "small/zip.zip")} == {"zip"}
    assert kinds["exiftool/FlashPix.ppt"] == "ole2"


def test_damaged_carriers_never_raise() -> None:
    """Byte flips and truncations of every carrier: only Found/Problem events, no
    exception, no writes (the parsers see hostile input)."""
    import random

    rng = random.Random(1)
    outcomes = set()
    for name, (data, _) in sorted(CARRIERS.items()):
        for _ in range(40):
            d = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                d[rng.randrange(len(d))] = rng.randrange(256)
            if rng.random() < 0.3:
                d = d[: rng.randrange(len(d))]
            events = run(bytes(d), name=name.encode(), limits=Limits(max_seconds=5))
            outcomes.add(any(isinstance(e, Problem) for e in events))
    assert outcomes == {True, False}
