"""The command line: help everywhere, documented in the README, version, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer.main

from tests.support import ROOT, run_triage
from triage import __version__
from triage.cli import app


def _commands() -> dict[str, Any]:
    # Typer vendors its own click: duck-type groups and options.
    root: Any = typer.main.get_command(app)
    out: dict[str, Any] = {}
    for name, cmd in root.commands.items():
        if hasattr(cmd, "commands"):
            for sub, subcmd in cmd.commands.items():
                out[f"{name} {sub}"] = subcmd
        else:
            out[name] = cmd
    return out


def test_every_command_has_help_text() -> None:
    for name, cmd in _commands().items():
        assert (cmd.help or "").strip(), f"triage {name} has no help text"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                assert (param.help or "").strip(), f"triage {name} {param.opts} has no help"


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in _commands():
        group = name.split()[0]
        assert f"triage {name}" in readme or (
            " " in name and re.search(rf"triage {group} [a-z/]*{name.split()[1]}", readme)
        ), f"'triage {name}' is not documented in README.md"


def test_readme_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[1].startswith("bash scripts/test.sh")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci


def test_help_and_version() -> None:
    proc = run_triage("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"triage {__version__}"
    for args in (["-h"], ["scan", "--help"], ["hashset", "-h"]):
        proc = run_triage(*args)
        assert proc.returncode == 0, proc.stderr
        assert "Usage" in proc.stdout
    assert "Exit codes" in run_triage("scan", "-h").stdout


def test_usage_errors_exit_2_and_missing_evidence_exits_4(tmp_path: Path) -> None:
    assert run_triage("scan").returncode == 2
    proc = run_triage("scan", str(tmp_path / "nope"), "--case", str(tmp_path / "c"))
    assert proc.returncode == 4
    assert "nope" in proc.stderr and "no such file" in proc.stderr
    assert not (tmp_path / "c").exists()   # nothing created for evidence that is not there


def test_json_summary_is_machine_readable(tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "a.txt").write_text("a")
    proc = run_triage("scan", str(tmp_path / "ev"), "--case", str(tmp_path / "c"), "--json",
                      "--no-match")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["by_status"] == {"done": 1}
    assert summary["case_database"].endswith("case.sqlite")


def test_carve_bound_options_parse_sizes_and_default_to_the_workers() -> None:
    """``scan --carve-max-bytes`` takes bytes or K/M/G/T (1024-based); both carving bound
    options default to WorkerOptions' bounds (the CLI keeps its own copy: start-up time)."""
    import pytest

    from triage import cli
    from triage.worker import WorkerOptions

    assert [cli.parse_size(v) for v in ("1", "4096", "20K", "512M", "4G", "1T", "2GiB",
                                        "3mb", " 7k ")] == [
        1, 4096, 20 << 10, 512 << 20, 4 << 30, 1 << 40, 2 << 30, 3 << 20, 7 << 10]
    for bad in ("", "0", "-1", "1.5G", "G", "12Q", "٣K"):
        with pytest.raises(typer.BadParameter):
            cli.parse_size(bad)
    assert cli._CARVE_MAX_ITEMS == WorkerOptions().carve_max_items
    assert cli._CARVE_MAX_BYTES == WorkerOptions().carve_max_bytes
    assert cli.parse_size(cli._CARVE_MAX_BYTES_SHOWN) == cli._CARVE_MAX_BYTES
    text = run_triage("scan", "--help", env={"COLUMNS": "80"}).stdout
    assert "--carve-max-items" in text and "--carve-max-bytes SIZE" in text
    assert "[default: 4G]" in text and "[default: 10000;" in text
