"""Disk images through the whole scan (workers, case database), and the evidence left
exactly as it was: the same bytes and times before and after, for directories and images."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.images.helpers import read_oracle, unpack
from tests.support import TESTDATA, rows, scan_json

EXT2 = TESTDATA / "disk" / "dfvfs"
ORACLE = TESTDATA / "answers" / "tsk" / "dfvfs__ext2.raw.tsv"


def _oracle() -> set[tuple[str, int, str]]:
    return {(r.path, r.size or 0, r.sha256 or "") for r in read_oracle(ORACLE)
            if r.is_file and not r.deleted}


def _scanned(case: Path, prefix: str = "") -> set[tuple[str, int, str]]:
    got = rows(case, "SELECT f.display_path, f.size, h.value FROM files f JOIN hashes h "
                     "ON h.file_id=f.id AND h.algorithm='sha256' WHERE f.parent_id IS NULL "
                     "AND f.deleted=0")
    return {(r["display_path"].removeprefix(prefix), r["size"], r["value"]) for r in got}


@pytest.mark.parametrize("container", ["ext2.E01", "ext2.split.E01", "ext2.splitraw.000",
                                       "ext2.vmdk", "ext2.vhd", "ext2.qcow2", "ext2.raw.gz"])
def test_every_container_scans_to_the_oracle(container: str, tmp_path: Path) -> None:
    image = unpack(EXT2 / container, tmp_path / "img")
    case = tmp_path / "case"
    summary = scan_json(image, case)
    assert _scanned(case) == _oracle()
    assert not rows(case, "SELECT * FROM files WHERE status='pending'")
    assert summary["entries"] >= 5


def test_the_same_content_extracted_to_a_directory_gives_the_same_set(tmp_path: Path) -> None:
    """tsk_recover (The Sleuth Kit) copies the allocated files out; the directory source must
    give the same (path, size, SHA-256) set as the image."""
    if shutil.which("tsk_recover") is None:
        pytest.fail("tsk_recover not found: apt-get install sleuthkit")
    image = unpack(EXT2 / "ext2.raw.gz", tmp_path / "img")
    out = tmp_path / "extracted"
    subprocess.run(["tsk_recover", "-a", str(image), str(out)], check=True,
                   capture_output=True)
    # tsk_recover writes the (fast) symbolic link a_link as a regular file of 24 zero bytes;
    # it is no file of the image, so it goes (the image source records it as a link).
    (out / "a_link").unlink()
    case = tmp_path / "case"
    scan_json(out, case)
    assert _scanned(case) == _oracle()


def _contents(root: Path) -> dict[str, tuple[str, int, int]]:
    """SHA-256, size and mtime (ns) of every regular file below root (reads them)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size,
                           st.st_mtime_ns)
    return out


def test_directory_evidence_is_unchanged(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    shutil.copytree(TESTDATA / "media" / "small", ev)
    contents = _contents(ev)
    for p in contents:                # atime older than mtime: any read would move it
        os.utime(p, ns=(1_000_000_000_000_000_000, 1_500_000_000_000_000_000))
    times = {p: (os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns) for p in contents}
    scan_json(ev, tmp_path / "case")
    assert {p: (os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns) for p in contents} == times
    after = _contents(ev)             # (this read moves the atimes: times were checked first)
    assert {p: v[:2] for p, v in after.items()} == {p: v[:2] for p, v in contents.items()}


def test_image_evidence_is_unchanged(tmp_path: Path) -> None:
    image = TESTDATA / "disk" / "sleuthkit" / "imageformat_mmls_1.E01"
    local = tmp_path / image.name
    shutil.copy2(image, local)
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    mtime = local.stat().st_mtime_ns
    scan_json(local, tmp_path / "case")
    assert hashlib.sha256(local.read_bytes()).hexdigest() == digest
    assert local.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["case", image.name])


def test_an_image_enumeration_hang_honours_timeout(tmp_path: Path) -> None:
    """Issue 10 #6: ``--timeout`` reaches every source's enumeration (disk images had a
    hidden 300 s): a libtsk walk that stops making progress is killed after ``--timeout``
    seconds, the volume is an error entry with that reason, and the scan completes."""
    image = unpack(EXT2 / "ext2.E01", tmp_path / "img")
    case = tmp_path / "case"
    summary = scan_json(image, case, "--timeout", "2",
                        env={"TRIAGE_INJECT_FAULT": "enumerate:hang:*"}, expect=(3,))
    err = rows(case, "SELECT * FROM files WHERE status='error'")
    assert len(err) == 1 and err[0]["identity"].endswith(":volume:error")
    assert "hung (no progress for 2 s; child killed)" in err[0]["status_reason"]
    assert summary["by_status"] == {"error": 1}
    assert rows(case, "SELECT status FROM runs")[0]["status"] == "completed"
    # Without the fault the same image lists its files: the error came from the hang.
    assert scan_json(image, tmp_path / "clean")["by_status"].get("done", 0) >= 3
