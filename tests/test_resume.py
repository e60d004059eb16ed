"""kill -9 at chosen moments, then resume: no row lost, none duplicated, same final result
as an uninterrupted scan (RELIABILITY #21). benchmarks/kill_resume.py does 20 kills."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import file_hashes, rows, scan_json, start_scan, wait_dispatched

COMPARE = ("SELECT f.identity, f.path, f.kind, f.size, f.status, f.status_stage, "
           "f.status_reason, f.mime, f.media_kind, f.ext_mismatch, f.read_status, "
           "h.algorithm, h.value, h.quality FROM files f LEFT JOIN hashes h ON h.file_id=f.id "
           "ORDER BY f.identity, h.algorithm")


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evidence")
    rng = np.random.default_rng(3)
    for d in range(3):
        (root / f"d{d}").mkdir()
        for i in range(20):
            arr = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / f"d{d}" / f"p{i:02d}.jpg", quality=85)
    (root / "d0" / "note.txt").write_text("text\n")
    return root


def _done(case: Path) -> int:
    db = case / "case.sqlite"
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM files WHERE status='done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _scan_until(evidence: Path, case: Path, done_at_least: int) -> bool:
    """Start a (slowed) scan and kill -9 its supervisor once enough files are done."""
    env = dict(os.environ, TRIAGE_INJECT_FAULT="hash:slow:*")
    proc = subprocess.Popen([sys.executable, "-m", "triage", "scan", str(evidence), "--case",
                             str(case), "--no-match", "-q", "--json", "--jobs", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while _done(case) < done_at_least and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    return alive


def test_kill_9_then_resume_equals_an_uninterrupted_scan(evidence: Path,
                                                         tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    scan_json(evidence, clean)
    killed = tmp_path / "killed"
    kills = sum(_scan_until(evidence, killed, target) for target in (5, 20, 40))
    assert kills >= 2
    summary = scan_json(evidence, killed)
    assert summary["resumed"] is True
    got = [tuple(r) for r in rows(killed, COMPARE)]
    want = [tuple(r) for r in rows(clean, COMPARE)]
    assert got == want                                   # nothing lost, nothing duplicated
    ids = rows(killed, "SELECT identity, count(*) AS n FROM files GROUP BY identity "
                       "HAVING n > 1")
    assert ids == []
    runs = [r["status"] for r in rows(killed, "SELECT status FROM runs ORDER BY id")]
    assert runs[-1] == "completed"
    # A run killed after it started is marked interrupted at the next start (audited); a
    # kill during start-up may come before its run row exists.
    assert 1 <= runs.count("interrupted") <= kills
    assert "running" not in runs


def _sha256sum(path: Path) -> str:
    return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def _pending_with_digests(case: Path, path: bytes, timeout: float = 60) -> dict[str, str]:
    """Wait until the file is still in flight and its checkpoint (digests, recorded once it
    was read in full, before expansion) is in the case; return {algorithm: value}."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = rows(case, "SELECT f.status, h.algorithm, h.value FROM files f JOIN hashes h "
                             "ON h.file_id=f.id WHERE f.path=?", (path,))
        except sqlite3.Error:
            got = []
        if got and all(r["status"] == "pending" for r in got):
            return {r["algorithm"]: r["value"] for r in got}
        time.sleep(0.05)
    raise AssertionError(f"{path!r}: no checkpoint while in flight within {timeout} s")


def test_two_kills_of_the_scan_during_expansion_do_not_quarantine(tmp_path: Path) -> None:
    """Issue 11 #7: the whole scan killed twice (kill -9) while a container is being
    expanded is no fault of the container. Its digests are kept from the first kill on;
    the rescan expands it in full; nothing is quarantined."""
    import zipfile

    evidence = tmp_path / "ev"
    evidence.mkdir()
    rng = np.random.default_rng(11)
    members = {}
    for i in range(2):
        arr = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"m{i}.jpg", quality=85)
        members[f"m{i}.jpg"] = (tmp_path / f"m{i}.jpg").read_bytes()
    with zipfile.ZipFile(evidence / "box.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    (evidence / "a.txt").write_text("before\n")
    want = _sha256sum(evidence / "box.zip")
    case = tmp_path / "case"
    for kill in (1, 2):
        proc = start_scan(evidence, case, "expand:slow=30:box.zip")
        wait_dispatched(case, b"box.zip", attempts=kill)
        digests = _pending_with_digests(case, b"box.zip")   # read in full, now expanding
        assert digests["sha256"] == want                    # kept whatever happens next
        time.sleep(1)                       # this attempt's read and checkpoint take ms
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        r = rows(case, "SELECT status, worker_crashes FROM files WHERE path=?",
                 (b"box.zip",))[0]
        assert (r["status"], r["worker_crashes"]) == ("pending", 0)
    summary = scan_json(evidence, case, env={"TRIAGE_INJECT_FAULT": "expand:slow:box.zip"})
    assert summary["by_status"].get("quarantined", 0) == 0
    r = rows(case, "SELECT * FROM files WHERE path=?", (b"box.zip",))[0]
    assert r["status"] == "done", dict(r)
    assert r["attempts"] == 3 and r["worker_crashes"] == 0
    assert file_hashes(case)[b"box.zip"]["sha256"] == want
    inner = {bytes(m["path"]): m["value"] for m in rows(
        case, "SELECT f.path, h.value FROM files f JOIN hashes h ON h.file_id=f.id "
              "WHERE f.parent_id=? AND h.algorithm='sha256'", (r["id"],))}
    unzip = {f"box.zip!{n}".encode(): hashlib.sha256(subprocess.run(
        ["unzip", "-p", str(evidence / "box.zip"), n], capture_output=True,
        check=True).stdout).hexdigest() for n in members}
    assert inner == unzip


def test_worker_crashes_count_across_runs_and_retry_quarantined(tmp_path: Path) -> None:
    """A file that crashed a worker once, then was in flight while the scan was killed, is
    not quarantined by the kill; a second worker crash (in any run) quarantines it, with its
    digests kept; --retry-quarantined tries it again (audited), with new attempts."""
    evidence = tmp_path / "ev"
    evidence.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 30), (i * 60, 90, 20)).save(evidence / f"p{i}.jpg")
    case = tmp_path / "case"
    # Crash 1 at decode (after the checkpoint); the scan is killed while the retry is in
    # flight (each attempt waits 5 s before its crash).
    proc = start_scan(evidence, case, "decode:slow=5:p1.jpg;decode:segfault:p1.jpg")
    wait_dispatched(case, b"p1.jpg", attempts=2, timeout=90)   # the retry, after crash 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    r = rows(case, "SELECT status, worker_crashes FROM files WHERE path=?", (b"p1.jpg",))[0]
    assert (r["status"], r["worker_crashes"]) == ("pending", 1)
    # Crash 2, in a later run: quarantined, digests kept.
    summary = scan_json(evidence, case, env={"TRIAGE_INJECT_FAULT": "decode:segfault:p1.jpg"},
                        expect=(3,))
    assert summary["by_status"]["quarantined"] == 1
    r = rows(case, "SELECT * FROM files WHERE path=?", (b"p1.jpg",))[0]
    assert r["status"] == "quarantined" and r["worker_crashes"] == 2
    assert "2 crashes" in r["status_reason"]
    want = _sha256sum(evidence / "p1.jpg")
    assert file_hashes(case)[b"p1.jpg"]["sha256"] == want
    # A plain rescan leaves it alone; --retry-quarantined tries again.
    assert scan_json(evidence, case, expect=(3,))["by_status"]["quarantined"] == 1
    summary = scan_json(evidence, case, "--retry-quarantined")
    assert summary["by_status"] == {"done": 3}
    r = rows(case, "SELECT * FROM files WHERE path=?", (b"p1.jpg",))[0]
    assert r["status"] == "done" and r["worker_crashes"] == 0 and r["attempts"] >= 3
    assert file_hashes(case)[b"p1.jpg"]["sha256"] == want
    audit = [json.loads(a["details"]) for a in rows(
        case, "SELECT details FROM audit WHERE action='files.retry_quarantined'")]
    assert audit == [{"run": audit[0]["run"], "evidence": 1, "files": [r["id"]]}]


def test_workers_do_not_outlive_a_killed_supervisor(evidence: Path, tmp_path: Path,
                                                    scan_tmpdir: Path) -> None:
    """kill -9 of the scan while a worker is stuck in a decoder: within a few seconds no
    process of ours holds the evidence open, and the next scan removes the dead scan's
    temporary directory."""
    import psutil

    tmp = scan_tmpdir  # private and empty (tests/conftest.py: tmp_path is too long)
    case = tmp_path / "case"
    proc = start_scan(evidence, case, "decode:hang:d0/p03.jpg", env={"TMPDIR": str(tmp)})
    wait_dispatched(case, b"d0/p03.jpg")
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    target = str(evidence / "d0" / "p03.jpg")

    def holders() -> list[int]:
        out = []
        for p in psutil.process_iter(["pid"]):
            try:
                if any(f.path == target for f in p.open_files()):
                    out.append(p.pid)
            except (psutil.Error, OSError):
                continue
        return out

    deadline = time.monotonic() + 10
    while holders() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert holders() == []
    assert any(p.name.startswith("triage-work-") for p in tmp.iterdir())
    scan_json(evidence, case, env={"TMPDIR": str(tmp)})
    left = list(tmp.iterdir())
    assert not [p for p in left if p.name.startswith("triage-work-")]
    # Python's multiprocessing leaves its forkserver socket directory (pymp-*) when its
    # process is killed; it holds a socket and nothing from the evidence.
    for p in left:
        assert p.name.startswith("pymp-")
        assert all(f.is_socket() for f in p.iterdir())
