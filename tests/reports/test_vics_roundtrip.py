"""VICS 2.0 case export: re-imported by this project's VICS importer as a hash set, and a
re-match of the case gives the same hits."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from hashsets.store import HashSetStore
from tests.reports.helpers import DELETED, report
from tests.support import rows, run_triage


def _hits(case: Path) -> dict[bytes, dict[str, Any]]:
    """{path: {"algs": {...}, "cats": {...}}} for non-known hits of the case's latest run."""
    run = rows(case, "SELECT max(run_id) AS r FROM hash_sets_used")[0]["r"]
    out: dict[bytes, dict[str, Any]] = defaultdict(lambda: {"algs": set(), "cats": set()})
    for r in rows(case, "SELECT f.path, m.algorithm, m.category_raw FROM matches m JOIN files f "
                        "ON f.id = m.file_id WHERE m.run_id=? AND m.known=0", (run,)):
        out[bytes(r["path"])]["algs"].add(r["algorithm"])
        out[bytes(r["path"])]["cats"].add(r["category_raw"])
    return dict(out)


def test_vics_round_trip(case_copy: Path, tmp_path: Path) -> None:
    before = _hits(case_copy)
    assert len(before) == 13
    out = tmp_path / "case-vics.json"
    doc = json.loads(report(case_copy, "vics", out))
    assert doc["@odata.context"].endswith("/2.0.xml/US/$metadata#Cases")
    case = doc["value"][0]
    assert case["CaseNumber"] == '=HYPERLINK("x")' and case["TotalMediaFiles"] == 13
    files = {mf["FilePath"]: mf for m in case["Media"] for mf in m["MediaFiles"]}
    assert files["-2+3.png"]["Deleted"] is True and files["-2+3.png"]["Unallocated"] is True
    assert DELETED.decode() in files
    pdq_media = [m for m in case["Media"]
                 if any(a["HashName"] == "PDQ" for a in m["AlternativeHashes"])]
    assert len(pdq_media) == 13

    store = tmp_path / "roundtrip.sqlite"
    with HashSetStore(store) as st:
        res = st.import_file(out)
        assert res.set.format == "vics" and res.set.accepted == 13 and res.set.rejected == 0
        assert res.set.version == "2.0"
    proc = run_triage("match", str(case_copy), "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    after = _hits(case_copy)
    # Same files hit...
    assert set(after) == set(before)
    for path, b in before.items():
        # ...by at least the same algorithms (an exported file now also matches itself by
        # every hash it carries: MD5, SHA-1, SHA-256, PDQ, pHash, dHash)...
        assert b["algs"] <= after[path]["algs"], path
        # ...with the same raw category.
        assert after[path]["cats"] == b["cats"], path
