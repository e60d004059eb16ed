"""Issue 14 #6, provenance: the matched set entry's name and fields are copied into each
match row of the case and into every export (CSV hits, JSONL, the HTML/PDF hit details).

HashKeeper's ``file_id`` is shared by two records in Microsoft's published sample: the
fixture does the same, and the case alone must say which record matched (name, and the
line number as ``record``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from pathlib import Path

from tests.support import run_triage

from . import fixtures as fx


def test_entry_name_and_fields_in_matches_and_exports(tmp_path: Path) -> None:
    store = tmp_path / "hs.sqlite"
    (tmp_path / "sets").mkdir()
    hsh = fx.hashkeeper_hsh(tmp_path / "sets" / "WINXP.hsh")
    fx.hashkeeper_hke(tmp_path / "sets" / "WINXP.hke", notable="1")
    r = run_triage("hashset", "import", str(hsh), "--store", str(store))
    assert r.returncode == 0, r.stderr
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "first.bin").write_bytes(fx.ITEMS[0])
    (ev / "second.bin").write_bytes(fx.ITEMS[1])
    (ev / "other.bin").write_bytes(b"not in the set")
    case = tmp_path / "case"
    r = run_triage("scan", str(ev), "--case", str(case), "--store", str(store), "-q",
                   "--json", "--jobs", "1")
    assert r.returncode == 0, r.stderr

    conn = sqlite3.connect(case / "case.sqlite")
    rows = conn.execute("SELECT f.display_path, m.entry_ref, m.entry_name, m.entry_fields, "
                        "m.known_value FROM matches m JOIN files f ON f.id = m.file_id "
                        "ORDER BY f.display_path").fetchall()
    conn.close()
    assert [(p, ref, name) for p, ref, name, _, _ in rows] == [
        ("first.bin", "5", "item-1.bin"), ("second.bin", "5", "item-2.bin")]
    for (path, _, _, fields, known), data in zip(rows, fx.ITEMS[:2], strict=True):
        assert known == hashlib.md5((ev / path).read_bytes()).hexdigest() == fx.md5(data)
    first, second = (json.loads(r[3]) for r in rows)
    assert (first["record"], second["record"]) == (2, 3)  # the .hsh line of each record
    assert first["directory"] == "C:\\WINDOWS" and first["hashset_id"] == "77"

    # CSV (one row per hit): entry_name and entry_fields columns.
    r = run_triage("report", str(case), "-f", "csv", "--rows", "hits", "--out",
                   str(tmp_path / "hits.csv"), "--generated-at", "2026-12-02T00:00:00Z")
    assert r.returncode == 0, r.stderr
    table = list(csv.DictReader(io.StringIO(
        (tmp_path / "hits.csv").read_text("utf-8-sig"))))
    assert [(t["path"], t["entry_ref"], t["entry_name"]) for t in table] == [
        ("first.bin", "5", "item-1.bin"), ("second.bin", "5", "item-2.bin")]
    assert json.loads(table[1]["entry_fields"])["record"] == 3

    # JSONL: every hit object carries them.
    r = run_triage("report", str(case), "-f", "jsonl", "--out", str(tmp_path / "r.jsonl"),
                   "--generated-at", "2026-12-02T00:00:00Z")
    assert r.returncode == 0, r.stderr
    hits = [h for line in (tmp_path / "r.jsonl").read_text().splitlines()
            if (o := json.loads(line))["type"] == "file" for h in o["hits"]]
    assert sorted((h["entry_name"], h["entry_fields"]["record"]) for h in hits) == [
        ("item-1.bin", 2), ("item-2.bin", 3)]

    # VICS: each Media record's Comments name the matched entry.
    r = run_triage("report", str(case), "-f", "vics", "--out", str(tmp_path / "v.json"),
                   "--generated-at", "2026-12-02T00:00:00Z")
    assert r.returncode == 0, r.stderr
    media = json.loads((tmp_path / "v.json").read_text())["value"][0]["Media"]
    comments = sorted(m["Comments"] for m in media)
    assert comments[0].endswith("; set entry 5: item-1.bin")
    assert comments[1].endswith("; set entry 5: item-2.bin")

    # HTML: the hit details name the entry and list its fields.
    r = run_triage("report", str(case), "-f", "html", "--out", str(tmp_path / "r.html"),
                   "--generated-at", "2026-12-02T00:00:00Z")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "r.html").read_text()
    assert "set entry 5: item-1.bin" in html and "set entry 5: item-2.bin" in html
    assert "record: 3" in html and "directory: C:\\WINDOWS" in html
