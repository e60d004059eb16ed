"""Every report's method section prints the measured error rates of the thresholds used
(issue 14, item 5): HTML, PDF and the JSONL header's ``method.error_rates``; a run with a
threshold that has no measured figure says so plainly."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

from hashsets.algorithms.error_rates import LIMITS, load
from tests.reports.helpers import copy_case, pdftotext, report
from tests.support import run_triage


def _text(html: bytes) -> str:
    """The HTML's text, tags removed, whitespace squashed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html.decode("utf-8"))).split())


def _method(text: str) -> str:
    """The method appendix only (from its heading to the next appendix's)."""
    start = text.index("Appendix A. Method")
    return text[start:text.index("Appendix B.", start)]


def _expected(algorithm: str, threshold: int) -> str:
    f = load().figure(algorithm, threshold)
    assert f is not None
    return " ".join(f.sentence().split())


def test_html_pdf_and_jsonl_print_the_figures_of_the_defaults(
        hostile: dict[str, Any], tmp_path: Path) -> None:
    html = _method(_text(report(hostile["case"], "html", tmp_path / "r.html")))
    report(hostile["case"], "pdf", tmp_path / "r.pdf")
    pdf = _method(" ".join(pdftotext(tmp_path / "r.pdf").split()))
    for text in (html, pdf):
        assert "Measured error rates at this run's thresholds." in text
        for alg, t in (("pdq", 31), ("phash", 10), ("dhash", 10)):
            assert _expected(alg, t) in text, (alg, text[:2000])
        assert " ".join(LIMITS.split()) in text
    lines = report(hostile["case"], "jsonl", tmp_path / "r.jsonl").splitlines()
    header = json.loads(lines[0])
    rates = header["method"]["error_rates"]
    assert rates["available"] and rates["command"] == load().command
    by = {f["algorithm"]: f for f in rates["figures"]}
    assert by["pdq"]["threshold"] == 31
    pdq = load().figure("pdq", 31)
    assert pdq is not None
    assert by["pdq"]["figure"]["dihedral"]["false_matches"] == pdq.dihedral.false_matches
    assert by["pdq"]["figure"]["dihedral"]["unrelated_pairs"] == pdq.dihedral.unrelated_pairs
    assert by["pdq"]["statement"].startswith(pdq.sentence())


def test_a_threshold_without_a_figure_is_said_plainly(hostile: dict[str, Any],
                                                      tmp_path: Path) -> None:
    case = copy_case(hostile["case"], tmp_path / "case")
    proc = run_triage("match", str(case), "--store", str(hostile["store"]), "--json",
                      "--threshold", "pdq=70", "--threshold", "phash=12")
    assert proc.returncode == 0, proc.stderr
    html = _method(_text(report(case, "html", tmp_path / "r.html")))
    assert ("PDQ threshold 70 is not the default (31) and has no measured error rate"
            in html)
    assert "the false-match rate and recall of this run are unknown" in html
    assert _expected("phash", 12) in html  # measured, though not the default
    assert _expected("dhash", 10) in html
    assert _expected("pdq", 31) not in html
    header = json.loads(report(case, "jsonl", tmp_path / "r.jsonl").splitlines()[0])
    by = {f["algorithm"]: f for f in header["method"]["error_rates"]["figures"]}
    assert by["pdq"]["threshold"] == 70 and by["pdq"]["figure"] is None
    assert by["phash"]["figure"]["threshold"] == 12
