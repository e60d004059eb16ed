"""match_case on a small case database with hashes inserted directly (no scanner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hashsets.store import HashSetStore
from triage.case import Case, FileResult
from triage.errors import HashSetError
from triage.matching import match_case
from triage.model import FileEntry, HashValue, to_json

from . import fixtures as fx

PDQ_KNOWN = "f" * 16 + "0" * 48
PHASH_KNOWN = "ba8c84536bd3c366"


def _flip_hex(value: str, n: int) -> str:
    bits = len(value) * 4
    v = int(value, 16)
    for i in range(n):
        v ^= 1 << (i * 3 % bits)
    return f"{v:0{len(value)}x}"


def _case(tmp_path: Path, files: list[list[tuple[str, str, int | None]]]) -> tuple[Case, int]:
    case = Case.open(tmp_path / "case")
    run = case.start_run("scan", ["scan"], {}, {})
    ev = case.add_evidence(path="ev", path_bytes=b"ev", source_type="directory", size=None,
                           description={}, run_id=run)
    entries = [FileEntry(identity=f"f{i}", path=f"f{i}".encode(), kind="file")
               for i in range(len(files))]
    ids = [e.file_id for e in case.insert_entries(ev, run, entries)]
    case.write_results(run, [FileResult(file_id=fid, status="done",
                                        hashes=tuple(HashValue(a, v, q) for a, v, q in hs))
                             for fid, hs in zip(ids, files, strict=True)])
    return case, run


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    st = HashSetStore(tmp_path / "hs.sqlite")
    st.import_file(fx.vics_v2(tmp_path / "vics.json"))
    st.import_file(fx.RDS2_ZIP)
    pdq = tmp_path / "pdq.txt"
    pdq.write_text(f"# pdq\n{PDQ_KNOWN},industry-label\n")
    st.import_file(pdq)
    ph = tmp_path / "ph.txt"
    ph.write_text(f"{PHASH_KNOWN}\tph-label\n")
    st.import_file(ph)
    st.close()
    return tmp_path / "hs.sqlite"


def test_match_case_exact_near_known_and_nothing_else(tmp_path: Path,
                                                      store_path: Path) -> None:
    nsrl_sha1 = "00d1034546f530d746131ce2a28a052db21652ec"  # line 2 of NSRLFile.txt
    files = [
        [("md5", fx.md5(fx.ITEMS[0]), None), ("sha1", fx.sha1(fx.ITEMS[0]), None)],  # exact
        [("pdq", _flip_hex(PDQ_KNOWN, 20), 90)],        # near, distance 20
        [("pdq", _flip_hex(PDQ_KNOWN, 5), 30)],         # low quality: not matched
        [("phash", _flip_hex(PHASH_KNOWN, 11), None)],  # distance 11 > 10: no hit
        [("sha1", nsrl_sha1, None)],                    # known (NSRL)
        [("md5", fx.EMPTY_MD5, None)],                  # empty file: never matched
        [("md5", fx.md5(b"unrelated"), None), ("phash", _flip_hex(PHASH_KNOWN, 4), None)],
    ]
    case, run = _case(tmp_path, files)
    s = match_case(case, run, store_path=store_path)
    rows = case.query("SELECT file_id, set_name, algorithm, match_type, distance, threshold, "
                      "category, category_raw, known, entry_ref, victim_identified FROM matches "
                      "WHERE run_id=? ORDER BY id", (run,))
    got = [(r["file_id"], r["algorithm"], r["match_type"], r["distance"], r["known"])
           for r in rows]
    assert got == [(1, "md5", "exact", 0, 0), (1, "sha1", "exact", 0, 0),
                   (2, "pdq", "near", 20, 0), (5, "sha1", "exact", 0, 1),
                   (7, "phash", "near", 4, 0)]
    assert rows[0]["category"] == "child exploitation (illegal)" and rows[0]["category_raw"] == "1"
    assert rows[0]["entry_ref"] == "1001" and rows[2]["threshold"] == 31
    assert rows[2]["category"] == "industry-label" and rows[3]["category"] == "known"
    assert s.files_matched == 3 and s.known.files == 1
    assert s.skipped == {"empty_file_digests": 1, "pdq_low_quality": 1}
    assert any("quality" in n for n in s.notes)
    assert s.by_category == {"child exploitation (illegal)": 1, "industry-label": 1,
                                "ph-label": 1}
    used = case.query("SELECT name, known FROM hash_sets_used WHERE run_id=? ORDER BY id",
                      (run,))
    assert [(u["name"], u["known"]) for u in used] == [("vics.json", 0),
                                                      ("RDS-000001-15.zip", 1),
                                                      ("pdq.txt", 0), ("ph.txt", 0)]
    assert case.query("SELECT action FROM audit ORDER BY seq DESC LIMIT 1")[0]["action"] == \
        "match"
    assert case.verify_audit_chain() == []
    # Deterministic and idempotent for the same run.
    s2 = match_case(case, run, store_path=store_path)
    assert s2 == s and to_json(s2) == to_json(s)
    assert len(case.query("SELECT id FROM matches WHERE run_id=?", (run,))) == 5


def test_thresholds_overridable(tmp_path: Path, store_path: Path) -> None:
    case, run = _case(tmp_path, [[("phash", _flip_hex(PHASH_KNOWN, 11), None)],
                                 [("pdq", _flip_hex(PDQ_KNOWN, 5), 30)]])
    s = match_case(case, run, store_path=store_path,
                   thresholds={"phash": 12, "pdq_min_quality": 20})
    assert s.near == 2 and s.thresholds["phash"] == 12
    with pytest.raises(HashSetError, match="unknown threshold"):
        match_case(case, run, store_path=store_path, thresholds={"phsah": 3})


def test_missing_store_is_reported_not_created(tmp_path: Path) -> None:
    case, run = _case(tmp_path, [[("md5", fx.md5(b"x"), None)]])
    s = match_case(case, run, store_path=tmp_path / "none.sqlite")
    assert s.hits == 0 and "no hash-set store" in s.notes[0]
    assert not (tmp_path / "none.sqlite").exists()


def test_new_set_finds_new_hits_in_old_case(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    HashSetStore(store).import_file(fx.MD5DEEP)
    case, run = _case(tmp_path, [[("md5", fx.md5(fx.ITEMS[1]), None)]])
    assert match_case(case, run, store_path=store).hits == 0
    HashSetStore(store).import_file(fx.vics_v2(tmp_path / "v.json"))
    run2 = case.start_run("match", ["match"], {}, {})
    s = match_case(case, run2, store_path=store)
    assert s.hits == 1 and s.exact == 1


# -- damaged sets (issue 10, item 8) ------------------------------------------------------

def _damage(store: Path, *sql: str) -> None:
    import sqlite3

    conn = sqlite3.connect(store)
    with conn:
        for statement in sql:
            conn.execute(statement)
    conn.close()


def _files() -> list[list[tuple[str, str, int | None]]]:
    nsrl_sha1 = "00d1034546f530d746131ce2a28a052db21652ec"
    return [[("md5", fx.md5(fx.ITEMS[0]), None)],            # vics.json (set 1), exact
            [("pdq", _flip_hex(PDQ_KNOWN, 20), 90)],         # pdq.txt (set 3), near
            [("sha1", nsrl_sha1, None)],                     # RDS (set 2), known
            [("phash", _flip_hex(PHASH_KNOWN, 4), None)]]    # ph.txt (set 4), near


def _hit_sets(case: Case, run: int) -> list[str]:
    return [r["set_name"] for r in case.query(
        "SELECT set_name FROM matches WHERE run_id=? ORDER BY id", (run,))]


@pytest.mark.parametrize(("damage", "victim"), [
    # a set's hash table is gone (exact matching)
    (("DROP TABLE h1_md5",), "vics.json"),
    # a set's perceptual values have the wrong width (the near index cannot be built)
    (("DROP TABLE h3_pdq", "CREATE TABLE h3_pdq(value BLOB, ref INTEGER)",
      "INSERT INTO h3_pdq VALUES (x'0102', 1)"), "pdq.txt"),
    # a set's own record is corrupt
    (("UPDATE sets SET hash_counts='{not json' WHERE name='ph.txt'",), "ph.txt"),
    # a set's entry metadata table is mangled (read for its hits)
    (("DROP TABLE e1", "CREATE TABLE e1(x)"), "vics.json"),
])
def test_damaged_set_is_reported_and_the_others_still_match(
        tmp_path: Path, store_path: Path, damage: tuple[str, ...], victim: str) -> None:
    case, run = _case(tmp_path, _files())
    s0 = match_case(case, run, store_path=store_path)
    before = _hit_sets(case, run)
    assert sorted(before) == ["RDS-000001-15.zip", "pdq.txt", "ph.txt", "vics.json"]
    assert s0.damaged_sets == ()
    _damage(store_path, *damage)
    s = match_case(case, run, store_path=store_path)
    assert [d.name for d in s.damaged_sets] == [victim]
    assert victim in s.damaged_sets[0].error and "damaged" in s.damaged_sets[0].error
    assert sorted(_hit_sets(case, run)) == sorted(n for n in before if n != victim)
    assert any(victim in n and "NOT matched" in n for n in s.notes)
    audit = json.loads(case.query("SELECT details FROM audit ORDER BY seq DESC LIMIT 1")[0][
        "details"])
    assert [d["name"] for d in audit["damaged_sets"]] == [victim]


def test_library_raises_a_named_error_without_a_damaged_list(tmp_path: Path,
                                                             store_path: Path) -> None:
    from hashsets.errors import DamagedSetError, HashSetFileError
    from hashsets.matching import exact_matches

    _damage(store_path, "DROP TABLE h1_md5")
    with HashSetStore(store_path, readonly=True) as st:
        with pytest.raises(DamagedSetError, match=r"set \S+ \(vics.json\) is damaged") as e:
            exact_matches(st, [(1, "md5", fx.md5(fx.ITEMS[0]))])
        assert isinstance(e.value, HashSetFileError) and e.value.set_name == "vics.json"
        damaged: list[DamagedSetError] = []
        assert exact_matches(st, [(1, "md5", fx.md5(fx.ITEMS[0]))], damaged=damaged) == []
        assert [d.set_name for d in damaged] == ["vics.json"]


def test_cli_match_with_a_damaged_set_exits_6_with_what_matched(tmp_path: Path,
                                                                store_path: Path) -> None:
    from tests.support import run_triage

    case, _ = _case(tmp_path, _files())
    case.close()
    _damage(store_path, "DROP TABLE h3_pdq")
    proc = run_triage("match", str(tmp_path / "case"), "--store", str(store_path), "--json")
    assert proc.returncode == 6, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["files_matched"] == 2 and summary["known"]["files"] == 1
    assert [d["name"] for d in summary["damaged_sets"]] == ["pdq.txt"]
    assert "pdq.txt" in proc.stderr and "Traceback" not in proc.stderr
    with Case.open(tmp_path / "case", create=False) as again:
        last = again.query("SELECT status FROM runs ORDER BY id DESC LIMIT 1")[0]
        assert last["status"] == "completed"


def test_cli_scan_with_a_damaged_set_exits_6_with_what_matched(tmp_path: Path,
                                                               store_path: Path) -> None:
    from tests.support import run_triage

    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "member.bin").write_bytes(fx.ITEMS[0])  # in vics.json (exact MD5)
    _damage(store_path, "DROP TABLE h3_pdq")
    proc = run_triage("scan", str(ev), "--case", str(tmp_path / "c"), "--store",
                      str(store_path), "--json", "-q", "--jobs", "1")
    assert proc.returncode == 6, proc.stderr
    matches = json.loads(proc.stdout)["matches"]
    assert matches["files_matched"] == 1
    assert [d["name"] for d in matches["damaged_sets"]] == ["pdq.txt"]


def test_cli_threshold_options_generic_and_legacy(tmp_path: Path, store_path: Path) -> None:
    from tests.support import run_triage

    case, _ = _case(tmp_path, [[("phash", _flip_hex(PHASH_KNOWN, 11), None)],
                               [("pdq", _flip_hex(PDQ_KNOWN, 5), 30)]])
    case.close()
    base = ("match", str(tmp_path / "case"), "--store", str(store_path), "--json")
    generic = run_triage(*base, "--threshold", "phash=12", "--min-quality", "PDQ=20")
    legacy = run_triage(*base, "--phash", "12", "--pdq-min-quality", "20")
    for proc in (generic, legacy):
        assert proc.returncode == 0, proc.stderr
        s = json.loads(proc.stdout)
        assert s["near"] == 2 and s["thresholds"]["phash"] == 12
        assert s["thresholds"]["pdq_min_quality"] == 20 and s["thresholds"]["pdq"] == 31
    for bad, message in ((("--threshold", "phsah=3"), "unknown algorithm 'phsah'"),
                         (("--threshold", "pdq"), "is not ALGO=N"),
                         (("--min-quality", "pdq=x"), "is not ALGO=N"),
                         (("--threshold", "phash=65"), "is outside 0..64")):
        proc = run_triage(*base, *bad)
        words = " ".join(proc.stderr.replace("│", " ").split())  # rich wraps in a box
        assert proc.returncode == 2 and message in words, proc.stderr
