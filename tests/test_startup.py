"""Start-up stays light (issue 13): importing the command line, and a scan of an empty
folder in the supervisor, load none of the heavy libraries (they belong to the workers, the
hash-set store and the reports). Checked in a fresh interpreter through ``sys.modules``, so
a new top-level import of one of them fails here instead of slowing every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Libraries the supervisor must not load to start, list or scan an empty folder (numpy
#: comes with the hash-set store and the perceptual hashes, sqlite-utils and fpdf with the
#: reports, PIL, pillow_heif and libmagic with the workers' decoding and identification).
HEAVY = ("numpy", "PIL", "sqlite_utils", "fpdf", "imagehash", "scipy", "pdqhash",
         "pillow_heif",
         # scan --cluster only (issue 19): without it Dask is never imported
         "dask", "distributed", "triage_dask")


def _loaded(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + f"""
import json, sys
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""], capture_output=True, text=True, check=True, timeout=120)
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


def test_scan_of_empty_folder_loads_no_numpy_sqlite_utils_or_fpdf(tmp_path: Path) -> None:
    """PIL, pillow_heif (libheif) and libmagic are loaded by the supervisor only to record
    their versions."""
    (tmp_path / "empty").mkdir()
    loaded = _loaded(f"""
import sys
from triage.cli import app
try:
    app(["scan", {str(tmp_path / "empty")!r}, "--case", {str(tmp_path / "case")!r},
         "--no-match", "-q", "--json"])
except SystemExit as e:
    assert e.code == 0, e.code
""")
    assert [m for m in loaded if m not in ("PIL", "pillow_heif")] == []
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
