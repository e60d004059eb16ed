"""Issue 14 #6, hash-set fixes: a content digest that ``hashset verify`` checks every stored
value and field against; iLook v3/v4; HashKeeper ``.hke`` metadata and ``.zip`` bundles
(``PK00`` too); md5sum detection tolerant of a few bad lines; ambiguous 64-hex lists
refused; ``md5deep`` as a format name.

Hash values are checked against independent tools: ``md5deep -m`` (hashdeep's own iLook
reader) and ``unzip`` (for the bundles), and hashlib over the items' bytes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from hashsets.errors import HashSetFileError
from hashsets.formats import detect_format, get
from hashsets.matching import exact_matches
from hashsets.store import HashSetStore
from tests.support import run_triage

from . import fixtures as fx

SCHEMA_V1 = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v1"


@pytest.fixture
def store(tmp_path: Path) -> HashSetStore:
    return HashSetStore(tmp_path / "store" / "hs.sqlite")


def _icse(store: HashSetStore, tmp_path: Path) -> tuple[str, str, str]:
    """An ICSE set (entries with categories): ``(set_id, md5 table, entry table)``."""
    s = store.import_file(fx.icse(tmp_path / "icse.csv")).set
    table = store.entry_table(s)
    assert table is not None
    return s.set_id, store.tables(s)["md5"], table


# -- the content digest ----------------------------------------------------------------------
def test_verify_ok_then_a_changed_md5_names_the_set_and_the_values(
        store: HashSetStore, tmp_path: Path) -> None:
    set_id, md5_table, _ = _icse(store, tmp_path)
    assert [(r.set_id, r.status) for r in store.verify()] == [(set_id, "ok")]
    store.conn.execute(f"UPDATE {md5_table} SET value = ? WHERE ref = (SELECT min(ref) FROM "
                       f"{md5_table})", (bytes.fromhex(fx.md5(b"someone else")),))
    [r] = store.verify()
    assert (r.set_id, r.status) == (set_id, "altered")
    assert "md5 values" in r.detail and "category" not in r.detail


def test_a_changed_category_names_the_field(store: HashSetStore, tmp_path: Path) -> None:
    set_id, _, entries = _icse(store, tmp_path)
    store.conn.execute(f"UPDATE {entries} SET category = 'harmless' WHERE ref = "
                       f"(SELECT min(ref) FROM {entries})")
    [r] = store.verify()
    assert r.set_id == set_id and r.status == "altered" and "entry field 'category'" in r.detail
    assert "md5 values" not in r.detail


def test_a_changed_set_field_is_named(store: HashSetStore, tmp_path: Path) -> None:
    _icse(store, tmp_path)
    store.conn.execute("UPDATE sets SET known = 1")
    [r] = store.verify()
    assert r.status == "altered" and "set field 'known'" in r.detail


def test_cli_verify_fails_naming_set_and_field(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    r = run_triage("hashset", "import", str(fx.icse(tmp_path / "icse.csv")), "--store",
                   str(db))
    assert r.returncode == 0, r.stderr
    assert run_triage("hashset", "verify", "--store", str(db)).returncode == 0
    with HashSetStore(db) as st:
        s = st.sets()[0]
        table = st.entry_table(s)
        st.conn.execute(f"UPDATE {table} SET category = 'x' WHERE ref = (SELECT min(ref) "
                        f"FROM {table})")
    r = run_triage("hashset", "verify", "--store", str(db), "--json")
    assert r.returncode == 6
    [res] = json.loads(r.stdout)
    assert res["set_id"] == s.set_id and res["status"] == "altered"
    assert "entry field 'category'" in res["detail"]


def test_store_before_digests_says_so_and_offers_both_remedies(tmp_path: Path) -> None:
    shutil.copytree(SCHEMA_V1, tmp_path / "v1")
    db = tmp_path / "v1" / "hashsets.sqlite"
    conn = sqlite3.connect(db)  # the sources as copied with it (the recorded paths are
    with conn:                  # where the fixture was built)
        for num, path in conn.execute("SELECT num, source_path FROM sets").fetchall():
            conn.execute("UPDATE sets SET source_path=? WHERE num=?",
                         (str(tmp_path / "v1" / Path(path).name), num))
    conn.close()
    # Read-only: the old store is not migrated, and is still checked.
    r = run_triage("hashset", "verify", "--store", str(db), "--json")
    assert r.returncode == 6, r.stderr
    results = json.loads(r.stdout)
    unverified = [x for x in results if x["status"] == "unverified"]
    assert len(results) == 2 and unverified == results
    detail = unverified[0]["detail"]
    assert "imported before content digests were recorded" in detail
    assert "--record-digest" in detail and "hashset remove" in detail
    r = run_triage("hashset", "verify", "--store", str(db), "--record-digest", "--json")
    assert r.returncode == 0, r.stderr
    recorded = [x for x in json.loads(r.stdout) if x["status"] == "recorded"]
    assert {x["set_id"] for x in recorded} == {x["set_id"] for x in unverified}
    r = run_triage("hashset", "verify", "--store", str(db), "--json")
    assert {x["set_id"] for x in json.loads(r.stdout) if x["status"] == "ok"} == \
        {x["set_id"] for x in unverified}


# -- iLook --------------------------------------------------------------------------------
def _items(folder: Path) -> Path:
    folder.mkdir()
    for i, data in enumerate([*fx.ITEMS, b"not in any set"], 1):
        (folder / f"item-{i}.bin").write_bytes(data)
    return folder


def _md5deep_matches(hsh: Path, folder: Path) -> set[str]:
    if shutil.which("md5deep") is None:
        pytest.skip("md5deep (Debian package hashdeep) not installed")
    out = subprocess.run(["md5deep", "-m", str(hsh), "-r", str(folder)], capture_output=True,
                         text=True, check=False)
    return {Path(line).name for line in out.stdout.splitlines() if line}


@pytest.mark.parametrize("version", [3, 4])
def test_ilook_imports_what_md5deep_reads(store: HashSetStore, tmp_path: Path,
                                          version: int) -> None:
    hsh = fx.ilook(tmp_path / f"v{version}.hsh", version)
    assert detect_format(hsh).name == "ilook"
    r = store.import_file(hsh)
    s = r.set
    assert (s.format, s.version, s.known) == ("ilook", f"v{version}", False)
    assert s.accepted == 3 and s.hash_counts["md5"] == 3
    if version == 4:  # the 12-field empty-file row: rejected with its line number
        assert s.rejected == 1 and s.rejected_examples[0][0] == 5
    folder = _items(tmp_path / "items")
    files = sorted(folder.iterdir())
    queries = [(i, "md5", fx.md5(p.read_bytes())) for i, p in enumerate(files)]
    hit_names = {files[h.query].name for h in exact_matches(store, queries)}
    assert hit_names == _md5deep_matches(hsh, folder) == {"item-1.bin", "item-2.bin",
                                                          "item-3.bin"}
    [hit] = exact_matches(store, [(0, "sha1", fx.sha1(fx.ITEMS[1]))])
    assert hit.name == "item-2.bin"
    fields = json.loads(hit.fields or "{}")
    assert fields["FilePath"] == "D:\\items\\" and fields["FileSize"] == "6"
    if version == 4:
        assert fields["CreateTime"] == "16.4.2008 14:29:24"
    assert exact_matches(store, [(0, "sha256", fx.sha256(fx.ITEMS[1]))])


def test_ilook_known_by_choice(store: HashSetStore, tmp_path: Path) -> None:
    s = store.import_file(fx.ilook(tmp_path / "k.hsh"), known=True).set
    assert s.known


# -- HashKeeper -----------------------------------------------------------------------------
def test_hashkeeper_hke_makes_a_known_set_with_its_name(store: HashSetStore,
                                                        tmp_path: Path) -> None:
    hsh = fx.hashkeeper_hsh(tmp_path / "WINXP.hsh")
    fx.hashkeeper_hke(tmp_path / "WINXP.HKE", notable="0")
    s = store.import_file(hsh).set
    assert (s.format, s.known, s.name, s.version) == ("hashkeeper", True,
                                                      "Windows XP SP1 sample", "SP1")
    assert s.info["hke"]["notable_flag"] == "0" and s.info["hke"]["vendor"] == "Microsoft"
    hits = exact_matches(store, [(1, "md5", fx.md5(fx.ITEMS[0])),
                                 (2, "md5", fx.md5(fx.ITEMS[1]))])
    # file_id 5 is shared by two records: the name and the line tell them apart.
    assert [(h.entry_ref, h.name, h.ref) for h in hits] == [("5", "item-1.bin", 2),
                                                             ("5", "item-2.bin", 3)]
    assert json.loads(hits[0].fields or "{}")["directory"] == "C:\\WINDOWS"
    assert all(h.category == "known" for h in hits)


def test_hashkeeper_notable_flag_1_is_an_alert_set(store: HashSetStore,
                                                   tmp_path: Path) -> None:
    hsh = fx.hashkeeper_hsh(tmp_path / "bad.hsh")
    fx.hashkeeper_hke(tmp_path / "bad.hke", notable="1")
    assert not store.import_file(hsh).set.known


def test_hashkeeper_without_hke_says_so(store: HashSetStore, tmp_path: Path) -> None:
    r = store.import_file(fx.hashkeeper_hsh(tmp_path / "alone.hsh"))
    assert not r.set.known and r.set.name == "alone.hsh"
    assert any(".hke) not found" in m and "alert set" in m for m in r.messages)


def test_hke_count_mismatch_is_noted(store: HashSetStore, tmp_path: Path) -> None:
    hsh = fx.hashkeeper_hsh(tmp_path / "n.hsh")
    fx.hashkeeper_hke(tmp_path / "n.hke", files=4)
    r = store.import_file(hsh)
    assert any(".hke says 4 files, the .hsh has 3 records" in m for m in r.messages)


@pytest.mark.parametrize("pk00", [False, True])
def test_hashkeeper_zip_bundle(store: HashSetStore, tmp_path: Path, pk00: bool) -> None:
    z = fx.hashkeeper_zip(tmp_path / "WINXP.zip", pk00=pk00)
    assert z.read_bytes().startswith(b"PK00PK\x03\x04" if pk00 else b"PK\x03\x04")
    if shutil.which("unzip"):  # the independent reader agrees it is a zip with both members
        listing = subprocess.run(["unzip", "-Z1", str(z)], capture_output=True, text=True,
                                 check=True).stdout.split()
        assert sorted(listing) == ["WINXP.hke", "WINXP.hsh"]
    assert detect_format(z).name == "hashkeeper"
    s = store.import_file(z).set
    assert (s.known, s.name, s.accepted) == (True, "Windows XP SP1 sample", 3)
    assert s.info["member"] == "WINXP.hsh" and s.info["hke_member"] == "WINXP.hke"
    assert {h.known_value for h in exact_matches(
        store, [(i, "md5", fx.md5(d)) for i, d in enumerate(fx.ITEMS)])} == \
        {fx.md5(d) for d in fx.ITEMS[:3]}


def test_zip_without_hashkeeper_set_is_not_taken(tmp_path: Path) -> None:
    import zipfile

    z = tmp_path / "other.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(HashSetFileError, match="format not recognised"):
        detect_format(z)


# -- md5sum, 64-hex lists, md5deep --------------------------------------------------------
def test_md5sum_detected_despite_a_bad_line_reported_by_number(store: HashSetStore,
                                                              tmp_path: Path) -> None:
    good = [f"{fx.md5(d)}  item-{i}.bin" for i, d in enumerate(fx.ITEMS, 1)]
    p = tmp_path / "sums.md5"
    p.write_text("\n".join([*good[:2], "this line was damaged", *good[2:]]) + "\n")
    assert detect_format(p).name == "md5sum"
    r = store.import_file(p)
    assert (r.set.accepted, r.set.rejected) == (5, 1)
    assert any("record 3: not a 'HEX  name' line" in m for m in r.messages)
    # More bad lines than a few: not taken for a sum file.
    q = tmp_path / "notes.txt"
    q.write_text("\n".join([good[0], "a", "b", "c"]) + "\n")
    assert not get("md5sum").detect(q, q.read_bytes())


def test_ambiguous_64_hex_list_refused_with_exit_6_naming_the_choice(tmp_path: Path) -> None:
    p = tmp_path / "values.txt"
    p.write_text(fx.sha256(b"a") + "\n" + fx.sha256(b"b") + "\n")
    db = tmp_path / "s.sqlite"
    r = subprocess.run([*_triage(), "hashset", "import", str(p), "--store", str(db)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 6
    assert "--algorithm sha256|pdq" in r.stderr and "values.txt" in r.stderr
    assert "Traceback" not in r.stderr
    for alg, expected in (("sha256", "sha256"), ("pdq", "pdq")):
        r = run_triage("hashset", "import", str(p), "--store", str(db), "--algorithm", alg,
                       "--name", alg, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)[0]["set"]["hash_counts"] == {expected: 2}
        p.write_text(p.read_text() + "\n")  # another file (another SHA-256) for the next


def _triage() -> list[str]:
    import sys

    return [sys.executable, "-m", "triage"]


def test_md5deep_is_a_format_name(store: HashSetStore) -> None:
    assert get("md5deep") is get("md5sum")
    s = store.import_file(fx.MD5DEEP_SIZE, format="md5deep").set
    assert s.format == "md5sum" and s.accepted == 4


def test_import_records_a_digest_and_show_says_so(store: HashSetStore,
                                                  tmp_path: Path) -> None:
    s = store.import_file(fx.ilook(tmp_path / "d.hsh")).set
    assert s.digest is not None and set(s.digest["hashes"]) == {"md5", "sha1", "sha256"}
    assert "fields" in s.digest["entries"]
    assert s.to_dict()["content_digest"] == "recorded"
    row = store.conn.execute("SELECT digest FROM sets").fetchone()[0]
    assert json.loads(row) == s.digest
    with pytest.raises(sqlite3.OperationalError):
        store.conn.execute("SELECT fields FROM e999")


@pytest.mark.parametrize("spill", [3, 10**9])
def test_digest_written_while_importing_equals_the_read_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spill: int) -> None:
    """One sorted run: the hash tables' digests come from the arrays written; several runs:
    read back. Either way they equal what verify reads back from SQLite."""
    import hashsets.store as store_mod
    from hashsets import digest as dg

    monkeypatch.setattr(store_mod, "SPILL_ROWS", spill)
    p = tmp_path / "l.txt"
    p.write_text("".join(f"{fx.md5(bytes([i % 9]))}\n" for i in range(30)))
    with HashSetStore(tmp_path / f"s{spill}.sqlite") as st:
        s = st.import_file(p, format="plain").set
        assert s.digest is not None
        assert s.digest["hashes"]["md5"] == dg.hash_table_digest(
            st.conn, st.tables(s)["md5"], 16)
        assert [r.status for r in st.verify()] == ["ok"]


def test_sum_lines_of_64_hex_are_ambiguous_unless_binary_mode(store: HashSetStore,
                                                              tmp_path: Path) -> None:
    """``<64 hex>  <label>`` is how PDQ lists are often written (the demo's own is), and
    sha256sum's text mode: refused without --algorithm. sha256sum's binary-mode marker
    (``HEX *name``) says SHA-256."""
    p = tmp_path / "pdq-or-sha.txt"
    p.write_text(f"{fx.sha256(b'a')}  picture-a\n{fx.sha256(b'b')}  picture-b\n")
    assert detect_format(p).name == "md5sum"
    with pytest.raises(HashSetFileError, match=r"record 1: 64 hex digits is ambiguous "
                       r"\(sha256 or pdq\).*--algorithm sha256\|pdq"):
        store.import_file(p)
    assert store.sets() == []
    assert store.import_file(p, options={"algorithm": "pdq"}).set.hash_counts == {"pdq": 2}
    q = tmp_path / "SHA256SUMS"
    q.write_text(f"{fx.sha256(b'a')} *a.bin\n")
    assert store.import_file(q).set.hash_counts == {"sha256": 1}


def test_unrecognised_64_hex_with_labels_names_the_pdq_choice(tmp_path: Path) -> None:
    p = tmp_path / "labelled.txt"
    p.write_text(f"{fx.sha256(b'a')},label a\n{fx.sha256(b'b')},label b\n")
    with pytest.raises(HashSetFileError, match=r"SHA-256 or PDQ.*--format perceptual "
                       r"--algorithm pdq"):
        detect_format(p)


@pytest.mark.parametrize("name", sorted(__import__("hashsets.formats").formats.FORMATS))
def test_every_format_verifies_ok_right_after_import(tmp_path: Path, name: str) -> None:
    """The digests an import computes while writing equal what verify reads back, for one
    sample of every format (entries with names, categories, flags, fields, PhotoDNA)."""
    from hashsets import digest as dg

    from .test_formats import SAMPLES

    path, _, options = SAMPLES[name](tmp_path)
    with HashSetStore(tmp_path / "s.sqlite") as st:
        s = st.import_file(path, format=name, options=options or None).set
        assert [r.status for r in st.verify()] == ["ok"]
        table = st.entry_table(s)
        assert s.digest is not None
        assert s.digest["entries"] == (dg.entry_digests(st.conn, table) if table else {})


def test_entry_text_with_a_nul_is_read_back(store: HashSetStore, tmp_path: Path) -> None:
    p = tmp_path / "named.csv"
    p.write_text(f"md5,name\n{fx.md5(b'a')},a\x00b.jpg\n")
    s = store.import_file(p).set
    assert [r.status for r in store.verify()] == ["ok"] and s.digest is not None


def test_a_changed_video_frame_is_named(tmp_path: Path) -> None:
    from .test_formats import SAMPLES

    path, _, options = SAMPLES["vpdq"](tmp_path)
    with HashSetStore(tmp_path / "s.sqlite") as st:
        s = st.import_file(path, format="vpdq", options=options or None).set
        vt = st.video_table(s)
        assert vt is not None and [r.status for r in st.verify()] == ["ok"]
        st.conn.execute(f"UPDATE {vt} SET pdq = zeroblob(length(pdq)) WHERE ref = "
                        f"(SELECT min(ref) FROM {vt})")
        [r] = st.verify()
        assert r.status == "altered" and "video field 'pdq'" in r.detail
