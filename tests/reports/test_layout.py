"""Layout facts of the HTML and PDF reports that can be measured (issue 12 item 1).

Both are read back by independent tools: the PDF with poppler's ``pdftotext`` and
pdfplumber (which finds tables from drawn cell borders), the HTML printed to A4 by headless
Chromium and read the same way. Checked: the executive summary and the illegal-category
count on page one; the hits as a real table early on; no table cell narrower than
:data:`MIN_CELL_CHARS` characters at A4; timestamps never broken inside a date or a time;
portrait tables of at most 8 declared columns whose widths add up to 100%; no raw JSON.
The layout before issue 12 fails these (cells 2.6 characters wide in the printed HTML,
no tables at all in the PDF, the hits on page 5).
"""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests.reports.helpers import chromium, report
from tests.support import rows

#: The narrowest table cell allowed, in characters of the cell's font (a character taken as
#: 0.6 em, about the average width of DejaVu Sans; the "#" column of the hits is 4% of A4).
MIN_CELL_CHARS = 4.0
#: Raw JSON shows as an opening brace or bracket followed by a quoted key or string.
RAW_JSON = re.compile(r'[{\[]\s*"')


def _pdftotext(pdf: Path, *args: str) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", *args, str(pdf), "-"],
                          capture_output=True, check=True, timeout=60).stdout.decode("utf-8")


def _print_html(html: Path, out: Path, tmp: Path) -> Path:
    """The HTML printed to PDF by headless Chromium (A4 from the report's @page rule)."""
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--no-pdf-header-footer", f"--print-to-pdf={out}", html.as_uri()],
        capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0 and out.is_file(), proc.stderr.decode(errors="replace")[-2000:]
    return out


def _cells(pdf: Path) -> list[tuple[int, bool, float, str]]:
    """Every table cell of the PDF: (page, landscape, width in characters, text). Fails when
    a character straddles a cell border (text overflowing its cell)."""
    import pdfplumber

    out = []
    with pdfplumber.open(pdf) as doc:
        for n, page in enumerate(doc.pages, 1):
            for table in page.find_tables():
                for x0, top, x1, bottom in table.cells:
                    over = [c["text"] for c in page.chars if top <= c["top"] < bottom and
                            any(c["x0"] < edge - 0.5 and c["x1"] > edge + 0.5
                                for edge in (x0, x1))]
                    assert over == [], (pdf.name, n, "text overflows a cell", "".join(over))
                for x0, top, x1, bottom in table.cells:
                    chars = [c for c in page.chars if x0 - 0.5 <= c["x0"] and
                             c["x1"] <= x1 + 0.5 and top - 0.5 <= c["top"] and
                             c["bottom"] <= bottom + 0.5]
                    if not chars:
                        continue
                    size = max(c["size"] for c in chars)
                    text = "".join(c["text"] for c in chars)
                    out.append((n, page.width > page.height, (x1 - x0) / (0.6 * size), text))
    return out


def _illegal_files(case: Path) -> int:
    from triage.report.document import ILLEGAL_CATEGORIES

    marks = ", ".join("?" * len(ILLEGAL_CATEGORIES))
    return sum(int(r["n"]) for r in rows(
        case, f"SELECT count(DISTINCT file_id) AS n FROM matches WHERE known = 0 AND "
              f"category IN ({marks}) GROUP BY category", ILLEGAL_CATEGORIES))


def _timestamps(case: Path) -> list[str]:
    return [r["t"] for r in rows(case, "SELECT time_utc AS t FROM audit WHERE action <> "
                                       "'report.export' UNION SELECT started_utc FROM runs")]


def _assert_common(pdf: Path, case: Path, what: str) -> None:
    """Page one, cell widths, unbroken timestamps and no raw JSON, in a PDF."""
    page1 = _pdftotext(pdf, "-f", "1", "-l", "1")
    assert "Executive summary" in page1, what
    n = _illegal_files(case)
    assert n > 0
    assert re.search(rf"Files in illegal\s+categories:\s+{n}\.", page1), (what, page1[:3000])
    assert "Entries by outcome" in page1 and "Evidence and its integrity" in page1, what

    cells = _cells(pdf)
    assert len(cells) > 100, what  # real tables, found from their drawn borders
    narrow = [(p, round(w, 1), t) for p, _land, w, t in cells if w < MIN_CELL_CHARS]
    assert narrow == [], (what, narrow[:10])
    hits_page = min(p for p, _land, _w, t in cells if t == "caution")
    assert hits_page <= 2, (what, hits_page)  # the hits table starts by page 2

    words = set(_pdftotext(pdf, "-layout").split())
    for ts in _timestamps(case):
        date, _, time = ts.partition("T")
        assert date in words and time in words, (what, ts)  # never broken inside

    text = _pdftotext(pdf)
    assert not RAW_JSON.search(text), (what, RAW_JSON.search(text))


def test_pdf_layout(hostile: dict[str, Any], tmp_path: Path) -> None:
    report(hostile["case"], "pdf", tmp_path / "r.pdf")
    _assert_common(tmp_path / "r.pdf", hostile["case"], "pdf")


class _Tables(HTMLParser):
    """Per table: declared column width classes and whether it is on a landscape page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.tables: list[tuple[list[int], bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = (dict(attrs).get("class") or "").split()
        if tag in ("section", "div"):
            landscape = "landscape" in cls or any(x for _t, x in self.stack)
            self.stack.append((tag, landscape))
        elif tag == "table":
            self.tables.append(([], any(x for _t, x in self.stack)))
        elif tag == "col":
            widths = [int(c[1:]) for c in cls if re.fullmatch(r"w\d+", c)]
            assert len(widths) == 1, attrs
            self.tables[-1][0].append(widths[0])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("section", "div"):
            self.stack.pop()


def test_html_layout_at_a4(hostile: dict[str, Any], tmp_path: Path) -> None:
    from triage.report.document import PORTRAIT_MAX_COLUMNS

    html = report(hostile["case"], "html", tmp_path / "r.html").decode("utf-8")
    parsed = _Tables()
    parsed.feed(html)
    assert len(parsed.tables) > 10
    for widths, landscape in parsed.tables:
        assert sum(widths) == 100, widths  # every column's width declared
        assert landscape or len(widths) <= PORTRAIT_MAX_COLUMNS, widths
    assert any(landscape for _w, landscape in parsed.tables)  # the audit trail
    assert not RAW_JSON.search(re.sub(r"<style>.*?</style>", "", html, flags=re.S))
    printed = _print_html(tmp_path / "r.html", tmp_path / "printed.pdf", tmp_path)
    _assert_common(printed, hostile["case"], "html printed by chromium")
