"""Metadata of pictures and videos (issue 16 item 2): the typed fields against exiftool
(``exiftool -n -j``, Debian ``libimage-exiftool-perl``) on the shared samples and on
pictures generated with known tags; bounds and hostile EXIF; nothing on the terminal."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, TiffImagePlugin

from tests import metadata_oracle as oracle
from tests.support import TESTDATA, rows, run_triage, scan_json
from triage import metadata

SAMPLES = TESTDATA / "media" / "exiftool"
needs_exiftool = pytest.mark.skipif(not oracle.available(),
                                    reason="exiftool not installed (scripts/bootstrap.sh)")

#: Where triage and exiftool differ on the shared samples, and why (docs/metadata.md).
KNOWN_DIFFERENCES = {
    # GPSTimeStamp is 0/0 0/0 0/0 (undefined): exiftool warns and prints 00:00:00,
    # triage leaves the field empty (the tag row keeps what was written).
    ("InfiRay.jpg", "gps_time"): (None, "00:00:00"),
    # The RIFF IDIT chunk says "2009/10/27 12:14:34": exiftool 12.57 drops the seconds
    # of this form; FFmpeg (and triage) keep them.
    ("Pentax.avi", "datetime_original"): ("2009:10:27 12:14:34", "2009:10:27 12:14:00"),
}
#: Files exiftool finds EXIF in that triage has no metadata row for: formats Pillow does
#: not decode or whose EXIF it does not read (RAW containers, PSD resources, JPEG 2000
#: boxes, XMP files), docs/metadata.md.
NOT_READ = {"BPG.bpg", "CanonRaw.cr3", "CaptureOne.eip", "FLIF.flif", "FujiFilm.raf",
            "GIMP.xcf", "Jpeg2000.jp2", "MIFF.miff", "Minolta.mrw", "PDF.pdf", "PSP.psp",
            "Panasonic.rw2", "Photoshop.psd", "SigmaDP2.x3f", "XMP.xml"}


def _compare(case: Path, directory: Path) -> tuple[dict[tuple[str, str], Any], int, set[str]]:
    found = rows(case, "SELECT m.*, f.display_path, f.media_kind FROM media_metadata m "
                 "JOIN files f ON f.id = m.file_id WHERE f.parent_id IS NULL")
    tags = oracle.run(directory / r["display_path"] for r in found)
    diffs = {}
    for r in found:
        want = oracle.expected(tags[r["display_path"]], r["media_kind"] == "video")
        for field, pair in oracle.differences(oracle.ours(r), want).items():
            diffs[(r["display_path"], field)] = pair
    return diffs, len(found), {r["display_path"] for r in found}


@pytest.fixture(scope="module")
def sample_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = tmp_path_factory.mktemp("meta") / "case"
    scan_json(SAMPLES, case)
    return case


@needs_exiftool
def test_fields_equal_exiftool_on_shared_samples(sample_case: Path) -> None:
    diffs, compared, have = _compare(sample_case, SAMPLES)
    assert diffs == KNOWN_DIFFERENCES
    assert compared >= 45
    # every sample exiftool finds EXIF in has a row, but for the formats listed
    everything = oracle.run(sorted(SAMPLES.iterdir()))
    with_exif = {n for n, t in everything.items()
                 if any(k.startswith(("IFD0:", "ExifIFD:", "GPS:")) for k in t)}
    assert with_exif - have == NOT_READ
    # the samples exercise the fields compared (a comparison of empty columns proves nothing)
    filled = rows(sample_case, "SELECT count(gps_latitude) AS gps, count(offset_original) AS "
                  "off, sum(thumbnail) AS thumb, count(lens_model) AS lens, "
                  "count(serial) AS serial, count(gps_altitude) AS alt FROM media_metadata")[0]
    assert filled["gps"] >= 5 and filled["off"] >= 1 and filled["thumb"] >= 10
    assert filled["lens"] >= 2 and filled["serial"] >= 1 and filled["alt"] >= 3


def test_video_tags_and_free_text(sample_case: Path) -> None:
    mov = rows(sample_case, "SELECT m.* FROM media_metadata m JOIN files f ON f.id=m.file_id "
               "WHERE f.display_path='QuickTime.mov'")[0]
    assert mov["datetime_original"] == "2005:08:11 14:03:54"
    assert mov["offset_original"] is None  # FFmpeg's "Z" is not the file's
    tags = {(r["source"], r["name"]): (r["value"], r["free_text"]) for r in rows(
        sample_case, "SELECT t.* FROM metadata_tags t JOIN files f ON f.id=t.file_id "
        "WHERE f.display_path='QuickTime.mov'")}
    assert tags[("container", "comment")] == ("çømménts", 1)
    assert tags[("container", "com.apple.quicktime.artist")] == ("årtist", 1)
    assert tags[("stream0", "vendor_id")] == ("pent", 0)
    gps = rows(sample_case, "SELECT t.* FROM metadata_tags t JOIN files f ON f.id=t.file_id "
               "WHERE f.display_path='GPS.jpg' AND t.name IN ('ImageDescription', "
               "'GPSLatitudeRef', 'Make')")
    assert {(r["source"], r["name"], r["value"], r["free_text"]) for r in gps} == {
        ("ifd0", "ImageDescription", "Communications", 1), ("gps", "GPSLatitudeRef", "N", 0),
        ("ifd0", "Make", "FUJIFILM", 0)}


# -- pictures generated with known tags --------------------------------------------------
KNOWN: dict[str, Any] = {
    "make": "TriageCam", "model": "TC-1 Mark\x1b]0;II", "serial": "SN0042-7",
    "lens_make": "TriageOptics", "lens_model": "TO 35mm f/2", "software": "tc-fw 1.2",
    "datetime_original": "2021:06:30 23:59:58", "offset_original": "-03:30",
    "datetime_digitized": "2021:07:01 00:00:01", "offset_digitized": "+05:45",
    "gps_latitude": -(33 + 51 / 60 + 54.5 / 3600), "gps_longitude": -(151 + 12 / 60 + 36 / 3600),
    "gps_altitude": -27.5, "gps_date": "2021-07-01", "gps_time": "03:29:58",
    "orientation": 6, "image_unique_id": "0123456789abcdef0123456789abcdef",
    "thumbnail": 0,
}


def _exif(**over: Any) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "TriageCam", "TC-1 Mark\x1b]0;II", "tc-fw 1.2"
    exif[0x0112] = 6
    exif[0x9C9C] = "XPSECRET".encode("utf-16-le") + b"\0\0"
    ex = exif.get_ifd(0x8769)
    ex.update({0x9003: "2021:06:30 23:59:58", 0x9004: "2021:07:01 00:00:01",
               0x9011: "-03:30", 0x9012: "+05:45", 0xA431: "SN0042-7",
               0xA433: "TriageOptics", 0xA434: "TO 35mm f/2",
               0xA420: "0123456789abcdef0123456789abcdef",
               0x9286: b"ASCII\0\0\0UCSECRET comment"})
    gps = exif.get_ifd(0x8825)
    gps.update({0x00: b"\x02\x03\x00\x00", 0x01: "S",
                0x02: (33.0, 51.0, Fraction(109, 2)), 0x03: "W", 0x04: (151.0, 12.0, 36.0),
                0x05: b"\x01", 0x06: Fraction(55, 2), 0x07: (3.0, 29.0, 58.0),
                0x1D: "2021:07:01"})
    for k, v in over.items():
        exif[int(k)] = v
    return exif


def _pictures(directory: Path) -> None:
    im = Image.new("RGB", (64, 48), (90, 120, 150))
    exif = _exif()
    im.save(directory / "cam.jpg", exif=exif)
    im.save(directory / "cam.png", exif=exif)
    im.save(directory / "cam.webp", exif=exif)
    # (Pillow's TIFF writer keeps IFD0 only; TIFF is covered by the shared samples)


@needs_exiftool
def test_generated_pictures_known_tags_and_exiftool(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    _pictures(ev)
    case = tmp_path / "case"
    scan_json(ev, case)
    found = {r["display_path"]: r for r in rows(
        case, "SELECT m.*, f.display_path, f.media_kind FROM media_metadata m "
        "JOIN files f ON f.id = m.file_id")}
    assert set(found) == {"cam.jpg", "cam.png", "cam.webp"}
    known = dict(KNOWN, model="TC-1 Mark\\x1b]0;II")  # escaped as every evidence value
    for name, r in found.items():
        got = oracle.ours(r)
        want = {k: round(v, oracle.PLACES) if isinstance(v, float) else v
                for k, v in known.items()}
        assert got == want, name
    diffs, compared, _ = _compare(case, ev)
    # exiftool gives the escape character as it is; triage escapes it visibly (nowhere else differs)
    assert diffs == {(n, "model"): ("TC-1 Mark\\x1b]0;II", "TC-1 Mark\x1b]0;II") for n in found}
    assert compared == 3
    comment = rows(case, "SELECT value, free_text FROM metadata_tags t JOIN files f ON "
                   "f.id=t.file_id WHERE f.display_path='cam.jpg' AND name IN "
                   "('UserComment', 'XPComment') ORDER BY name")
    assert [tuple(r) for r in comment] == [("UCSECRET comment", 1), ("XPSECRET", 1)]


def test_metadata_not_on_terminal_or_in_logs(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    _pictures(ev)
    case = tmp_path / "case"
    secrets = ("TriageCam", "SN0042-7", "UCSECRET", "XPSECRET", "TriageOptics", "33.86",
               "151.21", "2021:06:30")
    outputs = []
    for extra in ((), ("--json",)):
        proc = run_triage("scan", str(ev), "--case", str(case), "--no-match", *extra)
        assert proc.returncode in (0, 3), proc.stderr
        outputs += [proc.stdout, proc.stderr]
    exports = []
    for fmt in ("html", "csv", "jsonl"):
        proc = run_triage("report", str(case), "--format", fmt)
        assert proc.returncode == 0, proc.stderr
        outputs += [proc.stdout, proc.stderr]
    for path in case.rglob("*"):
        if path.is_file() and path.name.split(".")[0] != "case":
            text = path.read_bytes().decode("utf-8", "replace")
            (exports if path.parent.name == "exports" else outputs).append(text)
    for text in outputs:
        for s in secrets:
            assert s not in text
    # Exports show the metadata (docs/reports.md), but free text only when asked for.
    assert len(exports) == 6  # three exports and their manifests
    # (CSV and JSONL: every file; the HTML shows the metadata of files with hits: none here)
    assert sum("TriageCam" in t for t in exports) == 2
    for text in exports:
        for s in ("UCSECRET", "XPSECRET"):
            assert s not in text
    # ... while the case holds them (the check above can fail)
    assert rows(case, "SELECT count(*) FROM metadata_tags WHERE value LIKE '%UCSECRET%'"
                )[0][0] == 3
    assert rows(case, "SELECT count(*) FROM media_metadata WHERE make='TriageCam'")[0][0] == 3


# -- bounds and hostile EXIF --------------------------------------------------------------
def _tiff_ifd(entries: list[tuple[int, int, int, bytes]], next_ifd: int = 0,
              at: int = 8) -> bytes:
    """One little-endian IFD: (tag, type, count, 4-byte value/offset) entries."""
    out = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")[:4]
    return out + struct.pack("<I", next_ifd)


def _hostile_exif() -> bytes:
    head = b"II*\x00" + struct.pack("<I", 8)
    entries = [
        (0x010F, 2, 0xFFFFFFF0, struct.pack("<I", 40)),  # Make: a huge count
        (0x8769, 4, 1, struct.pack("<I", 8)),            # Exif IFD -> IFD0 itself (loop)
        (0x8825, 4, 1, struct.pack("<I", 0x7FFFFFF0)),   # GPS IFD far outside the data
        (0x0110, 2, 200, struct.pack("<I", 0xFFFFFF00)),  # Model: offset out of range
        (0x9286, 7, 0x10000000, struct.pack("<I", 20)),  # UserComment: 256 MiB claimed
        (0x0112, 3, 1, struct.pack("<H", 0xFFFF)),
    ]
    return head + _tiff_ifd(entries, next_ifd=8) + b"\xff" * 64  # IFD1 -> IFD0 (loop)


def _many_tags_exif(n: int, long_value: int) -> bytes:
    head = b"II*\x00" + struct.pack("<I", 8)
    count = n + 1
    data_at = 8 + 2 + 12 * count + 4
    entries = [(0x010E, 2, long_value, struct.pack("<I", data_at))]
    entries += [(0xC000 + i, 3, 1, struct.pack("<H", i)) for i in range(n)]
    entries.sort()
    return head + _tiff_ifd(entries) + b"A" * (long_value - 1) + b"\0"


def _jpeg_with(exif: bytes) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(buf, "JPEG", exif=b"Exif\0\0" + exif)
    return buf.getvalue()


def test_hostile_exif_is_bounded_and_never_raises() -> None:
    im = Image.open(io.BytesIO(_jpeg_with(_hostile_exif())))
    meta, notes = metadata.from_picture(im)
    assert meta is not None and meta.orientation == 65535
    assert meta.make is None and meta.gps_latitude is None
    assert all(len(t.value) <= metadata.MAX_VALUE for t in meta.tags)
    assert all(n.stage == "metadata" and "(" in n.message for n in notes)


def test_tag_count_and_value_length_bounds() -> None:
    im = Image.open(io.BytesIO(_jpeg_with(_many_tags_exif(2500, 9000))))
    meta, notes = metadata.from_picture(im)
    assert meta is not None and not notes
    assert len(meta.tags) == metadata.MAX_TAGS
    assert meta.tags_dropped == 2501 - metadata.MAX_TAGS
    desc = next(t for t in meta.tags if t.name == "ImageDescription")
    assert desc.truncated and len(desc.value) == metadata.MAX_VALUE and desc.free_text
    assert metadata.render(b"\x01" * 5000) == ("01" * (metadata.MAX_VALUE // 2), True)
    assert metadata.render(b"\x01\xff") == ("01ff", False)
    assert metadata.render("a\x1b[31mb\x00\x00") == ("a\\x1b[31mb", False)


def test_hostile_exif_scan_keeps_the_file_done(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "hostile.jpg").write_bytes(_jpeg_with(_hostile_exif()))
    (ev / "many.jpg").write_bytes(_jpeg_with(_many_tags_exif(2500, 9000)))
    case = tmp_path / "case"
    scan_json(ev, case, expect=(0,))
    files = rows(case, "SELECT f.display_path, f.status, (SELECT count(*) FROM hashes h "
                 "WHERE h.file_id=f.id AND h.algorithm='pdq') AS pdq, m.tags, m.tags_dropped "
                 "FROM files f LEFT JOIN media_metadata m ON m.file_id=f.id "
                 "ORDER BY f.display_path")
    assert [tuple(r) for r in files] == [("hostile.jpg", "done", 1, len(
        metadata.from_picture(Image.open(ev / "hostile.jpg"))[0].tags), 0),  # type: ignore
        ("many.jpg", "done", 1, metadata.MAX_TAGS, 501)]


def test_pillow_parses_the_generated_tiff_ifd() -> None:
    """The crafted IFDs are what they claim (else the bound tests prove nothing)."""
    data = _many_tags_exif(3, 10)
    ifd = TiffImagePlugin.ImageFileDirectory_v2(data[:8])
    fp = io.BytesIO(data)
    fp.seek(8)
    ifd.load(fp)
    assert len(ifd) == 4 and ifd[0x010E] == "A" * 9


def _long8_orientation_exif(value: int) -> bytes:
    """IFD0 with Orientation stored as LONG8 (type 16) out of line, and a Make."""
    head = b"II*\x00" + struct.pack("<I", 8)
    data_at = 8 + 2 + 12 * 2 + 4
    entries = [(0x010F, 2, 4, b"MKR\0"), (0x0112, 16, 1, struct.pack("<I", data_at))]
    return head + _tiff_ifd(entries) + struct.pack("<Q", value)


def test_integer_fields_outside_sqlite_range_do_not_stop_the_scan(tmp_path: Path) -> None:
    """Cold review: an EXIF LONG8 orientation of 2**64 - 1 reached the STRICT INTEGER
    column and crashed every scan of the evidence (and every resume). The typed field is
    left empty; the tag row keeps the value as text."""
    meta, _ = metadata.from_picture(Image.open(io.BytesIO(
        _jpeg_with(_long8_orientation_exif(2**64 - 1)))))
    assert meta is not None and meta.orientation is None and meta.make == "MKR"
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "long8.jpg").write_bytes(_jpeg_with(_long8_orientation_exif(2**64 - 1)))
    (ev / "fits.jpg").write_bytes(_jpeg_with(_long8_orientation_exif(6)))
    case = tmp_path / "case"
    scan_json(ev, case, "--no-match", expect=(0,))
    got = rows(case, "SELECT f.display_path, f.status, m.orientation, m.make, "
               "(SELECT value FROM metadata_tags t WHERE t.file_id=f.id AND "
               "t.name='Orientation') FROM files f JOIN media_metadata m ON m.file_id=f.id "
               "ORDER BY f.display_path")
    assert [tuple(r) for r in got] == [("fits.jpg", "done", 6, "MKR", "6"),
                                       ("long8.jpg", "done", None, "MKR", str(2**64 - 1))]


@pytest.mark.parametrize(("value", "text"), [
    ((12, 30, 59.9999999), "12:30:60"), ((12, 30, 59.5), "12:30:59.5"),
    ((Fraction(14, 1), Fraction(58, 1), Fraction(2401, 100)), "14:58:24.01"),
    ((0, 0, 0), "00:00:00")])
def test_gps_time_text(value: tuple[Any, ...], text: str) -> None:
    assert metadata._gps_time(value) == text


def test_camera_owner_name_is_free_text() -> None:
    """A person's name (EXIF CameraOwnerName, 0xA430) is kept out of exports unless free
    text is asked for, like Artist and Copyright (cold review)."""
    exif = Image.Exif()
    exif[0x010F] = "Make"
    exif.get_ifd(0x8769)[0xA430] = "Jane Owner"
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(buf, "JPEG", exif=exif)
    meta, _ = metadata.from_picture(Image.open(io.BytesIO(buf.getvalue())))
    assert meta is not None
    owner = [t for t in meta.tags if t.value == "Jane Owner"]
    assert len(owner) == 1 and owner[0].free_text, meta.tags


# -- a PNG's eXIf chunk before or after its pixel data ------------------------------------
def _png_chunk(cid: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + cid + body + struct.pack(">I", zlib.crc32(cid + body))


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        length, cid = struct.unpack_from(">I4s", data, pos)
        out.append((cid, data[pos:pos + 12 + length]))
        pos += 12 + length
    return out


def _tiff_exif(make: str) -> bytes:
    """An EXIF block as a PNG eXIf chunk holds it: the TIFF header and IFDs, no Exif\\0\\0."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = make, "PNG-1"
    exif.get_ifd(0x8769)[0x9003] = "2022:03:04 05:06:07"
    block = exif.tobytes()
    assert block.startswith(b"Exif\0\0")
    return block[6:]


def _png_with(chunks: dict[str, bytes], *, animated: bool = False,
              damaged_pixels: bool = False) -> bytes:
    """A small PNG with extra chunks inserted ``before`` its first pixel data chunk (or an
    APNG's first frame control) and ``after`` its last (before IEND)."""
    buf = io.BytesIO()
    frames = [Image.new("RGB", (48, 32), c) for c in ((90, 120, 150), (200, 60, 20))]
    frames[0].save(buf, "PNG", save_all=animated, append_images=frames[1:] if animated else [])
    out, placed = buf.getvalue()[:8], False
    for cid, raw in _png_chunks(buf.getvalue()):
        if not placed and cid in (b"acTL", b"fcTL", b"IDAT"):
            out, placed = out + chunks.get("before", b""), True
        if cid == b"IEND":
            out += chunks.get("after", b"")
        if cid == b"IDAT" and damaged_pixels:  # zlib data that does not inflate, CRC right
            raw = _png_chunk(b"IDAT", b"\x78\x9c" + b"\xff" * (len(raw) - 14))
        out += raw
    return out


def _png_pictures(directory: Path) -> dict[str, str | None]:
    """PNGs with an eXIf chunk before or after the pixel data, and the Make each should
    give (None: none can be read)."""
    def exif(make: str) -> bytes:
        return _png_chunk(b"eXIf", _tiff_exif(make))

    after = _png_with({"after": exif("After")})
    before = _png_with({"before": exif("Before")})
    raw = (b"Exif\0\0" + _tiff_exif("RawProfile")).hex().encode()
    profile = b"\nexif\n" + b"%8d" % (len(raw) // 2) + b"\n" + raw + b"\n"
    pictures = {
        "before.png": (before, "Before"),
        # cut inside the pixel data: the chunk before it is read
        "before-cut.png": (before[:before.index(b"IDAT") + 10], "Before"),
        "after.png": (after, "After"),
        # no IEND: the pixels decode, the chunk is read
        "after-no-iend.png": (after[:-12], "After"),
        # cut inside the eXIf chunk: nothing to read (and a decode error when decoded)
        "after-cut.png": (after[:-12 - 20], None),
        # two eXIf chunks: the first is read (as exiftool does)
        "two.png": (_png_with({"before": exif("First"), "after": exif("Second")}), "First"),
        # after an APNG's second frame: Pillow's decode of the first frame stops before it
        "animated-after.png": (_png_with({"after": exif("Animated")}, animated=True),
                               "Animated"),
        # pixel data that does not decode
        "damaged-after.png": (_png_with({"after": exif("Damaged")}, damaged_pixels=True),
                              "Damaged"),
        # ImageMagick's raw profile in a zTXt chunk after the pixels
        "profile-after.png": (_png_with({"after": _png_chunk(
            b"zTXt", b"Raw profile type exif\0\0" + zlib.compress(profile))}), "RawProfile"),
    }
    for name, (data, _) in pictures.items():
        (directory / name).write_bytes(data)
    return {name: make for name, (_, make) in pictures.items()}


@needs_exiftool
@pytest.mark.parametrize("flags", [(), ("--no-perceptual",)], ids=["decoded", "no-perceptual"])
def test_png_exif_after_the_pixel_data_read_with_or_without_decoding(
        tmp_path: Path, flags: tuple[str, ...]) -> None:
    """Pillow reads a PNG's chunks after the pixel data only when decoding: an eXIf chunk
    there was read in a default scan and missed with --no-perceptual (and after a failed
    decode, and after an APNG's first frame in both). What the case records is exiftool's,
    decoded or not."""
    ev = tmp_path / "ev"
    ev.mkdir()
    makes = _png_pictures(ev)
    case = tmp_path / "case"
    scan_json(ev, case, *flags)
    found = {r["display_path"]: r["make"] for r in rows(
        case, "SELECT f.display_path, m.make FROM files f LEFT JOIN media_metadata m ON "
        "m.file_id = f.id")}
    assert found == makes
    diffs, compared, _ = _compare(case, ev)
    assert diffs == {} and compared == len([m for m in makes.values() if m])
    tags = rows(case, "SELECT t.source, t.name, t.value FROM metadata_tags t JOIN files f "
                "ON f.id = t.file_id WHERE f.display_path = 'after.png'")
    assert {tuple(r) for r in tags} == {("ifd0", "Make", "After"), ("ifd0", "Model", "PNG-1"),
                                        ("exif", "DateTimeOriginal", "2022:03:04 05:06:07")}
    status = {r["display_path"]: (r["status"], r["status_reason"]) for r in rows(
        case, "SELECT display_path, status, status_reason FROM files")}
    if flags:
        assert set(status.values()) == {("done", None)}
    else:
        # decoding says what is wrong with the damaged ones; their metadata is read anyway
        bad = {n: s for n, s in status.items() if s != ("done", None)}
        assert {n: s for n, (s, _) in bad.items()} == {
            "after-cut.png": "error", "before-cut.png": "error", "damaged-after.png": "error"}
        assert all(reason for _, reason in bad.values())


def test_png_metadata_of_a_picture_refused_for_its_size(tmp_path: Path) -> None:
    """A picture over --max-pixels is not decoded; its metadata (here after the pixel data)
    is still read: Pillow's decompression-bomb check is a bound on decoding."""
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "after.png").write_bytes(_png_with({"after": _png_chunk(b"eXIf",
                                                                  _tiff_exif("Big"))}))
    case = tmp_path / "case"
    scan_json(ev, case, "--max-pixels", "500")  # 48x32 = 1536, over twice the limit
    got = rows(case, "SELECT f.status, f.status_reason, m.make FROM files f "
               "LEFT JOIN media_metadata m ON m.file_id = f.id")
    assert [(r["status"], r["make"]) for r in got] == [("error", "Big")]
    assert "exceeds limit of 1000 pixels" in got[0]["status_reason"]


def test_png_tail_reads_chunks_without_decoding_and_bounds() -> None:
    exif = _png_chunk(b"eXIf", _tiff_exif("Tail"))
    data = _png_with({"after": exif})
    info, notes = metadata.png_tail(data)
    assert info == {"exif": b"Exif\0\0" + _tiff_exif("Tail")} and notes == []
    im = Image.open(io.BytesIO(data))
    meta, notes = metadata.from_picture(im, data)
    assert meta is not None and meta.make == "Tail" and notes == []
    assert im._im is None  # never decoded
    # without the bytes, only the chunks before the pixel data are read (none here)
    assert metadata.from_picture(Image.open(io.BytesIO(data))) == (None, [])
    # a text chunk Pillow's handler refuses ends the reading, with a note; before it is kept
    refused = _png_chunk(b"zTXt", b"Raw profile type exif\0\x01xx")  # unknown compression
    info, notes = metadata.png_tail(_png_with({"after": exif + refused + exif}))
    assert set(info) == {"exif"}
    assert [(n.stage, n.error_class) for n in notes] == [("metadata", "MetadataNotRead")]
    assert "SyntaxError" in notes[0].message
    # a chunk longer than the data, a chunk header cut short, not a PNG: nothing, no error
    long = data[:-12] + struct.pack(">I4s", 1 << 31, b"eXIf") + b"\0" * 8
    for bad in (long, data[:-12] + b"\0\0", b"GIF89a" + data[6:]):
        assert metadata.png_tail(bad)[1] == []
    assert metadata.png_tail(long)[0] == {"exif": b"Exif\0\0" + _tiff_exif("Tail")}
    # a flood of empty chunks is walked to a bound, with a note
    empty = struct.pack(">I4s", 0, b"abCd") + b"\0" * 4
    info, notes = metadata.png_tail(data[:-12] + empty * (metadata.MAX_PNG_CHUNKS + 10) + exif)
    assert info == {"exif": b"Exif\0\0" + _tiff_exif("Tail")}
    assert [n.error_class for n in notes] == ["MetadataNotRead"]
    assert "more than 1,000,000 chunks" in notes[0].message


def test_png_tail_never_decompresses_text_that_is_not_exif(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Text chunks after the pixel data are skipped by their keyword before anything is
    decompressed (Pillow's zTXt handler inflates 1 MiB before it looks at the keyword, and
    never counts an empty one against its bound), and a second EXIF text chunk is not
    read: a tail of 1 MiB zTXt chunks costs nothing (the review measured 2.4 ms a chunk
    before)."""
    inflates = zlib.compress(b"A" * (1 << 20), 9)
    tail = b"".join(_png_chunk(b"zTXt", key + b"\0\0" + inflates) for key in
                    [b"", b"Comment", b"XML:com.adobe.xmp"] * 150)
    exif_text = _png_chunk(b"zTXt", b"Raw profile type exif\0\0" + inflates)
    data = _png_with({"after": tail + exif_text * 150})
    from PIL import PngImagePlugin

    inflated: list[int] = []
    real = PngImagePlugin._safe_zlib_decompress

    def counted(b: bytes) -> bytes:
        inflated.append(len(b))
        return real(b)

    monkeypatch.setattr(PngImagePlugin, "_safe_zlib_decompress", counted)
    info, notes = metadata.png_tail(data)
    assert list(info) == ["Raw profile type exif"] and notes == []
    assert len(inflated) == 1  # the first EXIF text only (600 chunks inflated before)


# -- XMP orientation is not EXIF ---------------------------------------------------------
def _xmp(orientation: int, element: bool = False) -> bytes:
    """An XMP packet holding ``tiff:Orientation`` as an attribute or as an element."""
    ns = 'rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
    body = (f"<rdf:Description {ns}><tiff:Orientation>{orientation}</tiff:Orientation>"
            "</rdf:Description>" if element else
            f'<rdf:Description {ns} tiff:Orientation="{orientation}"/>')
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf='
            '"http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + body +
            '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def _xmp_pictures(directory: Path) -> dict[str, int | None]:
    """Pictures whose XMP packet says Orientation 6 (8) and the IFD0 Orientation tag each
    holds (None: none; absent from the dict: no EXIF at all)."""
    from PIL import PngImagePlugin

    im = Image.new("RGB", (32, 24), (90, 120, 150))

    def exif(orientation: int | None = None) -> Image.Exif:
        e = Image.Exif()
        e[0x010F] = "XmpCam"
        if orientation is not None:
            e[0x0112] = orientation
        return e

    def png_text(itxt: bool, **more: Any) -> dict[str, Any]:
        info = PngImagePlugin.PngInfo()
        if itxt:
            info.add_itxt("XML:com.adobe.xmp", _xmp(6).decode())
        else:
            info.add_text("XML:com.adobe.xmp", _xmp(6).decode().replace("\ufeff", ""))
        return {"pnginfo": info, **more}

    no_exif = "no EXIF"
    saves: dict[str, tuple[dict[str, Any], int | str | None]] = {
        "xmp.jpg": ({"xmp": _xmp(6)}, no_exif),
        "xmp-element.jpg": ({"xmp": _xmp(8, element=True)}, no_exif),
        "exif-xmp.jpg": ({"exif": exif(), "xmp": _xmp(6)}, None),
        "exif3-xmp.jpg": ({"exif": exif(3), "xmp": _xmp(6)}, 3),
        "itxt.png": (png_text(True), no_exif),
        "text.png": (png_text(False), no_exif),
        "exif-itxt.png": (png_text(True, exif=exif()), None),
        "xmp.webp": ({"xmp": _xmp(6)}, no_exif),
        "exif-xmp.webp": ({"exif": exif(), "xmp": _xmp(6)}, None),
        # a TIFF's EXIF is its own IFD0 (here with no Orientation, or with its own)
        "xmp.tif": ({"tiffinfo": {700: _xmp(6)}}, None),
        "own3-xmp.tif": ({"tiffinfo": {700: _xmp(6), 0x0112: 3}}, 3),
    }
    out: dict[str, int | None] = {}
    for name, (params, ifd0) in saves.items():
        im.save(directory / name, **params)
        if not isinstance(ifd0, str):
            out[name] = ifd0
    return out


def test_xmp_orientation_is_not_read_as_exif(tmp_path: Path) -> None:
    """Pillow's getexif copies an XMP packet's tiff:Orientation into the EXIF when that has
    no Orientation tag: triage recorded an IFD0 Orientation the file does not hold."""
    want = _xmp_pictures(tmp_path)
    for path in sorted(tmp_path.iterdir()):
        data = path.read_bytes()
        im = Image.open(io.BytesIO(data))
        # (the picture really carries the packet Pillow reads the orientation from)
        assert set(im.info) & metadata.XMP_INFO_KEYS, path.name
        meta, notes = metadata.from_picture(im, data)
        assert notes == [], path.name
        if path.name not in want:  # no EXIF at all
            assert meta is None, path.name
            continue
        assert meta is not None
        assert meta.orientation == want[path.name], path.name
        tags = [(t.source, t.value) for t in meta.tags if t.name == "Orientation"]
        assert tags == ([] if want[path.name] is None else [("ifd0", str(want[path.name]))])
        assert meta.make == (None if path.suffix == ".tif" else "XmpCam")
        # the open picture is untouched: Pillow's own getexif still gives its value (its
        # XMP step included), and a TIFF keeps its XMP
        assert set(im.info) & metadata.XMP_INFO_KEYS, path.name
        if path.suffix != ".png":  # (PNG's own getexif decodes)
            assert im.getexif().get(0x0112) == (want[path.name] or 6), path.name


@needs_exiftool
@pytest.mark.parametrize("flags", [(), ("--no-perceptual",)], ids=["decoded", "no-perceptual"])
def test_xmp_orientation_scan_equals_exiftool(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """What a scan records of pictures with an XMP orientation is exiftool's: IFD0
    Orientation only where the EXIF (a TIFF's IFD0) holds one, no row without EXIF."""
    ev = tmp_path / "ev"
    ev.mkdir()
    want = _xmp_pictures(ev)
    case = tmp_path / "case"
    scan_json(ev, case, *flags)
    tags = oracle.run(sorted(ev.iterdir()))
    assert len(tags) == 11 and all(t.get("XMP-tiff:Orientation") in (6, 8)
                                   for t in tags.values())
    assert {n for n, t in tags.items() if "IFD0:Orientation" in t} == {
        n for n, o in want.items() if o is not None}
    diffs, compared, have = _compare(case, ev)
    assert diffs == {} and have == set(want) and compared == len(want)
    recorded = {(r["display_path"], r["source"], r["value"]) for r in rows(
        case, "SELECT f.display_path, t.source, t.value FROM metadata_tags t JOIN files f "
        "ON f.id = t.file_id WHERE t.name = 'Orientation'")}
    assert recorded == {(n, "ifd0", str(t["IFD0:Orientation"])) for n, t in tags.items()
                        if "IFD0:Orientation" in t}


@needs_exiftool
def test_avif_transformations_are_not_read_as_exif_orientation(tmp_path: Path) -> None:
    """Pillow's AVIF open writes the orientation of the AVIF's irot/imir transformations
    into the EXIF (or makes one): triage recorded an IFD0 Orientation the file does not
    hold. Pillow's AVIF writer moves an EXIF orientation into irot/imir."""
    from PIL import features

    if not features.check("avif"):
        pytest.skip("Pillow built without AVIF")
    ev = tmp_path / "ev"
    ev.mkdir()
    im = Image.new("RGB", (32, 24), (90, 120, 150))

    def exif(orientation: int, make: str | None = None) -> Image.Exif:
        e = Image.Exif()  # (a new one each time: the writer takes the orientation out)
        e[0x0112] = orientation
        if make is not None:
            e[0x010F] = make
        return e

    im.save(ev / "rotated-only.avif", exif=exif(6))  # the EXIF held nothing else: none kept
    im.save(ev / "rotated.avif", exif=exif(6, "AvifCam"))
    im.save(ev / "upright.avif", exif=exif(1, "AvifCam"))  # (1 is not kept either)
    (ev / "rot1mir0.avif").write_bytes((TESTDATA / "media" / "pillow" / "avif" /
                                        "rot1mir0.avif").read_bytes())
    for name, pillow in (("rotated-only.avif", 6), ("rotated.avif", 6), ("upright.avif", None),
                         ("rot1mir0.avif", 5)):  # what Pillow says: the test can fail
        assert Image.open(ev / name).getexif().get(0x0112) == pillow, name
    case = tmp_path / "case"
    scan_json(ev, case)
    tags = oracle.run(sorted(ev.iterdir()))
    assert {n: t.get("IFD0:Orientation") for n, t in tags.items()} == {
        "rotated-only.avif": None, "rotated.avif": None, "upright.avif": None,
        "rot1mir0.avif": None}
    diffs, _, have = _compare(case, ev)
    assert diffs == {} and have == {"rotated.avif", "upright.avif"}
    recorded = {tuple(r) for r in rows(
        case, "SELECT f.display_path, t.source, t.name, t.value FROM metadata_tags t "
        "JOIN files f ON f.id = t.file_id")}
    assert recorded == {("rotated.avif", "ifd0", "Make", "AvifCam"),
                        ("upright.avif", "ifd0", "Make", "AvifCam")}


@needs_exiftool
def test_heif_exif_orientation_is_the_files(tmp_path: Path) -> None:
    """pillow-heif's opener rewrites the EXIF's Orientation to 1 (it applies irot itself):
    triage recorded Orientation 1 for a HEIC whose EXIF says 6."""
    pillow_heif = pytest.importorskip("pillow_heif")
    from pillow_heif.misc import set_orientation

    ev = tmp_path / "ev"
    ev.mkdir()
    im = Image.new("RGB", (64, 48), (90, 120, 150))
    for name, orientation in (("turned.heic", 6), ("upright.heic", None)):
        exif = Image.Exif()
        exif[0x010F] = "HeifCam"
        if orientation is not None:
            exif[0x0112] = orientation
        # pillow-heif's encoder, its opener not registered in this process (test_heif.py)
        pillow_heif.from_pillow(im).save(str(ev / name), quality=50, exif=exif.tobytes())
        if orientation is not None:
            # what pillow-heif's opener does to the block (the test can fail)
            info = {"exif": exif.tobytes()}
            assert set_orientation(info) == 6
            rewritten = Image.Exif()
            rewritten.load(info["exif"])
            assert rewritten[0x0112] == 1
    case = tmp_path / "case"
    scan_json(ev, case)
    tags = oracle.run(sorted(ev.iterdir()))
    assert {n: t.get("IFD0:Orientation") for n, t in tags.items()} == {
        "turned.heic": 6, "upright.heic": None}
    diffs, compared, _ = _compare(case, ev)
    assert diffs == {} and compared == 2
    recorded = {tuple(r) for r in rows(
        case, "SELECT f.display_path, t.source, t.name, t.value FROM metadata_tags t "
        "JOIN files f ON f.id = t.file_id")}
    assert recorded == {("turned.heic", "ifd0", "Make", "HeifCam"),
                        ("turned.heic", "ifd0", "Orientation", "6"),
                        ("upright.heic", "ifd0", "Make", "HeifCam")}
