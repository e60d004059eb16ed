"""The store: counts, provenance, bad input, one transaction per import, re-import, verify."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from hashsets.errors import HashSetFileError
from hashsets.matching import exact_matches
from hashsets.store import STORE_ENV, HashSetStore, default_store_path

from . import fixtures as fx


@pytest.fixture
def store(tmp_path: Path) -> HashSetStore:
    return HashSetStore(tmp_path / "store" / "hs.sqlite")


def _dump(store: HashSetStore) -> list[tuple[object, ...]]:
    """Everything in the store, for 'unchanged' comparisons."""
    out: list[tuple[object, ...]] = []
    for (name,) in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                      "ORDER BY name"):
        out.append((name, *sorted(store.conn.execute(f"SELECT * FROM {name}"), key=repr)))
    return out


def test_store_file_private_and_default_location(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    s = HashSetStore(tmp_path / "d" / "hs.sqlite")
    assert (tmp_path / "d" / "hs.sqlite").stat().st_mode & 0o077 == 0
    s.close()
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "env.sqlite"))
    assert default_store_path() == tmp_path / "env.sqlite"
    monkeypatch.delenv(STORE_ENV)
    assert default_store_path().name == "hashsets.sqlite"
    assert "triage" in str(default_store_path())


def test_md5deep_imports_and_matches(store: HashSetStore) -> None:
    r = store.import_file(fx.MD5DEEP)
    assert not r.noop and r.set.format == "md5sum" and r.set.accepted == 4
    assert r.set.rejected == 0 and r.set.hash_counts == {"md5": 4}
    hits = exact_matches(store, [(7, "md5", "4d46e4ef07fd0c7fa82bd5008b06db37"),
                                 (8, "md5", "00000000000000000000000000000001")])
    assert [(h.query, h.ref, h.name) for h in hits] == [(7, 2, "/Users/jessek/foo.cpp")]


def test_rds2_zip_counts_known_and_duplicates(store: HashSetStore) -> None:
    with zipfile.ZipFile(fx.RDS2_ZIP) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("NSRLFile.txt").decode())))
    r = store.import_file(fx.RDS2_ZIP)
    s = r.set
    assert s.known and s.format == "nsrl-rds2" and s.accepted == len(rows)
    distinct_sha1 = len({x["SHA-1"] for x in rows})
    assert s.duplicates["sha1"] == len(rows) - distinct_sha1
    hits = exact_matches(store, [(1, "sha1", rows[0]["SHA-1"].lower())])
    assert hits[0].category == "known" and hits[0].ref == 2  # header is line 1


def test_reimport_same_file_is_noop(store: HashSetStore) -> None:
    first = store.import_file(fx.MD5DEEP)
    before = _dump(store)
    again = store.import_file(fx.MD5DEEP, name="other name")
    assert again.noop and again.set.set_id == first.set.set_id
    assert "already imported" in again.messages[0]
    assert _dump(store) == before


def test_set_id_is_stable_across_stores(tmp_path: Path) -> None:
    a = HashSetStore(tmp_path / "a.sqlite").import_file(fx.MD5DEEP).set.set_id
    b = HashSetStore(tmp_path / "b.sqlite").import_file(fx.MD5DEEP).set.set_id
    assert a == b


def test_bad_input_counted_with_line_numbers(store: HashSetStore, tmp_path: Path) -> None:
    good = [fx.md5(bytes([i])) for i in range(5)]
    text = "\ufeff" + "\r\n".join([
        good[0].upper(),        # 1 mixed/upper case: accepted
        good[1][:-2],           # 2 wrong length
        "q" * 32,               # 3 non-hex
        fx.EMPTY_MD5,           # 4 empty-file digest: counted, never stored
        good[0],                # 5 duplicate of line 1
        "# comment",            # 6
        good[2],                # 7
    ]) + "\r\n"
    p = tmp_path / "bad.md5"
    p.write_text(text, "utf-8")
    r = store.import_file(p, format="plain")
    s = r.set
    assert (s.accepted, s.rejected, s.empty_digests, s.duplicates) == (3, 2, 1, {"md5": 1})
    assert [e[0] for e in s.rejected_examples] == [2, 3]
    assert any("record 2" in m for m in r.messages)
    assert exact_matches(store, [(1, "md5", fx.EMPTY_MD5)]) == []
    # The empty digest is not in the store at all.
    table = store.tables(s)["md5"]
    assert store.conn.execute(f"SELECT count(*) FROM {table} WHERE value=?",
                              (bytes.fromhex(fx.EMPTY_MD5),)).fetchone()[0] == 0


def test_failed_import_leaves_store_unchanged(store: HashSetStore, tmp_path: Path) -> None:
    store.import_file(fx.MD5DEEP)
    before = _dump(store)
    full = fx.vics_v2(tmp_path / "v.json").read_bytes()
    trunc = tmp_path / "trunc.json"
    trunc.write_bytes(full[: len(full) * 3 // 4])
    with pytest.raises(HashSetFileError, match=r"trunc\.json: record \d+"):
        store.import_file(trunc, format="vics")
    assert _dump(store) == before
    junk = tmp_path / "junk.txt"
    junk.write_text("nothing\nuseful\n")
    with pytest.raises(HashSetFileError, match="no usable records"):
        store.import_file(junk, format="plain")
    assert _dump(store) == before


def test_vics_import_metadata_and_category_map(store: HashSetStore, tmp_path: Path) -> None:
    r = store.import_file(fx.vics_v2(tmp_path / "v.json"), category_map="projectvic")
    s = r.set
    assert (s.format, s.version, s.accepted, s.empty_digests) == ("vics", "2.0", 4, 1)
    assert s.category_map and s.category_map["0"].startswith("non-pertinent")
    assert s.info["context"] == "US"
    hits = exact_matches(store, [(1, "md5", fx.md5(fx.ITEMS[1])),
                                 (2, "sha1", fx.sha1(fx.ITEMS[0]))])
    h2 = next(h for h in hits if h.query == 1)
    assert (h2.category_raw, h2.category) == ("2", "child exploitation (non-illegal / age "
                                                   "difficult)")
    assert (h2.victim_identified, h2.offender_identified, h2.series) == (True, False,
                                                                         "series-2")
    assert h2.entry_ref == "1002"
    row = store.conn.execute(f"SELECT photodna FROM {store.entry_table(s)} WHERE ref=1"
                             ).fetchone()
    assert row[0] == fx.PHOTODNA_HEX


def test_caid_mapping_default_and_override(store: HashSetStore, tmp_path: Path) -> None:
    s = store.import_file(fx.caid(tmp_path / "caid.json")).set
    assert s.format == "caid" and s.category_map and s.category_map["1"].startswith("A")
    hits = exact_matches(store, [(1, "md5", fx.md5(fx.ITEMS[1]))])
    assert hits[0].category.startswith("B") and hits[0].category_raw == "2"
    other = HashSetStore(tmp_path / "o.sqlite")
    other.import_file(fx.caid(tmp_path / "caid2.json"), category_map="1=C,2=A,3=B")
    hits = exact_matches(other, [(1, "md5", fx.md5(fx.ITEMS[1]))])
    assert hits[0].category == "A"


def test_icse_import(store: HashSetStore, tmp_path: Path) -> None:
    s = store.import_file(fx.icse(tmp_path / "i.csv")).set
    assert (s.format, s.accepted, s.rejected) == ("icse", 4, 1)
    assert s.rejected_examples[0][0] == 6
    hits = exact_matches(store, [(1, "md5", fx.md5(fx.ITEMS[0]))])
    assert hits[0].category == "INTERPOL baseline" and hits[0].baseline is True


def test_rds3_import(store: HashSetStore, tmp_path: Path) -> None:
    s = store.import_file(fx.rds3(tmp_path / "NSRL.db")).set
    assert s.known and s.accepted == 3 and s.hash_counts == {"md5": 3, "sha1": 3, "sha256": 3}
    assert s.version and s.version.startswith("2024.03.1")
    hits = exact_matches(store, [(1, "sha256", fx.sha256(b"nsrl-b"))])
    assert hits[0].category == "known"


def test_verify_detects_changed_and_missing_source(store: HashSetStore,
                                                   tmp_path: Path) -> None:
    p = tmp_path / "list.txt"
    p.write_text(fx.md5(b"a") + "\n")
    q = tmp_path / "other.txt"
    q.write_text(fx.md5(b"b") + "\n")
    store.import_file(p)
    store.import_file(q)
    assert [v.status for v in store.verify()] == ["ok", "ok"]
    p.write_text(fx.md5(b"a") + "\n" + fx.md5(b"c") + "\n")
    q.unlink()
    res = store.verify()
    assert [v.status for v in res] == ["changed", "missing"]
    assert "SHA-256 is now" in res[0].detail


def test_verify_detects_damaged_store(store: HashSetStore, tmp_path: Path) -> None:
    s = store.import_file(fx.MD5DEEP).set
    store.conn.execute(f"DELETE FROM {store.tables(s)['md5']} WHERE ref=1")
    assert store.verify()[0].status == "damaged"


def test_remove_and_ambiguous_names(store: HashSetStore, tmp_path: Path) -> None:
    a = store.import_file(fx.MD5DEEP, name="same").set
    store.import_file(fx.MD5DEEP_SIZE, name="same")
    with pytest.raises(HashSetFileError, match="names several sets"):
        store.get_set("same")
    store.remove(a.set_id)
    assert [s.name for s in store.sets()] == ["same"]
    assert store.conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE ?",
                              (f"h{a.num}_%",)).fetchone()[0] == 0
    with pytest.raises(HashSetFileError, match="no hash set"):
        store.get_set("nope")


def test_unknown_format_refused_before_anything(store: HashSetStore) -> None:
    with pytest.raises(HashSetFileError, match="unknown hash-set format"):
        store.import_file(fx.MD5DEEP, format="bogus")


def test_set_to_dict_is_json(store: HashSetStore) -> None:
    s = store.import_file(fx.MD5DEEP).set
    assert json.loads(json.dumps(s.to_dict()))["set_id"] == s.set_id


def test_not_a_store(tmp_path: Path) -> None:
    p = tmp_path / "x.sqlite"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    conn.commit()
    conn.close()
    with pytest.raises(HashSetFileError, match="written by a newer triage"):
        HashSetStore(p)


@pytest.mark.parametrize("spill", [2, 5, 1000])
def test_large_imports_written_in_sorted_runs_give_the_same_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spill: int) -> None:
    """Imports bigger than SPILL_ROWS are written in several sorted runs: same content,
    same counts (duplicates counted once across runs), for bulk and per-record formats."""
    import hashsets.store as store_mod

    values = [fx.md5(bytes([i % 7])) for i in range(20)] + [fx.EMPTY_MD5, "xyz"]
    plain = tmp_path / "l.txt"
    plain.write_text("\n".join(values) + "\n")
    bsd = tmp_path / "b.txt"
    bsd.write_text("".join(f"MD5 (f{i}) = {v}\n" for i, v in enumerate(values[:20])))
    results = []
    for n in (spill, 10**9):
        monkeypatch.setattr(store_mod, "SPILL_ROWS", n)
        st = HashSetStore(tmp_path / f"s{n}.sqlite")
        got = []
        for path in (plain, bsd):
            s = st.import_file(path).set
            table = st.tables(s)["md5"]
            rows = st.conn.execute(f"SELECT hex(value), ref FROM {table} ORDER BY 1, 2").fetchall()
            got.append((s.accepted, s.rejected, s.empty_digests, s.duplicates, s.hash_counts,
                        rows))
        st.close()
        results.append(got)
    assert results[0] == results[1]
    assert results[0][0][:5] == (20, 1, 1, {"md5": 13}, {"md5": 20})


def test_sort_rows_is_blob_order_then_ref() -> None:
    import numpy as np

    from hashsets.store import _sort_rows

    rng = np.random.default_rng(3)
    vals = rng.integers(0, 256, size=(200, 20), dtype=np.uint8)
    vals[::3, :8] = 7  # many share their first 8 bytes
    vals[::7] = vals[0]  # and some are duplicates
    refs = rng.permutation(200).astype(np.int64)
    for v, r in ((vals, refs), (vals[:50:3], np.arange(17, dtype=np.int64))):
        sv, sr = _sort_rows(v, r)
        assert [(bytes(x), int(y)) for x, y in zip(sv, sr, strict=True)] == \
            sorted((bytes(x), int(y)) for x, y in zip(v, r, strict=True))
