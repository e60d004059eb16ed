"""The isolated children's forkserver and the environment (triage.isolation): a TMPDIR too
long for its Unix socket, a forkserver that cannot start, and a forkserver that hangs
(stopped, stuck in an import of its preload list) are the machine's problems. The scan
works (the socket goes to a short private folder) or stops with exit code 1 and the reason
(a hung forkserver: after TRIAGE_CHILD_START_SECONDS, killed); it never waits per file,
never waits without a bound and never records an error against a file."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import TESTDATA, file_hashes, rows, run_triage

FILES = ("media/imagehash/imagehash.png", "media/small/bmp.bmp", "media/small/README.md")


def _evidence(tmp_path: Path) -> Path:
    ev = tmp_path / "ev"
    ev.mkdir()
    for rel in FILES:
        shutil.copy(TESTDATA / rel, ev)
    return ev


def _long_tmpdir(scan_tmpdir: Path) -> Path:
    """A TMPDIR whose forkserver socket (pymp-XXXXXXXX/listener-XXXXXXXX) would not fit."""
    long = scan_tmpdir / ("d" * 100)
    long.mkdir()
    assert len(str(long / "pymp-XXXXXXXX" / "listener-XXXXXXXX").encode()) > 107
    return long


def _triage_with(setup: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real CLI, after ``setup`` (Python) changed this machine's environment."""
    code = f"{setup}\nfrom triage.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=600, check=False,
                          env={**{k: v for k, v in os.environ.items()
                                  if k != "TRIAGE_INJECT_FAULT"}, **env})


def test_scan_with_a_tmpdir_too_long_for_the_socket_works(tmp_path: Path,
                                                          scan_tmpdir: Path) -> None:
    ev = _evidence(tmp_path)
    long = _long_tmpdir(scan_tmpdir)
    case = tmp_path / "case"
    proc = run_triage("scan", str(ev), "--case", str(case), "--json", "--no-match", "-q",
                      env={"TMPDIR": str(long)})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["by_status"] == {"done": len(FILES)}
    assert "TMPDIR" in proc.stderr and "at most 107" in proc.stderr
    short = re.search(r"the socket goes to (\S+) ", proc.stderr)
    assert short is not None, proc.stderr
    assert not Path(short.group(1)).exists()        # removed at the end
    assert list(long.iterdir()) == []               # the children's folders removed too
    got = file_hashes(case)
    for rel in FILES:
        path = TESTDATA / rel
        want = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0]
        assert got[path.name.encode()]["sha256"] == want, rel
    assert not rows(case, "SELECT * FROM errors WHERE error_class != 'Warning'")


def test_no_short_folder_for_the_socket_stops_before_the_case(tmp_path: Path,
                                                              scan_tmpdir: Path) -> None:
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    proc = _triage_with("from triage import isolation\n"
                        f"isolation.SHORT_SOCKET_BASES = ({str(tmp_path / 'none')!r},)",
                        "scan", str(ev), "--case", str(case), "--json", "--no-match", "-q",
                        env={"TMPDIR": str(_long_tmpdir(scan_tmpdir))})
    assert proc.returncode == 1, proc.stderr
    assert "TMPDIR" in proc.stderr and "at most 107" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not case.exists()                        # nothing recorded


def test_a_forkserver_that_cannot_start_stops_the_scan_without_blaming_files(
        tmp_path: Path, scan_tmpdir: Path) -> None:
    """The forkserver's interpreter exits at once (here: /bin/false): exit code 1 with the
    reason, no file charged, and the same scan completes once the machine is fixed."""
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    argv = ("scan", str(ev), "--case", str(case), "--json", "--no-match", "-q")
    proc = _triage_with("import multiprocessing.spawn\n"
                        "multiprocessing.spawn.set_executable('/bin/false')", *argv,
                        env={"TMPDIR": str(scan_tmpdir)})
    assert proc.returncode == 1, proc.stderr
    assert "forkserver" in proc.stderr and "Traceback" not in proc.stderr
    assert not rows(case, "SELECT * FROM files")
    assert not rows(case, "SELECT * FROM errors WHERE error_class != 'Warning'")
    assert [r["status"] for r in rows(case, "SELECT status FROM runs")] == ["failed"]
    again = run_triage(*argv, env={"TMPDIR": str(scan_tmpdir)})
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["by_status"] == {"done": len(FILES)}


def test_a_killed_scans_socket_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    """remove_stale_tmpdirs(base, SOCKET_DIR_PREFIX), as short_socket_dir calls it: the
    folder of a pid that is gone goes, this process's stays."""
    from triage import isolation

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    prefix = isolation.SOCKET_DIR_PREFIX
    dead = tmp_path / f"{prefix}{gone.pid}-abcdefgh"
    alive = tmp_path / f"{prefix}{os.getpid()}-abcdefgh"
    other = tmp_path / "unrelated"
    for d in (dead, alive, other):
        d.mkdir()
    isolation.remove_stale_tmpdirs(str(tmp_path), prefix)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])


#: The bound the hang tests give a child's start (TRIAGE_CHILD_START_SECONDS).
HANG_BOUND = 2


def _hung_scan(setup: str, ev: Path, case: Path, scan_tmpdir: Path,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A scan whose forkserver ``setup`` makes hang: it ends within the bound (plus the
    start-up and the kill), exit code 1, naming the forkserver, its state and the bound;
    the forkserver is gone and nothing is left in TMPDIR (communicate() returns only once
    no process holds the scan's output pipes: a stopped forkserver would)."""
    argv = ["scan", str(ev), "--case", str(case), "--json", "--no-match", "-q"]
    code = f"{setup}\nfrom triage.cli import main\nmain()\n"
    full_env = {**{k: v for k, v in os.environ.items() if k != "TRIAGE_INJECT_FAULT"},
                "TMPDIR": str(scan_tmpdir), "TRIAGE_CHILD_START_SECONDS": str(HANG_BOUND),
                **(env or {})}
    started = time.monotonic()
    # Its own session: a scan that hangs (the bug) is killed with its forkserver.
    with subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=full_env,
                          start_new_session=True) as p:
        try:
            out, err = p.communicate(timeout=HANG_BOUND + 30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            pytest.fail(f"the scan still ran after {HANG_BOUND + 30} s")
    proc = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    assert time.monotonic() - started < HANG_BOUND + 15
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    found = re.search(r"forkserver \(pid (\d+)\) did not start a child process within "
                      rf"{HANG_BOUND} s: it is (\w+)", proc.stderr)
    assert found is not None, proc.stderr
    assert "TRIAGE_CHILD_START_SECONDS" in proc.stderr
    assert not Path(f"/proc/{found.group(1)}").exists()  # killed and reaped
    assert os.listdir(scan_tmpdir) == []
    assert [r["status"] for r in rows(case, "SELECT status FROM runs")] == ["failed"]
    assert not rows(case, "SELECT * FROM errors WHERE error_class != 'Warning'")
    return proc


def _resumes(ev: Path, case: Path, scan_tmpdir: Path) -> None:
    again = run_triage("scan", str(ev), "--case", str(case), "--json", "--no-match", "-q",
                       env={"TMPDIR": str(scan_tmpdir)}, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["by_status"] == {"done": len(FILES)}


def test_a_forkserver_stuck_in_its_preload_imports_stops_the_scan(
        tmp_path: Path, scan_tmpdir: Path) -> None:
    """A module of the preload list never finishes importing (a stuck network mount, a
    library waiting for a device): the first child (the directory walk) cannot start; the
    scan stops, no file recorded, and the same scan completes once the machine is fixed."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "hangs_on_import.py").write_text("import time\nwhile True:\n    time.sleep(60)\n")
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    # PYTHONPATH: the forkserver's interpreter does not get the supervisor's sys.path
    path = os.pathsep.join(p for p in (str(mods), os.environ.get("PYTHONPATH")) if p)
    proc = _hung_scan("from triage import isolation\n"
                      "isolation.PRELOAD = (*isolation.PRELOAD, 'hangs_on_import')",
                      ev, case, scan_tmpdir, env={"PYTHONPATH": path})
    assert "it is asleep" in proc.stderr
    assert not rows(case, "SELECT * FROM files")
    _resumes(ev, case, scan_tmpdir)


def test_a_stopped_forkserver_stops_the_scan_with_its_files_pending(
        tmp_path: Path, scan_tmpdir: Path) -> None:
    """The forkserver is stopped (SIGSTOP) after the walk, when the first worker is
    started: the scan stops, its files stay pending (none charged), and it resumes."""
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    proc = _hung_scan("import os, signal\n"
                      "from multiprocessing import forkserver\n"
                      "from triage import pipeline\n"
                      "spawn = pipeline.WorkerPool._spawn\n"
                      "def stop_then_spawn(self):\n"
                      "    os.kill(forkserver._forkserver._forkserver_pid, signal.SIGSTOP)\n"
                      "    return spawn(self)\n"
                      "pipeline.WorkerPool._spawn = stop_then_spawn",
                      ev, case, scan_tmpdir)
    assert "it is stopped (SIGSTOP)" in proc.stderr
    assert "worker processes cannot start" in proc.stderr
    assert [r["status"] for r in rows(case, "SELECT status FROM files")] == ["pending"] * 3
    _resumes(ev, case, scan_tmpdir)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_a_bad_child_start_bound_is_a_usage_error(value: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from triage import isolation
    from triage.errors import UsageError

    monkeypatch.setenv(isolation.CHILD_START_ENV, value)
    with pytest.raises(UsageError, match=isolation.CHILD_START_ENV):
        isolation.child_start_seconds()
    monkeypatch.setenv(isolation.CHILD_START_ENV, "7.5")
    assert isolation.child_start_seconds() == 7.5
    monkeypatch.delenv(isolation.CHILD_START_ENV)
    assert isolation.child_start_seconds() == isolation.CHILD_START_SECONDS
