"""Container outcomes (issue 11 defects 5 and 10; issue 12's coverage gaps), in the library.

A bound that is hit, or content recognised but not expanded, is a coverage gap
(``incomplete``) whose reason names the bound and its value; damage is an ``error``; a tar
entry that is not a regular file is listed, ``skipped``, with its kind. The container's
time counts expansion work only, never the caller's decoding and hashing.
"""

from __future__ import annotations

import io
import re
import struct
import tarfile
import warnings
import zipfile

import pytest
from PIL import Image

from tests.members import builders as b
from tests.support import TESTDATA
from triage.members import Budget, ContainerError, Found, Limits, Problem, archives, expand, walk
from triage.picturecheck import jpeg_shortfall


def _zip_of(n: int, size: int = 1, stored: bool = True) -> bytes:
    out = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w", method) as zf:
        for i in range(n):
            zf.writestr(f"m{i:05d}.bin", bytes([i % 251]) * size)
    return out.getvalue()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_spent_on_members_by_the_caller_is_not_expansion_time() -> None:
    """40 members, each taking the caller 1 s (decoding a 12 MP scan), under a 5 s
    container budget: all 40 are found, no time limit. Before the fix the budget ran on
    wall time and the container stopped after 5 of them, silently."""
    clock = Clock()
    limits = Limits(max_seconds=5)
    found = 0
    for ev in walk(_zip_of(40), limits, budget=Budget(limits, clock=clock)):
        assert isinstance(ev, Found), ev
        found += 1
        clock.now += 1.0  # the caller decodes and hashes the member
    assert found == 40


class TickingClock(Clock):
    """Every reading of the clock costs a second: expansion work that is itself slow."""

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_slow_expansion_still_stops_at_the_time_bound_as_a_coverage_gap() -> None:
    limits = Limits(max_seconds=5)
    events = list(walk(_zip_of(40), limits, budget=Budget(limits, clock=TickingClock())))
    problems = [e for e in events if isinstance(e, Problem)]
    assert problems[-1].path == ()  # the zip; a member being carved then may be one too
    for p in problems:
        assert p.status == "incomplete", p
        assert re.fullmatch(r"limit: time \d+\.\d s > 5 s \(max_seconds\)", p.reason)
    assert 0 < sum(isinstance(e, Found) for e in events) < 40


def _outcomes(data: bytes, limits: Limits | None = None,
              name: bytes = b"x") -> dict[tuple[bytes, ...], tuple[str, str]]:
    """{path: (status, reason)} of every member without data and every Problem."""
    out: dict[tuple[bytes, ...], tuple[str, str]] = {}
    for ev in walk(data, limits or Limits(), name=name):
        if isinstance(ev, Problem):
            out[ev.path] = (ev.status, ev.reason)
        elif isinstance(ev, Found) and ev.member.data is None:
            out[ev.path] = (ev.member.status or "", ev.member.reason or "")
    return out


def test_nesting_depth_7_stops_at_level_6_naming_the_bound() -> None:
    got = _outcomes(b.nested_zip(b.jpeg(), "x.jpg", 7))
    path = tuple(f"level{i}.zip".encode() for i in range(2, 7))
    assert got == {path: ("incomplete", "limit: nesting depth 6 > 5 (max_depth)")}


def test_20000_members_stop_at_10000_naming_the_bound() -> None:
    events = list(walk(_zip_of(20_000, size=0), Limits()))
    assert sum(isinstance(e, Found) for e in events) == 10_000
    assert [(e.path, e.status, e.reason) for e in events if isinstance(e, Problem)] == [
        ((), "incomplete", "limit: 20000 members > 10000 (max_members)")]


def test_a_4_gib_lzma2_dictionary_is_refused_before_allocating_it() -> None:
    data = b.sevenzip_with_dictionary([("a.jpg", b.jpeg()), ("b.txt", b"hello")])
    assert len(data) < 4096
    got = _outcomes(data)
    reason = ("limit: LZMA2 dictionary 4096 MiB > 1024 MiB (max_dictionary_bytes); the 7z is "
              "not expanded")
    assert got == {(b"a.jpg",): ("incomplete", reason), (b"b.txt",): ("incomplete", reason)}
    # A dictionary the bound allows (64 MiB: property 28) is read as usual.
    ok = b.sevenzip_with_dictionary([("a.jpg", b.jpeg())], lzma2_property=28)
    assert _outcomes(ok) == {}


def test_ratio_member_and_total_byte_bounds_are_coverage_gaps() -> None:
    ratio = _outcomes(b.zip_bomb(1))
    assert [s for s, _ in ratio.values()] == ["incomplete"]
    assert "(max_ratio" in next(iter(ratio.values()))[1]
    big = _outcomes(_zip_of(3, size=300_000), Limits(max_member_bytes=200_000))
    assert {s for s, _ in big.values()} == {"incomplete"} and len(big) == 3
    assert all("> 200000 (max_member_bytes)" in r for _, r in big.values())
    total = _outcomes(_zip_of(3, size=300_000), Limits(max_total_bytes=700_000))
    assert list(total.values()) == [("incomplete", "limit: total bytes 900000 > 700000 "
                                                   "(max_total_bytes)")]


def test_memory_error_while_expanding_is_a_named_bound_not_corruption(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(*_a: object, **_k: object) -> zipfile.ZipFile:
        raise MemoryError

    data = _zip_of(2)
    monkeypatch.setattr(archives.zipfile, "ZipFile", no_memory)
    limits = Limits(memory_bytes=600 << 20)
    with pytest.raises(ContainerError) as e:
        list(expand("zip", data, limits, Budget(limits)))
    assert e.value.status == "incomplete" and e.value.flags == ("limit:memory",)
    assert e.value.reason == ("limit: memory: expanding the zip container needed more than "
                              "the worker's memory limit (600 MiB, --memory-limit) "
                              "(MemoryError)")


def test_recognised_but_not_expanded_is_a_gap_and_damage_is_an_error() -> None:
    rar = _outcomes(b"Rar!\x1a\x07\x01\x00" + bytes(200))
    assert rar[()][0] == "incomplete" and rar[()][1].startswith("unsupported: RAR")
    enc = _outcomes(b.raw_zip([b.stored_entry(b"secret.jpg", b.jpeg(), flags=1)]))
    assert enc == {(b"secret.jpg",): ("incomplete", "encrypted: zip member is encrypted (no "
                                                    "password tried)")}
    whole = _zip_of(3)
    damaged = _outcomes(whole[:-30])            # the central directory's end is cut off
    assert damaged[()][0] == "error" and damaged[()][1].startswith("corrupt zip")


def test_every_tar_entry_is_listed_with_its_kind_and_link_target() -> None:
    a, p = b.jpeg(seed=3), b.png(seed=4)
    data = b.tar_every_type([("a.jpg", a), ("b.png", p)])
    got = [(m.name, m.entry_kind, m.link_target, m.status, m.reason, m.data)
           for m in expand("tar", data, Limits(), Budget(Limits()))]
    skipped = "skipped"
    assert got == [
        (b"dir", "directory", None, skipped, "not a regular file: directory", None),
        (b"a.jpg", "file", None, None, None, a),
        (b"b.png", "file", None, None, None, p),
        (b"dir/link.jpg", "symlink", b"../a.jpg", skipped, "not a regular file: symlink",
         None),
        (b"hard.jpg", "file", b"a.jpg", None, None, a),   # a hard link has the content
        (b"null", "char_device", None, skipped, "not a regular file: char_device", None),
        (b"sda", "block_device", None, skipped, "not a regular file: block_device", None),
        (b"pipe", "fifo", None, skipped, "not a regular file: fifo", None),
    ]


def test_a_hard_link_to_nothing_earlier_is_damage_and_later_entries_still_come() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        link = tarfile.TarInfo("orphan.jpg")
        link.type, link.linkname = tarfile.LNKTYPE, "missing.jpg"
        tf.addfile(link)
        ti = tarfile.TarInfo("after.jpg")
        data = b.jpeg()
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    got = [(m.name, m.status) for m in expand("tar", out.getvalue(), Limits(),
                                              Budget(Limits()))]
    assert got == [(b"orphan.jpg", "error"), (b"after.jpg", None)]


# ------------------------------------------------------------------ defect 10: JPEG


def test_a_jpeg_that_holds_16x16_of_a_65500x2700_frame_is_caught() -> None:
    why = jpeg_shortfall(b.lying_jpeg())
    assert why is not None and why.startswith("truncated JPEG: the header says 65500x2700; ")
    assert re.search(r"need at least \d{7} bytes of data, the file holds \d{2,4}$", why)
    prog = jpeg_shortfall(b.lying_jpeg(progressive=True))
    assert prog is not None and "65500x2700" in prog


def _jpeg(mode: str, size: tuple[int, int], **save: object) -> bytes:
    w, h = size
    img = Image.frombytes("RGB", size, bytes((x * 7 + y * 13 + c * 50) % 256
                                             for y in range(h) for x in range(w)
                                             for c in range(3)))
    out = io.BytesIO()
    img.convert(mode).save(out, "JPEG", **save)
    return out.getvalue()


VARIANTS = [
    ("RGB", (1, 1), {}), ("RGB", (7, 13), {"subsampling": 0}), ("RGB", (17, 9), {}),
    ("RGB", (64, 48), {"subsampling": 1, "quality": 5}), ("L", (33, 21), {}),
    ("CMYK", (20, 20), {}), ("RGB", (64, 48), {"progressive": True}),
    ("RGB", (64, 48), {"optimize": True, "quality": 95}),
    ("L", (64, 48), {"progressive": True, "optimize": True}),
    ("RGB", (96, 64), {"restart_marker_blocks": 2}),
    ("RGB", (96, 64), {"progressive": True, "restart_marker_rows": 1}),
]


@pytest.mark.parametrize(("mode", "size", "save"), VARIANTS)
def test_complete_jpegs_are_never_flagged(mode: str, size: tuple[int, int],
                                          save: dict[str, object]) -> None:
    assert jpeg_shortfall(_jpeg(mode, size, **save)) is None


def test_a_jpeg_cut_and_closed_with_eoi_is_caught_by_its_restart_markers() -> None:
    whole = _jpeg("RGB", (256, 256), restart_marker_blocks=4, quality=95)
    cut = whole[:len(whole) // 2] + b"\xff\xd9"
    Image.open(io.BytesIO(cut)).load()  # libjpeg fills the rest silently ...
    why = jpeg_shortfall(cut)           # ... this does not
    assert why is not None and "restart markers" in why


def test_testdata_jpegs_flagged_are_ones_the_decoder_refuses_too() -> None:
    """No false alarm on real-world JPEGs: every one flagged in the shared test data is
    also refused by Pillow (truncated)."""
    seen = 0
    for path in sorted((TESTDATA / "media").rglob("*")):
        if not path.is_file() or path.stat().st_size > 64 << 20:
            continue
        data = path.read_bytes()
        if not data.startswith(b"\xff\xd8\xff"):
            continue
        seen += 1
        if jpeg_shortfall(data) is None:
            continue
        with pytest.raises(OSError):
            Image.open(io.BytesIO(data)).load()
    assert seen >= 50


def test_the_lie_is_in_the_header_only() -> None:
    """The builder changes nothing but the frame size (so the test is about the check)."""
    data = b.lying_jpeg()
    sof = data.find(b"\xff\xc0")
    assert struct.unpack(">HH", data[sof + 5:sof + 9]) == (2700, 65500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert Image.open(io.BytesIO(data)).size == (65500, 2700)


def test_zip_directories_and_symbolic_links_are_listed_with_their_kind() -> None:
    """Info-ZIP's ``zip -y`` stores a link as a Unix entry (mode 0o120777) whose content is
    its target; a directory is a name ending in ``/``. Both are listed, ``skipped``."""
    out = io.BytesIO()
    jpeg = b.jpeg(seed=9)
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(zipfile.ZipInfo("photos/"), b"")
        zf.writestr("photos/a.jpg", jpeg)
        link = zipfile.ZipInfo("latest.jpg")
        link.create_system, link.external_attr = 3, (0o120777 << 16)
        zf.writestr(link, b"photos/a.jpg")
    got = [(m.name, m.entry_kind, m.link_target, m.status, m.data)
           for m in expand("zip", out.getvalue(), Limits(), Budget(Limits()))]
    assert got == [(b"photos", "directory", None, "skipped", None),
                   (b"photos/a.jpg", "file", None, None, jpeg),
                   (b"latest.jpg", "symlink", b"photos/a.jpg", "skipped", None)]


@pytest.mark.parametrize("mkfs", [
    ["mkfs.fat", "-C", "{img}", "2048"],
    ["mkfs.ext4", "-q", "-F", "{img}", "3M"],
    ["mkfs.ntfs", "-q", "-F", "-C", "{img}"],
])
def test_declared_size_of_real_file_systems_is_their_size(
        mkfs: list[str], tmp_path: pytest.TempPathFactory) -> None:
    """The size a file system declares (used to tell a boot record from a disk) is read
    from the fields mkfs writes: the whole image, never more."""
    import shutil
    import subprocess

    from triage.sources.disk_containers import DECLARED_SIZE_HEAD_BYTES, declared_size

    if shutil.which(mkfs[0]) is None:
        pytest.skip(f"{mkfs[0]} not installed")
    img = tmp_path / "fs.img"  # type: ignore[operator]
    if mkfs[0] == "mkfs.ntfs":
        img.write_bytes(b"\0" * (4 << 20))
    subprocess.run([a.format(img=img) for a in mkfs], check=True, capture_output=True)
    data = img.read_bytes()
    declared = declared_size(data[:DECLARED_SIZE_HEAD_BYTES])
    assert declared is not None and 0.99 * len(data) <= declared <= len(data)


def test_a_boot_record_is_a_note_not_a_gap(tmp_path: pytest.TempPathFactory) -> None:
    """NTFS $Boot (the first 8 KiB of the volume being scanned) and a truncated file system
    declare more than they hold: a note on the file, never a coverage gap (issue 12: a
    healthy NTFS volume exits 0)."""
    import shutil
    import subprocess

    from triage.members import Note

    if shutil.which("mkfs.ntfs") is None:
        pytest.skip("mkfs.ntfs not installed")
    img = tmp_path / "ntfs.img"  # type: ignore[operator]
    img.write_bytes(b"\0" * (4 << 20))
    subprocess.run(["mkfs.ntfs", "-q", "-F", "-C", str(img)], check=True, capture_output=True)
    data = img.read_bytes()
    declared = struct.unpack_from("<Q", data, 0x28)[0] * 512
    events = list(walk(data[:8192], Limits(), name=b"$Boot"))
    assert [type(e) for e in events] == [Note], events
    assert (f"a boot record or a truncated image: it declares {declared} bytes and holds "
            "8192") in events[0].text  # type: ignore[union-attr]
    # The whole file system is opened as a disk, as before.
    whole = list(walk(data, Limits(), name=b"ntfs.img"))
    assert not any(isinstance(e, Problem) for e in whole)
    assert any(isinstance(e, Found) for e in whole)
