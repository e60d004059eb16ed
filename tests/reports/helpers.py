"""Shared helpers for the report tests: a hostile-name corpus case with hits, and the CLI.

The CLI is called in-process with typer's runner on ``triage.cli.app``; ``report``, ``verify``
and ``key`` are registered here when triage/cli.py does not register them yet.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner, Result

from tests.support import rows, run_triage, simulate

#: File names (bytes) that attack spreadsheets, HTML, terminals and readers. Every one is an
#: image that hits a hash set. A "/" inside a name is impossible, so the script tag spans a
#: directory and its file.
HOSTILE = (
    b"=cmd|' /C calc'!A0.png",
    b"+SUM(1,2).png",
    b"-2+3.png",
    b"@SUM(A1).png",
    b"\tTAB.png",
    b"\rCR.png",
    b"<script>alert(1)</script>.png",
    b'"><img src=x onerror=alert(1)>.png',
    b"\xe2\x80\xaegnp.exe",
    b"new\nline.png",
    b"ctrl\x07\x1b[31m.png",
    b"bad\xff\xfeutf8.png",
    b"&amp;&lt;.png",
    b"\xe5\x9b\xbe\xe7\x89\x87.png",  # CJK: outside the PDF font: escaped visibly
    b"del-me.png",
)
DELETED = b"-2+3.png"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def image_bytes(seed: int) -> bytes:
    """A small, benign, textured PNG (random noise blocks: PDQ quality stays high)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((96, 96), Image.Resampling.NEAREST)
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_corpus(root: Path) -> dict[bytes, bytes]:
    """Create the corpus; return {relative path bytes: content}."""
    out: dict[bytes, bytes] = {}
    for i, name in enumerate(HOSTILE):
        rel = name
        data = image_bytes(i)
        path = bytes(root) + b"/" + rel
        parent = path.rsplit(b"/", 1)[0]
        Path(parent.decode("utf-8", "surrogateescape")).mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        out[rel] = data
    return out


def flip(value: str, bits: int) -> str:
    n = int(value, 16)
    for b in range(bits):
        n ^= 1 << (b * 7)
    return f"{n:0{len(value)}x}"


def build_case(tmp: Path) -> dict[str, object]:
    """Scan the corpus, import three hash sets built from it, match. Returns paths."""
    evidence, case, store = tmp / "evidence", tmp / "case", tmp / "store.sqlite"
    corpus = write_corpus(evidence)
    proc = run_triage("scan", str(evidence), "--case", str(case), "--no-match", "-q",
                      "--case-number", "=HYPERLINK(\"x\")", "--examiner", "<b>Ex</b>",
                      "--agency", "Lab & Co")
    assert proc.returncode in (0, 3), proc.stderr
    names = sorted(corpus)
    pdq = {bytes(r["path"]): r["value"] for r in rows(
        case, "SELECT f.path, h.value FROM hashes h JOIN files f ON f.id=h.file_id "
              "WHERE h.algorithm='pdq' AND h.quality >= 50")}
    sets = tmp / "sets"
    sets.mkdir()
    # VICS #Media: exact MD5 hits with DHS categories 1..3, flags and a series.
    media = []
    for i, name in enumerate(names[:10]):
        media.append({"MediaID": 100 + i, "Category": 1 + i % 3,
                      "MD5": hashlib.md5(corpus[name]).hexdigest().upper(),
                      "VictimIdentified": i % 2 == 0, "Series": "=series" if i == 0 else None})
    (sets / "vics.json").write_text(json.dumps({
        "@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/"
                          "$metadata#Media", "value": media}))
    # PDQ list: near hits (3 bits away) for the next files.
    near = [n for n in names[10:13] if n in pdq]
    (sets / "near.pdq").write_text("# pdq\n" + "".join(f"{flip(pdq[n], 3)}\n" for n in near))
    # Known-file set (NSRL-like) for the last files.
    (sets / "known.md5").write_text("".join(
        f"{hashlib.md5(corpus[n]).hexdigest()}  x\n" for n in names[13:]))
    from hashsets.store import HashSetStore

    with HashSetStore(store) as st:
        st.import_file(sets / "vics.json", name="VICS <test> =set")
        st.import_file(sets / "near.pdq", name="near PDQ", format="perceptual",
                       options={"algorithm": "pdq"})
        st.import_file(sets / "known.md5", name="NSRL-like", known=True)
    proc = run_triage("match", str(case), "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    # A directory source has no deleted files: simulate what the image source records for a
    # deleted entry whose blocks were reallocated (RELIABILITY #6), on one hit file.
    # (An audited change: the case still verifies, see tests.support.simulate.)
    simulate(case, "UPDATE files SET deleted=1, allocated=0, notes=? WHERE path=?",
             (json.dumps(["content may be overwritten"]), DELETED), tables=("files",))
    return {"evidence": evidence, "case": case, "store": store, "corpus": corpus,
            "near": near, "summary": json.loads(proc.stdout)}


def copy_case(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _app():  # type: ignore[no-untyped-def]
    """The real command line: ``report``, ``verify`` and ``key`` are added on demand by its
    root group (``triage.cli._LazyCommands``); nothing is registered here, so that the order
    and set of commands other tests see stay the real ones."""
    from triage.cli import app

    return app


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(_app(), list(args), env=env, catch_exceptions=False)


def report(case: Path, fmt: str, out: Path, *extra: str,
           env: dict[str, str] | None = None) -> bytes:
    r = cli("report", str(case), "--format", fmt, "--out", str(out), *extra,
            env=env if env is not None else {"SOURCE_DATE_EPOCH": "1767225600"})
    assert r.exit_code == 0, r.output
    return out.read_bytes()


def chromium() -> str:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        raise AssertionError("headless Chromium is missing: install the Debian package "
                             "'chromium' (apt-get install -y chromium)")
    return exe


def pdftotext(pdf: Path) -> str:
    exe = shutil.which("pdftotext")
    if exe is None:
        raise AssertionError("pdftotext is missing: install the Debian package "
                             "'poppler-utils' (apt-get install -y poppler-utils)")
    return subprocess.run([exe, "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                          check=True, timeout=60).stdout.decode("utf-8")
