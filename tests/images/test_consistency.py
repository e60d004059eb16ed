"""The block-ownership consistency check of the TSK walk (:class:`triage.sources.tsk.
BlockCheck`): damaged file systems end with recorded problems, healthy ones with none, and
a deleted file whose blocks were reused says by whom (RELIABILITY #6)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.images.helpers import DISK, HERE, scan, unpack
from tests.support import rows, scan_json
from triage.sources.tsk import (
    CROSS_LINKED,
    FAT_RECOVERY_NOTE,
    OVERWRITTEN_NOTE,
    UNALLOCATED_BLOCKS,
)


def test_corrupt_exfat_recorded_errors_through_the_scan(tmp_path: Path) -> None:
    image = unpack(DISK / "exfat/error.tar.xz", tmp_path / "img", "error.img")
    case = tmp_path / "case"
    scan_json(image, case)
    got = {(r["display_path"], r["error_class"], r["message"]) for r in rows(
        case, "SELECT f.display_path, e.error_class, e.message FROM errors e "
              "JOIN files f ON f.id = e.file_id WHERE e.stage = 'filesystem'")}
    # FILE3 and FILE4 point at one cluster (block 4192 = cluster 14, 512-byte sectors).
    assert ("3_DOUBLE/FILE3.TXT", CROSS_LINKED,
            "shares 8 blocks (first: block 4192) with 3_DOUBLE/FILE4.TXT") in got
    assert ("3_DOUBLE/FILE4.TXT", CROSS_LINKED,
            "shares 8 blocks (first: block 4192) with 3_DOUBLE/FILE3.TXT") in got
    # FILE5's size was raised from 4 to 8192 bytes: its second cluster is FILE6's.
    assert ("4_FILESIZE/FILE5.TXT", CROSS_LINKED,
            "shares 8 blocks (first: block 4216) with 1_FAT/FILE6.TXT") in got
    # The allocation bitmap says clusters 12 and 13 are free; FILE2 and FILE1 use them.
    assert ("0_BITMAP/FILE2.TXT", UNALLOCATED_BLOCKS,
            "uses 8 blocks that the allocation bitmap marks free (first: block 4176)") in got
    assert ("0_BITMAP/FILE1.TXT", UNALLOCATED_BLOCKS,
            "uses 8 blocks that the allocation bitmap marks free (first: block 4184)") in got
    summary = [m for p, c, m in got if c == "FileSystemInconsistent"]
    assert summary == ["file system inconsistencies found: 4 entries cross-linked; 2 entries "
                       "using blocks the allocation bitmap marks free"]
    volume = rows(case, "SELECT status, status_stage, status_reason FROM files "
                        "WHERE identity = '0:volume:consistency'")
    assert [tuple(r) for r in volume] == [("error", "filesystem", summary[0])]
    # Nothing else is flagged: the directories and the healthy files have no problem.
    assert {p for p, _c, _m in got} == {"", "0_BITMAP/FILE1.TXT", "0_BITMAP/FILE2.TXT",
                                        "1_FAT/FILE6.TXT", "3_DOUBLE/FILE3.TXT",
                                        "3_DOUBLE/FILE4.TXT", "4_FILESIZE/FILE5.TXT"}


# Every healthy image: the image of each answers/tsk listing (all but exfat error.img),
# the clean exFAT, the four DFTT images, every small-fs image libtsk opens.
HEALTHY = sorted({
    ("dfvfs/ext2.raw.gz", None), ("dfvfs/ext2.E01", None), ("dfvfs/mbr.raw.gz", None),
    ("dfvfs/hfsplus.raw", None), ("dfvfs/iso9660.raw", None), ("dfvfs/ímynd.dd", None),
    ("sleuthkit/image.dd", None), ("sleuthkit/image.E01", None), ("sleuthkit/image.iso", None),
    ("sleuthkit/imageformat_mmls_1.E01", None), ("exfat/exfat.tar.xz", "exfat.img"),
    ("dftt/6-undel-fat.zip", "6-fat-undel.dd"), ("dftt/7-undel-ntfs.zip", "7-ntfs-undel.dd"),
    ("dftt/9-fat-label.zip", "9-fat-label.dd"), ("dftt/5-fat-daylight.zip", "daylight.dd"),
    ("small-fs/test.ext2", None), ("small-fs/test.ext3", None), ("small-fs/test.ext4", None),
    ("small-fs/test.fat", None), ("small-fs/test.fat16.gz", None),
    ("small-fs/test.iso9660j", None), ("small-fs/test.msdos", None),
    ("small-fs/test.vfat", None),
}, key=str)


@pytest.mark.parametrize(("image", "member"), HEALTHY, ids=[i for i, _m in HEALTHY])
def test_healthy_images_raise_no_alarm(image: str, member: str | None,
                                       tmp_path: Path) -> None:
    result = scan(unpack(DISK / image, tmp_path, member), read=False)
    problems = [(a.identity, p) for a in result.amendments for p in a.problems]
    assert not problems
    assert not [e for e in result.entries if e.identity.endswith(":volume:consistency")]
    overwritten = {a.identity: a.notes for a in result.amendments if a.notes}
    if image == "dftt/9-fat-label.zip":
        # "New Folder" was deleted (renamed to dir1 by Windows): its one cluster (sector
        # 192) is dir1's now, as istat shows for both.
        assert overwritten == {"0:5:default:New Folder": (
            "deleted: content overwritten: 1 of 1 blocks now belong to dir1",)}
    else:
        # DFTT 6 and 7: the answer pages' MD5s of every deleted file are still what is read
        # (test_image_oracles), so none of their blocks was reused.
        assert overwritten == {}


@pytest.fixture(scope="module")
def reuse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reuse")
    proc = subprocess.run(["sh", str(HERE / "build_reuse.sh"), str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"build_reuse.sh failed: {proc.stderr.strip()}")
    return out


def test_ext2_deleted_file_whose_blocks_were_reused(reuse: Path) -> None:
    result = scan(reuse / "reuse-ext2.raw", read=False)
    old = result.files()[b"dir/OLD.BIN"]
    assert old.deleted and OVERWRITTEN_NOTE in old.notes
    notes = {a.identity: a.notes for a in result.amendments}
    # 20 data blocks + 1 indirect block; NEW.BIN (8000 bytes) took 8 of them.
    assert notes == {old.identity: (
        "deleted: content overwritten: 8 of 21 blocks now belong to NEW.BIN",)}
    assert not [p for a in result.amendments for p in a.problems]


def test_fat_deleted_file_whose_first_cluster_was_reused(reuse: Path, tmp_path: Path) -> None:
    # libtsk recovers a deleted FAT file from its first cluster, skipping allocated ones;
    # when the first cluster itself is allocated it gives that cluster alone, which is
    # NEW.BIN's content now.
    case = tmp_path / "case"
    scan_json(reuse / "reuse.raw", case)
    got = rows(case, "SELECT display_path, notes FROM files WHERE deleted = 1 AND kind='file'")
    assert [(r["display_path"], json.loads(r["notes"])) for r in got] == [(
        "DIR/_LD.BIN", [OVERWRITTEN_NOTE, FAT_RECOVERY_NOTE,
                        "deleted: content overwritten: 1 of 1 blocks now belong to NEW.BIN"])]
    assert not rows(case, "SELECT * FROM errors WHERE stage = 'filesystem'")
