"""The demo evidence: deterministic, described truthfully by its manifest, and really as odd
as the manifest says (wrong extensions, truncation, near-duplicate copies)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import magic
import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageFile

from triage.demo import MANIFEST_NAME, build_demo

PDQ_MATCH_DISTANCE = 31  # Meta's PDQ paper / python-threatexchange


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("demo-a")
    return root, build_demo(root)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _pdq(path: Path) -> str:
    with Image.open(path) as im:
        bits, _quality = pdqhash.compute(np.asarray(im.convert("RGB")))
    return f"{int(''.join('1' if b else '0' for b in bits), 2):064x}"


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_build_is_byte_identical_across_runs(demo, tmp_path):
    root, _ = demo
    build_demo(tmp_path)
    first, second = _tree(root), _tree(tmp_path)
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []
    # File times are fixed too, so scan reports of the demo are reproducible.
    assert {p.stat().st_mtime for p in (tmp_path / "evidence").rglob("*")} == \
        {p.stat().st_mtime for p in (root / "evidence").rglob("*")}


def test_manifest_matches_files_on_disk(demo):
    root, manifest = demo
    assert json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8")) == manifest
    evidence = root / "evidence"
    on_disk = sorted(p.relative_to(evidence).as_posix() for p in evidence.rglob("*")
                     if p.is_file())
    assert sorted(f["path"] for f in manifest["files"]) == on_disk
    for f in manifest["files"]:
        data = (evidence / f["path"]).read_bytes()
        assert hashlib.md5(data).hexdigest() == f["md5"], f["path"]
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
        assert len(data) == f["size"]
    assert manifest["counts"]["files"] == len(manifest["files"])
    assert 35 <= len(manifest["files"]) <= 50


def test_required_cases_are_present(demo):
    root, manifest = demo
    roles = manifest["counts"]["roles"]
    for role in ("original", "duplicate", "renamed", "reencoded", "resized", "truncated",
                 "high_bit_depth", "alpha", "animated", "nonmedia"):
        assert roles.get(role, 0) >= 1, role
    paths = [f["path"] for f in manifest["files"]]
    assert any(not p.isascii() for p in paths)
    assert any(p.count("/") >= 4 for p in paths)  # a nested folder
    formats = {f["format"] for f in manifest["files"]}
    assert {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"} <= formats
    evidence = root / "evidence"
    by_role = {f["role"]: f for f in manifest["files"]}
    with Image.open(evidence / by_role["high_bit_depth"]["path"]) as im:
        assert im.mode.startswith("I;16") or im.mode == "I"
    with Image.open(evidence / by_role["alpha"]["path"]) as im:
        assert im.mode == "RGBA"
    with Image.open(evidence / by_role["animated"]["path"]) as im:
        assert getattr(im, "n_frames", 1) > 1


def test_duplicates_are_byte_identical_to_their_original(demo):
    _, manifest = demo
    originals = {f["picture"]: f for f in manifest["files"] if f["role"] == "original"}
    dups = [f for f in manifest["files"] if f["role"] == "duplicate"]
    assert dups
    for f in dups:
        source = originals[f["picture"]]
        assert f["md5"] == source["md5"]
        assert f["path"].rsplit("/", 1)[0] != source["path"].rsplit("/", 1)[0]


def test_renamed_files_have_mismatched_extensions_per_libmagic(demo):
    root, manifest = demo
    renamed = [f for f in manifest["files"] if f["role"] == "renamed"]
    assert {Path(f["path"]).suffix for f in renamed} >= {".jpg", ".txt", ".dat"}
    # The media types an extension claims; ".dat" claims no picture type at all.
    claims = {".jpg": {"image/jpeg"}, ".jpeg": {"image/jpeg"}, ".txt": {"text/plain"},
              ".dat": {"application/octet-stream"}}
    for f in renamed:
        mime = magic.from_file(str(root / "evidence" / f["path"]), mime=True)
        assert mime.startswith("image/"), (f["path"], mime)
        assert mime not in claims[Path(f["path"]).suffix], (f["path"], mime)
        assert f["extension_mismatch"] is True
    # And the ordinary originals are not mismatched.
    jpeg = next(f for f in manifest["files"] if f["role"] == "original"
                and f["path"].endswith(".JPG"))
    assert magic.from_file(str(root / "evidence" / jpeg["path"]), mime=True) == "image/jpeg"


def test_truncated_jpeg_fails_strict_decoding(demo, monkeypatch):
    root, manifest = demo
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    (truncated,) = [f for f in manifest["files"] if f["role"] == "truncated"]
    path = root / "evidence" / truncated["path"]
    assert magic.from_file(str(path), mime=True) == "image/jpeg"
    with Image.open(path) as im:  # the header is intact: it opens...
        assert im.format == "JPEG"
        with pytest.raises(OSError, match="truncated"):  # ...but does not decode
            im.load()
    assert not path.read_bytes().endswith(b"\xff\xd9")


def test_modified_copies_are_near_but_not_identical(demo):
    root, manifest = demo
    evidence = root / "evidence"
    known_pdq = {}
    for line in (root / "hashsets" / "demo-pdq.txt").read_text().splitlines():
        value, label = line.split(None, 1)
        known_pdq[label] = value
    originals = {f["picture"]: f for f in manifest["files"] if f["role"] == "original"}
    copies = [f for f in manifest["files"] if f["role"] in ("reencoded", "resized")]
    assert len(copies) >= 4
    for f in copies:
        copy_pdq = _pdq(evidence / f["path"])
        # Against the demo hash set (this also covers originals left out of the evidence).
        assert f["pdq_source"] in known_pdq, f["path"]
        assert _distance(copy_pdq, known_pdq[f["pdq_source"]]) <= PDQ_MATCH_DISTANCE, f["path"]
        assert f["md5"] != manifest["pictures"][f["picture"]]["original_md5"]
        source = originals.get(f["picture"])
        if source is not None:  # the original is in the evidence: compare the files
            assert _distance(copy_pdq, _pdq(evidence / source["path"])) <= PDQ_MATCH_DISTANCE
            assert (evidence / f["path"]).read_bytes() != \
                (evidence / source["path"]).read_bytes()
    assert any(originals.get(f["picture"]) is None for f in copies)  # near-only matches


def test_hash_sets_are_consistent_with_the_manifest(demo):
    root, manifest = demo
    folder = root / "hashsets"
    known = [line.split(None, 1) for line in
             (folder / "demo-known.md5").read_text().splitlines()]
    assert known and all(len(md5) == 32 for md5, _ in known)
    known_md5 = {md5 for md5, _ in known}
    exact = [f for f in manifest["files"] if f["md5"] in known_md5]
    assert len(exact) >= 3
    assert all("demo-known.md5" in f["expected_matches"] for f in exact)
    nsrl = {line.split()[0] for line in (folder / "demo-nsrl.md5").read_text().splitlines()}
    nonmedia = {f["md5"] for f in manifest["files"] if f["role"] == "nonmedia" and f["size"]}
    assert nsrl == nonmedia
    for line in (folder / "demo-pdq.txt").read_text().splitlines():
        value, label = line.split(None, 1)
        assert len(value) == 64 and int(value, 16) >= 0
        assert label.startswith("DEMO-benign-synthetic/")


def test_refuses_to_overwrite_unless_asked(demo, tmp_path):
    root, _ = demo
    with pytest.raises(FileExistsError):
        build_demo(root)
    (tmp_path / "evidence").mkdir()
    with pytest.raises(FileExistsError):  # not a demo folder: never deleted
        build_demo(tmp_path, overwrite=True)
