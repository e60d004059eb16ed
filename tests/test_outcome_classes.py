"""Outcome classes end to end (issue 12, item 3): a real input for each class, the status it
gets and the exit code it gives through the CLI, checked against independent tools (fls,
istat and icat of The Sleuth Kit, sha256sum, sfdisk/mkfs.fat/mcopy to build a disk)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.images.helpers import DISK, unpack
from tests.support import TESTDATA, rows, run_triage
from triage.scan import ScanOptions, scan
from triage.worker import WorkerOptions

MEDIA = TESTDATA / "media"
#: A BPG picture (libmagic: image/bpg): no decoder here (HEIC was the example until
#: pillow-heif decoded it, issue 16: tests/test_heif.py).
UNDECODABLE = MEDIA / "small" / "bpg.bpg"
#: A JPEG whose pixel data is cut short: a decode error (strict decoding).
TRUNCATED = MEDIA / "pillow" / "truncated_jpeg.jpg"
#: Wide enough that rich never folds a reason in the console summary.
WIDE = {"COLUMNS": "400"}
#: NTFS scans run with looking inside files on (the default): the volume's boot record file
#: $Boot starts with an NTFS boot sector that declares the whole volume, so it is a note
#: ("a boot record or a truncated image"), never a coverage gap.
NTFS_OPTS: tuple[str, ...] = ()


def _tool(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


def _scan(evidence: Path, case: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = run_triage("scan", str(evidence), "--case", str(case), "--json", "--no-match",
                      "-q", *extra)
    assert proc.returncode in (0, 3, 8), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


class _Recorder:
    """A :class:`triage.scan.Progress` that keeps what the progress bar would count."""

    def __init__(self) -> None:
        self.total_bytes: int | None = None
        self.advanced = 0

    def warn(self, message: str) -> None:
        pass

    def enumerated(self, count: int) -> None:
        pass

    def start_processing(self, files: int, total_bytes: int) -> None:
        self.total_bytes = total_bytes

    def advance(self, files: int, nbytes: int) -> None:
        self.advanced += nbytes

    def finish(self) -> None:
        pass


@pytest.fixture(scope="module")
def ntfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(DISK / "dftt/7-undel-ntfs.zip", tmp_path_factory.mktemp("ntfs"),
                  "7-ntfs-undel.dd")


# --------------------------------------------------------------------- not applicable (0)


def test_healthy_ntfs_exits_0_and_badclus_is_recorded_never_read(ntfs: Path,
                                                                  tmp_path: Path) -> None:
    # What the NTFS facts are, by TSK's own tools: $BadClus (MFT entry 8) has a $DATA
    # stream $Bad as long as the volume with nothing initialised, and icat reads nothing.
    istat = _tool("istat", str(ntfs), "8")
    m = re.search(r"Type: \$DATA \((128-\d+)\)\s+Name: \$Bad\s+Non-Resident\s+size: (\d+)"
                  r"\s+init_size: 0", istat)
    assert m, istat
    attr, size = m.group(1), int(m.group(2))
    assert size == ntfs.stat().st_size  # the whole volume (a bare file system)
    icat = subprocess.run(["icat", str(ntfs), f"8-{attr}"], capture_output=True, check=True)
    assert icat.stdout == b""
    assert f"r/r 8-{attr}:\t$BadClus:$Bad" in _tool("fls", "-r", "-p", str(ntfs))

    # The CLI: a healthy NTFS image exits 0; the stream is recorded, not applicable.
    code, summary = _scan(ntfs, tmp_path / "cli", *NTFS_OPTS)
    assert code == 0
    assert summary["by_outcome"]["error"] == 0 == summary["by_outcome"]["coverage_gap"]
    assert summary["problems_shown"] == [] == summary["gaps_shown"]
    (bad,) = rows(tmp_path / "cli", "SELECT * FROM files WHERE display_path='$BadClus:$Bad'")
    assert bad["status"] == "skipped" and bad["size"] == size and bad["inode"] == 8
    assert bad["identity"].split(":")[2] == attr
    assert "sparse by design" in bad["status_reason"] and "(0 marked bad)" in \
        bad["status_reason"] and "never read" in bad["status_reason"]
    # Never read: never handed to a worker, no read status, no digest, no error row.
    assert bad["attempts"] == 0 and bad["read_status"] is None and bad["locator"] is None
    assert not rows(tmp_path / "cli", "SELECT 1 FROM hashes WHERE file_id=?", (bad["id"],))
    assert not rows(tmp_path / "cli", "SELECT 1 FROM errors WHERE file_id=?", (bad["id"],))

    # No byte of it is counted by the progress bar: the total is exactly the bytes the
    # workers were given, and less than the stream alone (carving off: the unallocated
    # space it would read is no file's).
    progress = _Recorder()
    result = scan(str(ntfs), tmp_path / "lib",
                  ScanOptions(jobs=1, match=False, carve=False,
                              worker=WorkerOptions(containers=False)),
                  progress=progress)
    read = rows(tmp_path / "lib", "SELECT coalesce(sum(size), 0) AS n FROM files "
                                  "WHERE attempts > 0")[0]["n"]
    assert progress.total_bytes == progress.advanced == read < size
    assert result.counts is not None and result.counts.hashed_bytes == read


def test_deleted_names_without_metadata_are_not_applicable(tmp_path: Path) -> None:
    image = DISK / "sleuthkit/image.dd"
    # fls lists two deleted names whose metadata address is 0 ("r/- * 0:").
    no_meta = {line.split("\t", 1)[1] for line in _tool("fls", "-r", "-p", str(image))
               .splitlines() if re.match(r"r/- \* 0:\t", line)}
    assert no_meta == {"a_directory/.another_file.swp", "a_directory/another_file~"}
    code, summary = _scan(image, tmp_path / "case")
    assert code == 0 and summary["by_outcome"]["error"] == 0
    got = {r["display_path"]: r for r in rows(tmp_path / "case",
                                              "SELECT * FROM files WHERE inode=0")}
    assert set(got) == no_meta
    for r in got.values():
        assert r["status"] == "skipped" and r["deleted"] == 1 and r["attempts"] == 0
        assert "without metadata (meta address 0)" in r["status_reason"]
    assert not rows(tmp_path / "case", "SELECT 1 FROM hashes h JOIN files f ON "
                                       "f.id=h.file_id WHERE f.inode=0")


def _disk(path: Path, fill: dict[int, bytes]) -> bytes:
    """A 4 MiB MBR disk: partition 1 FAT with one file, partitions 2.. (1 MiB each, from
    MiB 2) filled with ``fill[n]`` (a byte to repeat, or b"" for random bytes). Returns the
    file's content."""
    table = ["label: dos", "start=2048, size=2048, type=c"]
    table += [f"start={2048 * n}, size=2048, type=83" for n in sorted(fill)]
    with open(path, "wb") as f:
        f.truncate((2 + len(fill)) << 20)
    subprocess.run(["sfdisk", "-q", str(path)], input="\n".join(table) + "\n", text=True,
                   check=True, capture_output=True)
    subprocess.run(["mkfs.fat", "-S", "512", "--offset", "2048", "-n", "OUTCOMES",
                    str(path), "1024"], check=True, capture_output=True)  # KiB
    content = b"outcome classes test file\n" * 40
    src = path.parent / "note.txt"
    src.write_bytes(content)
    subprocess.run(["mcopy", "-i", f"{path}@@{1 << 20}", str(src), "::/note.txt"],
                   check=True, capture_output=True, env={**os.environ,
                                                         "MTOOLS_SKIP_CHECK": "1"})
    with open(path, "r+b") as f:
        for n, byte in fill.items():
            f.seek(n << 20)
            f.write(os.urandom(1 << 20) if not byte else byte * (1 << 20))
    return content


def test_unformatted_partitions_are_not_applicable(tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    content = _disk(disk, {2: b"\0", 3: b"\xff"})
    assert "Linux (0x83)" in _tool("mmls", str(disk))
    assert subprocess.run(["fsstat", "-o", "4096", str(disk)],
                          capture_output=True).returncode != 0  # no file system in p2
    code, summary = _scan(disk, tmp_path / "case")
    assert code == 0 and summary["by_outcome"]["error"] == 0
    vols = {r["display_path"]: r for r in rows(tmp_path / "case",
                                                "SELECT * FROM files WHERE kind='other' "
                                                "AND display_path IN ('p2', 'p3')")}
    assert vols["p2"]["status"] == vols["p3"]["status"] == "skipped"
    assert "unformatted" in vols["p2"]["status_reason"]
    assert "all 1048576 bytes are 0x00" in vols["p2"]["status_reason"]
    assert "all 1048576 bytes are 0xff" in vols["p3"]["status_reason"]
    (note,) = rows(tmp_path / "case", "SELECT f.status, h.value FROM files f JOIN hashes h "
                                      "ON h.file_id=f.id WHERE f.display_path='p1/note.txt' "
                                      "AND h.algorithm='sha256'")
    assert note["status"] == "done" and note["value"] == hashlib.sha256(content).hexdigest()


def test_partition_with_data_but_no_file_system_stays_an_error(tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    _disk(disk, {2: b"\0", 3: b""})  # p3: random bytes, no file system
    code, summary = _scan(disk, tmp_path / "case")
    assert code == 3 and summary["by_outcome"]["error"] == 1
    (p3,) = rows(tmp_path / "case", "SELECT * FROM files WHERE display_path='p3'")
    assert p3["status"] == "error" and "no file system libtsk can open" in p3["status_reason"]
    # The volume warning the image source learns while listing reaches the errors table.
    warned = rows(tmp_path / "case", "SELECT message FROM errors WHERE stage='evidence'")
    assert any("no file system libtsk can open" in w["message"] for w in warned), warned


# --------------------------------------------------------------------- coverage gap (8)


def test_undecodable_picture_is_a_coverage_gap_digests_kept_and_matched(
        tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copyfile(UNDECODABLE, ev / "photo.bpg")
    sha256 = _tool("sha256sum", str(UNDECODABLE)).split()[0]
    md5 = _tool("md5sum", str(UNDECODABLE)).split()[0]
    known = tmp_path / "known.md5"
    known.write_text(f"{md5}  known-picture\n")
    store = tmp_path / "store.sqlite"
    imp = run_triage("hashset", "import", str(known), "--store", str(store))
    assert imp.returncode == 0, imp.stderr

    proc = run_triage("scan", str(ev), "--case", str(tmp_path / "case"), "--store",
                      str(store), "--json", "-q")
    assert proc.returncode == 8, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["by_outcome"] == {"done": 0, "not_applicable": 0, "coverage_gap": 1,
                                     "error": 0, "pending": 0}
    (gap,) = summary["gaps_shown"]
    assert gap["path"] == "photo.bpg" and gap["status"] == "incomplete"
    assert gap["stage"] == "decode"
    assert "format not decodable yet: BPG (image/bpg)" in gap["reason"]
    assert summary["hashed_bytes"] == UNDECODABLE.stat().st_size
    (f,) = rows(tmp_path / "case", "SELECT * FROM files WHERE display_path='photo.bpg'")
    assert f["status"] == "incomplete" and f["read_status"] == "full"
    digests = {r["algorithm"]: r["value"] for r in rows(
        tmp_path / "case", "SELECT algorithm, value FROM hashes WHERE file_id=?", (f["id"],))}
    assert digests["sha256"] == sha256 and digests["md5"] == md5
    assert "pdq" not in digests and "phash" not in digests
    hits = rows(tmp_path / "case", "SELECT * FROM matches WHERE file_id=?", (f["id"],))
    assert [(h["algorithm"], h["match_type"]) for h in hits] == [("md5", "exact")]


def test_errors_outrank_gaps_and_the_summary_lists_both(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copyfile(UNDECODABLE, ev / "photo.bpg")
    shutil.copyfile(TRUNCATED, ev / "cut.jpg")
    proc = run_triage("scan", str(ev), "--case", str(tmp_path / "case"), "--no-match",
                      env=WIDE)
    assert proc.returncode == 3, proc.stderr  # 3 comes before 8 (worst_exit)
    out = proc.stdout
    assert re.search(r"coverage gaps \(incomplete\)\s*│\s*1 ", out), out
    assert re.search(r"errors \(error, quarantined\)\s*│\s*1 ", out), out
    assert "Files that could not be processed (errors) (1)" in out
    assert "Coverage gaps: hashed and matched, but not fully examined (1)" in out
    assert "format not decodable yet: BPG (image/bpg)" in out
    assert "Every entry was processed" not in out
    assert "Not every entry was processed: 1 could not be processed (errors); 1 was " \
        "processed only in part (coverage gaps)." in out

    # Without the error, the same gap alone exits 8, and the summary still never claims
    # that every entry was processed.
    (ev / "cut.jpg").unlink()
    proc = run_triage("scan", str(ev), "--case", str(tmp_path / "case2"), "--no-match",
                      env=WIDE)
    assert proc.returncode == 8, proc.stderr
    assert "Every entry was processed" not in proc.stdout
    assert "Not every entry was processed: 1 was processed only in part" in proc.stdout


def test_every_entry_processed_is_said_only_when_true(ntfs: Path, tmp_path: Path) -> None:
    proc = run_triage("scan", str(ntfs), "--case", str(tmp_path / "case"), "--no-match",
                      *NTFS_OPTS, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert "Every entry was processed (or is not applicable by design" in proc.stdout
    assert re.search(r"not applicable by design \(skipped\)\s*│\s*6 ", proc.stdout)


def test_picture_over_the_decode_limit_is_a_coverage_gap(tmp_path: Path) -> None:
    from triage.identify import Identifier
    from triage.sources.directory import DirectorySource
    from triage.worker import Task, process_entry

    ev = tmp_path / "ev"
    ev.mkdir()
    png = MEDIA / "imagehash" / "imagehash.png"
    shutil.copyfile(png, ev / "big.png")
    source = DirectorySource(str(ev))
    (entry,) = [e for e in source.entries() if e.path == b"big.png"]
    options = WorkerOptions(max_decode_bytes=png.stat().st_size - 1)
    result = process_entry(source, Identifier(), Task(1, entry, "big.png", "png"), options,
                           lambda stage: None)
    assert result.status == "incomplete" and result.stage == "decode"
    assert "over the decode limit" in (result.reason or "")
    assert {h.algorithm for h in result.hashes} == {"md5", "sha1", "sha256"}
    assert dict((h.algorithm, h.value) for h in result.hashes)["sha256"] == \
        _tool("sha256sum", str(png)).split()[0]
    whole = process_entry(source, Identifier(), Task(1, entry, "big.png", "png"),
                          WorkerOptions(), lambda stage: None)
    assert whole.status == "done" and "pdq" in {h.algorithm for h in whole.hashes}
    source.close()


def test_archive_member_over_the_decode_limit_is_a_coverage_gap(tmp_path: Path) -> None:
    """The same bound for a picture inside an archive: never skipped silently."""
    import zipfile

    from triage.identify import Identifier
    from triage.sources.directory import DirectorySource
    from triage.worker import Task, process_entry

    ev = tmp_path / "ev"
    ev.mkdir()
    png = MEDIA / "imagehash" / "imagehash.png"
    with zipfile.ZipFile(ev / "a.zip", "w") as z:
        z.write(png, "inner.png")
    source = DirectorySource(str(ev))
    (entry,) = [e for e in source.entries() if e.path == b"a.zip"]
    options = WorkerOptions(max_decode_bytes=png.stat().st_size - 1)
    result = process_entry(source, Identifier(), Task(1, entry, "a.zip", "zip"), options,
                           lambda stage: None)
    source.close()
    (inner,) = [c.result for c in result.children if c.inner == (b"inner.png",)]
    assert inner.status == "incomplete" and inner.stage == "decode"
    assert "over the decode limit" in (inner.reason or "")
    assert dict((h.algorithm, h.value) for h in inner.hashes)["sha256"] == \
        _tool("sha256sum", str(png)).split()[0]


# --------------------------------------------------------------------- verify-image 0/7/8


def _corrupt_stored_md5(src: Path, dest: Path) -> None:
    from tests.images.test_image_source import _corrupt_stored_md5 as corrupt

    corrupt(src, dest)


def test_verify_image_exit_codes(tmp_path: Path) -> None:
    e01 = DISK / "sleuthkit/imageformat_mmls_1.E01"
    ok = run_triage("verify-image", str(e01))
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout, ok.stderr
    assert "8ec671e301095c258224aad701740503" in ok.stdout  # the MANIFEST's stored MD5
    bad = tmp_path / "tampered.E01"
    _corrupt_stored_md5(DISK / "sleuthkit/image.E01", bad)
    mismatch = run_triage("verify-image", str(bad))
    assert mismatch.returncode == 7 and "MISMATCH" in mismatch.stdout, mismatch.stderr
    raw = run_triage("verify-image", str(DISK / "sleuthkit/image.dd"), "--json")
    assert raw.returncode == 8, raw.stderr
    assert json.loads(raw.stdout)["result"] == "no stored hash"
