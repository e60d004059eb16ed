"""kill -9 at random moments, then resume (issue 5): rows lost, rows duplicated, and whether
the final result equals an uninterrupted scan's.

    .venv/bin/python benchmarks/kill_resume.py [--kills 20] [--files 300] [--seed 1]

The scan is slowed with the test-only ``slow`` fault (0.1 s per file) so that kills land
mid-scan. Each kill comes at a random moment (0-0.8 s) after the resumed run has finished
one more file. Kills of the whole scan never count against the files in flight (only
worker crashes do, issue 11 #7), so a file in flight during several kills must still end
``done``: any quarantined file fails the run.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

COMPARE = ("SELECT f.identity, f.path, f.size, f.status, f.status_reason, f.mime, "
           "h.algorithm, h.value FROM files f LEFT JOIN hashes h ON h.file_id=f.id "
           "ORDER BY f.identity, h.algorithm")


def inflight(case: Path) -> set[int]:
    """Files handed to a worker and not finished: in flight when the scan died."""
    try:
        conn = sqlite3.connect(f"file:{case / 'case.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return {r[0] for r in conn.execute(
                "SELECT id FROM files WHERE status='pending' AND attempts>=1")}
        finally:
            conn.close()
    except sqlite3.Error:
        return set()


def done(case: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{case / 'case.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM files WHERE status!='pending' "
                                "AND kind='file'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def command(evidence: Path, case: Path) -> list[str]:
    return [sys.executable, "-m", "triage", "scan", str(evidence), "--case", str(case),
            "--no-match", "-q", "--json"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="triage-kill-"))
    ev = tmp / "evidence"
    ev.mkdir()
    rng = np.random.default_rng(args.seed)
    for i in range(args.files):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            ev / f"f{i:04d}.jpg", quality=80)
    subprocess.run(command(ev, tmp / "clean"), capture_output=True, check=False)
    env = dict(os.environ, TRIAGE_INJECT_FAULT="hash:slow:*")
    killed = tmp / "killed"
    kills = 0
    caught: Counter[int] = Counter()  # file id -> kills it was in flight during
    while kills < args.kills:
        before = done(killed)
        if before >= args.files:
            break
        proc = subprocess.Popen(command(ev, killed), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        while done(killed) <= before and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rnd.uniform(0.0, 0.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        caught.update(inflight(killed))
    subprocess.run(command(ev, killed), capture_output=True, check=False)

    def fetch(case: Path) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(case / "case.sqlite")
        try:
            return list(conn.execute(COMPARE))
        finally:
            conn.close()

    clean, got = fetch(tmp / "clean"), fetch(killed)
    clean_ids = {r[0] for r in clean}
    got_ids = [r[0] for r in got]
    conn = sqlite3.connect(killed / "case.sqlite")
    dup = conn.execute("SELECT count(*) FROM (SELECT identity FROM files GROUP BY identity "
                       "HAVING count(*) > 1)").fetchone()[0]
    quarantined = conn.execute("SELECT count(*) FROM files WHERE status='quarantined'"
                               ).fetchone()[0]
    runs = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    conn.close()
    lost = len(clean_ids - set(got_ids))
    print(f"kills: {kills}; runs: {runs}")
    print(f"rows lost: {lost}; rows duplicated: {dup}; quarantined: {quarantined}; "
          f"files in flight during 2+ kills: {sum(1 for n in caught.values() if n >= 2)}")
    print(f"final rows equal an uninterrupted scan's: {got == clean}")
    return 0 if (lost == 0 and dup == 0 and quarantined == 0 and got == clean) else 1


if __name__ == "__main__":
    sys.exit(main())
