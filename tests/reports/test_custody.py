"""Chain of custody: manifests, audit rows, signatures, and ``triage verify`` naming every
mismatch; determinism of exports."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.reports.helpers import cli, report
from tests.support import rows

EXIT_VERIFY_FAILED = 7
FORMATS = ("html", "csv", "jsonl", "pdf", "vics")


def _verify(case: Path, *extra: str) -> tuple[int, str]:
    r = cli("verify", str(case), *extra)
    return r.exit_code, r.output


def test_export_is_audited_and_verifies(case_copy: Path) -> None:
    r = cli("report", str(case_copy), "--format", "html", "--json",
            env={"SOURCE_DATE_EPOCH": "1767225600"})
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    out = Path(res["output"])
    assert out == case_copy / "exports" / "report.html"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    last = rows(case_copy, "SELECT action, details FROM audit ORDER BY seq DESC LIMIT 1")[0]
    details = json.loads(last["details"])
    assert last["action"] == "report.export"
    assert details["sha256"] == res["sha256"] and details["format"] == "html"
    assert details["output"] == str(out.resolve())
    m = json.loads((case_copy / "exports" / "report.html.manifest.json").read_text())
    assert m["files"][0] == {"path": "report.html", "sha256": res["sha256"],
                             "size": out.stat().st_size}
    assert m["case_database"]["wal"] is None  # checkpointed before hashing
    code, text = _verify(case_copy)
    assert code == 0, text
    assert "all checks passed" in text


def test_one_byte_in_an_export_fails_verify(case_copy: Path) -> None:
    for fmt in ("html", "csv"):
        report(case_copy, fmt, case_copy / "exports" / f"r.{fmt}")
    target = case_copy / "exports" / "r.csv"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED
    assert f"FAIL export {target}" in text
    assert "FAIL export" not in text.replace(f"FAIL export {target}", "")  # only that one


def test_one_byte_in_the_database_fails_verify(case_copy: Path) -> None:
    report(case_copy, "html", case_copy / "exports" / "r.html")
    db = case_copy / "case.sqlite"
    raw = bytearray(db.read_bytes())
    at = raw.find(b"gnp.exe")  # a byte inside one stored display path
    assert at > 0
    raw[at] = ord("G")
    db.write_bytes(bytes(raw))
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED, text
    assert "FAIL case database case.sqlite vs r.html.manifest.json" in text
    assert "no audited action explains" in text


def test_an_edited_audit_row_fails_verify(case_copy: Path) -> None:
    report(case_copy, "jsonl", case_copy / "exports" / "r.jsonl")
    conn = sqlite3.connect(case_copy / "case.sqlite")
    conn.execute("DROP TRIGGER audit_no_update")  # as a tamperer would
    conn.execute("""UPDATE audit SET details='{"number":"other"}' WHERE seq=1""")
    conn.commit()
    conn.close()
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED
    assert "FAIL audit chain: audit row 1: content does not match its row_hash" in text


def test_a_later_audited_export_does_not_break_older_manifests(case_copy: Path) -> None:
    report(case_copy, "html", case_copy / "exports" / "a.html")
    report(case_copy, "csv", case_copy / "exports" / "b.csv")
    code, text = _verify(case_copy)
    assert code == 0, text
    assert "changed since this export by 1 audited actions" in text


def test_signed_manifest(case_copy: Path, tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    r = cli("key", "generate", "--out", str(key))
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    fp = r.output.split("fingerprint: ")[1].split()[0]
    assert len(fp) == 64
    html = report(case_copy, "html", case_copy / "exports" / "s.html", "--sign", str(key))
    assert fp.encode() in html  # the fingerprint is printed in the report
    manifest = case_copy / "exports" / "s.html.manifest.json"
    assert (case_copy / "exports" / "s.html.manifest.json.sig").is_file()
    code, text = _verify(case_copy, "--pubkey", f"{key}.pub")
    assert code == 0, text
    assert f"valid, key fingerprint {fp}" in text
    # Another key does not verify it.
    other = tmp_path / "other.pem"
    assert cli("key", "generate", "--out", str(other)).exit_code == 0
    code, text = _verify(case_copy, "--pubkey", f"{other}.pub")
    assert code == EXIT_VERIFY_FAILED and "does NOT verify" in text
    # An edited manifest does not verify either.
    manifest.write_text(manifest.read_text().replace('"html"', '"HTML"'))
    code, text = _verify(case_copy, "--pubkey", f"{key}.pub")
    assert code == EXIT_VERIFY_FAILED
    assert f"FAIL signature {manifest}.sig" in text
    # Refuses to overwrite a key.
    assert cli("key", "generate", "--out", str(key)).exit_code != 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_exports_are_deterministic(hostile: dict[str, Any], tmp_path: Path, fmt: str) -> None:
    env = {"SOURCE_DATE_EPOCH": "1767225600"}
    a = report(hostile["case"], fmt, tmp_path / "a", env=env)
    b = report(hostile["case"], fmt, tmp_path / "b", env=env)
    assert a == b
    if fmt in ("html", "jsonl"):
        c = report(hostile["case"], fmt, tmp_path / "c", "--generated-at",
                   "2026-02-03T04:05:06Z", env={})
        diff = [(x, y) for x, y in zip(a.decode().splitlines(), c.decode().splitlines(),
                                       strict=True) if x != y]
        assert len(diff) == 1 and "2026-02-03T04:05:06Z" in diff[0][1]
