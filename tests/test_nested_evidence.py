"""Disk images inside the evidence (issue 10 item 5): detected by content, recorded with a
note, and opened under the usual bounds, their files listed as items.

Oracles: the images are built by tests/images/build_images.sh (mkfs.ext4 -d, mkfs.fat +
mcopy, sfdisk, ewfacquire) whose expected.tsv holds sha256sum of every source file; the
shared dfvfs ext2 set (ext2.E01/.vmdk/.vhd/.qcow2, same file system) with the MD5s its
MANIFEST lists. Also the two registries' contracts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.support import TESTDATA, rows, scan_json
from triage.members import MEMBER_KINDS, Found, Limits, Note, Problem, container_kind, walk
from triage.members import registry as member_registry
from triage.members.disk import nested_kind
from triage.sources import disk_containers as dc

DFVFS = TESTDATA / "disk" / "dfvfs"
#: MANIFEST.md: the files of the dfvfs ext2 file system and their MD5s.
EXT2_FILES = {b"a_directory/a_file": "85bebf486af24792085f769afa46717d",
              b"a_directory/another_file": "d54ff73404ed6041a3bd66850b061bff",
              b"passwords.txt": "39cb097008d17660abd0539891a672af"}
EXT2_IMAGES = {"ext2.E01": "ewf", "ext2.vmdk": "vmdk", "ext2.vhd": "vhdi",
               "ext2.qcow2": "qcow", "ext2.raw.gz": "raw"}


def _read(name: str) -> bytes:
    data = (DFVFS / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


# ------------------------------------------------------------------------- registries


def test_registries_refuse_duplicates_and_kinds_after_the_last() -> None:
    zip_kind = MEMBER_KINDS["zip"]
    with pytest.raises(ValueError, match="already registered"):
        member_registry.register(zip_kind)
    with pytest.raises(ValueError, match="after the last kind"):
        member_registry.register(member_registry.MemberKind("new", zip_kind.detect,
                                                            zip_kind.expand))
    assert list(MEMBER_KINDS)[-1] == "tar" and MEMBER_KINDS["tar"].last
    with pytest.raises(ValueError, match="already registered"):
        dc.register(dc.DISK_KINDS["ewf"])
    with pytest.raises(ValueError, match="after the catch-all"):
        dc.register(dc.DiskKind("new", lambda p: False, dc.DISK_KINDS["raw"].open))
    assert list(dc.DISK_KINDS)[-1] == "raw" and dc.DISK_KINDS["raw"].catch_all


@pytest.mark.parametrize("name", sorted(EXT2_IMAGES))
def test_nested_detection_by_content_restores_the_position(name: str) -> None:
    data = _read(name)
    stream = io.BytesIO(data)
    stream.seek(77)
    assert nested_kind(stream) == EXT2_IMAGES[name]
    assert stream.tell() == 77
    assert container_kind(data[:1 << 20]) == "disk"
    # The same bytes under another name are the same kind: never decided by name.
    assert dc.detect_nested(data[:dc.LAYOUT_HEAD_BYTES]) == EXT2_IMAGES[name]


def test_plain_data_is_not_a_disk_image() -> None:
    rng = bytes((i * 7919 + 13) % 256 for i in range(70_000))
    for data in (rng, bytes(70_000), b"\xff\xd8\xff\xe0" + rng, _zip([("a", b"x")])):
        assert dc.detect_nested(data[:dc.LAYOUT_HEAD_BYTES]) is None
    # An MBR-like 0x55AA at 510 with nonsense partition entries is not a partition table.
    fake = bytearray(rng[:1024])
    fake[510:512] = b"\x55\xaa"
    fake[446] = 0x33
    assert dc.has_disk_layout(bytes(fake)) is None


# ------------------------------------------------------------------- library level


def test_every_ext2_container_inside_a_zip_gives_the_same_files() -> None:
    names = sorted(EXT2_IMAGES)
    archive = _zip([(f"imgs/{n.removesuffix('.gz')}", _read(n)) for n in names])
    events = list(walk(archive, Limits(), name=b"evidence.zip"))
    for n in names:
        inner = f"imgs/{n.removesuffix('.gz')}".encode()
        got = {e.path[1]: hashlib.md5(e.member.data).hexdigest() for e in events
               if isinstance(e, Found) and e.path[:1] == (inner,) and len(e.path) == 2
               and e.member.data is not None}
        assert got == EXT2_FILES, n
        notes = [e.text for e in events if isinstance(e, Note) and e.path == (inner,)]
        assert notes == [f"nested disk image ({EXT2_IMAGES[n]}): opened read-only; "
                         "3 files listed as items"], n
    assert not [e for e in events if isinstance(e, Problem)]


def test_a_segment_of_an_e01_set_is_detected_and_not_opened() -> None:
    events = list(walk(_zip([("part.E01", _read("ext2.split.E01"))]), Limits()))
    problems = [e for e in events if isinstance(e, Problem)]
    assert [(p.path, p.flags) for p in problems] == [((b"part.E01",),
                                                      ("nested-disk", "unsupported"))]
    assert problems[0].reason == ("nested disk image (ewf): not opened: one segment of a "
                                  "multi-segment E01 set (its other segments are separate "
                                  "files)")
    assert [e.path for e in events if isinstance(e, Found)] == [(b"part.E01",)]


def test_nested_image_members_obey_the_limits() -> None:
    events = list(walk(_read("ext2.E01"), Limits(max_members=2), name=b"ext2.E01"))
    assert len([e for e in events if isinstance(e, Found)]) == 2
    assert [e.reason for e in events if isinstance(e, Problem)] == [
        "limit: more than 2 members (max_members)"]
    depth = list(walk(_zip([("x.E01", _read("ext2.E01"))]), Limits(max_depth=1)))
    assert [e.reason for e in depth if isinstance(e, Problem)] == [
        "limit: nesting depth 2 > 1 (max_depth)"]


# ------------------------------------------------------------------- through a scan


@pytest.fixture(scope="module")
def built(built_images: Path) -> Path:
    """build_images.sh's images (tests/conftest.py: built once, shared; never changed)."""
    return built_images


def _expected(built: Path) -> dict[str, list[tuple[str, int, str, bool]]]:
    out: dict[str, list[tuple[str, int, str, bool]]] = {"ext4": [], "fat": []}
    for line in (built / "expected.tsv").read_text().splitlines():
        vol, rest = line.split("\t", 1)
        path, size, sha, deleted = rest.rsplit("\t", 3)  # a name holds a tab
        out[vol].append((path, int(size), sha, deleted == "1"))
    return out


@pytest.fixture(scope="module")
def case(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nested")
    shutil.copy(built / "ext4.E01", root / "ext4.E01")
    shutil.copy(built / "ext4split.E01", root / "ext4split.E01")
    (root / "disks.zip").write_bytes(_zip([("gpt.raw", (built / "gpt.raw").read_bytes())]))
    c = tmp_path_factory.mktemp("case") / "c"
    scan_json(root, c, "--no-perceptual", expect=(0, 3))
    return c


def _items(case: Path, prefix: str) -> dict[str, tuple[str, int | None, str | None]]:
    """{path below prefix: (status, size, sha256)} of a case's inner items (exact path
    bytes, not the display form)."""
    out = {}
    for r in rows(case, "SELECT f.path, f.status, f.size, h.value FROM files f "
                        "LEFT JOIN hashes h ON h.file_id=f.id AND h.algorithm='sha256' "
                        "WHERE f.parent_id IS NOT NULL"):
        path = bytes(r["path"]).decode()
        if path.startswith(prefix):
            out[path[len(prefix):]] = (r["status"], r["size"], r["value"])
    return out


def _messages(case: Path, path: str) -> list[str]:
    return [r["message"] for r in rows(
        case, "SELECT e.message FROM errors e JOIN files f ON f.id=e.file_id "
              "WHERE f.display_path=? AND e.error_class='NestedDiskImage'", (path,))]


def test_an_e01_in_a_folder_is_opened_and_its_files_hashed(case: Path, built: Path) -> None:
    items = _items(case, "ext4.E01!")
    for path, size, sha, _deleted in _expected(built)["ext4"]:
        if sha == "-":  # wiped.bin: extents cleared, a reason, never a digest of zeros
            assert items[path][0] == "error" and items[path][2] is None
            continue
        assert items[path] == ("done", size, sha), path
    assert _messages(case, "ext4.E01")[0].startswith(
        "nested disk image (ewf): opened read-only; ")
    deleted = rows(case, "SELECT notes FROM files WHERE display_path='ext4.E01!deleted.bin'")
    assert "deleted" in deleted[0]["notes"]


def test_a_partitioned_raw_disk_inside_a_zip_is_opened(case: Path, built: Path) -> None:
    items = _items(case, "disks.zip!gpt.raw!")
    expected = _expected(built)
    for vol, part in (("ext4", "p1/"), ("fat", "p2/")):
        for path, size, sha, _deleted in expected[vol]:
            if sha != "-":
                assert items[part + path] == ("done", size, sha), path
    assert _messages(case, "disks.zip!gpt.raw")[0].startswith(
        "nested disk image (raw): opened read-only; ")


def _outcome(case: Path, path: str) -> tuple[str, str | None]:
    r = rows(case, "SELECT status, status_reason FROM files WHERE display_path=?", (path,))[0]
    return r["status"], r["status_reason"]


def test_a_segment_of_a_set_in_a_folder_is_recorded_not_opened(case: Path) -> None:
    # Hashed as any file (its digests are matched), but not looked into: a coverage gap.
    assert _outcome(case, "ext4split.E01") == (
        "incomplete", "nested disk image (ewf): not opened: one segment of a multi-segment "
        "E01 set (its other segments are separate files)")
    assert not _items(case, "ext4split.E01!")
    assert rows(case, "SELECT count(*) AS n FROM hashes h JOIN files f ON f.id=h.file_id "
                      "WHERE f.display_path='ext4split.E01'")[0]["n"] >= 3


def test_too_large_to_open_in_memory_says_so(built: Path, tmp_path: Path) -> None:
    root = tmp_path / "ev"
    root.mkdir()
    shutil.copy(built / "ext4.E01", root / "ext4.E01")
    size = (root / "ext4.E01").stat().st_size
    assert size > 1 << 20
    c = tmp_path / "case"
    out = scan_json(root, c, "--no-perceptual", "--container-max-mb", "1", expect=(0, 8))
    assert _outcome(c, "ext4.E01") == (
        "incomplete", f"nested disk image (ewf): not opened: {size} bytes is over "
        f"--container-max-mb ({1 << 20} bytes); scan it as evidence of its own")
    assert out["by_outcome"]["coverage_gap"] == 1
    assert not _items(c, "ext4.E01!")
