"""Image source on images built by build_images.sh (ext4 + debugfs, FAT + mtools, GPT,
E01 via ewfacquire) and on the damaged ones; E01 segment checks; verify-image; the
enumeration child's crash and hang paths (fault injection)."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.images.helpers import DISK, scan, unpack
from triage.errors import EvidenceError
from triage.sources.image import ImageSource, verify_image
from triage.sources.tsk import FAT_RECOVERY_NOTE, OVERWRITTEN_NOTE


@pytest.fixture(scope="module")
def built(built_images: Path) -> Path:
    """build_images.sh's images (tests/conftest.py: built once, shared; never changed)."""
    return built_images


def expected(built: Path) -> dict[str, list[tuple[str, int, str, bool]]]:
    out: dict[str, list[tuple[str, int, str, bool]]] = {"ext4": [], "fat": []}
    for line in (built / "expected.tsv").read_text().splitlines():
        vol, rest = line.split("\t", 1)
        path, size, sha, deleted = rest.rsplit("\t", 3)  # a name holds a tab
        out[vol].append((path, int(size), sha, deleted == "1"))
    return out


def check_volume(result, rows, prefix: str) -> None:  # type: ignore[no-untyped-def]
    files = result.files()
    for path, size, sha, deleted in rows:
        entry = files[(prefix + path).encode()]
        assert entry.deleted == deleted and entry.size == size, path
        read = result.read(entry)
        if sha == "-":
            # wiped.bin: deleted, extents cleared: a clear error, never zeros or the
            # empty-file digest (RELIABILITY #5).
            assert read is not None and read.error and "no data runs" in read.error
            continue
        assert read is not None and read.error is None and not read.bad_ranges, path
        assert (read.size, read.sha256) == (size, sha), path
        if deleted:
            assert OVERWRITTEN_NOTE in entry.notes


@pytest.mark.parametrize("name", ["ext4.raw", "ext4.E01", "ext4split.E01"])
def test_ext4_containers(built: Path, name: str) -> None:
    result = scan(built / name)
    check_volume(result, expected(built)["ext4"], "")
    assert result.describe["file_systems"] == ["ext4"]
    entry = result.files()[b"odd names/tab\tin name.txt"]
    assert entry.identity.startswith("0:") and entry.mtime and entry.crtime


def test_fat_deleted_file_labelled(built: Path) -> None:
    result = scan(built / "fat.raw")
    check_volume(result, expected(built)["fat"], "")
    assert FAT_RECOVERY_NOTE in result.files()[b"_ELETED.BIN"].notes


def test_gpt_two_partitions(built: Path) -> None:
    result = scan(built / "gpt.raw")
    d = result.describe
    assert d["volume_system"] == "gpt"
    assert [(v["offset"], v["fs_type"]) for v in d["volumes"]] == [
        (2048 * 512, "ext4"), (34816 * 512, "fat16")]
    check_volume(result, expected(built)["ext4"], "p1/")
    check_volume(result, expected(built)["fat"], "p2/")
    # Identities carry the partition offset: the same file in two volumes stays distinct.
    assert result.files()[b"p1/docs/readme.txt"].identity.startswith(f"{2048 * 512}:")


def test_e01_metadata_and_stored_hashes(built: Path) -> None:
    d = ImageSource(str(built / "ext4.E01")).describe()
    assert d["acquisition"]["case_number"] == "case-7"
    assert d["acquisition"]["examiner_name"] == "tester"
    raw = (built / "ext4.raw").read_bytes()
    import hashlib

    assert d["stored_hashes"] == {"md5": hashlib.md5(raw).hexdigest(),
                                  "sha1": hashlib.sha1(raw).hexdigest()}
    assert d["libewf"]["origin"] in ("debian-python3-libewf", "pypi-libewf-python")
    split = ImageSource(str(built / "ext4split.E01")).describe()
    assert len(split["segments"]) == 17 and split["size"] == len(raw)


def test_sleuthkit_e01s_stored_hashes_and_partitions() -> None:
    d = ImageSource(str(DISK / "sleuthkit/image.E01")).describe()
    assert d["stored_hashes"]["md5"] == "3ebb0b7dcd6b5fcd59a0020625d70994"
    m = ImageSource(str(DISK / "sleuthkit/imageformat_mmls_1.E01")).describe()
    assert m["stored_hashes"] == {"md5": "8ec671e301095c258224aad701740503",
                                  "sha1": "067bc6ab29685ee19b0cf82c9d15ac510d1e7d95"}
    assert [(v["offset"] // 512, v["fs_type"]) for v in m["volumes"]] == [
        (128, "ntfs"), (55424, "ntfs")]


# --------------------------------------------------------------------------- E01 segments


def _copy_set(built: Path, dest: Path) -> Path:
    dest.mkdir()
    for seg in built.glob("ext4split.E*"):
        shutil.copy(seg, dest / seg.name)
    return dest / "ext4split.E01"


def test_e01_missing_middle_segment_named(built: Path, tmp_path: Path) -> None:
    first = _copy_set(built, tmp_path / "set")
    (tmp_path / "set/ext4split.E05").unlink()
    with pytest.raises(EvidenceError, match=r"segment ext4split\.E05 is missing"):
        ImageSource(str(first))


def test_e01_missing_last_segment_named(built: Path, tmp_path: Path) -> None:
    first = _copy_set(built, tmp_path / "set")
    (tmp_path / "set/ext4split.E17").unlink()
    with pytest.raises(EvidenceError, match=r"next segment \(ext4split\.E17\) is missing"):
        ImageSource(str(first))


def test_e01_truncated_segment_named(built: Path, tmp_path: Path) -> None:
    first = _copy_set(built, tmp_path / "set")
    with open(tmp_path / "set/ext4split.E03", "r+b") as f:
        f.truncate(500_000)
    with pytest.raises(EvidenceError, match=r"ext4split\.E03: E01 segment is truncated"):
        ImageSource(str(first))


def test_bogus_segment_refused_with_recorded_error() -> None:
    result = scan(DISK / "dfvfs/bogus.001", timeout=30)
    assert [e.preset_status[0] for e in result.entries] == ["error"]  # type: ignore[index]
    assert "no partition table and no file system" in result.entries[0].preset_status[2]
    assert result.source.warnings()


# --------------------------------------------------------------------------- damaged


def test_ntfs_fuzz_case_recorded_errors_no_crash() -> None:
    path = next((DISK / "fuzz").glob("clusterfuzz-*ntfs*"))
    result = scan(path, timeout=30)
    errors = result.errors()
    assert errors and all(e.preset_status[2] for e in errors)  # type: ignore[index]
    reasons = " ".join(e.preset_status[2] for e in errors)  # type: ignore[index]
    assert "cannot list directory" in reasons or "without readable metadata" in reasons
    # Reads of what was found fail cleanly in the worker (no crash of this process).
    failed = [r for r in result.reads.values() if r.error]
    assert all("libtsk" in (r.error or "") or "no data" in (r.error or "") for r in failed)


def test_corrupt_exfat_finishes(tmp_path: Path) -> None:
    image = unpack(DISK / "exfat/error.tar.xz", tmp_path, "error.img")
    result = scan(image, timeout=60)
    assert result.describe["file_systems"] == ["exfat"]
    # What libtsk can see is listed (and equals the TSK listing, test_image_oracles); the
    # damaged directories (2_LOOP: a FAT chain loop) end empty, not in a hang.
    assert b"3_DOUBLE/FILE3.TXT" in result.files()


@pytest.mark.parametrize(("fault", "outcome"), [
    ("volume_done:segv", "crashed (child killed by signal SIGSEGV"),
    ("volume_done:exit", "crashed (child exited with status 3"),
    ("volume_done:hang", "hung (no progress for 3 s"),
])
def test_child_crash_or_hang_keeps_entries_and_next_volume(
        built: Path, fault: str, outcome: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TSK_FAULT", fault)
    source = ImageSource(str(built / "gpt.raw"), timeout=3)
    entries = list(source.entries())
    errors = [e for e in entries if e.identity.endswith(":volume:error")]
    # Each volume's child dies after sending its entries: both volumes' entries are kept,
    # each volume gets an error entry, and the scan went on to the second volume.
    assert [e.path for e in errors] == [b"p1", b"p2"]
    assert all(outcome in e.preset_status[2] for e in errors)  # type: ignore[index]
    paths = {e.path for e in entries}
    assert b"p1/docs/readme.txt" in paths and b"p2/docs/README.TXT" in paths
    assert len(source.warnings()) == 2


def test_child_crash_during_probe(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TSK_FAULT", "start:segv")
    source = ImageSource(str(built / "ext4.raw"), timeout=5)
    assert "crashed" in source.describe()["error"]
    entries = list(source.entries())
    assert len(entries) == 1 and entries[0].preset_status[0] == "error"  # type: ignore[index]


def test_spec_round_trip(built: Path) -> None:
    import pickle

    source = ImageSource(str(built / "ext4split.E01"))
    again = ImageSource.from_spec(pickle.loads(pickle.dumps(source.spec()))[1])
    assert again.path == source.path and ImageSource.detect(str(built / "ext4.raw"))
    assert not ImageSource.detect(str(built))


# --------------------------------------------------------------------------- verify


def _corrupt_stored_md5(src: Path, dest: Path) -> None:
    """Copy an E01 and change its stored MD5 (hash and digest sections, checksums redone),
    leaving the media data intact: verification must report a mismatch."""
    data = bytearray(src.read_bytes())
    offset = 13
    while offset + 76 <= len(data):
        kind = bytes(data[offset:offset + 16]).rstrip(b"\0")
        nxt = int.from_bytes(data[offset + 16:offset + 24], "little")
        body = offset + 76
        if kind == b"hash":
            data[body] ^= 0xFF
            data[body + 32:body + 36] = zlib.adler32(bytes(data[body:body + 32])).to_bytes(
                4, "little")
        elif kind == b"digest":
            data[body] ^= 0xFF
            data[body + 76:body + 80] = zlib.adler32(bytes(data[body:body + 76])).to_bytes(
                4, "little")
        if kind in (b"done", b"next") or nxt <= offset:
            break
        offset = nxt
    dest.write_bytes(bytes(data))


def test_verify_image_match_and_cli(built: Path, tmp_path: Path) -> None:
    from triage.case import Case
    from triage.cli_image import verify_image_command

    for image in (DISK / "sleuthkit/image.E01", DISK / "sleuthkit/imageformat_mmls_1.E01",
                  DISK / "dfvfs/ext2.split.E01", built / "ext4split.E01"):
        result = verify_image(str(image))
        assert result["result"] == "match", image
    assert result["compared"] == {"md5": True, "sha1": True}

    import typer

    app = typer.Typer()
    app.command("verify-image")(verify_image_command)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    Case.open(tmp_path / "case").close()  # verify-image --case records, never creates
    ok = runner.invoke(app, ["verify-image", str(DISK / "sleuthkit/imageformat_mmls_1.E01"),
                             "--case", str(tmp_path / "case")])
    assert ok.exit_code == 0, ok.output
    assert "VERIFIED" in ok.output and "8ec671e301095c258224aad701740503" in ok.output
    with Case.open(tmp_path / "case", create=False) as c:
        rows = c.query("SELECT action, details FROM audit WHERE action = 'image.verify'")
    assert len(rows) == 1 and "8ec671e301095c258224aad701740503" in rows[0]["details"]

    bad = tmp_path / "tampered.E01"
    _corrupt_stored_md5(built / "ext4.E01", bad)
    mismatch = runner.invoke(app, ["verify-image", str(bad)])
    # Issue 12's exit-code table: 7 mismatch, 8 nothing stored to compare with.
    assert mismatch.exit_code == 7 and "MISMATCH" in mismatch.output, mismatch.output
    raw = runner.invoke(app, ["verify-image", str(built / "ext4.raw")])
    assert raw.exit_code == 8 and "NOT VERIFIED" in raw.output
    missing = runner.invoke(app, ["verify-image", str(tmp_path / "nope.E01")])
    assert missing.exit_code == 4
