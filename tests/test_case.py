"""The case database: private files, explicit schema, append-only hash-chained audit, refusal
of corrupt databases, resume of an existing case, deterministic rows."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from PIL import Image

from tests.support import rows, run_triage, scan_json
from triage.case import Case
from triage.errors import CaseError


@pytest.fixture()
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        Image.new("RGB", (50, 40), (i * 50, 80, 90)).save(root / f"p{i}.png")
    (root / "sub" / "copy.png").write_bytes((root / "p1.png").read_bytes())
    (root / "sub" / "data.bin").write_bytes(bytes(range(256)) * 40)
    return root


def test_case_directory_and_files_are_private(evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "new-case"
    scan_json(evidence, case)
    assert stat.S_IMODE(case.stat().st_mode) == 0o700
    for p in case.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p


def test_schema_is_explicit_and_strict(tmp_path: Path) -> None:
    with Case.open(tmp_path / "c") as case:
        tables = {r[0] for r in case.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"case", "evidence", "runs", "files", "hashes", "images", "errors", "matches",
                "hash_sets_used", "audit", "meta"} <= tables
        with pytest.raises(sqlite3.Error):
            case.conn.execute("INSERT INTO hashes(file_id, algorithm, value) "
                              "VALUES ('x', 1, 2)")


def test_audit_chain_is_append_only_and_verifiable(evidence: Path, tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    scan_json(evidence, case_dir, "--case-number", "2026-0042", "--examiner", "E. Xaminer")
    with Case.open(case_dir) as case:
        assert case.verify_audit_chain() == []
        actions = [r[0] for r in case.conn.execute("SELECT action FROM audit ORDER BY seq")]
        assert actions == ["case.create", "scan.start", "evidence.add", "scan.end"]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            case.conn.execute("UPDATE audit SET action='x' WHERE seq=1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            case.conn.execute("DELETE FROM audit")
        # Bypass the trigger the way a tamperer would and check the chain notices.
        case.conn.execute("DROP TRIGGER audit_no_update")
        case.conn.execute("UPDATE audit SET details='{}' WHERE seq=2")
        problems = case.verify_audit_chain()
        assert any("row 2" in p for p in problems)
    info = rows(case_dir, 'SELECT * FROM "case"')[0]
    assert info["number"] == "2026-0042" and info["examiner"] == "E. Xaminer"


def test_runs_record_versions_and_arguments(evidence: Path, tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    scan_json(evidence, case_dir, "--jobs", "1")
    run = rows(case_dir, "SELECT * FROM runs")[0]
    assert run["status"] == "completed" and run["ended_utc"].endswith("Z")
    for lib in ("Pillow", "ImageHash", "pdqhash", "python-magic"):
        assert lib in run["versions"]
    assert "libmagic" in run["versions"] and '"--jobs","1"' in run["arguments"]


def test_corrupt_database_is_refused_not_appended_to(evidence: Path, tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    scan_json(evidence, case_dir)
    db = case_dir / "case.sqlite"
    data = bytearray(db.read_bytes())
    for page in range(1, len(data) // 4096):      # scribble over every b-tree page header
        data[page * 4096: page * 4096 + 8] = b"\x55" * 8
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    proc = run_triage("scan", str(evidence), "--case", str(case_dir), "--no-match", "-q")
    assert proc.returncode == 5, proc.stderr
    assert "case.sqlite" in proc.stderr and ("corrupt" in proc.stderr or
                                              "integrity" in proc.stderr)
    assert db.read_bytes() == before
    with pytest.raises(CaseError):
        Case.open(case_dir)


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    (case_dir / "case.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CaseError, match=r"case\.sqlite"):
        Case.open(case_dir)


def test_same_evidence_gives_the_same_rows(evidence: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    scan_json(evidence, a, "--jobs", "2")
    scan_json(evidence, b, "--jobs", "1")
    q = ("SELECT f.id, f.path, f.kind, f.size, f.status, f.mime, f.media_kind, "
         "f.ext_mismatch, h.algorithm, h.value, h.quality FROM files f LEFT JOIN hashes h "
         "ON h.file_id=f.id ORDER BY f.id, h.algorithm")
    assert [tuple(r) for r in rows(a, q)] == [tuple(r) for r in rows(b, q)]


def test_rescan_of_the_same_evidence_does_not_redo_or_duplicate(evidence: Path,
                                                                 tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    first = scan_json(evidence, case_dir)
    second = scan_json(evidence, case_dir)
    assert second["resumed"] is True
    assert second["entries"] == first["entries"]
    assert len(rows(case_dir, "SELECT * FROM evidence")) == 1
    assert len(rows(case_dir, "SELECT * FROM runs")) == 2
    assert rows(case_dir, "SELECT count(*) AS n FROM files")[0]["n"] == first["entries"]


def test_amendments_add_notes_and_problems_to_entries(tmp_path: Path) -> None:
    from triage.scan import _enumerate, _NoProgress
    from triage.sources.base import EntryAmendment, FileEntry, Problem

    with Case.open(tmp_path / "c") as case:
        run = case.start_run("scan", [], {}, {})
        ev = case.add_evidence(path="x", path_bytes=b"x", source_type="test", size=None,
                               description={}, run_id=run)
        stream = [FileEntry(identity="a", path=b"a", kind="file", size=1,
                            notes=("deleted: content may be overwritten",)),
                  FileEntry(identity="b", path=b"b", kind="file", size=1),
                  EntryAmendment("a", notes=("cross-linked with b",),
                                 problems=(Problem("filesystem", "CrossLinked",
                                                   "shares 1 block"),)),
                  EntryAmendment("missing", notes=("ignored",))]
        assert _enumerate(case, ev, run, iter(stream), _NoProgress()) == 2
    r = rows(tmp_path / "c", "SELECT notes FROM files WHERE identity='a'")[0]
    assert r["notes"] == '["deleted: content may be overwritten","cross-linked with b"]'
    e = rows(tmp_path / "c", "SELECT * FROM errors")
    assert [(x["stage"], x["error_class"]) for x in e] == [("filesystem", "CrossLinked")]


def test_quarantine_counts_worker_crashes_only_and_keeps_checkpointed_digests(
        tmp_path: Path) -> None:
    """Issue 11 #7 at the case level: dispatches (kills of the whole scan) never quarantine;
    a crash count recorded by an earlier run does, and the digests its checkpoint recorded
    stay; --retry-quarantined puts the file back with its count reset."""
    import hashlib

    from triage.case import FileResult
    from triage.model import FileEntry, HashValue

    digests = [HashValue(a, hashlib.new(a, b"x").hexdigest()) for a in ("md5", "sha1", "sha256")]
    with Case.open(tmp_path / "c") as case:
        run = case.start_run("scan", [], {}, {})
        ev = case.add_evidence(path="x", path_bytes=b"x", source_type="test", size=None,
                               description={}, run_id=run)
        a, b = (e.file_id for e in case.insert_entries(ev, run, [
            FileEntry(identity=i, path=i.encode(), kind="file", size=1) for i in ("a", "b")]))
        # a: in flight during five kills of the scan; b: two worker crashes, then killed.
        for n in range(1, 6):
            case.record_progress(run, [], [(a, n)])
        case.record_progress(run, [], [(b, 2)], crashes=[(b, 2)], checkpoints=[FileResult(
            file_id=b, status="done", read_status="full", mime="application/zip",
            media_kind="other", hashes=(*digests, HashValue("pdq", "00", 1, "p")))])
        assert case.quarantine_repeated_inflight(ev, run, 2) == 1
        assert case.requeue_quarantined(ev, run) == 1
        assert case.quarantine_repeated_inflight(ev, run, 2) == 0
        case.record_progress(run, [], crashes=[(b, 2)])
        assert case.quarantine_repeated_inflight(ev, run, 2) == 1
    got = {r["identity"]: dict(r) for r in rows(tmp_path / "c", "SELECT * FROM files")}
    assert (got["a"]["status"], got["a"]["attempts"]) == ("pending", 5)
    assert got["b"]["status"] == "quarantined" and got["b"]["mime"] == "application/zip"
    assert "2 crashes of a worker" in got["b"]["status_reason"]
    kept = rows(tmp_path / "c", "SELECT algorithm, value FROM hashes WHERE file_id=? "
                                "ORDER BY algorithm", (b,))
    assert [(r["algorithm"], r["value"]) for r in kept] == sorted(
        (h.algorithm, h.value) for h in digests)                 # checkpoints keep digests only
    assert [r["action"] for r in rows(tmp_path / "c", "SELECT action FROM audit")].count(
        "files.retry_quarantined") == 1


def test_pending_page_in_id_order_across_evidences_without_a_sort(tmp_path: Path) -> None:
    """pending_page reads the pending entries of one evidence, after an id, in id order, a
    page at a time; through the rowid (issue 13: through the (evidence_id, identity) index
    SQLite read every entry of the evidence and sorted them for every page)."""
    from triage.model import FileEntry, FileResult

    case = Case.open(tmp_path / "case")
    run = case.start_run("scan", ["scan"], {}, {})
    evs = [case.add_evidence(path=f"ev{k}", path_bytes=f"ev{k}".encode(),
                             source_type="directory", size=None, description={}, run_id=run)
           for k in range(2)]
    ids: dict[int, list[int]] = {ev: [] for ev in evs}
    for block in range(3):  # the evidences' entries interleaved in id order
        for ev in evs:
            stored = case.insert_entries(ev, run, [
                FileEntry(identity=f"z{9 - i}-{block}", path=f"d/{block}/{i}".encode(),
                          kind="file" if i % 4 else "directory") for i in range(7)])
            ids[ev].extend(s.file_id for s in stored)
    files = {ev: [i for n, i in enumerate(ids[ev]) if (n % 7) % 4] for ev in evs}
    case.write_results(run, [FileResult(i, "done") for i in files[evs[0]][1::3]])
    for ev in evs:
        expected = [i for i in files[ev] if ev == evs[1] or i not in files[evs[0]][1::3]]
        got: list[int] = []
        after = 0
        for _ in range(20):
            page = case.pending_page(ev, after, limit=4)
            if not page:
                break
            assert len(page) <= 4
            got.extend(p.file_id for p in page)
            after = page[-1].file_id
        else:
            pytest.fail("the pages never end")
        assert got == expected and len(got) > 8
        assert {p.entry.path for p in case.pending_page(ev, 0, 100)} == {
            bytes(r[0]) for r in case.conn.execute(
                "SELECT path FROM files WHERE evidence_id=? AND status='pending'", (ev,))}
    traced: list[str] = []
    case.conn.set_trace_callback(traced.append)
    case.pending_page(evs[1], 0)
    case.conn.set_trace_callback(None)
    (sql,) = traced  # (with its values in place)
    plan = " ".join(str(r[-1]) for r in case.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert "TEMP B-TREE" not in plan and "PRIMARY KEY" in plan, plan
    case.close()
