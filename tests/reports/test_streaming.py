"""Streaming reports (issue 10, item 7): exports read the case through the streaming read
layer, batch by batch, and CSV/JSONL are written into a hashed atomic temp file.

The case here is synthetic (rows written with SQL into a case made by ``Case.open``), larger
than several read batches, with ties in display paths, files without hashes, multi-hit files
and set versions that only differ by being empty or missing. Every export is checked against
independent reads of the database with the ``sqlite3`` module and against ``sha256sum``.
Memory is measured by benchmarks/bench_export.py, never here.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from triage.case import Case
from triage.report import EXPORTERS, get
from triage.report import manifest as mf
from triage.report import model as md
from triage.report.export import ReportWriteError, export
from triage.report.rows import SET_LABEL_SQL, File, Hit

N_FILES = 1234  # more than two read batches (model.FILE_BATCH = 500)
GEN = "2026-01-01T00:00:00Z"
SETS = (  # set_id, name, version, known: versions None and "" both label without a version
    ("s-none", "Case set", None, 0), ("s-empty", "Case set", "", 0),
    ("s-v2", "Case set", "2", 0), ("k-nsrl", "NSRL", "2024.1", 1))


def _hex(i: int, salt: str, n: int) -> str:
    return hashlib.sha256(f"{salt}{i}".encode()).hexdigest()[:n]


def _build(case_dir: Path) -> None:
    with Case.open(case_dir) as case:
        case.set_case_info(number="S-1", examiner="e", agency="a", notes=None)
        scan = case.start_run("scan", ["test"], {}, {})
        ev = case.add_evidence(path="/ev", path_bytes=b"/ev", source_type="directory",
                               size=None, description={}, run_id=scan)
        files, hashes = [], []
        for i in range(1, N_FILES + 1):
            # Display paths sort differently from ids; every 100th repeats its neighbour's.
            name = f"d{_hex(i, 'd', 2)}/f{(i * 7919) % N_FILES:05d}.jpg"
            if i % 100 == 0:
                name = f"d{_hex(i - 1, 'd', 2)}/f{((i - 1) * 7919) % N_FILES:05d}.jpg"
            status = "error" if i % 97 == 0 else "skipped" if i % 89 == 0 else "done"
            files.append((i, ev, f"id{i}", name.encode(), name, "file", i, status, scan,
                          json.dumps(["content may be overwritten"]) if i % 61 == 0 else None,
                          0 if i % 61 == 0 else 1))
            if status == "done":
                hashes += [(i, "md5", _hex(i, "m", 32), None, None),
                           (i, "sha256", _hex(i, "s", 64), None, None)]
                if i % 3 == 0:
                    hashes.append((i, "pdq", _hex(i, "q", 64), 80 + i % 20, "rgb"))
        with case.transaction() as c:
            c.executemany("INSERT INTO files(id, evidence_id, identity, path, display_path, "
                          "kind, size, status, run_id, notes, allocated) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", files)
            c.executemany("INSERT INTO hashes VALUES (?, ?, ?, ?, ?)", hashes)
            c.executemany("INSERT INTO images(file_id, format, width, height, mode, frames, "
                          "preprocessing) VALUES (?, 'PNG', 8, 8, 'RGB', 1, 'rgb')",
                          [(i,) for i in range(3, N_FILES + 1, 3) if i % 97 and i % 89])
            c.executemany("INSERT INTO errors(file_id, run_id, stage, error_class, message, "
                          "time_utc) VALUES (?, ?, 'read', 'OSError', ?, ?)",
                          [(i, scan, f"boom {i}", GEN) for i in range(97, N_FILES, 97)]
                          + [(None, scan, "no file", GEN)])
        case.end_run(scan, "completed", {})
        run = case.start_run("match", ["test"], {}, {})
        matches = []
        for i in range(1, N_FILES + 1):
            for k, (sid, name, ver, known) in enumerate(SETS):
                if i % (11 + 7 * k) == 0 and i % 97 and i % 89:
                    near = not known and i % 2 == 0
                    matches.append((run, i, sid, name, ver, "pdq" if near else "md5",
                                    "near" if near else "exact", _hex(i, "m", 32),
                                    _hex(i + k, "k", 32), 3 if near else 0,
                                    31 if near else None, None if k == 1 else f"C{k}",
                                    None if k == 1 else str(k), None, 1, None, known, str(i)))
        with case.transaction() as c:
            c.executemany("INSERT INTO hash_sets_used(run_id, set_id, name, version, format, "
                          "source_sha256, entry_count, known) VALUES (?, ?, ?, ?, 'x', ?, 1, ?)",
                          [(run, sid, name, ver, _hex(k, "x", 64), known)
                           for k, (sid, name, ver, known) in enumerate(SETS)])
            c.executemany("INSERT INTO matches(run_id, file_id, set_id, set_name, "
                          "set_version, algorithm, match_type, file_value, known_value, "
                          "distance, threshold, category, category_raw, series, "
                          "victim_identified, offender_identified, known, entry_ref) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          matches)
        case.audit("match", {"run": run, "thresholds": {"pdq": 31}})
        case.end_run(run, "completed", {})


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = tmp_path_factory.mktemp("stream") / "case"
    _build(case)
    return case


def _db(case: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(case / "case.sqlite")
    conn.row_factory = sqlite3.Row
    return conn


def _sha256sum(path: Path) -> str:
    return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def test_csv_files_rows_stream_every_file_in_order(big: Path, tmp_path: Path) -> None:
    out = tmp_path / "files.csv"
    r = export(big, "csv", out, generated_at=GEN)
    data = out.read_bytes()
    assert r.sha256 == _sha256sum(out) and r.size == len(data)
    assert r.files == N_FILES
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    conn = _db(big)
    order = [x["id"] for x in conn.execute("SELECT id FROM files ORDER BY display_path, id")]
    assert [int(x["file_id"]) for x in rows] == order
    md5 = {x["file_id"]: x["value"] for x in conn.execute(
        "SELECT file_id, value FROM hashes WHERE algorithm='md5'")}
    assert {int(x["file_id"]): x["md5"] for x in rows} == \
        {i: md5.get(i, "") for i in order}
    crit = Counter(x["file_id"] for x in conn.execute("SELECT file_id FROM matches "
                                                      "WHERE known = 0"))
    assert {int(x["file_id"]): int(x["hits"]) for x in rows} == \
        {i: crit.get(i, 0) for i in order}
    assert sum(int(x["known_hits"]) for x in rows) == conn.execute(
        "SELECT count(*) FROM matches WHERE known = 1").fetchone()[0]


def test_csv_hits_rows_list_every_match_once(big: Path, tmp_path: Path) -> None:
    out = tmp_path / "hits.csv"
    r = export(big, "csv", out, options={"rows": "hits"}, generated_at=GEN)
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"), newline="")))
    conn = _db(big)
    db = Counter((x["file_id"], x["set_id"], x["algorithm"], x["known_value"])
                 for x in conn.execute("SELECT * FROM matches"))
    assert r.hits == len(rows) == sum(db.values())
    assert Counter((int(x["file_id"]), x["set_id"], x["algorithm"], x["known_value"])
                   for x in rows) == db


def test_jsonl_streams_files_hashes_hits_and_errors(big: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    r = export(big, "jsonl", out, generated_at=GEN)
    assert r.sha256 == _sha256sum(out)
    lines = [json.loads(x) for x in out.read_text("ascii").splitlines()]
    kinds = Counter(x["type"] for x in lines)
    conn = _db(big)
    assert kinds["file"] == N_FILES
    assert kinds["error"] == conn.execute("SELECT count(*) FROM errors").fetchone()[0]
    files = {x["id"]: x for x in lines if x["type"] == "file"}
    for row in conn.execute("SELECT * FROM hashes"):
        assert files[row["file_id"]]["hashes"][row["algorithm"]]["value"] == row["value"]
    assert sum(len(f["hashes"]) for f in files.values()) == \
        conn.execute("SELECT count(*) FROM hashes").fetchone()[0]
    for fid, f in files.items():
        expect = [x["set_id"] for x in conn.execute(
            "SELECT set_id FROM matches WHERE file_id=? ORDER BY known, set_name, set_id, "
            "algorithm, known_value", (fid,))]
        assert [h["set_id"] for h in f["hits"]] == expect
        assert (f["image"] is not None) == (fid % 3 == 0 and f["status"] == "done")
    errors = [x for x in lines if x["type"] == "error"]
    assert errors[-1]["display_path"] is None
    assert errors[0]["display_path"] == files[97]["display_path"]


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_output_does_not_depend_on_the_batch_size(big: Path, fmt: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def render(batch: int) -> bytes:
        monkeypatch.setattr(md, "FILE_BATCH", batch)
        with Case.open(big, create=False) as case, md.reading(case, GEN, "t") as model:
            return get(fmt).render(model, {})

    assert render(7) == render(md.FILE_BATCH)


def test_summaries_by_sql_equal_a_recount_of_the_streamed_hits(big: Path) -> None:
    with Case.open(big, create=False) as case, md.reading(case, GEN, "t") as m:
        hits = list(m.hits())
        files = {f.id: f for f in m.files()}
    assert m.hit_count == len(hits) and m.file_count == len(files) == N_FILES
    assert m.files_matched == len({f.id for f, h in hits if not h.known})
    assert m.files_known == len({f.id for f, h in hits if h.known})
    cats: dict[str, set[int]] = {}
    stats: dict[tuple[bool, str], list[Any]] = {}
    for f, h in hits:
        if not h.known:
            cats.setdefault(h.category or md.NO_CATEGORY, set()).add(f.id)
        st = stats.setdefault((h.known, h.set_label), [set(), 0, 0])
        st[0].add(f.id)
        st[1 if h.match_type == "exact" else 2] += 1
    assert m.by_category == {k: len(v) for k, v in sorted(cats.items())}
    assert [(s.label, s.files, s.exact, s.near) for s in m.by_set + m.known_by_set] == \
        [(label, len(st[0]), st[1], st[2]) for (_, label), st in sorted(stats.items())]
    # versions None and "" share one label: the SQL label agrees with Hit.set_label
    assert [s.label for s in m.by_set] == ["Case set (s-empty)", "Case set (s-none)",
                                           "Case set 2 (s-v2)"]
    for s in m.hash_sets:
        mine = [(f.id, h) for f, h in hits if h.set_id == s.set_id]
        assert (s.hits, s.files) == (len(mine), len({i for i, _ in mine}))


def test_set_label_sql_agrees_with_the_property() -> None:
    conn = sqlite3.connect(":memory:")
    for version in (None, "", "1.0", " "):
        hit = Hit(1, "id", "name", version, "md5", "exact", "a", "a", 0, None, None, None,
                  None, None, None, False, None)
        sql = SET_LABEL_SQL.format(t="")
        got = conn.execute(f"SELECT {sql} FROM (SELECT 'name' AS set_name, ? AS set_version, "
                           "'id' AS set_id)", (version,)).fetchone()[0]
        assert got == hit.set_label


def test_records_are_built_by_column_name(big: Path) -> None:
    conn = _db(big)
    sel = File.select("f")
    row = dict(conn.execute(f"SELECT {sel} FROM files f WHERE id = 61").fetchone())
    assert tuple(row) == File.columns()
    shuffled = dict(reversed(list(row.items())), extra="ignored")
    a = File.from_row(row, hashes=(), image=None, hits=())
    assert a == File.from_row(shuffled, hashes=(), image=None, hits=())
    assert a.id == 61 and a.path_hex == row["path_hex"] == bytes(conn.execute(
        "SELECT path FROM files WHERE id = 61").fetchone()[0]).hex()
    assert a.notes == ("content may be overwritten",) and not a.allocated
    assert a.caution == "unallocated; content may be overwritten: not a confident " \
        "identification"


def test_reading_is_query_only_and_restores_the_connection(big: Path, tmp_path: Path) -> None:
    import shutil

    case_dir = tmp_path / "case"
    shutil.copytree(big, case_dir)
    with Case.open(case_dir, create=False) as case:
        with md.reading(case, GEN, "t") as m:
            next(m.files())
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                case.conn.execute("UPDATE files SET size = 0")
        assert not case.conn.in_transaction
        case.audit("test.write", {"after": "reading"})  # writable again


def test_atomic_writer_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out" / "r.csv"
    target.parent.mkdir()
    target.write_bytes(b"older export")
    with pytest.raises(RuntimeError), mf.atomic_writer(target) as out:
        out.write(b"x" * 100_000)
        raise RuntimeError("exporter failed half-way")
    assert target.read_bytes() == b"older export"
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.csv"]
    with mf.atomic_writer(target) as out:
        for _ in range(3):
            out.write(b"abc" * 1000)
    assert out.size == 9000 and out.sha256 == _sha256sum(target)


def test_a_failed_streamed_export_leaves_nothing(big: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = get("jsonl")
    real = type(exporter).write

    def full_disk(self: Any, model: Any, options: Any, out: Any) -> None:
        real(self, model, options, out)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(exporter), "write", full_disk)
    before = _db(big).execute("SELECT count(*) FROM audit").fetchone()[0]
    target = tmp_path / "exp" / "r.jsonl"
    with pytest.raises(ReportWriteError, match="No space left"):
        export(big, "jsonl", target, generated_at=GEN)
    assert list(target.parent.iterdir()) == []
    assert _db(big).execute("SELECT count(*) FROM audit").fetchone()[0] == before
