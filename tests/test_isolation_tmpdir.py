"""The isolated children's forkserver and the environment (triage.isolation): a TMPDIR too
long for its Unix socket, and a forkserver that cannot start, are the machine's problems.
The scan works (the socket goes to a short private folder) or stops at once with exit code
1 and the reason; it never waits per file and never records an error against a file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
