"""Issue 14 #8: duplicate groups (entries with the same SHA-256) are listed in the JSONL and
CSV exports and in the report (HTML/PDF), the evidence's own files and the items found
inside files apart; empty entries are left out. SHA-256 values checked with sha256sum."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support import run_triage

GEN = "2026-12-02T00:00:00Z"


def _sha256sum(path: Path) -> str:
    return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dups")
    ev = root / "ev"
    (ev / "copy").mkdir(parents=True)
    (ev / "a.bin").write_bytes(b"same content A\n")
    (ev / "copy" / "a.bin").write_bytes(b"same content A\n")
    (ev / "b.bin").write_bytes(b"only once\n")
    (ev / "empty1").write_bytes(b"")
    (ev / "empty2").write_bytes(b"")
    with zipfile.ZipFile(ev / "arch.zip", "w") as zf:
        zf.writestr("inside-a.bin", b"same content A\n")
        zf.writestr("x.txt", b"twice inside\n")
        zf.writestr("y.txt", b"twice inside\n")
    case_dir = root / "case"
    r = run_triage("scan", str(ev), "--case", str(case_dir), "--no-match", "-q", "--json",
                   "--jobs", "1")
    assert r.returncode == 0, r.stderr
    return case_dir, ev


def _export(case_dir: Path, fmt: str, out: Path, *extra: str) -> Path:
    r = run_triage("report", str(case_dir), "-f", fmt, "--out", str(out), "--generated-at",
                   GEN, *extra)
    assert r.returncode == 0, r.stderr
    return out


def test_jsonl_lists_groups_by_scope(case: tuple[Path, Path], tmp_path: Path) -> None:
    case_dir, ev = case
    lines = [json.loads(x) for x in _export(case_dir, "jsonl", tmp_path / "r.jsonl")
             .read_text().splitlines()]
    groups = [x for x in lines if x["type"] == "duplicate_group"]
    sha_a = _sha256sum(ev / "a.bin")
    sha_x = subprocess.run(["sha256sum"], input=b"twice inside\n", capture_output=True,
                           check=True).stdout.split()[0].decode()
    assert [(g["scope"], g["group"], g["sha256"], g["count"], g["other_scope"],
             [m["path"] for m in g["members"]]) for g in groups] == [
        ("files", 1, sha_a, 2, 1, ["a.bin", "copy/a.bin"]),
        ("inner", 1, sha_x, 2, 0, ["arch.zip!x.txt", "arch.zip!y.txt"])]
    assert _sha256sum(ev / "copy" / "a.bin") == sha_a
    summary = lines[0]["summary"]["duplicates"]
    assert summary == {"file_groups": 1, "files": 2, "inner_groups": 1, "inner_items": 2,
                       "empty_left_out": 2}
    # Members name their bytes exactly (hex of the path).
    assert groups[0]["members"][1]["path_bytes_hex"] == b"copy/a.bin".hex()


def test_csv_rows_duplicates(case: tuple[Path, Path], tmp_path: Path) -> None:
    case_dir, ev = case
    out = _export(case_dir, "csv", tmp_path / "d.csv", "--rows", "duplicates")
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    assert [(r["scope"], r["group"], r["group_size"], r["other_scope"], r["path"])
            for r in rows] == [("files", "1", "2", "1", "a.bin"),
                               ("files", "1", "2", "1", "copy/a.bin"),
                               ("inner", "1", "2", "0", "arch.zip!x.txt"),
                               ("inner", "1", "2", "0", "arch.zip!y.txt")]
    assert rows[0]["sha256"] == _sha256sum(ev / "a.bin") and rows[0]["size"] == "15"


def test_default_name_of_the_duplicates_csv(case: tuple[Path, Path]) -> None:
    from triage.report.export import default_output

    assert default_output(case[0], "csv", {"rows": "duplicates"}).name == \
        "report-duplicates.csv"


def test_html_and_pdf_have_appendix_f(case: tuple[Path, Path], tmp_path: Path) -> None:
    case_dir, ev = case
    html = _export(case_dir, "html", tmp_path / "r.html").read_text()
    assert "Appendix F. Duplicate groups (same SHA-256)" in html
    assert 'id="duplicates-files"' in html and 'id="duplicates-inner"' in html
    assert "1 group(s) of files (2 files) and 1 group(s) of items inside files" in html
    assert _sha256sum(ev / "a.bin") in html and "also as 1 item(s) inside files" in html
    pdf = _export(case_dir, "pdf", tmp_path / "r.pdf")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "Appendix F. Duplicate groups" in text and "arch.zip!y.txt" in text
