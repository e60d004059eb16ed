"""Versioned case and store schemas (issue "Core redesign", item 3): files written by schema
version 1 (committed in tests/fixtures/schema_v1, built at commit 0d3a018) open, verify and
export after migration; the old file is kept; a newer file is refused; a migrated file has
exactly the schema of a new one."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from hashsets.errors import HashSetFileError
from hashsets.store import STORE_SCHEMA, HashSetStore
from hashsets.versioning import Migration, SchemaError, SchemaLine
from tests.support import rows, run_triage
from triage.case import CASE_SCHEMA, Case
from triage.datadigest import TABLE_NAMES
from triage.errors import CaseError

FIXTURE = Path(__file__).parent / "fixtures" / "schema_v1"


@pytest.fixture()
def old(tmp_path: Path) -> Path:
    """A private copy of the version-1 fixture (never migrate the committed files)."""
    dest = tmp_path / "v1"
    shutil.copytree(FIXTURE, dest)
    return dest


def _checks(sql: str) -> list[str]:
    """The CHECK constraints of a CREATE TABLE statement, whitespace normalised (PRAGMA
    table_info does not show them)."""
    found = []
    start = sql.find("CHECK (")
    while start >= 0:
        depth, i = 0, start + len("CHECK ")
        while True:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
            if depth == 0:
                break
        found.append(" ".join(sql[start:i].split()))
        start = sql.find("CHECK (", i)
    return sorted(found)


def _schema(db: Path) -> dict[str, object]:
    """Tables with their columns, CHECK constraints, indexes and triggers: what a migration
    must reproduce."""
    conn = sqlite3.connect(db)
    try:
        out: dict[str, object] = {}
        for name, kind, sql in conn.execute(
                "SELECT name, type, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                "ORDER BY name"):
            if kind == "table":
                out[name] = ([tuple(r) for r in conn.execute(f'PRAGMA table_info("{name}")')],
                             _checks(sql))
            else:
                out[name] = kind
        return out
    finally:
        conn.close()


def test_fixture_is_version_1() -> None:
    conn = sqlite3.connect(f"{(FIXTURE / 'case' / 'case.sqlite').as_uri()}?mode=ro", uri=True)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    conn.close()


def test_old_case_verifies_read_only_without_migrating(old: Path) -> None:
    before = (old / "case" / "case.sqlite").read_bytes()
    r = run_triage("verify", str(old / "case"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout
    assert (old / "case" / "case.sqlite").read_bytes() == before
    assert not list((old / "case").glob("*.schema-v*"))


def test_old_case_migrates_on_report_and_keeps_the_old_file(old: Path, tmp_path: Path) -> None:
    case = old / "case"
    original = (case / "case.sqlite").read_bytes()
    r = run_triage("report", str(case), "-f", "csv", "--rows", "hits",
                   "--out", str(tmp_path / "hits.csv"))
    assert r.returncode == 0, r.stderr
    kept = case / "case.sqlite.schema-v1"
    assert kept.read_bytes() == original  # the file as it was, byte for byte
    assert rows(case, "SELECT value FROM meta WHERE key='schema_version'")[0][0] == str(
        CASE_SCHEMA.current)
    audit = rows(case, "SELECT action, details FROM audit ORDER BY seq")
    migrate = [json.loads(a["details"]) for a in audit if a["action"] == "case.migrate"]
    # The migration records the digest of the migrated data rows (triage.datadigest).
    assert set(migrate[0].pop("data_digest")["tables"]) == set(TABLE_NAMES)
    # ... and the file it found, checked against the export that anchors the audit head.
    assert migrate[0].pop("data_baseline") == {
        "sha256": hashlib.sha256(original).hexdigest(), "size": len(original), "wal": None,
        "audit_head": 6, "schema_version": 1,
        "checked_against_manifests": ["exports/report.csv.manifest.json"]}
    assert migrate == [{"from_version": 1, "to_version": CASE_SCHEMA.current,
                        "previous_file": kept.name,
                        "steps": [f"{m.version}: {m.summary}"
                                  for m in CASE_SCHEMA.migrations]}]
    hits = list(csv.DictReader(io.StringIO((tmp_path / "hits.csv").read_text("utf-8"))))
    assert len(hits) == 4  # the fixture's known answer (README.md)
    # The chain still verifies, and the old export's manifest is explained by audited actions.
    r = run_triage("verify", str(case))
    assert r.returncode == 0, r.stdout + r.stderr
    # Opening again does not migrate again.
    with Case.open(case, create=False) as c:
        assert c.migrated_from is None and c.schema_found == CASE_SCHEMA.current


def test_migrated_case_has_the_schema_of_a_new_case(old: Path, tmp_path: Path) -> None:
    with Case.open(old / "case", create=False) as c:
        assert c.migrated_from == 1
    with Case.open(tmp_path / "new"):
        pass
    assert _schema(old / "case" / "case.sqlite") == _schema(tmp_path / "new" / "case.sqlite")
    app = sqlite3.connect(old / "case" / "case.sqlite").execute(
        "PRAGMA application_id").fetchone()[0]
    assert app == CASE_SCHEMA.application_id


def test_old_case_on_read_only_media_exports_through_a_private_copy(old: Path) -> None:
    case = old / "case"
    before = (case / "case.sqlite").read_bytes()
    with Case.open(case, readonly=True) as c:
        assert c.needs_migration
        up = c.upgraded_copy()
        tmp = up._temp_dir
        try:
            assert up.conn.execute("SELECT count(*) FROM matches").fetchone()[0] == 4
            assert up.conn.execute("SELECT identity FROM evidence").fetchone() == (None,)
        finally:
            up.close()
        assert tmp is not None and not tmp.exists()
    assert (case / "case.sqlite").read_bytes() == before


def test_newer_case_and_store_are_refused(tmp_path: Path) -> None:
    with Case.open(tmp_path / "c") as c, c.transaction() as t:
        t.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    before = (tmp_path / "c" / "case.sqlite").read_bytes()
    for readonly in (False, True):
        with pytest.raises(CaseError, match="schema version 99, written by a newer triage"):
            Case.open(tmp_path / "c", readonly=readonly)
    r = run_triage("report", str(tmp_path / "c"), "-f", "csv")
    assert r.returncode == 5 and "newer triage" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "c" / "case.sqlite").read_bytes() == before
    store = tmp_path / "s.sqlite"
    HashSetStore(store).close()
    conn = sqlite3.connect(store)
    conn.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(HashSetFileError, match="schema version 7, written by a newer"):
        HashSetStore(store)


def test_old_store_matches_read_only_and_migrates_on_import(old: Path, tmp_path: Path) -> None:
    store = old / "hashsets.sqlite"
    original = store.read_bytes()
    r = run_triage("match", str(old / "case"), "--store", str(store), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["hits"], summary["files_matched"], summary["known"]["hits"]) == (3, 3, 1)
    assert store.read_bytes() == original  # matching only reads the store
    extra = tmp_path / "more.txt"
    extra.write_text("0123456789abcdef0123456789abcdef\n")
    r = run_triage("hashset", "import", str(extra), "--store", str(store))
    assert r.returncode == 0, r.stderr
    assert (old / "hashsets.sqlite.schema-v1").read_bytes() == original
    with HashSetStore(store, readonly=True) as s:
        version = s.conn.execute("SELECT value FROM meta WHERE key='schema_version'")
        assert version.fetchone() == (str(STORE_SCHEMA.current),)
        assert len(s.sets()) == 3
    fresh = tmp_path / "fresh.sqlite"
    HashSetStore(fresh).close()
    fixed = _schema(fresh)  # the store's fixed tables (each set adds tables of its own)
    assert {k: v for k, v in _schema(store).items() if k in fixed} == fixed


def test_not_ours_is_named_before_anything_is_written(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA application_id=1234")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(HashSetFileError, match="not a triage hash-set store"):
        HashSetStore(other)
    assert other.read_bytes() == before


def test_schema_line_contract() -> None:
    def noop(c: sqlite3.Connection) -> None:
        pass

    with pytest.raises(ValueError, match="no gaps"):
        SchemaLine("x", 1, (Migration(3, "skips 2", noop),))
    line = SchemaLine("x", 1, (Migration(2, "a", noop), Migration(3, "b", noop)))
    assert line.current == 3
    assert [m.version for m in line.plan(1, Path("f"))] == [2, 3]
    assert line.plan(3, Path("f")) == ()
    with pytest.raises(SchemaError):
        line.plan(4, Path("f"))


def test_v4_redisplays_bang_names_and_drops_libmagic_text(tmp_path: Path) -> None:
    """Schema 4: a file named ``a.zip!photo.jpg`` no longer reads like a member of
    ``a.zip`` in cases made before (issue 11 defects 8 and 9)."""
    from triage.case import CHILD_ID_BASE, CHILD_SLOTS

    with Case.open(tmp_path / "c") as case, case.transaction() as t:
        rid = int(t.execute("INSERT INTO runs(command, arguments, options, tool_version, "
                            "versions, host, user, started_utc, status) VALUES ('scan', "
                            "'[]', '{}', '0', '{}', 'h', 'u', 't', 'completed')").lastrowid
                  or 0)
        t.execute("INSERT INTO evidence(id, path, path_bytes, source_type, description, "
                  "added_run_id) VALUES (1, '/ev', X'2f6576', 'directory', '{}', ?)", (rid,))
        rows_ = [(1, "f1", None, b"a.zip!photo.jpg", "a.zip!photo.jpg"),
                 (CHILD_ID_BASE + CHILD_SLOTS + 1, "f1!1", 1, b"a.zip!photo.jpg!x.jpg",
                  "a.zip!photo.jpg!x.jpg"),
                 (2, "f2", None, b"plain.jpg", "plain.jpg")]
        for fid, ident, parent, path, display in rows_:
            t.execute("INSERT INTO files(id, evidence_id, identity, parent_id, path, "
                      "display_path, kind, status) VALUES (?, 1, ?, ?, ?, ?, 'file', 'done')",
                      (fid, ident, parent, path, display))
        # Make it a version-3 case: the column libmagic's text lived in, and the version.
        t.execute("ALTER TABLE files ADD COLUMN magic TEXT")
        t.execute("UPDATE files SET magic='a /usr/bin/CANARY script'")
        t.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    with Case.open(tmp_path / "c") as case:
        assert case.migrated_from == 3
        shown = [r[0] for r in case.conn.execute(
            "SELECT display_path FROM files ORDER BY id")]
        cols = [r[1] for r in case.conn.execute("PRAGMA table_info(files)")]
    assert shown == ["a.zip\\x21photo.jpg", "plain.jpg", "a.zip\\x21photo.jpg!x.jpg"]
    assert "magic" not in cols


def test_v5_accepts_the_incomplete_status(old: Path) -> None:
    """Version 5 widens files.status to the coverage-gap status 'incomplete'; rows written
    before keep their status and the database stays sound."""
    db = old / "case" / "case.sqlite"
    before = sorted(sqlite3.connect(db).execute("SELECT id, status FROM files").fetchall())
    with Case.open(old / "case", create=False) as case:
        assert case.migrated_from == 1
        fid = case.conn.execute("SELECT min(id) FROM files").fetchone()[0]
        with case.conn:
            case.conn.execute("UPDATE files SET status='incomplete' WHERE id=?", (fid,))
        with pytest.raises(sqlite3.IntegrityError):
            case.conn.execute("UPDATE files SET status='nonsense' WHERE id=?", (fid,))
        assert case.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        after = dict(case.conn.execute("SELECT id, status FROM files").fetchall())
    assert {i: s for i, s in before if i != fid} == {i: s for i, s in after.items() if i != fid}
