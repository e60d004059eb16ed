"""Hostile names exported in every format: escaped and readable, never executable."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.reports.helpers import FORMULA_START, HOSTILE, pdftotext, report
from tests.reports.test_html_pdf import ALLOWED_ATTRS, ALLOWED_TAGS, parse
from triage.util import display_bytes


def _csv(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


@pytest.mark.parametrize("rows", ["files", "hits"])
def test_csv_neutralises_every_formula(hostile: dict[str, Any], tmp_path: Path,
                                       rows: str) -> None:
    data = report(hostile["case"], "csv", tmp_path / "r.csv", "--rows", rows)
    records = _csv(data)
    assert records
    for rec in records:
        for col, cell in rec.items():
            assert not cell.startswith(FORMULA_START), (col, cell)
    # Every cell is quoted (QUOTE_ALL): no bare field anywhere.
    for line in data.decode("utf-8")[1:].splitlines():
        assert line.startswith('"') and line.endswith('"'), line
    by_hex = {r["path_bytes_hex"]: r for r in records}
    for name in HOSTILE:
        if name not in hostile["corpus"] or (rows == "hits" and name.hex() not in by_hex):
            continue
        r = by_hex[name.hex()]  # the exact bytes, kept as hex
        shown = display_bytes(name)
        if shown.startswith(FORMULA_START):
            assert r["path"] == "'" + shown
        else:
            assert r["path"] == shown
    if rows == "hits":
        assert len(records) == 15
        # The set name starts with a letter; the VICS series "=series" is neutralised.
        assert any(r["series"] == "'=series" for r in records)
    else:
        first = next(r for r in records if r["path_bytes_hex"] == b"=cmd|' /C calc'!A0.png".hex())
        assert first["path"] == "'=cmd|' /C calc'\\x21A0.png"  # "!" escaped: issue 11


def test_html_has_no_live_markup_from_names(hostile: dict[str, Any], tmp_path: Path) -> None:
    html = report(hostile["case"], "html", tmp_path / "r.html").decode("utf-8")
    a = parse(html)
    assert a.tags <= ALLOWED_TAGS and a.attrs <= ALLOWED_ATTRS
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.png" in html
    assert "&amp;amp;&amp;lt;.png" in html  # an entity in a name stays literal text
    assert "\u202e" not in html and "\\u202egnp.exe" in html  # RTL override shown escaped
    assert "new\\x0aline.png" in html and "ctrl\\x07\\x1b[31m.png" in html
    assert "bad\\xff\\xfeutf8.png" in html
    assert "&lt;b&gt;Ex&lt;/b&gt;" in html  # examiner name from the case metadata
    for ch in "\x07\x1b\r\t":
        assert ch not in html


def test_jsonl_parses_and_keeps_exact_paths(hostile: dict[str, Any], tmp_path: Path) -> None:
    data = report(hostile["case"], "jsonl", tmp_path / "r.jsonl")
    lines = [json.loads(x) for x in data.decode("ascii").splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["case"]["examiner"] == "<b>Ex</b>"
    files = [x for x in lines if x["type"] == "file"]
    paths = {bytes.fromhex(f["path_hex"]) for f in files}
    assert set(hostile["corpus"]) <= paths
    hits = sum(len(f["hits"]) for f in files)
    assert hits == 15
    deleted = [f for f in files if f["deleted"]]
    assert len(deleted) == 1 and "content may be overwritten" in deleted[0]["caution"]


def test_pdf_and_vics_show_names_escaped(hostile: dict[str, Any], tmp_path: Path) -> None:
    report(hostile["case"], "pdf", tmp_path / "r.pdf")
    text = pdftotext(tmp_path / "r.pdf")
    assert "\\u202egnp.exe" in text and "\u202e" not in text
    assert "<script>alert(1)</script>.png" in text  # plain text in a PDF: inert
    vics = json.loads(report(hostile["case"], "vics", tmp_path / "v.json"))
    paths = [mf["FilePath"] for m in vics["value"][0]["Media"] for mf in m["MediaFiles"]]
    assert "new\\x0aline.png" in paths or "bad\\xff\\xfeutf8.png" in paths
    assert all("\n" not in p and "\u202e" not in p for p in paths)
