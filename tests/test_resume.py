"""kill -9 at chosen moments, then resume: no row lost, none duplicated, same final result
as an uninterrupted scan (RELIABILITY #21). benchmarks/kill_resume.py does 20 kills."""

from __future__ import annotations

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

from tests.support import rows, scan_json, start_scan, wait_dispatched

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


def test_file_in_flight_during_two_crashes_is_quarantined(evidence: Path,
                                                          tmp_path: Path) -> None:
    case = tmp_path / "case"
    # The first scan dies (the whole process) while d1/p05.jpg is being hashed, twice.
    for crash in (1, 2):
        proc = start_scan(evidence, case, "hash:hang:d1/p05.jpg")
        wait_dispatched(case, b"d1/p05.jpg", attempts=crash)   # in flight in this run
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    summary = scan_json(evidence, case)
    r = rows(case, "SELECT * FROM files WHERE path=?", (b"d1/p05.jpg",))[0]
    assert r["status"] == "quarantined", dict(r)
    assert "interrupted" in r["status_reason"]
    assert summary["by_status"]["done"] == 61 - 1


def test_workers_do_not_outlive_a_killed_supervisor(evidence: Path, tmp_path: Path) -> None:
    """kill -9 of the scan while a worker is stuck in a decoder: within a few seconds no
    process of ours holds the evidence open, and the next scan removes the dead scan's
    temporary directory."""
    import psutil

    tmp = tmp_path / "tmp"
    tmp.mkdir()
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
