"""The Quick start demo, scanned: the manifest's expectations (statuses, renamed files,
digests, exact / near / known hits) hold in the case that `triage demo` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import rows, run_triage


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    d = tmp_path_factory.mktemp("demo") / "demo"
    proc = run_triage("demo", "--dir", str(d), "--json")
    # The demo holds one truncated picture (a decode error by design): its scan exits 3.
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["case_database"] == str((d / "case" / "case.sqlite").resolve())
    return d, proc.returncode


@pytest.fixture(scope="module")
def demo(demo_run: tuple[Path, int]) -> Path:
    return demo_run[0]


def test_demo_exits_with_its_scans_code(demo_run: tuple[Path, int], tmp_path: Path) -> None:
    """Issue 12: `triage demo` returns the exit code of the scan it runs; the same scan of
    the same evidence against the same store exits the same."""
    d, demo_code = demo_run
    proc = run_triage("scan", str(d / "evidence"), "--case", str(tmp_path / "case"),
                      "--store", str(d / "hashsets.sqlite"), "--json", "-q")
    assert proc.returncode == demo_code == 3, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["by_outcome"]["error"] == 1 and summary["by_outcome"]["coverage_gap"] == 0


def _manifest(demo: Path) -> dict:
    return json.loads((demo / "demo-manifest.json").read_text())


def _by_path(demo: Path) -> dict[str, dict]:
    return {r["display_path"]: dict(r) for r in rows(
        demo / "case", "SELECT f.*, (SELECT value FROM hashes h WHERE h.file_id=f.id AND "
                       "h.algorithm='md5') AS md5 FROM files f WHERE parent_id IS NULL")}


def test_renamed_files_are_flagged_and_only_they(demo: Path) -> None:
    files = _by_path(demo)
    for f in _manifest(demo)["files"]:
        got = files[f["path"]]
        if f["extension_mismatch"]:
            assert got["ext_mismatch"] == 1, f["path"]
        else:
            assert got["ext_mismatch"] != 1, f["path"]


def test_statuses_and_digests_match_the_manifest(demo: Path) -> None:
    files = _by_path(demo)
    for f in _manifest(demo)["files"]:
        got = files[f["path"]]
        assert got["md5"] == f["md5"], f["path"]
        assert got["status"] == f["expected_status"], f["path"]


def test_exact_near_and_known_hits(demo: Path) -> None:
    hits = rows(demo / "case", "SELECT f.display_path, m.match_type, m.known, m.algorithm "
                               "FROM matches m JOIN files f ON f.id=m.file_id")
    kinds = {(h["match_type"], h["known"]) for h in hits}
    assert ("exact", 0) in kinds and ("near", 0) in kinds and ("exact", 1) in kinds
    near = {h["display_path"] for h in hits if h["match_type"] == "near"}
    assert near and all(h["algorithm"] == "pdq" for h in hits if h["match_type"] == "near")
