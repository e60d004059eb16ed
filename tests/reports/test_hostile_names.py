"""Hostile names exported in every format: escaped and readable, never executable."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reports.helpers import FORMULA_START, HOSTILE, image_bytes, pdftotext, report
from tests.reports.test_html_pdf import ALLOWED_ATTRS, ALLOWED_TAGS, parse
from triage.util import display_bytes


def _csv(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


@pytest.mark.parametrize("rows", ["files", "hits"])
def test_csv_neutralises_every_formula(hostile: dict[str, Any], tmp_path: Path,
                                       rows: str) -> None:
    data = report(hostile["case"], "csv", tmp_path / "r.csv", "--rows", rows)
    records = _csv(data)
    assert records
    for rec in records:
        for col, cell in rec.items():
            assert not cell.startswith(FORMULA_START), (col, cell)
    # Every cell is quoted (QUOTE_ALL): no bare field anywhere.
    for line in data.decode("utf-8")[1:].splitlines():
        assert line.startswith('"') and line.endswith('"'), line
    by_hex = {r["path_bytes_hex"]: r for r in records}
    for name in HOSTILE:
        if name not in hostile["corpus"] or (rows == "hits" and name.hex() not in by_hex):
            continue
        r = by_hex[name.hex()]  # the exact bytes, kept as hex
        shown = display_bytes(name)
        if shown.startswith(FORMULA_START):
            assert r["path"] == "'" + shown
        else:
            assert r["path"] == shown
    if rows == "hits":
        assert len(records) == 15
        # The set name starts with a letter; the VICS series "=series" is neutralised.
        assert any(r["series"] == "'=series" for r in records)
    else:
        first = next(r for r in records if r["path_bytes_hex"] == b"=cmd|' /C calc'!A0.png".hex())
        assert first["path"] == "'=cmd|' /C calc'\\x21A0.png"  # "!" escaped: issue 11


def test_html_has_no_live_markup_from_names(hostile: dict[str, Any], tmp_path: Path) -> None:
    html = report(hostile["case"], "html", tmp_path / "r.html").decode("utf-8")
    a = parse(html)
    assert a.tags <= ALLOWED_TAGS and a.attrs <= ALLOWED_ATTRS
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.png" in html
    assert "&amp;amp;&amp;lt;.png" in html  # an entity in a name stays literal text
    assert "\u202e" not in html and "\\u202egnp.exe" in html  # RTL override shown escaped
    assert "new\\x0aline.png" in html and "ctrl\\x07\\x1b[31m.png" in html
    assert "bad\\xff\\xfeutf8.png" in html
    assert "&lt;b&gt;Ex&lt;/b&gt;" in html  # examiner name from the case metadata
    for ch in "\x07\x1b\r\t":
        assert ch not in html


def test_jsonl_parses_and_keeps_exact_paths(hostile: dict[str, Any], tmp_path: Path) -> None:
    data = report(hostile["case"], "jsonl", tmp_path / "r.jsonl")
    lines = [json.loads(x) for x in data.decode("ascii").splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["case"]["examiner"] == "<b>Ex</b>"
    files = [x for x in lines if x["type"] == "file"]
    paths = {bytes.fromhex(f["path_hex"]) for f in files}
    assert set(hostile["corpus"]) <= paths
    hits = sum(len(f["hits"]) for f in files)
    assert hits == 15
    deleted = [f for f in files if f["deleted"]]
    assert len(deleted) == 1 and "content may be overwritten" in deleted[0]["caution"]


def test_pdf_and_vics_show_names_escaped(hostile: dict[str, Any], tmp_path: Path) -> None:
    report(hostile["case"], "pdf", tmp_path / "r.pdf")
    text = pdftotext(tmp_path / "r.pdf")
    assert "\\u202egnp.exe" in text and "\u202e" not in text
    assert "<script>alert(1)</script>.png" in text  # plain text in a PDF: inert
    vics = json.loads(report(hostile["case"], "vics", tmp_path / "v.json"))
    paths = [mf["FilePath"] for m in vics["value"][0]["Media"] for mf in m["MediaFiles"]]
    assert "new\\x0aline.png" in paths or "bad\\xff\\xfeutf8.png" in paths
    assert all("\n" not in p and "\u202e" not in p for p in paths)


# ------------------------------------------------- terminal (issue 11, defect 2)

#: Names that attack a terminal or rich console markup. Each is a broken JPEG, so the scan
#: lists it among the files that could not be processed (the table printed at the end).
TERMINAL_NAMES = (
    b"[link=https:evil.example]click.jpg",
    b"[bold red on white]styled.jpg",
    b"[/]close.jpg",                                                # a "[" folder
    b"\x1b]0;pwned\x07title.jpg",                                  # OSC 0: window title
    b"\x1b]8;;https://evil.example\x1b\\osc8\x1b]8;;\x1b\\.jpg",   # OSC 8 hyperlink
    b"\x1b[2Jclear.jpg",
    b"c1-\xc2\x9b2J.jpg",                                          # U+009B: one-byte CSI
    b"raw-\x9b\xff.jpg",                                           # invalid UTF-8
    "bidi-\u202egpj.exe".encode(),
    b":smile: emoji.jpg",
    b"bang!x.jpg",
)
#: A VICS Category and a set name that reach the match summary, CSV and HTML.
HOSTILE_CATEGORY = "\x1b]0;pwned\x07\x1b[2J[link=https:evil.example]cat[/link]"
HOSTILE_SET = "[link=https:evil.example]set\x1b]8;;https://evil.example\x1b\\\x1b[2J"
#: What a terminal acts on. Rich's own output has only CSI sequences for styles and
#: cursor moves (SGR m, K, A, ?25l/h); anything else came from the data.
RICH_CSI = re.compile(rb"\x1b\[[0-9;?]*[mKAGhlB]")
RAW_FORBIDDEN = (b"\x1b]", b"\x1b[2J", b"\x07", b"\xc2\x9b", b"\x9b", b"\xe2\x80\xae",
                 b"\xff", b"Traceback", "\U0001f604".encode())


def run_pty(*args: str, timeout: float = 300) -> tuple[int, bytes]:
    """Run the real CLI on a pseudo-terminal (TERM=xterm, 200 columns): what an examiner's
    terminal would receive, progress bar and colours included."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TRIAGE_INJECT_FAULT")}
    env.update(TERM="xterm", COLUMNS="200", LINES="50")
    proc = subprocess.Popen([sys.executable, "-m", "triage", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return rc, bytes(out)


def assert_terminal_safe(out: bytes, what: str) -> None:
    for needle in RAW_FORBIDDEN:
        assert needle not in out, (what, needle, out[-3000:])
    rest = RICH_CSI.sub(b"", out)
    assert b"\x1b" not in rest, (what, rest[rest.index(b"\x1b") - 40:][:120])


def _cut_jpeg() -> bytes:
    """The first half of a JPEG: an error at decoding ("Truncated File Read")."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buf, "JPEG")
    return buf.getvalue()[:len(buf.getvalue()) // 2]


@pytest.fixture(scope="module")
def terminal_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Evidence under a folder named ``[/x]`` (``[`` holding ``x]``), with the hostile
    names as broken JPEGs, one good picture per name that hits a hostile VICS set, and a zip
    whose corrupt member is ``[/nonexistent].jpg``; scanned through a pseudo-terminal."""
    import zipfile

    tmp = tmp_path_factory.mktemp("terminal")
    evidence = tmp / "[" / "x]"
    evidence.mkdir(parents=True)
    good = {}
    for i, name in enumerate(TERMINAL_NAMES):
        broken = bytes(evidence) + b"/" + name
        os.makedirs(os.path.dirname(broken), exist_ok=True)
        with open(broken, "wb") as f:
            f.write(_cut_jpeg())
        data = image_bytes(100 + i)
        ok = bytes(evidence) + b"/ok-" + name.replace(b".jpg", b".png")
        os.makedirs(os.path.dirname(ok), exist_ok=True)
        with open(ok, "wb") as f:
            f.write(data)
        good[name] = data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("[/nonexistent].jpg", _cut_jpeg())
    (evidence / "m.zip").write_bytes(buf.getvalue())
    case = tmp / "case"
    rc, out = run_pty("scan", str(evidence), "--case", str(case), "--no-match")
    return {"tmp": tmp, "evidence": evidence, "case": case, "rc": rc, "out": out,
            "good": good}


def test_scan_output_is_inert_on_a_terminal(terminal_case: dict[str, Any]) -> None:
    """The warning naming the ``[/x]`` folder, the progress bar and the summary's problem
    table: nothing aborts (MarkupError), nothing becomes a link, a style, a title or a
    screen clear; every name is shown escaped and literal."""
    rc, out = terminal_case["rc"], terminal_case["out"]
    assert rc == 3, out[-3000:]                    # broken files: finished with errors
    assert_terminal_safe(out, "scan")
    plain = RICH_CSI.sub(b"", out).decode("utf-8").replace("\r\n", "\n")
    assert "[/x]" in plain                          # the evidence folder, in the warning
    for shown in ("[link=https:evil.example]click.jpg", "[bold red on white]styled.jpg",
                  "[/]close.jpg", "\\x1b]0;pwned\\x07title.jpg", "\\x1b[2Jclear.jpg",
                  "c1-\\x9b2J.jpg", "raw-\\x9b\\xff.jpg", "bidi-\\u202egpj.exe",
                  ":smile: emoji.jpg", "bang\\x21x.jpg", "m.zip![/nonexistent].jpg"):
        assert shown in plain, shown


def test_hash_set_match_and_report_commands_are_inert_on_a_terminal(
        terminal_case: dict[str, Any]) -> None:
    """A hash set named with markup and escapes, from a file named with escapes, with a
    VICS Category holding ESC]0 and ESC[2J: import, list, show, match, every report format
    and verify print nothing a terminal acts on; the CSV and HTML hold no raw ESC; the
    JSONL keeps the exact category, JSON-escaped."""
    tmp, case = terminal_case["tmp"], terminal_case["case"]
    good = terminal_case["good"]
    media = [{"MediaID": i, "Category": HOSTILE_CATEGORY,
              "MD5": hashlib.md5(data).hexdigest()} for i, data in enumerate(good.values())]
    sets = tmp / "sets"
    sets.mkdir()
    vics = Path(os.fsdecode(bytes(sets) + b"/vics\x1b]0;pwned\x07.json"))
    vics.write_text(json.dumps({"@odata.context": "http://github.com/VICSDATAMODEL/"
                                "ProjectVic/DataModels/2.0.xml/US/$metadata#Media",
                                "value": media}))
    bad = Path(os.fsdecode(bytes(sets) + b"/[/x]bad\x1b[2J.json"))
    bad.parent.mkdir()
    bad.write_text('{"value": [')
    store = str(tmp / "store.sqlite")
    runs = {
        "import": run_pty("hashset", "import", str(vics), "--name", HOSTILE_SET,
                          "--store", store),
        "import bad": run_pty("hashset", "import", str(bad), "--store", store),
        "list": run_pty("hashset", "list", "--store", store),
        "show": run_pty("hashset", "show", HOSTILE_SET, "--store", store),
        "match": run_pty("match", str(case), "--store", store),
        "missing evidence": run_pty("scan", str(tmp / "[" / "y]-missing"), "--case",
                                    str(tmp / "case2")),
    }
    for fmt in ("html", "csv", "jsonl", "pdf", "vics"):
        runs[f"report {fmt}"] = run_pty("report", str(case), "--format", fmt, "--out",
                                        str(tmp / f"r.{fmt}"))
    runs["verify"] = run_pty("verify", str(case))
    expected_rc = {"import bad": 6, "missing evidence": 4}
    for what, (rc, out) in runs.items():
        assert rc == expected_rc.get(what, 0), (what, rc, out[-2000:])
        assert_terminal_safe(out, what)
    plain = {k: RICH_CSI.sub(b"", v[1]).decode("utf-8") for k, v in runs.items()}
    assert "[link=https:evil.example]set\\x1b]8;;" in plain["list"]
    assert "vics\\x1b]0;pwned\\x07.json" in plain["show"]
    assert "[/x]bad\\x1b[2J.json" in plain["import bad"]
    assert "unmapped:\\x1b]0;pwned\\x07\\x1b[2J[link=https:evil.example]cat[/link]" \
        in plain["match"]
    assert "[/y]-missing" in plain["missing evidence"]
    for fmt in ("html", "csv", "vics", "jsonl"):
        data = (tmp / f"r.{fmt}").read_bytes()
        assert b"\x1b" not in data and b"\x07" not in data and b"\xc2\x9b" not in data, fmt
    html = (tmp / "r.html").read_text("utf-8")
    assert "\\x1b]0;pwned\\x07\\x1b[2J[link=https:evil.example]cat[/link]" in html
    csv_text = (tmp / "r.csv").read_text("utf-8-sig")
    assert "\\x1b]0;pwned\\x07" in csv_text
    lines = [json.loads(x) for x in (tmp / "r.jsonl").read_text("ascii").splitlines()]
    raws = {h["category_raw"] for x in lines if x["type"] == "file" for h in x["hits"]}
    assert raws == {HOSTILE_CATEGORY}                 # exact data, JSON-escaped
    text = pdftotext(tmp / "r.pdf")
    assert "\x1b" not in text and "\\x1b]0;pwned" in text


def test_volume_label_and_names_on_a_disk_image_are_inert(tmp_path: Path) -> None:
    """An ext4 image labelled ``[/x]`` + ESC[2J, holding ``[link=...]`` and OSC names,
    scanned through the file system on a terminal: exit 0, nothing a terminal acts on."""
    import shutil

    if shutil.which("mkfs.ext4") is None:
        pytest.fail("mkfs.ext4 not found: apt-get install e2fsprogs")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "[link=https:evil.example]x.png").write_bytes(image_bytes(7))
    (tree / "\x1b]0;pwned\x07.png").write_bytes(image_bytes(8))
    img = tmp_path / "label.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "1024", "-L", "[/x]\x1b[2J", "-E",
                    "root_owner=0:0", "-d", str(tree), str(img), "2048"], check=True,
                   capture_output=True, env=dict(os.environ, E2FSPROGS_FAKE_TIME="1"))
    rc, out = run_pty("scan", str(img), "--case", str(tmp_path / "case"), "--no-match")
    assert rc == 0, out[-3000:]
    assert_terminal_safe(out, "image scan")
    from tests.support import rows

    got = {r["display_path"] for r in rows(tmp_path / "case", "SELECT display_path FROM files")}
    assert any(p.endswith("[link=https:evil.example]x.png") for p in got), got
    assert any(p.endswith("\\x1b]0;pwned\\x07.png") for p in got), got
