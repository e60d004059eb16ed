"""Tamper evidence for the data, not only the audit (issue 12, item 5): real SQL edits on
copies of a case made by ``triage scan``, ``match`` and ``report``, as a tamperer with the
sqlite3 tool would make them. Each must fail ``triage verify`` (exit 7) naming the table,
and no later triage command may launder it."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.reports.helpers import cli, report
from tests.support import rows, run_triage
from triage.datadigest import TABLE_NAMES

EXIT_VERIFY_FAILED = 7


def _verify(case: Path, *extra: str) -> tuple[int, str]:
    r = cli("verify", str(case), *extra)
    return r.exit_code, r.output


def _sql(case: Path, *statements: str) -> None:
    """Edit the case database directly, as someone with the sqlite3 tool would."""
    conn = sqlite3.connect(case / "case.sqlite")
    try:
        for s in statements:
            conn.execute(s)
        conn.commit()
    finally:
        conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _match_run(case: Path) -> int:
    return int(rows(case, "SELECT max(run_id) AS r FROM matches")[0]["r"])


def _refused_without_writing(case: Path, *args: str) -> str:
    """Run a triage command that must refuse the tampered case: exit 7, database unchanged,
    nothing exported. Returns its stderr."""
    before = _digest(case / "case.sqlite")
    exports = sorted(p.name for p in (case / "exports").glob("*")) \
        if (case / "exports").exists() else []
    r = run_triage(*args)
    assert r.returncode == EXIT_VERIFY_FAILED, r.stdout + r.stderr
    assert "changed outside triage" in r.stderr
    assert _digest(case / "case.sqlite") == before
    now = sorted(p.name for p in (case / "exports").glob("*")) \
        if (case / "exports").exists() else []
    assert now == exports
    return r.stderr


def test_a_clean_case_verifies_its_data(case_copy: Path) -> None:
    code, text = _verify(case_copy)
    assert code == 0, text
    assert (f"OK   case data: {len(TABLE_NAMES)} tables as the audit trail recorded "
            "them") in text


def test_matches_category_edit_fails_verify_and_is_never_laundered(
        case_copy: Path, hostile: dict[str, Any]) -> None:
    """The issue's scenario: an export, more audited actions, then UPDATE matches on a
    copy. ``verify --manifest`` must not say OK; another export, match or scan is refused
    (exit 7), so a full verify still fails afterwards."""
    out = case_copy / "exports" / "hits.csv"
    report(case_copy, "csv", out, "--rows", "hits")
    manifest = out.with_name(out.name + ".manifest.json")
    # Audited actions after the export: a second match run (3 audit rows) and an export.
    r = run_triage("match", str(case_copy), "--store", str(hostile["store"]))
    assert r.returncode == 0, r.stderr
    report(case_copy, "html", case_copy / "exports" / "r.html")
    assert _verify(case_copy)[0] == 0
    run = _match_run(case_copy)
    _sql(case_copy, "UPDATE matches SET category='non-pertinent'")

    code, text = _verify(case_copy, "--manifest", str(manifest))
    assert code == EXIT_VERIFY_FAILED, text
    assert f"FAIL case data: table matches (run 2, {run})" in text
    assert "content differs" in text
    assert "not comparable" not in text
    assert f"FAIL case database case.sqlite vs {manifest.name}" in text
    assert "no audited action explains the change" in text

    # No command records or exports the edited rows as the case's.
    err = _refused_without_writing(case_copy, "report", str(case_copy), "-f", "csv",
                                   "--rows", "hits")
    assert "table matches" in err
    _refused_without_writing(case_copy, "match", str(case_copy), "--store",
                             str(hostile["store"]))
    _refused_without_writing(case_copy, "scan", str(hostile["evidence"]), "--case",
                             str(case_copy), "--no-match", "-q")
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED
    assert "FAIL case data: table matches" in text
    # The export handed over still holds the hits as they were.
    assert "non-pertinent" not in out.read_text("utf-8-sig")


@pytest.mark.parametrize(("edit", "table"), [
    ("UPDATE files SET size = size + 1 WHERE id = (SELECT min(id) FROM files "
     "WHERE kind='file')", "files"),
    ("UPDATE files SET deleted=0, allocated=1 WHERE deleted=1", "files"),
    ("DELETE FROM files WHERE id = (SELECT max(id) FROM files WHERE id NOT IN "
     "(SELECT file_id FROM hashes) AND id NOT IN (SELECT file_id FROM errors "
     "WHERE file_id IS NOT NULL))", "files"),
    ("UPDATE hashes SET value = 'd41d8cd98f00b204e9800998ecf8427e' WHERE algorithm='md5' "
     "AND file_id = (SELECT min(file_id) FROM hashes)", "hashes"),
    ("DELETE FROM hashes WHERE algorithm='pdq' AND file_id = "
     "(SELECT min(file_id) FROM hashes WHERE algorithm='pdq')", "hashes"),
    ("UPDATE images SET width = 1 WHERE file_id = (SELECT min(file_id) FROM images)",
     "images"),
    ("DELETE FROM errors", "errors"),
    ("UPDATE evidence SET path='/elsewhere'", "evidence"),
    ("UPDATE hash_sets_used SET name='other set'", "hash_sets_used"),
    ("DELETE FROM matches WHERE id = (SELECT min(id) FROM matches)", "matches"),
    ("UPDATE runs SET user='someone else' WHERE id=1", "runs"),
    ('UPDATE "case" SET examiner=\'someone else\'', "case"),
])
def test_data_edits_before_any_export_fail_verify(case_copy: Path, edit: str,
                                                  table: str) -> None:
    assert not (case_copy / "exports").exists()  # no manifest anchors anything here
    _sql(case_copy, edit)
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED, text
    assert f"FAIL case data: table {table}" in text
    failed = [ln for ln in text.splitlines() if ln.startswith("FAIL")]
    assert all(f"table {table}" in ln for ln in failed), failed  # that table only
    assert "changed outside triage" in _refused_without_writing(
        case_copy, "report", str(case_copy), "-f", "jsonl")


def test_the_run_of_an_edited_row_is_named(case_copy: Path) -> None:
    """Hashes belong to the run that wrote their file's result: the scan (run 1)."""
    _sql(case_copy, "UPDATE hashes SET value=upper(value) WHERE algorithm='sha256'")
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED
    assert "FAIL case data: table hashes (run 1): hashes of entries of run 1: " in text


def _cut_last_audit_row(case: Path) -> dict[str, Any]:
    """Remove the last audit row the way a tamperer must: drop the trigger that refuses
    DELETE, delete, put the trigger back."""
    conn = sqlite3.connect(case / "case.sqlite")
    try:
        trigger = conn.execute("SELECT sql FROM sqlite_master WHERE type='trigger' AND "
                               "name='audit_no_delete'").fetchone()[0]
        last = conn.execute("SELECT seq, action FROM audit ORDER BY seq DESC LIMIT 1"
                            ).fetchone()
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute("DELETE FROM audit WHERE seq=?", (last[0],))
        conn.execute(trigger)
        conn.commit()
    finally:
        conn.close()
    return {"seq": last[0], "action": last[1]}


def test_a_deleted_last_audit_row_is_caught_against_the_manifest(case_copy: Path) -> None:
    out = case_copy / "exports" / "r.jsonl"
    report(case_copy, "jsonl", out)
    cut = _cut_last_audit_row(case_copy)
    assert cut["action"] == "report.export"
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED, text
    assert (f"FAIL export audit row {cut['seq']} (r.jsonl.manifest.json): missing: the "
            f"audit trail ends at row {cut['seq'] - 1}") in text
    assert "removed from the end of the audit trail" in text
    assert "OK   audit chain" in text  # no gap: only the anchor outside catches it


def test_a_deleted_run_end_is_caught_before_any_export(case_copy: Path,
                                                       hostile: dict[str, Any]) -> None:
    r = run_triage("match", str(case_copy), "--store", str(hostile["store"]))
    assert r.returncode == 0, r.stderr
    run = _match_run(case_copy)
    cut = _cut_last_audit_row(case_copy)
    assert cut["action"] == "match.end"
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED, text
    assert (f"FAIL case data: runs vs audit trail: run {run} (match) is 'completed' in the "
            "runs table but its end is missing from the audit trail") in text
    assert f"table matches (run {run})" in text  # its hits are in no recorded digest


def test_what_cannot_be_caught_before_any_export(case_copy: Path,
                                                 hostile: dict[str, Any]) -> None:
    """The documented limit (docs/reports.md): the end of the trail cut off AND the run's
    row made to look like a run that died, before any export, reads as an interrupted
    run: verify passes and says the run's rows are not verifiable."""
    r = run_triage("match", str(case_copy), "--store", str(hostile["store"]))
    assert r.returncode == 0, r.stderr
    run = _match_run(case_copy)
    _cut_last_audit_row(case_copy)
    _sql(case_copy, f"UPDATE runs SET status='running', ended_utc=NULL, summary=NULL "
                    f"WHERE id={run}")
    code, text = _verify(case_copy)
    assert code == 0, text
    assert (f"NOT verifiable: hash_sets_used, matches, runs changed by run {run}, which "
            "never ended") in text
    # Other runs' matches stay covered even then.
    _sql(case_copy, "UPDATE matches SET category='non-pertinent' WHERE run_id=2")
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED
    assert "FAIL case data: table matches (run 2)" in text


def _plant(case: Path, name: str, entry_path: str, target: Path) -> Path:
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    planted = case / name
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(json.dumps({
        "manifest_version": 1, "files": [{"path": entry_path, "sha256": digest,
                                          "size": target.stat().st_size}],
        "case_database": {"path": "case.sqlite", "sha256": "0" * 64, "size": 0}}))
    return planted


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "symlinked-dir"])
def test_a_planted_manifest_never_reads_outside_its_folder(
        case_copy: Path, tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for triage\n")
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    folder = case_copy / "exports"
    folder.mkdir()
    if how == "dotdot":
        rel = os.path.relpath(secret, folder)
        assert rel.startswith("..")
        planted = _plant(case_copy, "exports/x.manifest.json", rel, secret)
        reason = "is absolute or leaves the manifest's folder"
    elif how == "absolute":
        planted = _plant(case_copy, "exports/x.manifest.json", str(secret), secret)
        reason = "is absolute or leaves the manifest's folder"
    elif how == "symlink":
        (folder / "link.csv").symlink_to(secret)
        planted = _plant(case_copy, "exports/x.manifest.json", "link.csv", secret)
        reason = "goes through a symbolic link"
    else:
        (folder / "sub").symlink_to(secret.parent, target_is_directory=True)
        planted = _plant(case_copy, "exports/x.manifest.json", "sub/secret.txt", secret)
        reason = "goes through a symbolic link"
    import triage.report.verify as vf

    opened: list[Path] = []
    real = vf.mf.sha256_file
    monkeypatch.setattr(vf.mf, "sha256_file", lambda p: opened.append(Path(p)) or real(p))
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED, text
    assert f"FAIL manifest {planted}: bad manifest, not used: entry path" in text
    assert reason in text
    assert secret_sha not in text
    assert all(p.resolve() != secret.resolve() for p in opened), opened


def test_a_planted_manifest_naming_etc_shadow(case_copy: Path) -> None:
    """The issue's example, through the real CLI in a subprocess."""
    (case_copy / "exports").mkdir()
    planted = case_copy / "exports" / "evil.manifest.json"
    planted.write_text(json.dumps({
        "manifest_version": 1, "files": [{"path": "../../../../etc/shadow",
                                          "sha256": "0" * 64, "size": 1}],
        "case_database": {"path": "case.sqlite", "sha256": "0" * 64, "size": 0}}))
    r = run_triage("verify", str(case_copy))
    assert r.returncode == EXIT_VERIFY_FAILED, r.stdout + r.stderr
    assert "bad manifest, not used: entry path '../../../../etc/shadow'" in r.stdout
    assert "export /etc/shadow" not in r.stdout
    assert "SHA-256" not in "".join(ln for ln in r.stdout.splitlines() if "shadow" in ln)


def test_a_planted_manifest_that_is_a_link_is_not_followed(case_copy: Path,
                                                          tmp_path: Path) -> None:
    real = _plant(tmp_path, "elsewhere.manifest.json", "x", case_copy / "case.sqlite")
    (case_copy / "exports").mkdir()
    link = case_copy / "exports" / "r.manifest.json"
    link.symlink_to(real)
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED
    assert f"FAIL manifest {link}: unreadable manifest: a symbolic link" in text


def test_the_manifest_records_the_data_digest_and_verify_names_changes_since(
        case_copy: Path, hostile: dict[str, Any]) -> None:
    out = case_copy / "exports" / "r.csv"
    report(case_copy, "csv", out)
    m = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert m["manifest_version"] == 2
    export_row = json.loads(rows(case_copy, "SELECT details FROM audit WHERE seq=?",
                                 (m["audit"]["seq"],))[0]["details"])
    from triage import datadigest

    assert m["case_data"] == datadigest.summary(export_row["data_digest"]["tables"])
    code, text = _verify(case_copy)
    assert code == 0 and "SHA-256" in text
    r = run_triage("match", str(case_copy), "--store", str(hostile["store"]))
    assert r.returncode == 0, r.stderr
    code, text = _verify(case_copy)
    assert code == 0, text
    assert ("its data rows agree with the digests the audit trail recorded; data changed "
            "since the export: runs, hash_sets_used, matches") in text


def test_an_audited_row_appended_after_an_export_cannot_explain_an_exported_hit_changing(
        case_copy: Path) -> None:
    """The review's repro: after an export, an audited change by an action that never
    changes hits (``case.note``) rewrites an ended run's hit; verify fails naming the table
    and the run, and so does every later export attempt."""
    from triage.case import Case

    report(case_copy, "html", case_copy / "exports" / "r.html")
    run = _match_run(case_copy)
    with Case.open(case_copy, create=False) as c, \
            c.audited_change("case.note", {}, ["matches"]) as x:
        x.execute("UPDATE matches SET category='non-pertinent' WHERE run_id=?", (run,))
    code, text = _verify(case_copy)
    assert code == EXIT_VERIFY_FAILED, text
    assert "FAIL case data: table matches" in text
    assert "which a case.note never makes" in text
    assert "FAIL case database case.sqlite vs r.html.manifest.json" in text
    _refused_without_writing(case_copy, "report", str(case_copy), "-f", "csv")
