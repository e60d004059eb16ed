"""Scanning the public test corpus: every entry gets a final status, and every digest equals
the one computed by the independent coreutils tools."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import file_hashes, rows, scan_json

CORPORA = ("media", "video", "hashsets")


def coreutils_digests(root: Path, tool: str) -> dict[bytes, str]:
    """Run md5sum/sha1sum/sha256sum over every regular file below root (zero-terminated
    names, so any byte in a name survives)."""
    find = subprocess.run(["find", str(root), "-type", "f", "-print0"], capture_output=True,
                          check=True)
    names = [n for n in find.stdout.split(b"\0") if n]
    out: dict[bytes, str] = {}
    for i in range(0, len(names), 200):
        proc = subprocess.run([tool, "-z", "--", *names[i:i + 200]], capture_output=True,
                              check=True)
        for line in proc.stdout.split(b"\0"):
            if not line:
                continue
            digest, name = line.split(b"  ", 1)
            out[name[len(bytes(root)) + 1:]] = digest.decode()
    return out


@pytest.fixture(scope="module")
def scanned(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cases = {}
    for corpus in CORPORA:
        case = tmp_path_factory.mktemp(f"case-{corpus}")
        summary = scan_json(testdata / corpus, case)
        assert summary["entries"] > 0
        cases[corpus] = case
    return cases


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_entry_has_a_final_status(scanned: dict[str, Path], corpus: str) -> None:
    statuses = {r["status"] for r in rows(scanned[corpus], "SELECT status FROM files")}
    assert statuses <= {"done", "error", "skipped", "incomplete", "quarantined"}
    assert not rows(scanned[corpus], "SELECT id FROM files WHERE status='pending'")
    for r in rows(scanned[corpus], "SELECT * FROM files WHERE status IN ('error', "
                                   "'quarantined', 'skipped', 'incomplete')"):
        assert r["status_stage"] and r["status_reason"], dict(r)


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_file_listed(testdata: Path, scanned: dict[str, Path], corpus: str) -> None:
    find = subprocess.run(["find", str(testdata / corpus), "-mindepth", "1", "-print0"],
                          capture_output=True, check=True)
    expected = {n[len(bytes(testdata / corpus)) + 1:] for n in find.stdout.split(b"\0") if n}
    listed = {bytes(r["path"]) for r in rows(scanned[corpus], "SELECT path FROM files "
                                                              "WHERE parent_id IS NULL")}
    assert listed == expected


@pytest.mark.parametrize("corpus", CORPORA)
@pytest.mark.parametrize(("algorithm", "tool"), [("md5", "md5sum"), ("sha1", "sha1sum"),
                                                  ("sha256", "sha256sum")])
def test_digests_equal_coreutils(testdata: Path, scanned: dict[str, Path], corpus: str,
                                 algorithm: str, tool: str) -> None:
    ours = {p: h[algorithm] for p, h in file_hashes(scanned[corpus]).items()}
    theirs = coreutils_digests(testdata / corpus, tool)
    assert ours == theirs  # every readable file hashed, every hash equal


def test_imagehash_reference_values(testdata: Path, scanned: dict[str, Path]) -> None:
    ref = json.loads((testdata / "answers" / "imagehash_reference.json").read_text())
    expected = ref["media/imagehash/imagehash.png"]
    got = file_hashes(scanned["media"])[b"imagehash/imagehash.png"]
    assert got["phash"] == expected["phash"]
    assert got["dhash"] == expected["dhash"]


def test_pdq_reference_values(testdata: Path, scanned: dict[str, Path]) -> None:
    ref = json.loads((testdata / "answers" / "pdq_reference.json").read_text())
    hashes = file_hashes(scanned["media"])
    quality = {bytes(r["path"]): r["quality"] for r in rows(
        scanned["media"], "SELECT f.path, h.quality FROM hashes h JOIN files f "
                          "ON f.id=h.file_id WHERE h.algorithm='pdq'")}
    checked = 0
    for item in ref["items"]:
        if "pdq" not in item:
            continue
        path = item["file"].removeprefix("media/").encode()
        ours = hashes[path]["pdq"]
        distance = (int(ours, 16) ^ int(item["pdq"], 16)).bit_count()
        assert distance <= 16, (item["file"], distance)
        if "quality" in item:
            assert abs(quality[path] - item["quality"]) <= 10, item["file"]
        checked += 1
    assert checked >= 4


def test_pillow_bad_files_end_as_errors_with_reasons(scanned: dict[str, Path]) -> None:
    case = scanned["media"]
    by_path = {r["display_path"]: r for r in rows(case, "SELECT * FROM files")}
    bombs = ["pillow/decompression_bomb.gif", "pillow/bmp/b/reallybig.bmp"]
    for p in bombs:
        r = by_path[p]
        assert r["status"] == "error" and r["status_stage"] == "decode", dict(r)
        assert "decompression bomb" in r["status_reason"]
    # Files whose pixel data is cut short. (truncated_app14.jpg, truncated_exif_dpi.jpg and
    # truncated_end_chunk.png only lose metadata; Pillow's own tests expect them to load.)
    for p in ("pillow/truncated_image.png", "pillow/truncated_jpeg.jpg",
              "pillow/cross_scan_line_truncated.tga"):
        r = by_path[p]
        assert r["status"] == "error" and r["status_stage"] == "decode", dict(r)
        assert "truncated" in r["status_reason"]
    crash = [p for p in by_path if "/crash-" in p or "/oom-" in p or "/timeout-" in p]
    assert crash
    for p in crash:
        r = by_path[p]
        # incomplete: a fuzzer file no decoder recognises (a coverage gap, issue 12)
        assert r["status"] in ("done", "incomplete", "error", "quarantined")
        if r["status"] != "done":
            assert r["status_reason"]
    # Every failed file still has its cryptographic digests when it was fully read.
    for r in rows(case, "SELECT f.id FROM files f WHERE status='error' AND "
                        "status_stage='decode'"):
        algs = {x["algorithm"] for x in rows(case, "SELECT algorithm FROM hashes WHERE "
                                                   "file_id=?", (r["id"],))}
        assert algs == {"md5", "sha1", "sha256"}


def test_archive_members_in_the_corpus_are_items(scanned: dict[str, Path]) -> None:
    inner = rows(scanned["media"], "SELECT f.display_path, p.display_path AS parent "
                                   "FROM files f JOIN files p ON p.id=f.parent_id")
    assert any(r["parent"] == "imageio/chelsea.zip" for r in inner)
    nsrl = rows(scanned["hashsets"], "SELECT display_path FROM files WHERE display_path "
                                     "LIKE 'nsrl-rds2-mini/RDS-000001-15.zip!%'")
    assert {r["display_path"].rsplit("!", 1)[1] for r in nsrl} >= {"NSRLFile.txt"}


def test_identical_files_share_hashes(scanned: dict[str, Path]) -> None:
    dups = rows(scanned["media"], "SELECT value, count(*) AS n FROM hashes WHERE "
                                  "algorithm='sha256' GROUP BY value HAVING n > 1")
    assert dups
    for d in dups:
        md5s = rows(scanned["media"], "SELECT DISTINCT h2.value FROM hashes h1 JOIN hashes h2 "
                                      "ON h1.file_id=h2.file_id AND h2.algorithm='md5' "
                                      "WHERE h1.algorithm='sha256' AND h1.value=?",
                    (d["value"],))
        assert len(md5s) == 1
