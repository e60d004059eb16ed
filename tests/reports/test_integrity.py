"""The evidence integrity verdict every report shows (issue 12 item 2): the acquisition
hashes stored in an E01 (evidence columns, else the description's ``stored_hashes``), the
hashes computed over the media, and their comparison; and category texts without '(none)'."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.reports.helpers import report
from tests.support import rows
from triage.report.document import NO_CATEGORY_TEXT, category_text, explain, integrity
from triage.report.rows import Evidence, File, Hit

MD5 = "8ec671e301095c258224aad701740503"  # imageformat_mmls_1.E01 (testdata MANIFEST.md)
SHA1 = "067bc6ab29685ee19b0cf82c9d15ac510d1e7d95"


def _ev(**kw: Any) -> Evidence:
    base: dict[str, Any] = {"id": 1, "path": "x.E01", "path_hex": "", "source_type": "image",
                            "size": 1, "description": None, "stored_md5": None,
                            "stored_sha1": None, "computed_md5": None, "computed_sha1": None}
    return Evidence(**{**base, **kw})


def test_verdicts() -> None:
    fallback = _ev(description={"stored_hashes": {"md5": MD5, "sha1": SHA1}})
    it = integrity(fallback)
    assert it.stored == {"md5": MD5, "sha1": SHA1} and it.ok is None
    assert it.verdict.startswith("not verified")
    ok = integrity(_ev(stored_md5=MD5.upper(), stored_sha1=SHA1, computed_md5=MD5,
                       computed_sha1=SHA1))
    assert ok.ok is True and ok.verdict.startswith("verified") and "SHA-1" in ok.verdict
    bad = integrity(_ev(description={"stored_hashes": {"md5": MD5}}, computed_md5="0" * 32,
                        computed_sha1=SHA1))
    assert bad.ok is False and bad.verdict == (
        "MISMATCH: computed MD5 not equal to the hash stored at acquisition")
    # the columns win over the description
    cols = integrity(_ev(stored_md5=MD5, description={"stored_hashes": {"md5": "f" * 32}},
                         computed_md5=MD5))
    assert cols.ok is True
    raw = integrity(_ev(source_type="image"))
    assert raw.ok is None and raw.stored == {} and "nothing to verify" in raw.verdict


def _hit(**kw: Any) -> Hit:
    base: dict[str, Any] = {n: None for n in Hit.columns()}
    base.update(set_id="abcd", set_name="s", set_version=None, algorithm="md5",
                match_type="exact", distance=0, file_value="a", known_value="a", known=False)
    return Hit(**{**base, **kw})


def _file() -> File:
    base: dict[str, Any] = {n: None for n in File.columns()}
    base.update(id=1, evidence_id=1, display_path="p", path_hex="70", kind="file",
                allocated=True, deleted=False, notes=(), status="done")
    return File(**base, hashes=(), image=None, hits=())


def test_no_category_never_reads_none() -> None:
    h = _hit(category=None, category_raw=None)
    assert category_text(h) == NO_CATEGORY_TEXT
    sentence = explain(_file(), h)
    assert "(none)" not in sentence and "the set has no categories" in sentence
    cat = _hit(category="child exploitation (illegal)", category_raw="1")
    assert category_text(cat) == "child exploitation (illegal) (raw value 1)"
    assert "category 'child exploitation (illegal)' (raw value '1')" in explain(_file(), cat)


def test_outcome_classes_in_csv_and_jsonl(hostile: dict[str, Any], tmp_path: Path) -> None:
    """Every CSV row names its outcome class; the JSONL header counts them (issue 12 item 3:
    per-class counts in every report), against the case's own status counts."""
    from triage.model import OUTCOME_OF_STATUS, outcome_counts

    by_status = {r["status"]: int(r["n"]) for r in rows(
        hostile["case"], "SELECT status, count(*) AS n FROM files GROUP BY status")}
    data = report(hostile["case"], "csv", tmp_path / "r.csv").decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(data, newline="")))
    assert len(table) == sum(by_status.values())
    assert all(r["outcome"] == OUTCOME_OF_STATUS[r["status"]] for r in table)
    lines = report(hostile["case"], "jsonl", tmp_path / "r.jsonl").decode("ascii").splitlines()
    summary = json.loads(lines[0])["summary"]
    assert summary["by_outcome"] == outcome_counts(by_status)
    skipped = sum(g["count"] for g in summary["coverage"] if g["status"] == "skipped")
    assert skipped == by_status.get("skipped", 0)


def test_category_order_puts_illegal_first() -> None:
    from hashsets.formats.categories import CAID, DHS
    from triage.report.document import NO_CATEGORY, category_rank

    labels = [NO_CATEGORY, DHS["5"], "unmapped:7", DHS["2"], CAID["B"], DHS["3"], DHS["1"],
              DHS["0"]]
    assert sorted(labels, key=category_rank) == [
        DHS["1"], CAID["B"], DHS["2"], DHS["3"], "unmapped:7", DHS["0"], DHS["5"],
        NO_CATEGORY]


def test_audit_appendix_summarises_data_digests() -> None:
    """A run's data digest reads as the tables and row counts it covers, never as a page of
    SHA-256 values (those stay in the case, where verify recomputes them)."""
    import re

    from triage.report.document import Lines, _details

    digest = {"version": 1, "tables": {"files": {"1": [32, "a" * 64], "2": [3, "b" * 64]},
                                       "matches": {}}}
    cell = _details(json.dumps({"run": 1, "data_digest": digest}))
    assert isinstance(cell, Lines)
    text = "\n".join(cell.parts)
    assert "data_digest: rows of files 35, matches 0" in text
    assert not re.search(r"[0-9a-f]{64}", text)
