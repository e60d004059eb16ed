"""Robustness report (issue 5): the public bad-input corpus and the fault matrix.

Runs real ``triage scan`` processes and prints, per evidence and in total: files seen,
files with a final status, supervisor crashes (a scan that died or printed a traceback),
hangs (a scan that did not finish within its wall-clock limit) and the slowest give-up
(the longest a bad file took before the pool gave up on it), against the per-file timeout.
Also memory, sampled from /proc every 0.1 s: the peak resident memory of any one process of
the scan (``peak MiB``, VmHWM) and of the whole process tree at one moment (``tree MiB``).

Issue 11 adds hostile classes, each with its own check (``check`` column, ``ok`` or what is
wrong): concatenated gzip/bzip2/xz members (digest equal to ``gzip -dc`` etc.) and
400 x gzip(10 MiB of zeros) (stopped at the member cap, memory bounded).

    .venv/bin/python benchmarks/robustness.py [--timeout 10] [--keep DIR] [--hostile-only]
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
STAGES = ("open", "read", "identify", "decode", "hash")
KINDS = ("segfault", "abort", "exit", "hang", "memory", "exception")


def _tree(root: int) -> list[int]:
    """``root`` and every process below it (from /proc; workers hang off a forkserver)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class PeakMemory:
    """Samples a process tree every 0.1 s: the largest peak RSS of one process (VmHWM) and
    the largest total RSS of the tree at one moment, in MiB."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.one, self.total = pid, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            pids = _tree(self.pid)
            self.one = max(self.one, *(_status_kib(p, "VmHWM") / 1024 for p in pids))
            self.total = max(self.total, sum(_status_kib(p, "VmRSS") for p in pids) / 1024)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def scan(evidence: Path, case: Path, timeout: float, env: dict[str, str] | None = None,
         wall: float = 900) -> dict[str, Any]:
    full_env = dict(os.environ, **(env or {}))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "triage", "scan", str(evidence), "--case",
                             str(case), "--no-match", "--json", "-q", "--timeout",
                             str(timeout)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env)
    peak = PeakMemory(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=wall)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"hang": True, "crash": False, "elapsed": time.monotonic() - started}
    finally:
        peak.stop()
    elapsed = time.monotonic() - started
    crash = proc.returncode not in (0, 3) or "Traceback" in stderr
    out: dict[str, Any] = {"hang": False, "crash": crash, "elapsed": elapsed,
                           "rc": proc.returncode, "peak_mib": peak.one,
                           "total_mib": peak.total}
    if crash:
        out["stderr"] = stderr[-1500:]
    try:
        out["summary"] = json.loads(stdout)
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


def _sshd_log(size: int) -> bytes:
    """A deterministic log that compresses about 19:1, like a real one."""
    rng = random.Random(11)
    lines, n, t = [], 0, 0
    while n < size:
        t += rng.randint(0, 3)
        line = (f"2026-01-01T{t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z host1 "
                f"sshd[{1000 + t % 7}]: Accepted publickey for user{rng.randint(1, 4)} "
                f"from 10.0.0.{rng.randint(1, 4)}\n").encode()
        lines.append(line)
        n += len(line)
    return b"".join(lines)


def _small_jpeg() -> bytes:
    out = io.BytesIO()
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


Check = Callable[[Path], str]

COMPRESSORS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gz": ("gzip", lambda d: gzip.compress(d, mtime=0)),
    "bz2": ("bzip2", bz2.compress),
    "xz": ("xz", lambda d: lzma.compress(d, format=lzma.FORMAT_XZ)),
}


def _member_digest_check(container: str, tool: str, path: Path) -> Check:
    """The member's SHA-256 must equal that of the tool's output (``gzip -dc`` ...)."""
    want = hashlib.sha256(subprocess.run([tool, "-dc", str(path)], capture_output=True,
                                         check=False).stdout).hexdigest()

    def check(case: Path) -> str:
        got = _case_rows(case, "SELECT h.value FROM files f JOIN hashes h ON h.file_id=f.id "
                               "AND h.algorithm='sha256' WHERE f.display_path LIKE ?",
                         (f"{container}!%",))
        values = {r[0] for r in got}
        return "ok" if want in values else f"member sha256 {sorted(values)} != {tool} -dc"
    return check


def _limit_check(member: str, reason_part: str) -> Check:
    def check(case: Path) -> str:
        got = _case_rows(case, "SELECT status, status_reason FROM files WHERE display_path=?",
                         (member,))
        if not got:
            return f"{member}: no row"
        status, reason = got[0]
        return "ok" if status == "skipped" and reason_part in (reason or "") else \
            f"{member}: {status} {reason}"
    return check


def _case_rows(case: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(case / "case.sqlite")
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def hostile_classes(tmp: Path) -> list[tuple[str, Path, Check]]:
    """Issue 11's hostile inputs, one evidence folder each, with the check for each."""
    out: list[tuple[str, Path, Check]] = []
    log, jpeg = _sshd_log(10_500_000), _small_jpeg()
    for ext, (tool, compress) in COMPRESSORS.items():
        root = tmp / f"concat-{ext}"
        root.mkdir()
        path = root / f"mail.log.{ext}"
        path.write_bytes(compress(log) + compress(jpeg))
        out.append((f"{tool}(10.5 MB log)+{tool}(JPEG)", root,
                    _member_digest_check(path.name, tool, path)))
        root = tmp / f"zeros-{ext}"
        root.mkdir()
        (root / f"zeros.{ext}").write_bytes(compress(bytes(10 << 20)) * 400)
        out.append((f"400 x {tool}(10 MiB zeros)", root,
                    _limit_check(f"zeros.{ext}!zeros", "limit: ")))
    return out


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
    ap.add_argument("--hostile-only", action="store_true",
                    help="only the issue 11 hostile classes (not the corpus and fault matrix)")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="triage-robustness-"))
    tmp.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, evidence in ([] if args.hostile_only else corpus(tmp)):
        rows.append((name, scan(evidence, tmp / f"case-{len(rows)}", args.timeout)))
    for name, evidence, check in hostile_classes(tmp):
        case = tmp / f"case-{len(rows)}"
        r = scan(evidence, case, args.timeout)
        r["check"] = check(case) if (case / "case.sqlite").exists() else "no case"
        rows.append((name, r))
    evidence = fault_evidence(tmp)
    for stage in () if args.hostile_only else STAGES:
        for kind in KINDS:
            env = {"TRIAGE_INJECT_FAULT": f"{stage}:{kind}:img3.jpg"}
            r = scan(evidence, tmp / f"fault-{stage}-{kind}", args.timeout, env)
            rows.append((f"fault {stage}:{kind}", r))

    print(f"{'evidence':42} {'seen':>6} {'final':>6} {'crash':>5} {'hang':>4} "
          f"{'giveup s':>8} {'wall s':>7} {'peak MiB':>8} {'tree MiB':>8}  check  statuses")
    tot = {"seen": 0, "final": 0, "crash": 0, "hang": 0, "failed": 0}
    slowest = 0.0
    for name, r in rows:
        giveup = (r.get("summary", {}).get("pool", {}) or {}).get("slowest_giveup_seconds", 0)
        slowest = max(slowest, giveup or 0)
        tot["seen"] += r.get("seen", 0) or 0
        tot["final"] += r.get("final", 0) or 0
        tot["crash"] += int(r["crash"])
        tot["hang"] += int(r["hang"])
        tot["failed"] += int(r.get("check", "ok") != "ok")
        print(f"{name:42} {r.get('seen', 0):>6} {r.get('final', 0) or 0:>6} "
              f"{int(r['crash']):>5} {int(r['hang']):>4} {giveup:>8.2f} {r['elapsed']:>7.1f} "
              f"{r.get('peak_mib', 0):>8.0f} {r.get('total_mib', 0):>8.0f}  "
              f"{r.get('check', '-')}  {r.get('statuses', {})}")
        if r.get("stderr"):
            print("    stderr:", r["stderr"].strip().splitlines()[-1])
    share = 100.0 * tot["final"] / tot["seen"] if tot["seen"] else 0.0
    print(f"\nfiles seen {tot['seen']}, with a final status {tot['final']} ({share:.2f}%), "
          f"supervisor crashes {tot['crash']}, hangs {tot['hang']}, slowest give-up "
          f"{slowest:.2f} s (per-file timeout {args.timeout:.0f} s, goal <= timeout + 1 s), "
          f"hostile-class checks failed {tot['failed']}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = tot["final"] == tot["seen"] and not tot["crash"] and not tot["hang"] \
        and slowest <= args.timeout + 1 and not tot["failed"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
