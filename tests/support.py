"""Helpers shared by the tests (import as ``from tests.support import ...``)."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"


def run_triage(*args: str, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = dict(os.environ)
    full_env.pop("TRIAGE_INJECT_FAULT", None)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "triage", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, check=False)


def scan_json(evidence: Path, case: Path, *extra: str, env: dict[str, str] | None = None,
              expect: tuple[int, ...] = (0, 3, 8)) -> dict[str, Any]:
    proc = run_triage("scan", str(evidence), "--case", str(case), "--json", "--no-match",
                      "-q", *extra, env=env)
    assert proc.returncode in expect, proc.stderr
    return json.loads(proc.stdout)


def rows(case: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(case / "case.sqlite")
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def simulate(case: Path, sql: str, params: tuple[Any, ...] = (), *,
             tables: tuple[str, ...]) -> None:
    """Change a case's data rows the way an older triage or another source would have left
    them (a test's set-up, not tampering): the change is an audited action that records the
    digest of ``tables`` (the tables ``sql`` changes), so the case still verifies and opens
    (triage.datadigest). It is recorded as ``case.migrate`` (with the SQL in its details):
    the only action that may change any row of any run (datadigest.tables_changed_by)."""
    from triage.case import Case

    with Case.open(case, create=False) as c, \
            c.audited_change("case.migrate", {"simulated": sql}, tables) as conn:
        conn.execute(sql, params)


def file_hashes(case: Path, top_level: bool = True) -> dict[bytes, dict[str, str]]:
    """{path bytes: {algorithm: value}} for every hashed file of a case (by default only
    the files of the evidence itself, not the items found inside them)."""
    out: dict[bytes, dict[str, str]] = {}
    where = "WHERE f.parent_id IS NULL" if top_level else ""
    for r in rows(case, "SELECT f.path, h.algorithm, h.value FROM hashes h "
                        f"JOIN files f ON f.id = h.file_id {where}"):
        out.setdefault(bytes(r["path"]), {})[r["algorithm"]] = r["value"]
    return out


def start_scan(evidence: Path, case: Path, fault: str, *extra: str,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a one-worker scan in the background with a fault injected (to be stopped)."""
    full_env = dict(os.environ, TRIAGE_INJECT_FAULT=fault, **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "triage", "scan", str(evidence), "--case",
                             str(case), "--no-match", "-q", "--jobs", "1", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=full_env)


def wait_dispatched(case: Path, path: bytes, attempts: int = 1,
                    timeout: float = 60) -> None:
    """Wait until the file at ``path`` has been handed to a worker ``attempts`` times."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = rows(case, "SELECT attempts FROM files WHERE path=?", (path,))
        except sqlite3.Error:          # not created yet, or its schema is being written
            r = []
        if r and r[0]["attempts"] >= attempts:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path!r} was not dispatched {attempts} time(s) in {timeout} s")


def compare_scans() -> ModuleType:
    """``scripts/compare_scans.py`` as a module (compares two cases row by row)."""
    spec = importlib.util.spec_from_file_location("compare_scans",
                                                  ROOT / "scripts" / "compare_scans.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare_scans"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
