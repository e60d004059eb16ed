"""``triage selftest`` (issue 18): the known-answer checks pass on this installation, fail
naming the check when a reference value is changed, and write a validation record whose
digests and signature independent tools (sha256sum, openssl) accept."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import ROOT, run_triage
from triage import selftest
from triage.cli import app
from triage.cli_errors import EXIT_USAGE, EXIT_VERIFICATION

RECORD_FILES = {"validation.json", "validation.html", "validation.pdf",
                "validation.manifest.json"}


def test_selftest_passes_and_writes_a_signed_record(tmp_path: Path) -> None:
    key = tmp_path / "lab.key"
    assert run_triage("key", "generate", "--out", str(key)).returncode == 0
    out = tmp_path / "record"
    proc = run_triage("selftest", "--out", str(out), "--sign", str(key))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "self-test passed" in proc.stdout
    assert {p.name for p in out.iterdir()} == RECORD_FILES | {"validation.manifest.json.sig"}

    record = json.loads((out / "validation.json").read_text())
    assert record["verdict"] == "PASS" and record["failed"] == []
    ids = [c["id"] for c in record["checks"]]
    # every group ran and none broke off
    for prefix in ("digest.", "picture.", "disk.entries", "disk.file.", "disk.picture.",
                   "hashset.import",
                   "hashset.match", "export.verify", "export.tamper", "offline."):
        assert any(i.startswith(prefix) for i in ids), prefix
    assert not any(i.endswith(".run") for i in ids)
    assert all(c["expected"] == c["observed"] and c["result"] == "pass"
               for c in record["checks"])
    assert record["environment"]["triage"] == record["tool_version"]
    assert record["environment"]["libraries"]["pdqhash"]

    # The manifest's digests, checked by sha256sum (an independent tool)...
    manifest = json.loads((out / "validation.manifest.json").read_text())
    sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in manifest["files"])
    assert {f["path"] for f in manifest["files"]} == RECORD_FILES - {"validation.manifest.json"}
    check = subprocess.run(["sha256sum", "--check", "--strict", "-"], input=sums, cwd=out,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    # ... and its signature by openssl with the public key (README "Validation").
    sig = tmp_path / "sig.bin"
    sig.write_bytes(__import__("base64").b64decode(
        (out / "validation.manifest.json.sig").read_bytes()))
    ok = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f"{key}.pub",
                         "-rawin", "-in", str(out / "validation.manifest.json"),
                         "-sigfile", str(sig)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "Verified Successfully" in ok.stdout, ok.stdout + ok.stderr
    assert manifest["signature"]["fingerprint"] == record["signed_by"]

    # The HTML loads nothing and runs nothing; the PDF holds the verdict and every check.
    page = __import__("html").unescape((out / "validation.html").read_text())
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page and "<img" not in page and "Verdict: PASS" in page
    text = subprocess.run(["pdftotext", str(out / "validation.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "Verdict: PASS" in text
    assert all(i in text for i in ids)


def test_a_changed_reference_value_fails_naming_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    shutil.copytree(selftest.DATA, data)
    ref = json.loads((data / "reference.json").read_text())
    sha256_abc = next(v for v in ref["digests"]
                      if v["algorithm"] == "sha256" and v["name"] == "abc")
    sha256_abc["expected"] = "0" + sha256_abc["expected"][1:]
    pdq = next(v for v in ref["pictures"]
               if v["algorithm"] == "pdq" and v["picture"] == "mandelbrot")
    pdq["quality"] = 99
    ref["disk"]["picture_hashes"]["phash"] = "ee969976a29d9823"
    (data / "reference.json").write_text(json.dumps(ref))
    listing = (data / "disk-expected.tsv").read_text()
    assert "\t1024\t" in listing
    (data / "disk-expected.tsv").write_text(listing.replace("\t1024\t", "\t1025\t"))
    monkeypatch.setattr(selftest, "DATA", data)

    out = tmp_path / "record"
    result = CliRunner().invoke(app, ["selftest", "--out", str(out)])
    assert result.exit_code == EXIT_VERIFICATION, result.output
    changed = {"digest.sha256.abc", "picture.pdq.mandelbrot", "disk.file.p2/random.bin",
               "disk.picture.phash"}
    record = json.loads((out / "validation.json").read_text())
    assert record["verdict"] == "FAIL"
    assert set(record["failed"]) == changed  # exactly those, every other check passes
    assert f"self-test FAILED: {', '.join(sorted(changed, key=record['failed'].index))}" in (
        " ".join(result.output.split()))
    for c in record["checks"]:
        if c["id"] in changed:
            assert c["result"] == "FAIL" and c["expected"] != c["observed"]
    bad = next(c for c in record["checks"] if c["id"] == "disk.file.p2/random.bin")
    assert bad["expected"].startswith("size 1025,") and bad["observed"].startswith("size 1024,")
    assert "observed: ba7816bf" in result.output  # the failure shows what was computed


def test_the_listing_fails_on_a_missing_or_an_unexpected_entry(tmp_path: Path) -> None:
    """disk.entries compares the scan's whole listing with the reference's both ways: an
    entry the reference lists but the scan does not (missing) and one the scan records but
    the reference does not (unexpected, here the virtual $Slack area) each fail it, named;
    every other check still passes."""
    data = tmp_path / "data"
    shutil.copytree(selftest.DATA, data)
    ref = json.loads((data / "reference.json").read_text())
    entries = ref["disk"]["scan_entries"]
    entries.remove("p2/$Slack")
    entries.append("p2/EXTRA.TXT")
    (data / "reference.json").write_text(json.dumps(ref))

    result = selftest.run(data)
    assert [c.id for c in result.failed] == ["disk.entries"]
    bad = result.failed[0]
    assert bad.expected == f"{len(entries)} entries, none missing, none unexpected"
    assert bad.observed == (f"{len(entries)} entries; missing (1): p2/EXTRA.TXT; "
                            "unexpected (1): p2/$Slack")


def test_the_listing_check_both_ways_and_bounded() -> None:
    listing = ["$Unpartitioned", "p1/$Slack", "p1/$Unallocated", "p1/A", "p1/A"]
    assert selftest.entries_check(listing, list(reversed(listing))).ok
    extra = selftest.entries_check(listing, [*listing, "p1/$Unallocated!@512.tif"])
    assert not extra.ok and extra.observed == (
        "6 entries; unexpected (1): p1/$Unallocated!@512.tif")
    gone = selftest.entries_check(listing, listing[1:])
    assert not gone.ok and gone.observed == "4 entries; missing (1): $Unpartitioned"
    twice = selftest.entries_check(listing, [*listing, "p1/A"])  # recorded once more
    assert not twice.ok and "unexpected (1): p1/A" in twice.observed
    many = selftest.entries_check([], [f"x{i:02}" for i in range(25)])
    shown = ", ".join(f"x{i:02}" for i in range(selftest.SHOWN_ENTRIES))
    assert many.observed == f"25 entries; unexpected (25): {shown} and 15 more"


def test_the_reference_listing_is_what_its_script_writes(tmp_path: Path) -> None:
    """scripts/selftest_reference.py, run on a copy of the package data, writes exactly the
    committed reference.json (the listing is current, the layout stable: the command the
    README names regenerates it deterministically)."""
    import sys

    data = tmp_path / "data"
    shutil.copytree(selftest.DATA, data)
    ref = json.loads((data / "reference.json").read_text())
    del ref["disk"]["scan_entries"]
    (data / "reference.json").write_text(json.dumps(ref))
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "selftest_reference.py"),
                           str(data)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (data / "reference.json").read_bytes() == (
        selftest.DATA / "reference.json").read_bytes()


def test_an_existing_record_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "validation.json").write_text("{}")
    proc = run_triage("selftest", "--out", str(tmp_path))
    assert proc.returncode == EXIT_USAGE
    assert "already holds a validation record" in proc.stderr
    assert (tmp_path / "validation.json").read_text() == "{}"
    assert not (tmp_path / "validation.pdf").exists()  # refused before anything ran


def test_the_committed_disk_image_is_what_its_script_builds(tmp_path: Path) -> None:
    """scripts/build_selftest_image.sh rebuilds an image with the shipped listing (sizes and
    digests by wc and sha256sum of the source files), and The Sleuth Kit's own tools (mmls,
    fls, icat) find every listed file, the deleted ones too, in the SHIPPED image with
    those digests."""
    import gzip
    import sys

    for tool in ("mkfs.ext2", "mkfs.fat", "mcopy", "sfdisk", "fls", "icat", "mmls"):
        assert shutil.which(tool), f"{tool} missing: bash scripts/bootstrap.sh"
    proc = subprocess.run(["sh", str(ROOT / "scripts" / "build_selftest_image.sh"),
                           str(tmp_path)], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                "PYTHON": sys.executable},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    listing = (tmp_path / "disk-expected.tsv").read_bytes()
    assert listing == (selftest.DATA / "disk-expected.tsv").read_bytes()
    assert (tmp_path / "disk.img.gz").stat().st_size < 16384  # "a few KB"

    raw = tmp_path / "shipped.img"
    raw.write_bytes(gzip.decompress((selftest.DATA / "disk.img.gz").read_bytes()))
    mmls = subprocess.run(["mmls", str(raw)], capture_output=True, text=True, check=True)
    assert "DOS FAT12 (0x01)" in mmls.stdout and "Linux (0x83)" in mmls.stdout
    reference = selftest.load_reference()["disk"]
    expected = {f["path"]: f for f in reference["files"]}
    assert sum(f["deleted"] for f in expected.values()) == 2
    listed = set()
    for part, offset in (("p1", 64), ("p2", 320)):
        fls = subprocess.run(["fls", "-r", "-p", "-o", str(offset), str(raw)],
                             capture_output=True, text=True, check=True).stdout
        for line in fls.splitlines():
            meta, name = line.split("\t", 1)
            path = f"{part}/{name}"
            listed.add(path)
            if path not in expected:
                continue
            inode = meta.split()[-1].rstrip(":")
            data = subprocess.run(["icat", "-o", str(offset), str(raw), inode],
                                  capture_output=True, check=True).stdout
            want = expected.pop(path)
            assert hashlib.sha256(data).hexdigest() == want["sha256"], path
            assert len(data) == want["size"], path
            assert ("*" in meta) == want["deleted"], path
    assert not expected, f"not found by fls: {sorted(expected)}"
    # The reference's full scan listing: every entry fls lists, the carving areas mmls and
    # the file systems leave (unpartitioned sectors before p1 and after p2, each volume's
    # free blocks and its files' slack), carved items inside an area, nothing else.
    assert "Unallocated" in mmls.stdout
    areas = {"$Unpartitioned", "p1/$Unallocated", "p1/$Slack", "p2/$Unallocated",
             "p2/$Slack"}
    entries = reference["scan_entries"]
    assert len(entries) == len(set(entries))
    carved = {e for e in entries if e.split("!", 1)[0] in areas and "!" in e}
    assert set(entries) - carved == listed | areas
