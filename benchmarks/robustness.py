"""Robustness report (issue 5): the public bad-input corpus and the fault matrix.

Runs real ``triage scan`` processes and prints, per evidence and in total: files seen,
files with a final status, supervisor crashes (a scan that died or printed a traceback),
hangs (a scan that did not finish within its wall-clock limit) and the slowest give-up
(the longest a bad file took before the pool gave up on it), against the per-file timeout.

    .venv/bin/python benchmarks/robustness.py [--timeout 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
STAGES = ("open", "read", "identify", "decode", "hash")
KINDS = ("segfault", "abort", "exit", "hang", "memory", "exception")


def scan(evidence: Path, case: Path, timeout: float, env: dict[str, str] | None = None,
         wall: float = 900) -> dict[str, Any]:
    full_env = dict(os.environ, **(env or {}))
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "triage", "scan", str(evidence), "--case",
                               str(case), "--no-match", "--json", "-q", "--timeout",
                               str(timeout)], capture_output=True, text=True, env=full_env,
                              timeout=wall, check=False)
    except subprocess.TimeoutExpired:
        return {"hang": True, "crash": False, "elapsed": time.monotonic() - started}
    elapsed = time.monotonic() - started
    crash = proc.returncode not in (0, 3) or "Traceback" in proc.stderr
    out: dict[str, Any] = {"hang": False, "crash": crash, "elapsed": elapsed,
                           "rc": proc.returncode}
    if crash:
        out["stderr"] = proc.stderr[-1500:]
    try:
        out["summary"] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        out["summary"] = {}
    db = case / "case.sqlite"
    if db.exists():
        conn = sqlite3.connect(db)
        out["seen"], out["final"] = conn.execute(
            "SELECT count(*), sum(status != 'pending') FROM files").fetchone()
        out["statuses"] = dict(conn.execute(
            "SELECT status, count(*) FROM files GROUP BY status").fetchall())
        conn.close()
    return out


def corpus(tmp: Path) -> list[tuple[str, Path]]:
    items = [("pillow (crash/bomb/truncated/odd)", TESTDATA / "media" / "pillow"),
             ("exiftool samples", TESTDATA / "media" / "exiftool"),
             ("matroska (broken videos)", TESTDATA / "video" / "matroska"),
             ("bogus.001", TESTDATA / "disk" / "dfvfs" / "bogus.001"),
             ("NTFS fuzz case", next((TESTDATA / "disk" / "fuzz").iterdir()))]
    exfat = tmp / "exfat"
    exfat.mkdir()
    with lzma.open(TESTDATA / "disk" / "exfat" / "error.tar.xz") as xz, \
            tarfile.open(fileobj=xz) as tar:
        tar.extractall(exfat, filter="data")
    items += [(f"corrupt exFAT ({p.name})", p) for p in sorted(exfat.rglob("*.img"))]
    return items


def fault_evidence(tmp: Path) -> Path:
    root = tmp / "fault-evidence"
    root.mkdir()
    rng = np.random.default_rng(5)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            root / f"img{i}.jpg")
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=10.0, help="per-file timeout (s)")
    ap.add_argument("--keep", type=Path, help="keep the cases in this directory")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="triage-robustness-"))
    tmp.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, evidence in corpus(tmp):
        rows.append((name, scan(evidence, tmp / f"case-{len(rows)}", args.timeout)))
    evidence = fault_evidence(tmp)
    for stage in STAGES:
        for kind in KINDS:
            env = {"TRIAGE_INJECT_FAULT": f"{stage}:{kind}:img3.jpg"}
            r = scan(evidence, tmp / f"fault-{stage}-{kind}", args.timeout, env)
            rows.append((f"fault {stage}:{kind}", r))

    print(f"{'evidence':42} {'seen':>6} {'final':>6} {'crash':>5} {'hang':>4} "
          f"{'giveup s':>8} {'wall s':>7}  statuses")
    tot = {"seen": 0, "final": 0, "crash": 0, "hang": 0}
    slowest = 0.0
    for name, r in rows:
        giveup = (r.get("summary", {}).get("pool", {}) or {}).get("slowest_giveup_seconds", 0)
        slowest = max(slowest, giveup or 0)
        tot["seen"] += r.get("seen", 0) or 0
        tot["final"] += r.get("final", 0) or 0
        tot["crash"] += int(r["crash"])
        tot["hang"] += int(r["hang"])
        print(f"{name:42} {r.get('seen', 0):>6} {r.get('final', 0) or 0:>6} "
              f"{int(r['crash']):>5} {int(r['hang']):>4} {giveup:>8.2f} {r['elapsed']:>7.1f}  "
              f"{r.get('statuses', {})}")
        if r.get("stderr"):
            print("    stderr:", r["stderr"].strip().splitlines()[-1])
    share = 100.0 * tot["final"] / tot["seen"] if tot["seen"] else 0.0
    print(f"\nfiles seen {tot['seen']}, with a final status {tot['final']} ({share:.2f}%), "
          f"supervisor crashes {tot['crash']}, hangs {tot['hang']}, slowest give-up "
          f"{slowest:.2f} s (per-file timeout {args.timeout:.0f} s, goal <= timeout + 1 s)")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = tot["final"] == tot["seen"] and not tot["crash"] and not tot["hang"] \
        and slowest <= args.timeout + 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
