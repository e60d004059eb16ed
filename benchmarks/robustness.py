"""Robustness report (issue 5): the public bad-input corpus and the fault matrix.

Runs real ``triage scan`` processes and prints, per evidence and in total: files seen,
files with a final status, supervisor crashes (a scan that died or printed a traceback),
hangs (a scan that did not finish within its wall-clock limit) and the slowest give-up
(the longest a bad file took before the pool gave up on it), against the per-file timeout.
Also memory, sampled from /proc every 0.1 s: the peak resident memory of any one process of
the scan (``peak MiB``, VmHWM) and of the whole process tree at one moment (``tree MiB``).

Issue 11 adds hostile classes, each with its own check (``check`` column, ``ok`` or what is
wrong): concatenated gzip/bzip2/xz members (digest equal to ``gzip -dc`` etc.),
400 x gzip/bzip2/xz(10 MiB of zeros) (stopped at a cap, memory bounded), a real file named
``a.zip!photo.jpg`` beside ``a.zip`` (display paths differ), terminal-hostile names
(markup, OSC, ESC[2J, C1, bidi) printed on a pseudo-terminal (nothing but rich's styling),
and container outcomes (defects 5 and 10): a stored zip of 40 scanned 12 MP PNGs (all 40
listed, digests equal to ``unzip -p``), zips nested 7 deep and of 20,000 members, a 7z
declaring a 4 GiB LZMA2 dictionary (each an ``incomplete`` coverage gap naming its bound),
a JPEG whose header says 65500x2700 holding 16x16 (an error), a tar of links, devices and
a FIFO (every entry a row with its kind).

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
import re
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
sys.path.insert(0, str(ROOT))
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
    crash = proc.returncode not in (0, 3, 8) or "Traceback" in stderr
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
    """The member stopped at a byte cap, or (on a loaded machine) the container stopped at
    its time limit: either way a named limit, never a MemoryError or a silent stop."""
    def check(case: Path) -> str:
        got = _case_rows(case, "SELECT status, status_reason FROM files WHERE display_path=?",
                         (member,))
        if got and got[0][0] == "incomplete" and reason_part in (got[0][1] or ""):
            return "ok"
        limits = _case_rows(case, "SELECT status_reason FROM files WHERE status="
                                  "'incomplete' AND status_reason LIKE 'limit: time%'")
        memory = _case_rows(case, "SELECT message FROM errors WHERE message LIKE '%Memory%'")
        if limits and not memory:
            return f"ok ({limits[0][0]})"
        return f"{member}: {got} {limits} {memory}"
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


def _bang_pair_check(case: Path) -> str:
    """Issue 11 defect 9: the real file and the member must not read the same."""
    got = dict(_case_rows(case, "SELECT display_path, parent_id IS NULL FROM files"))
    if got.get("a.zip!photo.jpg") == 0 and got.get("a.zip\\x21photo.jpg") == 1:
        return "ok"
    return f"display paths {sorted(got)}"


def _run_on_terminal(args: list[str]) -> tuple[int, bytes]:
    """The CLI on a pseudo-terminal (TERM=xterm, 200 columns): what a terminal receives."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = dict(os.environ, TERM="xterm", COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "triage", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = bytearray()
    while True:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(), bytes(out)


#: Rich's own output: CSI sequences for styles and cursor moves only.
RICH_CSI = re.compile(rb"\x1b\[[0-9;?]*[mKAGhlB]")


def _terminal_check(evidence: Path, case: Path) -> Check:
    """Issue 11 defect 2: the same scan printed on a terminal: no traceback, no escape
    sequence from the data (OSC, screen clear, C1 CSI), the names shown literally."""
    def check(_case: Path) -> str:
        rc, out = _run_on_terminal(["scan", str(evidence), "--case", str(case),
                                    "--no-match"])
        bad = [n for n in (b"Traceback", b"\x1b]", b"\x1b[2J", b"\x07", b"\xc2\x9b")
               if n in out]
        if b"\x1b" in RICH_CSI.sub(b"", out):
            bad.append(b"other ESC")
        if rc not in (0, 3) or bad:
            return f"rc {rc}, {bad}"
        return "ok" if b"[link=https:evil.example]click.jpg" in out else "name not shown"
    return check


def _cut_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(out, "JPEG")
    return out.getvalue()[:len(out.getvalue()) // 2]


TERMINAL_NAMES = (b"[link=https:evil.example]click.jpg", b"[bold red on white]s.jpg",
                  b"\x1b]0;pwned\x07.jpg", b"\x1b]8;;https:evil.example\x1b\\l.jpg",
                  b"\x1b[2J.jpg", b"c1-\xc2\x9b2J.jpg", b"raw-\x9b\xff.jpg",
                  "bidi-\u202egpj.exe".encode())


def name_classes(tmp: Path) -> list[tuple[str, Path, Check]]:
    """Issue 11 defects 9 and 2: a file posing as a member; terminal-hostile names (cut-off
    JPEGs, so the summary lists them) under a folder named ``[/x]``, and a zip member
    ``[/nonexistent].jpg``."""
    import zipfile

    out: list[tuple[str, Path, Check]] = []
    root = tmp / "bang"
    root.mkdir()
    photo = _small_jpeg()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photo.jpg", photo)
    (root / "a.zip").write_bytes(buf.getvalue())
    (root / "a.zip!photo.jpg").write_bytes(photo[:-1] + b"\xd9")
    out.append(("file named a.zip!photo.jpg", root, _bang_pair_check))
    root = tmp / "[" / "x]"
    root.mkdir(parents=True)
    for name in TERMINAL_NAMES:
        (root / os.fsdecode(name)).write_bytes(_cut_jpeg())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[/nonexistent].jpg", _cut_jpeg())
    (root / "m.zip").write_bytes(buf.getvalue())
    out.append(("terminal-hostile names in [/x]", root,
                _terminal_check(root, tmp / "terminal-case")))
    return out


def _scanned_page(seed: int) -> bytes:
    """A 4000x3000 (12 MP) greyscale 'scanned page' (white, dark strokes, some noise)."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    page = np.full((3000, 4000), 245, dtype=np.uint8)
    page[rng.integers(0, 3000, 40_000), rng.integers(0, 4000, 40_000)] = 30
    img = Image.fromarray(page)
    draw = ImageDraw.Draw(img)
    for _ in range(400):
        x, y = int(rng.integers(100, 3800)), int(rng.integers(100, 2900))
        draw.rectangle([x, y, x + int(rng.integers(20, 200)), y + 12],
                       fill=int(rng.integers(0, 60)))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _outcome_check(expected: dict[str, tuple[str, str]]) -> Check:
    """Each display path must end with this status and a reason starting with this text."""
    def check(case: Path) -> str:
        got = {p: (s, r or "") for p, s, r in _case_rows(
            case, "SELECT display_path, status, status_reason FROM files")}
        bad = [f"{p}: {got.get(p)}" for p, (status, reason) in expected.items()
               if p not in got or got[p][0] != status or not got[p][1].startswith(reason)]
        return "ok" if not bad else "; ".join(bad)[:300]
    return check


def _zip_listing_check(container: Path, names: list[str]) -> Check:
    """Every member listed, ``done``, its SHA-256 equal to ``unzip -p``'s output."""
    def check(case: Path) -> str:
        got = dict(_case_rows(case, "SELECT f.display_path, h.value FROM files f JOIN "
                                    "hashes h ON h.file_id=f.id AND h.algorithm='sha256' "
                                    "WHERE f.status='done'"))
        bad = [n for n in names if got.get(f"{container.name}!{n}") != hashlib.sha256(
            subprocess.run(["unzip", "-p", str(container), n], capture_output=True,
                           check=True).stdout).hexdigest()]
        listed = len(names) - len(bad)
        return "ok" if not bad else f"{listed} of {len(names)} members listed and equal"
    return check


def _tar_kinds_check(expected: dict[str, str]) -> Check:
    def check(case: Path) -> str:
        got = dict(_case_rows(case, "SELECT display_path, kind FROM files"))
        bad = [f"{p}: {got.get(p)}" for p, kind in expected.items() if got.get(p) != kind]
        return "ok" if not bad else "; ".join(bad)
    return check


def container_classes(tmp: Path) -> list[tuple[str, Path, Check]]:
    """Issue 11 defects 5 and 10: container budgets and outcomes, damaged or unlisted
    content."""
    from tests.members import builders as b

    out: list[tuple[str, Path, Check]] = []
    root = tmp / "scans"
    root.mkdir()
    names = [f"scan{i:02d}.png" for i in range(40)]
    import zipfile

    with zipfile.ZipFile(root / "scans.zip", "w", zipfile.ZIP_STORED) as zf:
        for i, name in enumerate(names):
            zf.writestr(name, _scanned_page(i))
    out.append(("stored zip of 40 x 12 MP PNG", root,
                _zip_listing_check(root / "scans.zip", names)))
    root = tmp / "deep7"
    root.mkdir()
    (root / "deep7.zip").write_bytes(b.nested_zip(b.jpeg(), "x.jpg", 7))
    deep = "deep7.zip!" + "!".join(f"level{i}.zip" for i in range(2, 7))
    out.append(("zip nested 7 deep", root, _outcome_check(
        {deep: ("incomplete", "limit: nesting depth 6 > 5 (max_depth)")})))
    root = tmp / "many"
    root.mkdir()
    with zipfile.ZipFile(root / "many.zip", "w", zipfile.ZIP_STORED) as zf:
        for i in range(20_000):
            zf.writestr(f"m{i:05d}.txt", b"")
    out.append(("zip of 20,000 members", root, _outcome_check(
        {"many.zip": ("incomplete", "limit: 20000 members > 10000 (max_members)")})))
    root = tmp / "dict"
    root.mkdir()
    (root / "dict.7z").write_bytes(b.sevenzip_with_dictionary([("a.jpg", b.jpeg())]))
    out.append(("7z, 4 GiB LZMA2 dictionary", root, _outcome_check(
        {"dict.7z!a.jpg": ("incomplete", "limit: LZMA2 dictionary 4096 MiB > 1024 MiB")})))
    root = tmp / "liar"
    root.mkdir()
    (root / "liar.jpg").write_bytes(b.lying_jpeg())
    out.append(("JPEG 65500x2700 holding 16x16", root, _outcome_check(
        {"liar.jpg": ("error", "truncated JPEG: the header says 65500x2700")})))
    root = tmp / "types"
    root.mkdir()
    (root / "types.tar").write_bytes(b.tar_every_type([("a.jpg", b.jpeg())]))
    out.append(("tar of links, devices, FIFO", root, _tar_kinds_check(
        {"types.tar!dir": "directory", "types.tar!dir/link.jpg": "symlink",
         "types.tar!hard.jpg": "file", "types.tar!null": "char_device",
         "types.tar!sda": "block_device", "types.tar!pipe": "fifo"})))
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
    for name, evidence, check in (hostile_classes(tmp) + name_classes(tmp)
                                  + container_classes(tmp)):
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
        tot["failed"] += int(not r.get("check", "ok").startswith("ok"))
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
