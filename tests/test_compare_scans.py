"""The comparison core of ``scripts/compare_scans.py`` on two small synthetic case databases
(made here from ``triage/schema.sql``; no scan runs), so the script cannot silently rot."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, compare_scans

cs = compare_scans()


def _case(path: Path, *, run_id: int = 1, id_offset: int = 0, mime: str = "JPEG image data",
          extra_column: bool = False, drop_images: bool = False, extra_file: bool = False,
          description: dict[str, object] | None = None, display: str = "a/one.jpg",
          case_dir: str = "/tmp/case-x") -> Path:
    """A case database with one evidence, two files, their hashes, an image row, an error
    and a match. ``id_offset``/``run_id`` move every row id and run id (must not matter)."""
    db = path / "case.sqlite"
    path.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.executescript((ROOT / "triage" / "schema.sql").read_text("utf-8"))
    if extra_column:
        conn.execute("ALTER TABLE files ADD COLUMN entropy REAL")
    if drop_images:
        conn.execute("ALTER TABLE images DROP COLUMN mode")
    t = f"2026-01-0{run_id}T00:00:00Z"
    # Named columns only: the schema grows (new nullable columns) without breaking this.
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '1'), "
                 "('created_by', ?)", (f"triage 0.{run_id}",))
    conn.execute("INSERT INTO runs (id, command, arguments, options, tool_version, versions, "
                 "host, user, started_utc, ended_utc, status, summary) VALUES "
                 "(?, 'scan', ?, ?, ?, '{}', 'h', 'u', ?, ?, 'completed', '{}')",
                 (run_id, json.dumps(["scan", "--case", case_dir]), '{"jobs": 2}',
                  f"0.{run_id}", t, t))
    desc = description if description is not None else {"type": "directory"}
    conn.execute("INSERT INTO evidence (id, path, path_bytes, source_type, description, "
                 "added_run_id) VALUES (?, '/ev', X'2f6576', 'directory', ?, ?)",
                 (7 + id_offset, json.dumps(desc), run_id))
    files = [(100 + id_offset, "p:01", display.encode(), display, mime),
             (200 + id_offset, "p:02", b"b/two.txt", "b/two.txt", "ASCII text")]
    if extra_file:
        files.append((300 + id_offset, "p:03", b"c/new.bin", "c/new.bin", "data"))
    for fid, identity, pb, dp, mg in files:
        conn.execute("INSERT INTO files (id, evidence_id, identity, path, display_path, kind, "
                     "size, mime, times_raw, atime_utc, status, run_id) VALUES "
                     "(?, ?, ?, ?, ?, 'file', 10, ?, ?, ?, 'done', ?)",
                     (fid, 7 + id_offset, identity, pb, dp, mg,
                      json.dumps({"mtime_ns": 5, "atime_ns": run_id}), t, run_id))
        conn.execute("INSERT INTO hashes (file_id, algorithm, value) VALUES (?, 'md5', ?)",
                     (fid, identity.replace(":", "") * 8))
    mode = ("", "") if drop_images else (", mode", ", 'RGB'")
    conn.execute(f"INSERT INTO images (file_id, format, width, height{mode[0]}, preprocessing) "
                 f"VALUES (?, 'JPEG', 4, 4{mode[1]}, 'x')", (100 + id_offset,))
    conn.execute("INSERT INTO errors (id, file_id, run_id, stage, error_class, message, "
                 "time_utc) VALUES (?, ?, ?, 'decode', 'OSError', ?, ?)",
                 (1 + id_offset, 200 + id_offset, run_id, f"cannot read {case_dir}/x", t))
    conn.execute("INSERT INTO matches (id, run_id, file_id, set_id, set_name, algorithm, "
                 "match_type, file_value, known_value, distance) VALUES "
                 "(?, ?, ?, 'abc', 'set', 'md5', 'exact', 'v', 'v', 0)",
                 (5 + id_offset, run_id, 100 + id_offset))
    conn.commit()
    conn.close()
    return db


def _compare(base: Path, head: Path, rules: str = "", base_dir: str = "/tmp/case-x",
             head_dir: str = "/tmp/case-x") -> Any:
    report = cs.Report("base", "head")
    cs.compare_cases("t", base, head, cs.parse_intended(rules), report,
                     [(base_dir, "<CASE>")], [(head_dir, "<CASE>")])
    return report


def test_equal_apart_from_ids_run_ids_times_and_temp_paths(tmp_path: Path) -> None:
    base = _case(tmp_path / "a", case_dir="/tmp/case-a")
    head = _case(tmp_path / "b", run_id=2, id_offset=1000, case_dir="/tmp/case-b")
    report = _compare(base, head, base_dir="/tmp/case-a", head_dir="/tmp/case-b")
    assert report.equal, cs.format_text(report)
    assert report.targets["t"]["rows"]["files"] == 2
    assert report.targets["t"]["rows"]["matches"] == 1
    assert "EQUAL" in cs.format_text(report)


def test_a_changed_value_is_a_difference_unless_intended(tmp_path: Path) -> None:
    base = _case(tmp_path / "a")
    head = _case(tmp_path / "b", mime="JPEG image data, JFIF standard 1.01")
    report = _compare(base, head)
    assert not report.equal
    [d] = report.differences
    assert (d.table, d.kind, d.column, d.row) == ("files", "changed", "mime", "/ev::a/one.jpg")
    assert (d.base, d.head) == ("JPEG image data", "JPEG image data, JFIF standard 1.01")
    assert "files.mime: changed in 1 row(s)" in cs.format_text(report)
    accepted = _compare(base, head, "files.mime: changed  # libmagic 5.45\n")
    assert accepted.equal and len(accepted.intended) == 1
    # A rule for other rows, or another column, does not accept it.
    assert not _compare(base, head, "files.mime: changed for rows matching ^/ev::b/").equal
    assert not _compare(base, head, "files.media_kind: changed").equal


def test_a_renamed_display_path_with_a_row_rule(tmp_path: Path) -> None:
    base = _case(tmp_path / "a")
    head = _case(tmp_path / "b", display="a/ONE.jpg")
    report = _compare(base, head)
    # keyed by identity, so the rename is one changed column, not a removed + added row
    assert {(d.table, d.column) for d in report.differences} == \
        {("files", "path"), ("files", "display_path")}
    rules = '[{"table": "files", "column": "*", "change": "changed", "rows": "ONE"}]'
    assert _compare(base, head, rules).equal


def test_new_columns_tables_and_json_keys_are_reported_not_differences(tmp_path: Path) -> None:
    base = _case(tmp_path / "a")
    head = _case(tmp_path / "b", extra_column=True,
                 description={"type": "directory", "identity": {"inode": 5}})
    conn = sqlite3.connect(head)
    conn.execute("CREATE TABLE items (x TEXT)")
    conn.commit()
    conn.close()
    report = _compare(base, head)
    assert report.equal, cs.format_text(report)
    assert report.new["t"] == ["evidence.description.identity", "files.entropy", "items"]
    assert "NEW in head" in cs.format_text(report)


def test_removed_column_added_row_and_removed_row(tmp_path: Path) -> None:
    base = _case(tmp_path / "a", extra_file=True)
    head = _case(tmp_path / "b", drop_images=True)
    report = _compare(base, head)
    kinds = {(d.table, d.kind, d.column) for d in report.differences}
    assert ("images", "removed column", "mode") in kinds
    assert ("files", "removed", "") in kinds and ("hashes", "removed", "") in kinds
    reverse = _compare(_case(tmp_path / "c"), _case(tmp_path / "d", extra_file=True))
    assert {(d.table, d.kind, d.row) for d in reverse.differences} == \
        {("files", "added", "/ev::c/new.bin"), ("hashes", "added", "/ev::c/new.bin | md5")}
    assert _compare(_case(tmp_path / "e"), _case(tmp_path / "f", extra_file=True),
                    "files: added for rows matching new\nhashes: any").equal


def test_a_changed_json_value_is_a_difference(tmp_path: Path) -> None:
    base = _case(tmp_path / "a", description={"type": "directory"})
    head = _case(tmp_path / "b", description={"type": "raw"})
    [d] = _compare(base, head).differences
    assert (d.table, d.column, d.base, d.head) == \
        ("evidence", "description", {"type": "directory"}, {"type": "raw"})


def test_intended_file_parsing() -> None:
    rules = cs.parse_intended("# comment\nfiles.mime: changed\n"
                              "errors: added for rows matching \\.jp2$\n")
    assert [r.text() for r in rules] == ["files.mime: changed",
                                         "errors: added for rows matching \\.jp2$"]
    for bad in ("files.mime changed", "files.mime: renamed", "x: any for rows matching ("):
        with pytest.raises(ValueError):
            cs.parse_intended(bad)
    with pytest.raises(ValueError):
        cs.parse_intended('[{"column": "x"}]')


def test_corpus_names() -> None:
    assert cs.parse_corpora("media,disk") == ["media", "ext2", "dftt"]
    assert cs.parse_corpora("all") == list(cs.CORPORA)
    with pytest.raises(ValueError, match="unknown corpus"):
        cs.parse_corpora("nope")


def test_key_columns_exist_in_the_case_schema(tmp_path: Path) -> None:
    """A renamed key column would silently merge rows under one key: keep KEYS in step
    with triage/schema.sql."""
    db = _case(tmp_path / "a")
    conn = sqlite3.connect(db)
    try:
        for table, keys in cs.KEYS.items():
            cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            assert cols, f"KEYS names table {table!r}, which the schema no longer has"
            assert {k for k in keys if k != "#"} <= cols, (table, keys)
    finally:
        conn.close()
