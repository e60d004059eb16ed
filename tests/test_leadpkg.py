"""Lead packages (issue 16 item 5; docs/leads.md "Lead packages"): ``triage report --format
leads-json|leads-csv`` and the VICS 2.0 export of unknown media (``--format vics --media
unknown``).

The generated case of tests/test_leads.py (three synthetic cameras, edited copies, one
picture of series B known by SHA-256, series C near a known set) plus one picture of
camera A carrying GPS, an image unique id and a free-text description, so redaction and
free text are checked on bytes. Every member's SHA-256 is checked against coreutils'
``sha256sum``; the VICS export is read back by triage's own VICS importer.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hashsets.store import HashSetStore
from tests.support import rows, run_triage
from tests.test_leads import CAMERAS, build_evidence, exif_bytes, picture

GEN = "2026-01-02T03:04:05Z"
LAT, LON = 52.375, 4.8875  # 52 deg 22' 30" N, 4 deg 53' 15" E
UNIQUE_ID = "0123456789abcdef0123456789abcdef"
FREE = "FREETEXT-MARKER-7"
GPS_FILE = "DCIM/100SYNTH/IMG_0150.JPG"


def _gps_exif() -> bytes:
    make, model, serial, _ = CAMERAS["A"]
    exif = Image.Exif()
    exif.load(exif_bytes(make, model, serial, "2025:03:01 10:20:00"))
    exif[0x010E] = FREE  # ImageDescription: free text
    exif.get_ifd(0x8769)[0xA420] = UNIQUE_ID  # ImageUniqueID
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 22.0, 30.0)
    gps[3], gps[4] = "E", (4.0, 53.0, 15.0)
    return exif.tobytes()


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("leadpkg")
    built = build_evidence(root)
    picture(150).save(built["evidence"] / GPS_FILE, "JPEG", quality=95, exif=_gps_exif())
    store = root / "store.sqlite"
    for name in ("known_b", "near_c"):
        r = run_triage("hashset", "import", str(built["sets"] / f"{name}.csv"), "--store",
                       str(store), "--name", name, "--format", "csv")
        assert r.returncode == 0, r.stderr
    case = root / "case"
    r = run_triage("scan", str(built["evidence"]), "--case", str(case), "--store", str(store),
                   "--case-number", "=CASE-1", "--examiner", "E. Xaminer",
                   "--device-make", "synthcam", "--device-model", "A1", "-q", "--json")
    assert r.returncode == 0, r.stderr
    leads = run_triage("leads", str(case), "--store", str(store), "--json", "--limit", "0")
    assert leads.returncode == 0, leads.stderr
    return {**built, "store": store, "case": case, "root": root,
            "leads": json.loads(leads.stdout)}


def _export(case: Path, out: Path, fmt: str, *extra: str) -> bytes:
    r = run_triage("report", str(case), "--format", fmt, "--out", str(out),
                   "--generated-at", GEN, "--json", *extra)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sha256"]
    return out.read_bytes()


def _sha256sum(paths: list[Path]) -> dict[str, str]:
    out = subprocess.run(["sha256sum", *map(str, paths)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return {line.split("  ", 1)[1]: line.split()[0] for line in out.splitlines()}


def _csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_the_gps_picture_is_stored(pkg: dict[str, Any]) -> None:
    """The fixture's premise: the case holds the GPS, unique id and free text."""
    r = rows(pkg["case"], "SELECT m.gps_latitude, m.gps_longitude, m.image_unique_id FROM "
                          "media_metadata m JOIN files f ON f.id = m.file_id WHERE "
                          "f.display_path = ?", (GPS_FILE,))
    assert len(r) == 1
    assert r[0]["gps_latitude"] == pytest.approx(LAT)
    assert r[0]["gps_longitude"] == pytest.approx(LON)
    assert r[0]["image_unique_id"] == UNIQUE_ID
    assert rows(pkg["case"], "SELECT count(*) AS n FROM metadata_tags WHERE free_text = 1 "
                             "AND value = ?", (FREE,))[0]["n"] == 1


def test_json_package_every_lead(pkg: dict[str, Any], tmp_path: Path) -> None:
    data = _export(pkg["case"], tmp_path / "p.json", "leads-json")
    doc = json.loads(data)
    assert doc["case"] == {"case_number": "=CASE-1", "examiner": "E. Xaminer",
                           "agency": None}
    assert doc["leads_run"] == pkg["leads"]["summary"]["run"]
    leads = pkg["leads"]["leads"]
    assert [c["cluster_id"] for c in doc["clusters"]] == [x["cluster_id"] for x in leads]
    assert [c["rank"] for c in doc["clusters"]] == [1, 2, 3]
    assert [c["score"] for c in doc["clusters"]] == [x["score"] for x in leads]
    assert [[r["signal"] for r in c["reasons"]] for c in doc["clusters"]] == \
        [[r["signal"] for r in x["reasons"]] for x in leads]
    # Every member's SHA-256 equals coreutils' of the evidence file.
    paths = [m["path"] for c in doc["clusters"] for m in c["members"]]
    assert len(paths) == sum(c["size"] for c in doc["clusters"]) == len(set(paths))
    independent = _sha256sum([pkg["evidence"] / p for p in paths])
    for c in doc["clusters"]:
        for m in c["members"]:
            assert m["hashes"]["sha256"] == independent[str(pkg["evidence"] / m["path"])]
            assert all(m["hashes"][a] for a in ("sha1", "md5", "pdq", "phash", "dhash"))
    # The camera-A lead holds the GPS picture, with its position and serial (no redaction)
    a = next(c for c in doc["clusters"] if any(m["path"] == GPS_FILE for m in c["members"]))
    gps = next(m for m in a["members"] if m["path"] == GPS_FILE)["metadata"]
    assert gps["gps_latitude"] == pytest.approx(LAT)
    assert gps["gps_longitude"] == pytest.approx(LON)
    assert gps["serial"] == "SA-0001" and gps["image_unique_id"] == UNIQUE_ID
    assert a["cameras"] == [{"make": "Synthcam", "model": "A1", "serial": "SA-0001"}]
    assert a["capture_span"] == {"first": "2025:03:01 10:00:00",
                                 "last": "2025:03:01 10:20:00"}
    # Free text only when asked for.
    assert FREE.encode() not in data and "free_text" not in gps
    assert doc["metadata_policy"]["include_free_text"] is False


def test_cluster_selection(pkg: dict[str, Any], tmp_path: Path) -> None:
    third = pkg["leads"]["leads"][2]["cluster_id"]
    doc = json.loads(_export(pkg["case"], tmp_path / "one.json", "leads-json",
                             "--cluster", third))
    assert [c["cluster_id"] for c in doc["clusters"]] == [third]
    bad = run_triage("report", str(pkg["case"]), "--format", "leads-json", "--out",
                     str(tmp_path / "bad.json"), "--cluster", "cnothere")
    assert bad.returncode == 2 and "cnothere" in bad.stderr
    assert not (tmp_path / "bad.json").exists()
    wrong = run_triage("report", str(pkg["case"]), "--format", "csv", "--out",
                       str(tmp_path / "w.csv"), "--cluster", third)
    assert wrong.returncode == 2 and not (tmp_path / "w.csv").exists()


def test_redaction_leaves_no_trace_in_either_file(pkg: dict[str, Any],
                                                  tmp_path: Path) -> None:
    secrets = [b"52.375", b"4.8875", UNIQUE_ID.encode(), b"SA-0001", b"SB 0002", b"sc-0003"]
    plain = _export(pkg["case"], tmp_path / "plain.csv", "leads-csv")
    assert b"52.375" in plain and b"SA-0001" in plain and UNIQUE_ID.encode() in plain
    for fmt, ext in (("leads-json", "json"), ("leads-csv", "csv")):
        data = _export(pkg["case"], tmp_path / f"r.{ext}", fmt, "--redact", "location,serial",
                       "--include-free-text")
        for s in secrets:
            assert s not in data, (fmt, s)
        assert FREE.encode() in data  # asked for: included (not searched for places)
        assert b"redacted" in data
        manifest = json.loads((tmp_path / f"r.{ext}.manifest.json").read_text())
        assert manifest["export"]["format"] == fmt
        assert manifest["export"]["options"]["metadata"]["redact"] == ["location", "serial"]
    # The audit trail records each export with its policy.
    last = json.loads(rows(pkg["case"], "SELECT details FROM audit WHERE action = "
                                        "'report.export' ORDER BY seq DESC LIMIT 1")[0][0])
    assert last["format"] == "leads-csv"
    assert last["options"]["metadata"]["redact"] == ["location", "serial"]
    assert last["options"]["metadata"]["include_free_text"] is True
    # ...and triage verify checks both manifests (export SHA-256, database, audit chain).
    v = run_triage("verify", str(pkg["case"]), "--manifest",
                   str(tmp_path / "r.json.manifest.json"), "--manifest",
                   str(tmp_path / "r.csv.manifest.json"))
    assert v.returncode == 0, v.stdout + v.stderr


def test_csv_rows_and_formula_safety(pkg: dict[str, Any], tmp_path: Path) -> None:
    data = _export(pkg["case"], tmp_path / "p.csv", "leads-csv")
    table = _csv(data)
    doc = json.loads(_export(pkg["case"], tmp_path / "p.json", "leads-json"))
    assert len(table) == sum(len(c["members"]) for c in doc["clusters"])
    # One row per member, same order and hashes as the JSON.
    assert [(r["cluster_id"], r["path"], r["sha256"]) for r in table] == [
        (c["cluster_id"], m["path"], m["hashes"]["sha256"])
        for c in doc["clusters"] for m in c["members"]]
    # The case number starts with '=': written as text, never as a formula.
    assert {r["case_number"] for r in table} == {"'=CASE-1"}
    for r in table:
        for v in r.values():
            assert not v.startswith(("=", "+", "-", "@", "\t", "\r")), v
    assert b"\r\n" in data


def test_determinism(pkg: dict[str, Any], tmp_path: Path) -> None:
    for fmt in ("leads-json", "leads-csv"):
        a = _export(pkg["case"], tmp_path / f"a-{fmt}", fmt, "--redact", "serial")
        b = _export(pkg["case"], tmp_path / f"b-{fmt}", fmt, "--redact", "serial")
        assert a == b, fmt
    env = {"SOURCE_DATE_EPOCH": "1767323045"}  # = GEN
    r = run_triage("report", str(pkg["case"]), "--format", "leads-json", "--out",
                   str(tmp_path / "sde.json"), "--redact", "serial", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sde.json").read_bytes() == (tmp_path / "a-leads-json").read_bytes()


def test_vics_unknown_media_round_trip(pkg: dict[str, Any], tmp_path: Path) -> None:
    case = pkg["case"]
    out = tmp_path / "unknown.json"
    doc = json.loads(_export(case, out, "vics", "--media", "unknown"))
    c = doc["value"][0]
    assert c["CaseNumber"] == "=CASE-1" and c["ContactName"] == "E. Xaminer"
    # Unknown media: every picture but the one known by SHA-256 (series B's first).
    known = pkg["files"]["B"][0]
    expected = [p for p in sorted(pkg["evidence"].rglob("*")) if p.is_file() and p != known]
    paths = sorted(mf["FilePath"] for m in c["Media"] for mf in m["MediaFiles"])
    assert paths == sorted(str(p.relative_to(pkg["evidence"])) for p in expected)
    assert c["TotalMediaFiles"] == len(expected)
    for m in c["Media"]:
        assert m["Category"] is None and m["IsPrecategorized"] is False
        assert m["Comments"].startswith(f"leads run {pkg['leads']['summary']['run']} "
                                        "cluster c")
    # Independent hashes (coreutils) for the SHA-256 each Media record carries.
    independent = _sha256sum(expected)
    by_path = {m["RelativeFilePath"]: m for m in c["Media"]}
    for p in expected:
        m = by_path[str(p.relative_to(pkg["evidence"]))]
        alt = {a["HashName"]: a["HashValue"] for a in m["AlternativeHashes"]}
        assert alt["SHA256"] == independent[str(p)]
    # Deterministic like every report.
    assert _export(case, tmp_path / "again.json", "vics", "--media", "unknown") == \
        out.read_bytes()
    # Round trip: triage's own VICS importer reads every record with its hashes...
    store = tmp_path / "rt.sqlite"
    with HashSetStore(store) as st:
        res = st.import_file(out)
        assert res.set.format == "vics" and res.set.version == "2.0"
        assert res.set.accepted == len(c["Media"]) and res.set.rejected == 0
    # ...and a match of (a copy of) the case against it finds exactly the exported files
    # by their SHA-256.
    copy = tmp_path / "case-copy"
    shutil.copytree(case, copy)
    rematch = run_triage("match", str(copy), "--store", str(store), "--json")
    assert rematch.returncode == 0, rematch.stderr
    run = rows(copy, "SELECT max(run_id) AS r FROM hash_sets_used")[0]["r"]
    hit = {r["display_path"] for r in rows(
        copy, "SELECT DISTINCT f.display_path FROM matches m JOIN files f ON f.id = "
              "m.file_id WHERE m.run_id = ? AND m.match_type = 'exact' AND m.algorithm = "
              "'sha256'", (run,))}
    assert hit == set(paths)


def test_without_a_leads_run_nothing_is_written(tmp_path: Path) -> None:
    from tests.contracts.registries import create_empty_case

    case = tmp_path / "empty"
    create_empty_case(case)
    for fmt in ("leads-json", "leads-csv"):
        out = tmp_path / f"p.{fmt}"
        r = run_triage("report", str(case), "--format", fmt, "--out", str(out))
        assert r.returncode == 2 and "triage leads" in r.stderr, r.stderr
        assert not out.exists() and not Path(f"{out}.manifest.json").exists()
    # Not case reports: the exporter contract's registry does not list them.
    from triage.report import EXPORTERS, PACKAGES

    assert set(PACKAGES) == {"leads-json", "leads-csv"} and not set(PACKAGES) & set(EXPORTERS)
