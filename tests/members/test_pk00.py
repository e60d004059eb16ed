"""Issue 14 #7: a zip that starts with the old PKZIP/WinZip spanning marker ``PK00`` is
expanded as a zip (``unzip`` and Python read it), and an archive recognised but not
expanded always says why (a split-archive segment, ``--no-containers``).

Member bytes are checked against ``unzip -p`` and their SHA-256 against ``sha256sum``."""

from __future__ import annotations

import hashlib
import io
import shutil
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.members import builders as b
from tests.support import run_triage
from triage.members import Found, Limits, Problem, container_kind, walk

MEMBERS = [("photo.jpg", b.jpeg(3)), ("notes/readme.txt", b"hello from inside\n")]


def _pk00_prepended() -> bytes:
    """The marker put before an ordinary zip: offsets do not count it (unzip warns about
    4 extra bytes and reads it)."""
    return b"PK00" + b.zip_bytes(MEMBERS)


def _pk00_written() -> bytes:
    """The marker written first, offsets counting it, as PKZIP wrote such archives."""
    buf = io.BytesIO()
    buf.write(b"PK00")
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf:
        for name, data in MEMBERS:
            zf.writestr(name, data)
    return buf.getvalue()


def _unzip(path: Path, member: str) -> bytes:
    if shutil.which("unzip") is None:
        pytest.skip("unzip not installed")
    return subprocess.run(["unzip", "-p", str(path), member], capture_output=True,
                          check=False).stdout


def _sha256sum(data: bytes) -> str:
    return subprocess.run(["sha256sum"], input=data, capture_output=True,
                          check=True).stdout.split()[0].decode()


@pytest.mark.parametrize("build", [_pk00_prepended, _pk00_written])
def test_pk00_zip_is_recognised_and_expanded(tmp_path: Path, build: object) -> None:
    data = build()  # type: ignore[operator]
    assert data.startswith(b"PK00PK\x03\x04")
    assert container_kind(data[:65536]) == "zip"
    path = tmp_path / "old.zip"
    path.write_bytes(data)
    found = {ev.path[-1].decode(): ev.member.data for ev in walk(data, Limits(), carve=False)
             if isinstance(ev, Found)}
    assert not [ev for ev in walk(data, Limits(), carve=False) if isinstance(ev, Problem)]
    for name, content in MEMBERS:
        assert found[name] == content == _unzip(path, name)


def test_pk00_text_is_not_a_zip() -> None:
    assert container_kind(b"PK00 is how this note starts\n") is None


def test_split_zip_segment_says_why_it_is_not_expanded() -> None:
    whole = b.zip_bytes(MEMBERS, deflate=False)
    cd = whole.rfind(b"PK\x01\x02", 0, whole.rfind(b"PK\x05\x06"))
    first_cd = whole.find(b"PK\x01\x02")
    segment = b"PK\x07\x08" + whole[:min(cd, first_cd)]  # local entries, no directory
    assert container_kind(segment) == "zip"
    problems = [ev for ev in walk(segment, Limits(), carve=False) if isinstance(ev, Problem)]
    assert len(problems) == 1
    assert "one segment of a split (spanned) zip" in problems[0].reason
    assert problems[0].status == "incomplete"


def test_scan_expands_pk00_zip_and_no_containers_says_why(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "old.zip").write_bytes(_pk00_written())
    case = tmp_path / "case"
    r = run_triage("scan", str(ev), "--case", str(case), "--no-match", "-q", "--json",
                   "--jobs", "1")
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(case / "case.sqlite")
    inner = dict(conn.execute(
        "SELECT f.display_path, h.value FROM files f JOIN hashes h ON h.file_id = f.id "
        "WHERE h.algorithm = 'sha256' AND f.parent_id IS NOT NULL").fetchall())
    conn.close()
    for name, content in MEMBERS:
        got = inner[f"old.zip!{name}"]
        assert got == _sha256sum(_unzip(ev / "old.zip", name)) == \
            hashlib.sha256(content).hexdigest()
    case2 = tmp_path / "case2"
    r = run_triage("scan", str(ev), "--case", str(case2), "--no-match", "-q", "--json",
                   "--jobs", "1", "--no-containers")
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(case2 / "case.sqlite")
    rows = conn.execute("SELECT f.display_path, f.status, e.error_class, e.message FROM "
                        "files f JOIN errors e ON e.file_id = f.id").fetchall()
    conn.close()
    assert rows == [("old.zip", "done", "ContainerNotExpanded",
                     "zip container: not expanded: looking inside files is off "
                     "(--no-containers)")]
