"""The data digests of the audit chain (triage.datadigest, issue 12 item 5): the definition
recomputed independently, what runs record, what a run that died may change, resumed scans
and later matches verifying clean."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support import rows, run_triage, scan_json
from triage import datadigest
from triage.case import Case
from triage.errors import CaseDataError

EXIT_VERIFY_FAILED = 7


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evidence")
    rng = np.random.default_rng(12)
    for d in range(2):
        (root / f"d{d}").mkdir()
        for i in range(15):
            arr = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / f"d{d}" / f"p{i:02d}.jpg", quality=85)
    (root / "d0" / "note.txt").write_text("text\n")
    (root / "d1" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture(scope="module")
def store(evidence: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hash set of three of the evidence's pictures (MD5), in a store."""
    from hashsets.store import HashSetStore

    tmp = tmp_path_factory.mktemp("store")
    md5s = "".join(f"{hashlib.md5((evidence / 'd0' / f'p{i:02d}.jpg').read_bytes()).hexdigest()}"
                   "\n" for i in range(3))
    (tmp / "set.md5").write_text(md5s)
    path = tmp / "store.sqlite"
    with HashSetStore(path) as st:
        st.import_file(tmp / "set.md5", name="three pictures")
    return path


def _verify(case: Path) -> subprocess.CompletedProcess[str]:
    return run_triage("verify", str(case))


def _independent(db: Path, table: str, key_sql: str, order: str, key: str) -> list[Any]:
    """The docs' definition of one partition's digest, written again from its text: Python
    does the serialisation (no SQLite typeof()/hex()); the STRICT column type says whether
    bytes were TEXT or BLOB."""
    conn = sqlite3.connect(db)
    conn.text_factory = bytes
    try:
        types = {r[1].decode(): r[2].decode().upper()
                 for r in conn.execute(f'PRAGMA table_info("{table}")')}
        cols = list(types)
        h = hashlib.sha256(f"triage data digest 1\ntable {table}\ncolumns {','.join(cols)}\n"
                           f"partition {key}\n".encode())
        n = 0
        for row in conn.execute(f'SELECT {key_sql}, * FROM "{table}" t ORDER BY {order}'):
            if ("-" if row[0] is None else str(row[0])) != key:
                continue
            fields = []
            for col, v in zip(cols, row[1:], strict=True):
                if v is None:
                    fields.append("n:")
                elif isinstance(v, int):
                    fields.append("i:" + str(v).encode().hex().upper())
                else:
                    fields.append(("b:" if types[col] == "BLOB" else "t:") + v.hex().upper())
            n += 1
            h.update((",".join(fields) + "\n").encode())
        return [n, h.hexdigest()]
    finally:
        conn.close()


def test_the_definition_recomputed_independently(evidence: Path, store: Path,
                                                 tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(evidence, case)
    r = run_triage("match", str(case), "--store", str(store))
    assert r.returncode == 0, r.stderr
    end = rows(case, "SELECT details FROM audit WHERE action='match.end'")[-1]
    recorded = json.loads(end["details"])["data_digest"]
    assert recorded["version"] == 1
    assert set(recorded["tables"]) == set(datadigest.TABLE_NAMES)
    db = case / "case.sqlite"
    for table, key_sql, order, key in (
            ("matches", "t.run_id", "t.id", "2"),
            ("files", "t.run_id", "t.id", "1"),
            ("hashes", "(SELECT f.run_id FROM files f WHERE f.id=t.file_id)",
             "t.file_id, t.algorithm", "1"),
            ("case", "NULL", "t.id", "-")):
        n, digest = _independent(db, table, key_sql, order, key)
        assert n > 0, table
        assert recorded["tables"][table][key] == [n, digest], table


def test_every_writer_records_and_verify_passes(evidence: Path, store: Path,
                                                tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(evidence, case, "--case-number", "N-1")
    assert run_triage("match", str(case), "--store", str(store)).returncode == 0
    with Case.open(case, create=False) as c:
        c.set_case_info(number=None, examiner="Someone", agency=None, notes=None)
    audit = rows(case, "SELECT action, details FROM audit ORDER BY seq")
    carrying = [(a["action"], sorted(json.loads(a["details"])["data_digest"]["tables"]))
                for a in audit if "data_digest" in json.loads(a["details"])]
    everything = sorted(datadigest.TABLE_NAMES)
    assert carrying == [("case.create", ["case"]), ("scan.end", everything),
                        ("match.end", everything), ("case.update", ["case"])]
    r = _verify(case)
    assert r.returncode == 0, r.stdout
    assert (f"OK   case data: {len(datadigest.TABLE_NAMES)} tables as the audit trail "
            "recorded them") in r.stdout


def _slow_scan_killed(evidence: Path, case: Path, done_at_least: int) -> None:
    env = dict(os.environ, TRIAGE_INJECT_FAULT="hash:slow:*")
    proc = subprocess.Popen([sys.executable, "-m", "triage", "scan", str(evidence), "--case",
                             str(case), "--no-match", "-q", "--jobs", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    done = 0
    while proc.poll() is None and time.monotonic() < deadline and done < done_at_least:
        time.sleep(0.05)
        try:
            done = rows(case, "SELECT count(*) AS n FROM files WHERE status='done'")[0]["n"]
        except (sqlite3.Error, IndexError):
            done = 0
    assert proc.poll() is None, "the scan finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_killed_then_resumed_scan_and_a_later_match_verify_clean(
        evidence: Path, store: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    _slow_scan_killed(evidence, case, 5)
    # Between the kill and the resume: the dead run's rows cannot be verified, and verify
    # says so without failing.
    r = _verify(case)
    assert r.returncode == 0, r.stdout
    assert ("no digest recorded for runs, evidence, files, hashes, images, hash_variants, "
            "errors (its first run never ended): NOT verifiable") in r.stdout
    summary = scan_json(evidence, case)  # the resume
    assert summary["resumed"] is True and summary["by_status"].get("pending", 0) == 0
    interrupted = rows(case, "SELECT details FROM audit WHERE action='run.interrupted'")
    assert len(interrupted) == 1
    details = json.loads(interrupted[0]["details"])
    assert "files" in details["data_recorded_as_found"]
    assert set(details["data_digest"]["tables"]) == set(datadigest.TABLE_NAMES)
    r = _verify(case)
    assert r.returncode == 0, r.stdout
    assert "NOT verifiable" not in r.stdout
    assert (f"OK   case data: {len(datadigest.TABLE_NAMES)} tables as the audit trail "
            "recorded them") in r.stdout
    # A later match rewrites nothing of the scan's and verifies; so does an export after it.
    assert run_triage("match", str(case), "--store", str(store)).returncode == 0
    assert run_triage("report", str(case), "-f", "csv", "--rows", "hits").returncode == 0
    assert run_triage("match", str(case), "--store", str(store)).returncode == 0
    r = _verify(case)
    assert r.returncode == 0, r.stdout
    assert "data changed since the export: runs, hash_sets_used, matches" in r.stdout
    # ... and the resumed rows are covered from now on.
    conn = sqlite3.connect(case / "case.sqlite")
    conn.execute("UPDATE files SET status='done' WHERE path=?", (b"d1/broken.jpg",))
    conn.commit()
    conn.close()
    r = _verify(case)
    assert r.returncode == EXIT_VERIFY_FAILED
    assert "FAIL case data: table files" in r.stdout


def _case_with_runs(tmp_path: Path) -> Path:
    """A case written through the Case API: scan run 1 (ended), match run 2 (ended)."""
    path = tmp_path / "case"
    with Case.open(path) as c:
        scan = c.start_run("scan", [], {}, {})
        ev = c.add_evidence(path="/ev", path_bytes=b"/ev", source_type="directory", size=None,
                            description={}, run_id=scan)
        with c.transaction() as t:
            t.execute("INSERT INTO files(id, evidence_id, identity, path, display_path, kind, "
                      "status, run_id) VALUES (1, ?, 'a', X'61', 'a', 'file', 'done', ?)",
                      (ev, scan))
            t.execute("INSERT INTO hashes(file_id, algorithm, value) VALUES (1, 'md5', ?)",
                      ("0" * 32,))
        c.end_run(scan, "completed", {})
        match = c.start_run("match", [], {}, {})
        with c.transaction() as t:
            t.execute("INSERT INTO matches(run_id, file_id, set_id, set_name, algorithm, "
                      "match_type, file_value, known_value, distance, category) VALUES "
                      "(?, 1, 's', 'set', 'md5', 'exact', ?, ?, 0, 'illegal')",
                      (match, "0" * 32, "0" * 32))
        c.end_run(match, "completed", {})
    return path


def _die_in(path: Path, command: str) -> int:
    """Start a run and leave it as a process that died would: started, never ended."""
    c = Case.open(path, create=False)
    try:
        return c.start_run(command, [], {}, {})
    finally:
        c.close()


def test_a_run_that_died_may_change_only_what_it_could_have(tmp_path: Path) -> None:
    path = _case_with_runs(tmp_path)
    dead = _die_in(path, "scan")
    conn = sqlite3.connect(path / "case.sqlite")
    conn.execute("UPDATE files SET status='error', run_id=? WHERE id=1", (dead,))
    conn.commit()
    with Case.open(path, create=False, readonly=True) as c:
        check = c.check_data()
    assert check.ok and check.dead_runs == (dead,)
    assert {d.table for d in check.unverifiable} == {"files", "hashes", "runs"}
    # Another run's matches are not the dead scan's to change.
    conn.execute("UPDATE matches SET category='non-pertinent'")
    conn.commit()
    conn.close()
    with Case.open(path, create=False, readonly=True) as c:
        check = c.check_data()
    assert not check.ok
    assert [s for s, _ in check.failures()] == ["table matches (run 2)"]
    with pytest.raises(CaseDataError, match=r"table matches \(run 2\)"):
        Case.open(path, create=False)


def test_a_dead_match_run_cannot_explain_changed_files(tmp_path: Path) -> None:
    path = _case_with_runs(tmp_path)
    _die_in(path, "match")
    conn = sqlite3.connect(path / "case.sqlite")
    conn.execute("UPDATE hashes SET value=?", ("1" * 32,))
    conn.commit()
    conn.close()
    with Case.open(path, create=False, readonly=True) as c:
        check = c.check_data()
    assert [s for s, _ in check.failures()] == ["table hashes (run 1)"]


def test_the_opening_after_a_death_records_the_rows_as_found(tmp_path: Path) -> None:
    path = _case_with_runs(tmp_path)
    dead = _die_in(path, "scan")
    conn = sqlite3.connect(path / "case.sqlite")
    conn.execute("UPDATE files SET status='error', run_id=? WHERE id=1", (dead,))
    conn.commit()
    conn.close()
    with Case.open(path, create=False) as c:  # marks the run interrupted
        assert c.data_at_open is not None and c.data_at_open.dead_runs == (dead,)
        check = c.check_data()
    assert check.ok and not check.unverifiable and not check.dead_runs


def test_audited_change_and_an_unaudited_one(tmp_path: Path) -> None:
    path = _case_with_runs(tmp_path)
    with Case.open(path, create=False) as c, \
            c.audited_change("image.verify", {"evidence": 1}, ("evidence",)) as t:
        t.execute("UPDATE evidence SET computed_md5=?", ("a" * 32,))
    with Case.open(path, create=False) as c:
        assert c.check_data().ok
        with c.transaction() as t:  # a writer that forgets to record its change
            t.execute("UPDATE evidence SET computed_md5=?", ("b" * 32,))
    with pytest.raises(CaseDataError, match="table evidence"):
        Case.open(path, create=False)


def test_dropped_audit_triggers_are_reported(tmp_path: Path) -> None:
    path = _case_with_runs(tmp_path)
    conn = sqlite3.connect(path / "case.sqlite")
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.commit()
    conn.close()
    with Case.open(path, create=False, readonly=True) as c:
        assert c.verify_audit_chain() == [
            "the audit table's trigger audit_no_delete is missing (it keeps the table "
            "append-only; was it dropped to change rows?)"]


def test_an_old_case_is_uncovered_until_its_next_run(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "schema_v1"
    old = tmp_path / "v1"
    shutil.copytree(fixture, old)
    case = old / "case"
    r = _verify(case)
    assert r.returncode == 0, r.stdout
    assert ("no digest recorded for case, runs, evidence, files, hashes, images, errors, "
            "hash_sets_used, matches (a case made by a triage without data digests)") in r.stdout
    with Case.open(case, create=False):  # migrates: the migration records the digest
        pass
    r = _verify(case)
    assert r.returncode == 0, r.stdout
    assert (f"OK   case data: {len(datadigest.TABLE_NAMES)} tables as the audit trail "
            "recorded them") in r.stdout


def test_a_wide_table_and_every_value_type(tmp_path: Path) -> None:
    """More columns than one printf() call takes, NULLs, empty and NUL-holding texts, blobs
    and negative integers: the digest is still the definition's."""
    db = tmp_path / "wide.sqlite"
    conn = sqlite3.connect(db)
    cols = ", ".join(f"c{i} {('INTEGER', 'TEXT', 'BLOB')[i % 3]}" for i in range(120))
    conn.execute(f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {cols}) STRICT")
    values = [(-7, "a\x00b", b"\x00\xff"), (None, "", b""), (2**62, "\u00e9\u202e", None)]
    for row in range(3):
        conn.execute(f"INSERT INTO wide VALUES ({', '.join('?' * 121)})",
                     (row + 1, *[values[(row + i) % 3][i % 3] for i in range(120)]))
    conn.commit()
    got = datadigest.table_digest(conn, datadigest.TableSpec("wide", None, "t.id"))
    conn.close()
    assert got == {"-": _independent(db, "wide", "NULL", "t.id", "-")}


# -- issue 12 item 5 review: what an audit row may explain --------------------------------


@pytest.mark.parametrize("action", ["case.note", "report.export", "image.verify"])
def test_an_action_that_never_changes_matches_cannot_explain_a_change(
        tmp_path: Path, action: str) -> None:
    path = _case_with_runs(tmp_path)
    with Case.open(path, create=False) as c, c.audited_change(action, {}, ("matches",)) as t:
        t.execute("UPDATE matches SET category='non-pertinent' WHERE run_id=2")
    r = _verify(path)
    assert r.returncode == EXIT_VERIFY_FAILED, r.stdout
    assert (f"FAIL case data: table matches: audit row 6 ({action}) records a change of "
            f"table matches (run 2), which a {action} never makes") in r.stdout
    with pytest.raises(CaseDataError, match="table matches"):
        Case.open(path, create=False)


def test_a_later_run_cannot_change_an_ended_runs_matches(tmp_path: Path) -> None:
    path = _case_with_runs(tmp_path)
    # A forged end row of a later run that also rewrote run 2's hit.
    with Case.open(path, create=False) as c, \
            c.audited_change("match.end", {"run": 3}, ("matches",)) as t:
        t.execute("UPDATE matches SET category='non-pertinent' WHERE run_id=2")
    r = _verify(path)
    assert r.returncode == EXIT_VERIFY_FAILED, r.stdout
    assert ("table matches: audit row 6 (match.end) records a change of table matches in "
            "run 2, which had ended before it") in r.stdout


def _old_case(tmp_path: Path) -> Path:
    """The schema 1 fixture (made by a triage without data digests: one csv export whose
    manifest anchors the audit head), without its WAL files (as the review's repro)."""
    case = tmp_path / "v1" / "case"
    shutil.copytree(Path(__file__).parent / "fixtures" / "schema_v1" / "case", case)
    for p in case.glob("case.sqlite-*"):
        p.unlink()
    return case


def _tamper(case: Path, sql: str) -> None:
    conn = sqlite3.connect(case / "case.sqlite")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_an_old_case_edited_after_its_export_is_not_laundered_by_the_migration(
        tmp_path: Path) -> None:
    case = _old_case(tmp_path)
    _tamper(case, "UPDATE matches SET category='non-pertinent' WHERE known=0")
    assert _verify(case).returncode == EXIT_VERIFY_FAILED
    before = hashlib.sha256((case / "case.sqlite").read_bytes()).hexdigest()
    r = run_triage("report", str(case), "--format", "csv")
    assert r.returncode == EXIT_VERIFY_FAILED, r.stdout + r.stderr
    assert "report.csv.manifest.json" in r.stderr and "changed outside triage" in r.stderr
    assert hashlib.sha256((case / "case.sqlite").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in (case / "exports").iterdir()) == [
        "report.csv", "report.csv.manifest.json"]
    with pytest.raises(CaseDataError, match=r"report\.csv\.manifest\.json"):
        Case.open(case, create=False)
    r = _verify(case)
    assert r.returncode == EXIT_VERIFY_FAILED, r.stdout


def test_an_old_case_migrated_clean_records_its_baseline_and_verifies(tmp_path: Path) -> None:
    case = _old_case(tmp_path)
    assert run_triage("report", str(case), "--format", "csv").returncode == 0
    migrate = json.loads(rows(case, "SELECT details FROM audit WHERE action='case.migrate'"
                              )[0]["details"])
    manifest = json.loads((case / "exports" / "report.csv.manifest.json").read_text())
    assert migrate[datadigest.BASELINE_KEY]["sha256"] == manifest["case_database"]["sha256"]
    assert migrate[datadigest.BASELINE_KEY]["audit_head"] == manifest["audit"]["seq"]
    assert migrate[datadigest.BASELINE_KEY]["checked_against_manifests"] == [
        "exports/report.csv.manifest.json"]
    r = _verify(case)
    assert r.returncode == 0, r.stdout


def test_an_old_export_kept_elsewhere_catches_the_laundered_migration(tmp_path: Path) -> None:
    """The manifest is not in the case directory, so the migration cannot refuse; the row
    that records the first digest says what it found, and verify with that manifest fails."""
    case = _old_case(tmp_path)
    handed = tmp_path / "handed-over"
    shutil.move(case / "exports", handed)
    _tamper(case, "UPDATE matches SET category='non-pertinent' WHERE known=0")
    assert run_triage("report", str(case), "--format", "csv").returncode == 0
    r = run_triage("verify", str(case), "--manifest",
                   str(handed / "report.csv.manifest.json"))
    assert r.returncode == EXIT_VERIFY_FAILED, r.stdout
    assert ("had no data digest at this export; the first (audit row 7, case.migrate) was "
            "recorded of a database file") in r.stdout


def test_a_killed_scan_exported_then_resumed_and_matched_verifies_clean(
        evidence: Path, store: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    _slow_scan_killed(evidence, case, 5)
    assert run_triage("report", str(case), "-f", "csv").returncode == 0
    assert scan_json(evidence, case)["resumed"] is True
    assert run_triage("match", str(case), "--store", str(store)).returncode == 0
    r = _verify(case)
    assert r.returncode == 0, r.stdout
    assert "data changed since the export" in r.stdout
