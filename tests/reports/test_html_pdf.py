"""HTML in headless Chromium (no script, no request, the expected hits) and the PDF's text."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests.reports.helpers import chromium, pdftotext, report
from tests.support import rows

ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "span",
                "section", "div", "table", "caption", "colgroup", "col", "thead", "tbody",
                "tr", "th", "td"}
#: ``title`` holds a shortened hash's full value (hover); it is text, never loaded.
ALLOWED_ATTRS = {"lang", "charset", "http-equiv", "content", "name", "class", "id", "colspan",
                 "title"}


class _Audit(HTMLParser):
    """Collects tags/attributes and the cells of the hits table."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.section = ""
        self.hit_rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.csp = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(a for a, _ in attrs)
        d = dict(attrs)
        if tag == "meta" and d.get("http-equiv") == "Content-Security-Policy":
            self.csp = d.get("content") or ""
        if tag == "table":
            self.section = d.get("id") or ""
        if self.section == "hit-table" and tag == "tr":
            self._row = []
        if self._row is not None and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        if tag == "tr" and self._row is not None:
            if self._row:
                self.hit_rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Audit:
    a = _Audit()
    a.feed(html)
    return a


def _chromium(url: str, tmp: Path) -> tuple[str, list[dict[str, Any]]]:
    """dump-dom with a NetLog; returns (DOM, page-initiated requests)."""
    netlog = tmp / "netlog.json"
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-sync", f"--user-data-dir={tmp / 'profile'}",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing can leave the machine
         f"--log-net-log={netlog}", "--net-log-capture-mode=Everything", "--dump-dom", url],
        capture_output=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    log = json.loads(netlog.read_text())
    # Requests the browser makes for itself carry initiator "not an origin"; anything the
    # page asks for carries the page's origin (file:// pages: "null").
    page = [e["params"] for e in log["events"]
            if isinstance(e.get("params"), dict) and "url" in e["params"]
            and e["params"].get("initiator") not in (None, "not an origin")]
    return proc.stdout.decode("utf-8"), page


def test_html_is_inert_and_loads_in_chromium(hostile: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    html = report(hostile["case"], "html", out).decode("utf-8")
    a = parse(html)
    # The CSP forbids everything but the inline style sheet (by hash).
    directives = dict(d.strip().split(" ", 1) for d in a.csp.split(";"))
    assert directives["default-src"] == "'none'"
    for d in ("img-src", "script-src", "object-src", "connect-src", "font-src", "frame-src"):
        assert directives[d] == "'none'", d
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/=]+'", directives["style-src"])
    # Nothing that could load or run anything.
    low = html.lower()
    for needle in ("<script", "<img", "<link", "<iframe", "<object", "<embed", "<svg",
                   "<base", "url(", "background-image", "background:", "@import",
                   "image-set(", "javascript:"):
        assert needle not in low, needle
    # A data: URL scheme, not the words "metadata:" of a run's options (issue 16).
    assert not re.search(r"(?<![a-z0-9_-])data:", low), re.search(r".{40}data:", low)
    # (src=/href=/on*= inside escaped names are text; the parser proves no such attribute.)
    assert a.tags <= ALLOWED_TAGS, a.tags - ALLOWED_TAGS
    assert a.attrs <= ALLOWED_ATTRS, a.attrs - ALLOWED_ATTRS

    dom, requests = _chromium(out.as_uri(), tmp_path)
    assert requests == [], requests
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    # The expected hits: every match row of the case, by file, is a row of the hits table.
    want = sorted((r["display_path"], r["algorithm"], r["match_type"]) for r in rows(
        hostile["case"], "SELECT f.display_path, m.algorithm, m.match_type FROM matches m "
                         "JOIN files f ON f.id = m.file_id"))
    # columns: #, file, category, set, "algorithm\nexact|near, distance ...", value, caution
    got = sorted((r[1], r[4].split("\n")[0], r[4].split("\n")[1].split(",")[0])
                 for r in parse(dom).hit_rows)
    assert got == want
    assert len(want) == 15  # 10 exact VICS, 3 near PDQ, 2 known


def test_netlog_detects_page_requests(tmp_path: Path) -> None:
    """Positive control: the request check above does see a page's requests."""
    page = tmp_path / "canary.html"
    page.write_text('<!DOCTYPE html><link rel="stylesheet" href="http://canary.invalid/a.css">'
                    '<img src="http://canary.invalid/x.png"><p>x</p>')
    _dom, requests = _chromium(page.as_uri(), tmp_path)
    assert any("canary.invalid" in r["url"] for r in requests)


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def pdf_tables(pdf: Path) -> list[list[list[str]]]:
    """Every ruled table of the PDF as rows of cell texts (pdfplumber, an independent
    reader: it finds tables from the drawn cell borders, so text laid out as lines is not
    a table)."""
    import pdfplumber

    out = []
    with pdfplumber.open(pdf) as doc:
        for page in doc.pages:
            for t in page.extract_tables():
                out.append([[c or "" for c in row] for row in t])
    return out


def test_pdf_text_has_the_same_hits_as_html(hostile: dict[str, Any], tmp_path: Path) -> None:
    """The PDF's hits table (real ruled cells, read back by pdfplumber) holds the same rows
    and cells as the HTML's."""
    html = report(hostile["case"], "html", tmp_path / "r.html").decode("utf-8")
    report(hostile["case"], "pdf", tmp_path / "r.pdf")
    text = pdftotext(tmp_path / "r.pdf")
    hit_rows = parse(html).hit_rows
    assert len(hit_rows) == 15
    header = ["#", "file", "category", "set (version, id)", "algorithm, match",
              "value (file)", "caution"]
    pdf_rows = []
    for t in pdf_tables(tmp_path / "r.pdf"):
        if [_squash(c) for c in t[0]] == [_squash(h) for h in header]:
            pdf_rows.extend(r for r in t[1:] if r[0].strip())
    assert len(pdf_rows) == len(hit_rows)
    from triage.report.pdf import DEJAVU, _escaper

    esc = _escaper(DEJAVU)  # the PDF writes glyphs its font lacks as visible \uXXXX
    for html_row, pdf_row in zip(hit_rows, pdf_rows, strict=True):
        assert [esc(_squash(c)) for c in html_row] == [_squash(c) for c in pdf_row]
    assert "\\u56fe\\u7247.png" in text  # CJK outside the font: escaped visibly, not dropped
    assert "content may be overwritten" in text
