"""Start-up stays light (issue 13): importing the command line, and a scan of an empty
folder in the supervisor, load none of the heavy libraries (they belong to the workers, the
hash-set store and the reports). Checked in a fresh interpreter through ``sys.modules``, so
a new top-level import of one of them fails here instead of slowing every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Libraries the supervisor must not load to start, list or scan an empty folder (numpy
#: comes with the hash-set store and the perceptual hashes, sqlite-utils and fpdf with the
#: reports, PIL, pillow_heif and libmagic with the workers' decoding and identification;
#: pydantic with typer's coercion of an option value, cli._DeferredCoercion).
HEAVY = ("numpy", "PIL", "sqlite_utils", "fpdf", "imagehash", "scipy", "pdqhash",
         "pillow_heif", "pydantic",
         # scan --cluster only (issue 19): without it Dask is never imported
         "dask", "distributed", "triage_dask")


def _loaded(code: str, env: dict[str, str] | None = None) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + f"""
import json, sys
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""], capture_output=True, text=True, check=True, timeout=120, env=env)
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_import_cli_loads_no_heavy_library() -> None:
    assert _loaded("import triage.cli") == []


def test_version_loads_no_heavy_library() -> None:
    assert _loaded("""
import sys
from triage.cli import app
try:
    app(["--version"])
except SystemExit:
    pass
""") == []


def _scan_loaded(evidence: Path, case: Path, env: dict[str, str] | None = None
                 ) -> list[str]:
    """The heavy libraries loaded by ``triage scan EVIDENCE --case CASE --no-match`` run
    in a fresh interpreter (which must exit 0)."""
    return _loaded(f"""
import sys
from triage.cli import app
try:
    app(["scan", {str(evidence)!r}, "--case", {str(case)!r}, "--no-match", "-q", "--json"])
except SystemExit as e:
    assert e.code == 0, e.code
""", env=env)


def test_scan_of_empty_folder_loads_no_numpy_sqlite_utils_or_fpdf(tmp_path: Path) -> None:
    """PIL, pillow_heif (libheif) and libmagic are loaded by the supervisor only to record
    their versions."""
    (tmp_path / "empty").mkdir()
    loaded = _scan_loaded(tmp_path / "empty", tmp_path / "case")
    assert [m for m in loaded if m not in ("PIL", "pillow_heif")] == []
    assert (tmp_path / "case" / "case.sqlite").exists()


def test_scan_of_a_file_loads_no_numpy_without_matching(tmp_path: Path,
                                                        scan_tmpdir: Path) -> None:
    """With workers started: finding the block-hash set beside the store needs the store's
    path only, not the store (numpy), issue 13."""
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.txt").write_bytes(b"a few words\n")
    loaded = _scan_loaded(tmp_path / "one", tmp_path / "case",
                          env=dict(os.environ, TMPDIR=str(scan_tmpdir)))  # short socket path
    assert "numpy" not in loaded
    assert (tmp_path / "case" / "case.sqlite").exists()


def test_every_command_is_listed() -> None:
    """The commands defined outside cli.py are added on demand (cli._LazyCommands)."""
    from typer.testing import CliRunner

    from triage.cli import app

    r = CliRunner().invoke(app, ["--help"])
    assert r.exit_code == 0
    listed = [line.split()[0] for line in r.output.split("Commands:")[1].splitlines()
              if line.strip()]
    assert listed == ["scan", "demo", "match", "leads", "verify-image", "report", "verify",
                      "selftest", "hashset", "key"]
    r = CliRunner().invoke(app, ["hashset", "list", "--store", "/nonexistent/x.sqlite",
                                 "--json"])
    assert r.exit_code == 0, r.output


def _outcome(coerce: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        out = coerce(value, param=param, ctx=ctx)
    except Exception as e:  # the same exception, with the same message
        return "raised", (type(e), str(e))
    return "returned", (type(out), out)


def test_deferred_coercion_answers_as_typer(tmp_path: Path) -> None:
    """cli._DeferredCoercion returns what typer's own coercion returns (or raises the same
    error) for every parameter of scan and of the root group, on defaults and on values
    typed on a command line, including bad ones and a path that is not UTF-8."""
    import typer.main
    from typer._coercion import build_runtime_param

    from triage.cli import _DeferredCoercion, app

    unreadable = tmp_path / "unreadable"
    unreadable.mkdir(mode=0)
    root = typer.main.get_command(app)
    ctx = root.make_context("triage", ["scan", "--help"], resilient_parsing=True)
    scan = root.get_command(ctx, "scan")  # type: ignore[attr-defined]
    assert scan is not None
    sub = scan.make_context("scan", ["x", "--case", "y"], parent=ctx, resilient_parsing=True)
    assert any(p.nargs == -1 for p in scan.params)  # several exhibits: a list of paths
    values = [None, "", "0", "1", "-1", "5", "1.5", "abc", "4G", "4 kib", "/tmp", "-",
              "a\udcffb", str(tmp_path / "missing"), str(unreadable), 0, 7, 2.5, True,
              (), ("/tmp",), ("a", "", "a\udcffb", str(tmp_path / "missing")),
              [str(unreadable)], ("/tmp", 3)]
    checked = 0
    for c, params in ((ctx, root.get_params(ctx)), (sub, scan.get_params(sub))):
        for param in params:
            if not hasattr(param, "type_descriptor"):
                continue
            for value in [param.default, *values]:
                if param.multiple and isinstance(value, str):
                    continue
                real = build_runtime_param(param.type_descriptor)
                want = _outcome(real.coerce, value, param, c)
                got = _outcome(_DeferredCoercion(param).coerce, value, param, c)
                assert got == want, (param.name, value)
                checked += 1
    assert checked > 500


def test_scan_process_ends_cleanly(tmp_path: Path, scan_tmpdir: Path) -> None:
    """``triage scan`` ends its process without the interpreter's teardown and stops the
    forkserver (cli._end_scan_process): the summary is complete, the exit code kept, the
    case closed (no WAL left), multiprocessing's temporary folder removed, and no helper
    process is left holding the output pipes (run() returns only at their end)."""
    import os

    (tmp_path / "empty").mkdir()
    env = dict(os.environ, TMPDIR=str(scan_tmpdir))  # short: the forkserver's socket
    case = tmp_path / "case"
    argv = [sys.executable, "-m", "triage", "scan", str(tmp_path / "empty"), "--case",
            str(case), "--no-match", "-q", "--json"]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["entries"] == 0
    assert (case / "case.sqlite").exists() and not (case / "case.sqlite-wal").exists()
    assert os.listdir(scan_tmpdir) == []
    p = subprocess.run([*argv[:4], str(tmp_path / "missing"), *argv[5:]], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 4 and "missing" in p.stderr
    assert os.listdir(scan_tmpdir) == []
