"""The hashset CLI and `triage match`: parse, call, exit codes, help text on every command."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from triage.case import Case
from triage.cli_hashset import app, match_command
from triage.model import FileEntry

from . import fixtures as fx

root = typer.Typer()
root.add_typer(app, name="hashset")
root.command("match")(match_command)
runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    r = runner.invoke(root, list(args))
    return r.exit_code, r.output


def test_every_command_has_help() -> None:
    for cmd in ("import", "list", "show", "remove", "verify"):
        code, out = run("hashset", cmd, "--help")
        assert code == 0 and len(out) > 100, cmd
    code, out = run("match", "--help")
    assert code == 0 and "--pdq-min-quality" in out


def test_import_list_show_verify_remove(tmp_path: Path) -> None:
    store = str(tmp_path / "hs.sqlite")
    code, out = run("hashset", "import", str(fx.MD5DEEP), str(fx.RDS2_ZIP), "--store", store,
                    "--json")
    assert code == 0, out
    res = json.loads(out)
    assert [r["set"]["accepted"] for r in res] == [4, 218]
    code, out = run("hashset", "import", str(fx.MD5DEEP), "--store", store)
    assert code == 0 and "already imported" in out
    code, out = run("hashset", "list", "--store", store, "--json")
    sets = json.loads(out)
    assert [s["format"] for s in sets] == ["md5sum", "nsrl-rds2"] and sets[1]["known"]
    code, out = run("hashset", "show", sets[0]["set_id"][:6], "--store", store, "--json")
    assert json.loads(out)["source_sha256"] == sets[0]["source_sha256"]
    code, out = run("hashset", "verify", "--store", store)
    assert code == 0
    code, out = run("hashset", "remove", sets[0]["set_id"], "--store", store)
    assert code == 0 and "removed" in out
    code, out = run("hashset", "show", sets[0]["set_id"], "--store", store)
    assert code == 6


def test_bad_file_exit_6_and_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\n")
    code, out = run("hashset", "import", str(bad), "--store", str(tmp_path / "s.sqlite"))
    assert code == 6 and "bad.txt" in out and "not recognised" in out


def test_verify_changed_exit_6(tmp_path: Path) -> None:
    p = tmp_path / "l.txt"
    p.write_text(fx.md5(b"a") + "\n")
    store = str(tmp_path / "s.sqlite")
    assert run("hashset", "import", str(p), "--store", store)[0] == 0
    p.write_text(fx.md5(b"b") + "\n")
    code, out = run("hashset", "verify", "--store", store)
    assert code == 6 and "changed" in out


def test_match_command_records_a_run(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    case = Case.open(tmp_path / "case")
    run_id = case.start_run("scan", [], {}, {})
    ev = case.add_evidence(path="e", path_bytes=b"e", source_type="directory", size=None,
                           description={}, run_id=run_id)
    [stored] = case.insert_entries(ev, run_id, [FileEntry(identity="a", path=b"a",
                                                           kind="file")])
    fid = stored.file_id
    case.conn.execute("INSERT INTO hashes(file_id, algorithm, value) VALUES (?, 'md5', ?)",
                      (fid, "4d46e4ef07fd0c7fa82bd5008b06db37"))
    case.close()
    assert run("hashset", "import", str(fx.MD5DEEP), "--store", str(store))[0] == 0
    code, out = run("match", str(tmp_path / "case"), "--store", str(store), "--json")
    assert code == 0, out
    assert json.loads(out)["files_matched"] == 1
    case = Case.open(tmp_path / "case", create=False)
    runs = case.query("SELECT command, status FROM runs ORDER BY id")
    assert [(r["command"], r["status"]) for r in runs][-1] == ("match", "completed")
    assert case.query("SELECT count(*) AS n FROM matches WHERE run_id=2")[0]["n"] == 1
    code, out = run("match", str(tmp_path / "nocase"), "--store", str(store))
    assert code == 5
