"""Issue 14 acceptance (items 1-4), through the real CLI: rotated, mirrored and letterboxed
copies of a known picture are found with the variant named; full-decode confirmation
changes the recorded distance where the draft decode moved it; hits are graded.

The known picture is Meta's sample-b.jpg (testdata/media/pdq), its PDQ the published
reference value (testdata/answers/pdq_reference.json); the copies are made here, in a
temporary folder, by rotating and flipping it with Pillow."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hashsets.algorithms import get
from hashsets.algorithms.variants import DIHEDRAL, transform
from tests.support import TESTDATA, rows, run_triage

pytest.importorskip("pdqhash")

PDQ_DIR = TESTDATA / "media" / "pdq"
REFERENCE = json.loads((TESTDATA / "answers" / "pdq_reference.json").read_text())["items"]
SAMPLE_B = next(i["pdq"] for i in REFERENCE if i["file"] == "media/pdq/sample-b.jpg"
                and "pdq" in i)
#: The variant that undoes each transform (what a match of the transformed copy names).
INVERSE = {"original": "original", "rot90": "rot270", "rot270": "rot90", "rot180": "rot180",
           "flipx": "flipx", "flipy": "flipy", "transpose": "transpose",
           "transverse": "transverse"}


def _cli(*args: str, expect: tuple[int, ...] = (0,)) -> str:
    proc = run_triage(*args)
    assert proc.returncode in expect, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Evidence: sample-b.jpg itself (MD5 in a set), its eight dihedral transforms
    re-encoded as JPEG, and Meta's letterboxed copy. Sets: a CSV entry with sample-b's PDQ
    (Meta's value) and pHash; a PDQ-only list; an md5sum list."""
    root = tmp_path_factory.mktemp("variants")
    ev = root / "ev"
    ev.mkdir()
    shutil.copyfile(PDQ_DIR / "sample-b.jpg", ev / "copy.jpg")
    shutil.copyfile(PDQ_DIR / "letterboxed_sample-b.jpg", ev / "letterboxed.jpg")
    with Image.open(PDQ_DIR / "sample-b.jpg") as im:
        im.load()
        phash = get("phash").compute(im)[0]  # type: ignore[attr-defined]
        for variant in DIHEDRAL[1:]:
            transform(im, variant).save(ev / f"{variant}.jpg", quality=95)
    sets = root / "sets"
    sets.mkdir()
    (sets / "both.csv").write_text(f"id,pdq,phash,category\nsample-b,{SAMPLE_B},{phash},A\n")
    (sets / "pdq-only.txt").write_text(f"# pdq\n{SAMPLE_B} sample-b\n")
    md5 = hashlib.md5((PDQ_DIR / "sample-b.jpg").read_bytes()).hexdigest()
    (sets / "exact.md5").write_text(f"{md5}  sample-b.jpg\n")
    store = root / "store.sqlite"
    for name in ("both.csv", "pdq-only.txt", "exact.md5"):
        _cli("hashset", "import", str(sets / name), "--store", str(store))
    case = root / "case"
    summary = json.loads(_cli("scan", str(ev), "--case", str(case), "--store", str(store),
                              "--json", "-q", "--jobs", "1"))
    return {"root": root, "ev": ev, "store": store, "case": case, "summary": summary}


def _hits(case: Path, run: int | None = None) -> list[dict[str, Any]]:
    where = "(SELECT max(run_id) FROM matches)" if run is None else str(run)
    return [dict(r) for r in rows(case, "SELECT f.display_path AS path, m.* FROM matches m "
                                  "JOIN files f ON f.id = m.file_id WHERE m.run_id = "
                                  f"{where} ORDER BY f.display_path, m.set_name, m.algorithm")]


def test_every_dihedral_copy_is_found_with_its_variant_named(built: dict[str, Any]) -> None:
    hits = _hits(built["case"])
    for variant in DIHEDRAL[1:]:
        mine = [h for h in hits if h["path"] == f"{variant}.jpg" and h["algorithm"] == "pdq"
                and h["set_name"] == "pdq-only.txt"]
        assert len(mine) == 1, (variant, mine)
        hit = mine[0]
        assert hit["variant"] == INVERSE[variant], (variant, hit["variant"])
        assert hit["distance"] <= 31 and hit["threshold"] == 31
        assert hit["quality"] == 100
        assert hit["set_version"] is None or isinstance(hit["set_version"], str)
        # Without variants the copy is far from the original (issue 14: 106-128 bits).
        value = rows(built["case"], "SELECT value FROM hashes h JOIN files f ON f.id = "
                     "h.file_id WHERE f.display_path=? AND algorithm='pdq'",
                     (f"{variant}.jpg",))[0][0]
        if variant != "original":
            assert get("pdq").distance(value, SAMPLE_B) > 31, variant


def test_a_letterboxed_copy_is_found(built: dict[str, Any]) -> None:
    hits = [h for h in _hits(built["case"]) if h["path"] == "letterboxed.jpg"
            and h["algorithm"] == "pdq"]
    assert hits and {h["variant"] for h in hits} == {"unletterboxed"}
    assert all(h["distance"] <= 4 for h in hits), hits
    facts = rows(built["case"], "SELECT i.preprocessing FROM images i JOIN files f ON "
                 "f.id = i.file_id WHERE f.display_path='letterboxed.jpg'")[0][0]
    assert "unletterboxed: dark borders (grey < 25) cut" in facts
    # The picture as stored keeps its own hash, far from the original.
    value = rows(built["case"], "SELECT value FROM hashes h JOIN files f ON f.id = h.file_id "
                 "WHERE f.display_path='letterboxed.jpg' AND algorithm='pdq'")[0][0]
    assert get("pdq").distance(value, SAMPLE_B) > 100


def test_full_decode_confirmation_records_the_full_decode_distance(
        built: dict[str, Any]) -> None:
    """copy.jpg (1600x1004) is draft-decoded to 800x502, which moves its PDQ 2 bits from
    Meta's value; the full decode (as Meta's reference was computed) is 0 bits away. The
    hit is recorded on the full decode, the draft value kept beside it."""
    case = built["case"]
    hit = next(h for h in _hits(case) if h["path"] == "copy.jpg" and h["algorithm"] == "pdq"
               and h["set_name"] == "pdq-only.txt")
    assert (hit["distance"], hit["decode"], hit["variant"]) == (0, "confirmed", "original")
    draft = rows(case, "SELECT v.value, v.preprocessing FROM hash_variants v JOIN files f ON "
                 "f.id = v.file_id WHERE f.display_path='copy.jpg' AND v.algorithm='pdq' "
                 "AND v.variant='draft'")
    assert len(draft) == 1 and "JPEG draft decode to 800x502" in draft[0][1]
    assert get("pdq").distance(draft[0][0], SAMPLE_B) == 2
    full = rows(case, "SELECT h.preprocessing FROM hashes h JOIN files f ON f.id = h.file_id "
                "WHERE f.display_path='copy.jpg' AND h.algorithm='pdq'")[0][0]
    assert "JPEG draft decode" not in full
    facts = rows(case, "SELECT decoded_width, decoded_height FROM images i JOIN files f ON "
                 "f.id = i.file_id WHERE f.display_path='copy.jpg'")[0]
    assert tuple(facts) == (1600, 1004)
    confirmation = built["summary"]["matches"]["confirmation"]
    assert confirmation["candidates"] == 9 and confirmation["failed"] == 0


def test_grades(built: dict[str, Any]) -> None:
    hits = _hits(built["case"])
    by = {(h["path"], h["set_name"], h["algorithm"]): h for h in hits}
    assert by[("copy.jpg", "exact.md5", "md5")]["grade"] == "exact"
    # PDQ and pHash on the same CSV entry, both on the picture as stored: confirmed.
    assert by[("copy.jpg", "both.csv", "pdq")]["grade"] == "confirmed"
    assert by[("copy.jpg", "both.csv", "phash")]["grade"] == "confirmed"
    # One algorithm only: for review.
    assert by[("copy.jpg", "pdq-only.txt", "pdq")]["grade"] == "review"
    for variant in DIHEDRAL[1:]:
        assert by[(f"{variant}.jpg", "pdq-only.txt", "pdq")]["grade"] == "review"
    # Every file of the evidence matched the same PDQ value of the PDQ-only set.
    same = {h["files_same_value"] for h in hits
            if h["set_name"] == "pdq-only.txt"}
    assert same == {9}
    grades = built["summary"]["matches"]["by_grade"]
    assert grades["exact"] == 1 and grades["unconfirmed"] == 0
    assert grades["confirmed"] >= 2 and grades["review"] >= 9


def test_a_later_match_without_the_evidence_leaves_unconfirmed_candidates(
        built: dict[str, Any], tmp_path: Path) -> None:
    """A scan without matching keeps draft values; a later `triage match` whose evidence
    is gone records their near hits as unconfirmed candidates (grade and decode say so)."""
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copyfile(PDQ_DIR / "sample-b.jpg", ev / "copy.jpg")
    case = tmp_path / "case"
    _cli("scan", str(ev), "--case", str(case), "--no-match", "-q", "--jobs", "1")
    shutil.rmtree(ev)
    summary = json.loads(_cli("match", str(case), "--store", str(built["store"]), "--json"))
    hit = next(h for h in _hits(case) if h["algorithm"] == "pdq"
               and h["set_name"] == "pdq-only.txt")
    assert (hit["grade"], hit["decode"], hit["distance"]) == ("unconfirmed", "draft", 2)
    assert summary["by_grade"]["unconfirmed"] >= 1
    assert summary["confirmation"] == {"candidates": 1, "confirmed": 0, "failed": 0,
                                       "content_changed": 0, "no_digest": 0,
                                       "not_reachable": 1}
    assert any("unconfirmed candidates" in n for n in summary["notes"])


def test_a_later_match_re_opens_reachable_evidence(built: dict[str, Any],
                                                   tmp_path: Path) -> None:
    """The same, with the evidence still there: `triage match` decodes the candidate again
    at full size, records it in an audited change, and the case still verifies."""
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copyfile(PDQ_DIR / "sample-b.jpg", ev / "copy.jpg")
    case = tmp_path / "case"
    _cli("scan", str(ev), "--case", str(case), "--no-match", "-q", "--jobs", "1")
    summary = json.loads(_cli("match", str(case), "--store", str(built["store"]), "--json"))
    assert summary["confirmation"] == {"candidates": 1, "confirmed": 1, "failed": 0,
                                       "content_changed": 0, "no_digest": 0,
                                       "not_reachable": 0}
    hit = next(h for h in _hits(case) if h["algorithm"] == "pdq"
               and h["set_name"] == "pdq-only.txt")
    assert (hit["grade"], hit["decode"], hit["distance"]) == ("review", "confirmed", 0)
    assert summary["by_grade"]["unconfirmed"] == 0
    assert "all checks passed" in _cli("verify", str(case))


def test_reports_sort_and_label_hits_by_grade(built: dict[str, Any], tmp_path: Path) -> None:
    """CSV (--rows hits), JSONL and HTML list hits best grade first, with the grade in
    words and the variant."""
    import csv

    from triage.model import GRADE_LABELS, GRADES

    case = built["case"]
    out = tmp_path / "hits.csv"
    _cli("report", str(case), "--format", "csv", "--rows", "hits", "--out", str(out))
    table = list(csv.DictReader(out.open(encoding="utf-8")))
    ranks = [GRADES.index(r["grade"]) for r in table]
    firsts: dict[str, int] = {}
    for r, rank in zip(table, ranks, strict=True):
        firsts.setdefault(r["path"], rank)
    assert list(firsts.values()) == sorted(firsts.values())  # files by best grade
    assert table[0]["grade"] == "exact" and table[0]["path"] == "copy.jpg"
    for r in table:
        assert r["grade_label"] == GRADE_LABELS[r["grade"]]
    rotated = next(r for r in table if r["path"] == "rot90.jpg" and r["algorithm"] == "pdq")
    assert rotated["variant"] == "rot270" and rotated["decode"] == "confirmed"
    jsonl = tmp_path / "r.jsonl"
    _cli("report", str(case), "--format", "jsonl", "--out", str(jsonl))
    hits = [h for line in jsonl.read_text().splitlines()
            if (rec := json.loads(line)).get("type") == "file" for h in rec["hits"]]
    assert hits and all(h["grade_label"] == GRADE_LABELS[h["grade"]] for h in hits)
    html = tmp_path / "r.html"
    _cli("report", str(case), "--format", "html", "--out", str(html))
    text = html.read_text()
    assert "rotated 90 degrees clockwise (variant rot270)" in text
    assert text.index(GRADE_LABELS["exact"]) < text.index(GRADE_LABELS["review"])
