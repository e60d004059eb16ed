"""Every run is a locked library operation; the case is never opened through a link, never
created by a command that only reads or records, never mistaken for corrupt on read-only
media; a resume against other evidence is refused (issue "Core redesign", item 4)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.support import rows, run_triage, scan_json, simulate, start_scan, wait_dispatched
from triage.case import Case
from triage.errors import CaseError, CaseInUseError


def _evidence(root: Path, n: int = 4, shade: int = 0) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (40, 30), (shade + i * 40, 60, 90)).save(root / f"p{i}.png")
    return root


def _wait_running(case: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if rows(case, "SELECT 1 FROM runs WHERE status='running'"):
                return
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    raise AssertionError("no run started")


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# -- concurrency ---------------------------------------------------------------------

def test_match_report_verify_refused_while_a_scan_runs(tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    scan_json(ev, case)
    (ev / "p9.png").write_bytes((ev / "p0.png").read_bytes())
    other = _evidence(tmp_path / "ev2", shade=100)
    proc = start_scan(other, case, "read:hang:*p1.png", "--timeout", "120")
    try:
        _wait_running(case)
        for args in (["match", str(case), "--store", str(tmp_path / "none.sqlite")],
                     ["report", str(case), "--format", "csv"], ["verify", str(case)],
                     ["scan", str(ev), "--case", str(case), "-q"]):
            r = run_triage(*args)
            assert r.returncode == 5, (args, r.stdout, r.stderr)
            assert "in use by another triage process" in r.stderr, r.stderr
            assert "Traceback" not in r.stderr
        assert not (case / "exports").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    # The refused commands left no trace: no run, no audit row of theirs.
    commands = [r["command"] for r in rows(case, "SELECT command FROM runs ORDER BY id")]
    assert commands == ["scan", "scan"]


def test_verify_creates_nothing(tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    scan_json(ev, case)
    before = {p.name: _sha256(p) for p in case.iterdir() if p.is_file()}
    r = run_triage("verify", str(case))
    assert r.returncode == 0, r.stdout + r.stderr
    assert {p.name: _sha256(p) for p in case.iterdir() if p.is_file()} == before


def test_second_writer_in_process_is_refused(tmp_path: Path) -> None:
    with Case.open(tmp_path / "c"):
        with pytest.raises(CaseInUseError):
            Case.open(tmp_path / "c")
        with pytest.raises(CaseInUseError):
            Case.open(tmp_path / "c", readonly=True)
    with Case.open(tmp_path / "c", readonly=True) as a, \
            Case.open(tmp_path / "c", readonly=True) as b:  # readers share
        assert a.readonly and b.readonly


def test_report_shows_last_completed_match_over_a_finished_scan(tmp_path: Path) -> None:
    with Case.open(tmp_path / "c") as case:
        def run(command: str, status: str, summary: dict[str, object] | None = None,
                matched: bool = True) -> int:
            rid = case.start_run(command, [], {}, {})
            case.end_run(rid, status, summary or {})
            if matched:
                case.conn.execute(
                    "INSERT INTO hash_sets_used(run_id, set_id, name, format, "
                    "source_sha256, entry_count) VALUES (?, 's', 'n', 'plain', 'x', 1)",
                    (rid,))
            return rid

        first = run("scan", "completed")
        run("match", "failed")
        run("match", "interrupted")
        run("match", "completed", {"pending_entries": 3})
        assert case.report_match_run() == (first, None)
        again = run("scan", "completed", matched=False)
        chosen, note = case.report_match_run()
        assert chosen == first and note and f"run {again}" in note
        last = run("match", "completed", {"pending_entries": 0})
        assert case.report_match_run() == (last, None)
        # A match that could not read a set never stands for the case's matches.
        bad = run("match", "completed", {"damaged_sets": [{"name": "vics-q3", "set_id": "s"}]})
        chosen, note = case.report_match_run()
        assert chosen == last and note and f"run {bad}" in note and "vics-q3" in note

    with Case.open(tmp_path / "d") as case:
        rid = case.start_run("scan", [], {}, {})
        case.end_run(rid, "completed", {"matches": {"damaged_sets": [{"name": "caid"}]}})
        case.conn.execute("INSERT INTO hash_sets_used(run_id, set_id, name, format, "
                          "source_sha256, entry_count) VALUES (?, 's', 'n', 'plain', 'x', 1)",
                          (rid,))
        chosen, note = case.report_match_run()
        assert chosen == rid and note and note.startswith("INCOMPLETE") and "caid" in note


# -- never created by a command that only reads or records ------------------------------

def test_no_command_creates_a_case(tmp_path: Path) -> None:
    typo = tmp_path / "TYPO"
    image = tmp_path / "disk.raw"
    image.write_bytes(b"\0" * 65536)
    for args in (["verify-image", str(image), "--case", str(typo)],
                 ["report", str(typo)], ["verify", str(typo)],
                 ["match", str(typo), "--store", str(tmp_path / "none.sqlite")]):
        r = run_triage(*args)
        assert r.returncode in (5, 7), (args, r.stderr)
        assert not typo.exists(), args
        assert "Traceback" not in r.stderr
        assert r.returncode == 5 and "no such case directory" in r.stderr, (args, r.stderr)


# -- symbolic links ------------------------------------------------------------------

def _chat_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO messages(body) VALUES ('hello')")
    conn.commit()
    conn.close()
    return path


def test_case_database_never_opened_through_a_symlink(tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    chat = _chat_db(ev / "chat.db")
    before = _sha256(chat)
    case = tmp_path / "case"
    case.mkdir()
    (case / "case.sqlite").symlink_to(chat)
    for args in (["scan", str(ev), "--case", str(case), "-q"],
                 ["match", str(case), "--store", str(tmp_path / "none.sqlite")],
                 ["report", str(case), "--out", str(tmp_path / "r.csv"), "-f", "csv"],
                 ["verify", str(case)]):
        r = run_triage(*args)
        assert r.returncode in (5, 7), (args, r.stderr)
        assert "symbolic link" in r.stdout + r.stderr, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    assert _sha256(chat) == before  # header untouched: never switched to WAL
    assert not Path(str(chat) + "-wal").exists()


def test_dangling_symlink_and_linked_wal_or_lock(tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    case.mkdir()
    (case / "case.sqlite").symlink_to(tmp_path / "nowhere")
    r = run_triage("scan", str(ev), "--case", str(case), "-q")
    assert r.returncode == 5 and "symbolic link" in r.stderr and "Traceback" not in r.stderr
    (case / "case.sqlite").unlink()
    scan_json(ev, tmp_path / "good")
    for name in ("case.sqlite-wal", "case.lock"):
        target = tmp_path / f"target-{name}"
        target.write_bytes(b"")
        link = tmp_path / "good" / name
        if link.exists():
            link.unlink()
        link.symlink_to(target)
        r = run_triage("scan", str(ev), "--case", str(tmp_path / "good"), "-q")
        assert r.returncode == 5 and "symbolic link" in r.stderr, (name, r.stderr)
        link.unlink()


def test_not_a_case_database(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    chat = _chat_db(case / "case.sqlite")
    before = _sha256(chat)
    with pytest.raises(CaseError, match="not a triage case database"):
        Case.open(case)
    assert _sha256(chat) == before
    assert not (case / "case.lock").exists()  # the folder is left as it was
    (case / "case.sqlite").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(CaseError, match="not an SQLite file"):
        Case.open(case)


# -- swapped evidence ------------------------------------------------------------------

def test_resume_against_other_evidence_at_the_same_path_is_refused(tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    scan_json(ev, case)
    assert scan_json(ev, case)["resumed"] is True  # the same evidence resumes
    shutil.move(ev, tmp_path / "exhibit-1")
    _evidence(ev, n=6, shade=120)  # another exhibit at the same path
    before = _sha256(case / "case.sqlite")
    r = run_triage("scan", str(ev), "--case", str(case), "-q", "--no-match",
                   "--case-number", "WRONG-EXHIBIT")
    assert r.returncode == 5, r.stderr
    assert "not the evidence this case scanned" in r.stderr
    assert "Traceback" not in r.stderr
    assert rows(case, "SELECT count(*) AS n FROM files")[0]["n"] == 4  # nothing added
    # Refused before anything was recorded: no case number, no run, no audit row.
    assert _sha256(case / "case.sqlite") == before


def test_resume_of_a_case_without_identity_warns(tmp_path: Path) -> None:
    """A case made before schema 2 has no identity: the resume goes on, visibly unchecked."""
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    scan_json(ev, case)
    simulate(case, "UPDATE evidence SET identity=NULL", tables=("evidence",))
    r = run_triage("scan", str(ev), "--case", str(case), "-q", "--no-match")
    assert r.returncode == 0, r.stderr
    assert "cannot be checked against swapped evidence" in r.stderr
    assert rows(case, "SELECT identity FROM evidence")[0]["identity"]  # recorded now
    warned = rows(case, "SELECT message FROM errors WHERE stage='evidence'")
    assert any("cannot be checked" in w["message"] for w in warned)


def test_identity_ignores_what_changes_when_the_same_exhibit_is_attached_again() -> None:
    from triage.evidence_identity import differences

    then = {"kind": "folder", "device": "7:0", "inode": 2, "fsid": "a", "fs_source":
            "/dev/loop0", "fs_type": "vfat", "listing_sha256": "x"}
    again = {**then, "device": "7:3", "fsid": "b", "fs_source": "/dev/loop3"}
    assert differences(then, again) == []
    assert differences(then, {**again, "listing_sha256": "y"}) == [
        "listing sha256 was x, now y"]


def test_swapped_image_file_is_refused(tmp_path: Path) -> None:
    img = tmp_path / "disk.raw"
    img.write_bytes(os.urandom(1 << 20))
    case = tmp_path / "case"
    first = run_triage("scan", str(img), "--case", str(case), "-q", "--no-match", "--json")
    assert first.returncode in (0, 3), first.stderr
    data = bytearray(img.read_bytes())
    data[100] ^= 0xFF  # a different image of the same size
    img.write_bytes(bytes(data))
    r = run_triage("scan", str(img), "--case", str(case), "-q", "--no-match")
    assert r.returncode == 5 and "not the evidence this case scanned" in r.stderr, r.stderr
    ident = json.loads(rows(case, "SELECT identity FROM evidence")[0]["identity"])
    assert ident["kind"] == "image" and ident["segment_bytes"] == 1 << 20


# -- read-only media ------------------------------------------------------------------

def _ro_shell(ro_dir: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``ro_dir`` bind-mounted read-only in a private mount namespace
    (root ignores file modes, so only a read-only mount tests this honestly)."""
    script = (f"mount --bind '{ro_dir}' '{ro_dir}' && "
              f"mount -o remount,bind,ro '{ro_dir}' && {command}")
    env = dict(os.environ)
    env.pop("TRIAGE_INJECT_FAULT", None)
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


def _can_ro_mount(tmp_path: Path) -> bool:
    d = tmp_path / "probe"
    d.mkdir()
    r = _ro_shell(d, f"! touch '{d}/x'")
    return r.returncode == 0


def test_case_on_read_only_media(tmp_path: Path) -> None:
    if not shutil.which("unshare") or not _can_ro_mount(tmp_path):
        pytest.skip("read-only bind mounts are not permitted here")
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "dvd" / "case"
    scan_json(ev, case)
    assert run_triage("report", str(case), "-f", "csv").returncode == 0
    before = {p.name: _sha256(p) for p in case.iterdir() if p.is_file()}
    py = f"'{sys.executable}' -m triage"
    dvd = tmp_path / "dvd"
    out = tmp_path / "out"
    out.mkdir()
    r = _ro_shell(dvd, f"{py} verify '{case}'")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "corrupt" not in r.stdout + r.stderr
    r = _ro_shell(dvd, f"{py} report '{case}' -f csv --out '{out}/r.csv' --json")
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = json.loads((out / "r.csv.manifest.json").read_text())
    assert manifest["export_recorded_in_case"] is False and "read-only" in manifest["note"]
    r = _ro_shell(dvd, f"{py} report '{case}' -f csv")
    assert r.returncode == 5 and "read-only location" in r.stderr, r.stderr
    nostore = f"--store '{tmp_path}/none.sqlite'"
    for args in (f"match '{case}' {nostore}", f"scan '{ev}' --case '{case}' -q --no-match",
                 f"verify-image '{ev}/p0.png' --case '{case}'"):
        r = _ro_shell(dvd, f"{py} {args}")
        assert r.returncode in (4, 5), (args, r.stderr)
        assert "corrupt" not in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    r = _ro_shell(dvd, f"{py} match '{case}' {nostore}")
    assert "read-only location" in r.stderr, r.stderr
    after = {p.name: _sha256(p) for p in case.iterdir() if p.is_file()}
    assert after == before  # nothing on the "DVD" changed (it could not, but say so)


def test_new_case_on_read_only_location_is_a_clear_error(tmp_path: Path) -> None:
    if not shutil.which("unshare") or not _can_ro_mount(tmp_path):
        pytest.skip("read-only bind mounts are not permitted here")
    ev = _evidence(tmp_path / "ev")
    ro = tmp_path / "ro"
    ro.mkdir()
    r = _ro_shell(ro, f"'{sys.executable}' -m triage scan '{ev}' --case '{ro}/case' -q")
    assert r.returncode == 5 and "read-only location" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_runs_are_timestamped_and_locked_in_order(tmp_path: Path) -> None:
    """A killed scan's run is marked interrupted by the next locked opening."""
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    proc = start_scan(ev, case, "read:hang:*p2.png", "--timeout", "120")
    try:
        wait_dispatched(case, b"p2.png")
    finally:
        proc.kill()
        proc.wait(timeout=30)
    time.sleep(0.2)
    r = run_triage("match", str(case), "--store", str(tmp_path / "none.sqlite"))
    assert r.returncode == 0, r.stderr
    statuses = [(x["command"], x["status"]) for x in rows(
        case, "SELECT command, status FROM runs ORDER BY id")]
    assert statuses == [("scan", "interrupted"), ("match", "completed")]
    summary = json.loads(rows(case, "SELECT summary FROM runs WHERE id=2")[0]["summary"])
    assert summary["pending_entries"] >= 1
