"""Zero exposure and offline guarantees, tested rather than promised.

* No output of a scan (case directory, temp files, stdout/stderr) contains image data.
* Any attempt to open an Internet socket inside triage fails, in the supervisor and in the
  worker processes.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.support import run_triage
from triage.offline import NetworkBlockedError

# Byte signatures of picture formats; none may appear in anything a scan writes.
SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"WEBPVP8"]


def _evidence(root: Path) -> list[bytes]:
    import numpy as np

    root.mkdir()
    rng = np.random.default_rng(7)
    blobs = []
    for i, fmt in enumerate(("JPEG", "PNG", "GIF", "WEBP", "BMP")):
        arr = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        path = root / f"pic{i}.{fmt.lower()}"
        Image.fromarray(arr).save(path, fmt)
        blobs.append(path.read_bytes())
        # raw decoded pixels too: they must not leak either
        blobs.append(arr.tobytes())
    return blobs


def test_no_image_bytes_or_pixels_in_any_output(tmp_path: Path, scan_tmpdir: Path) -> None:
    blobs = _evidence(tmp_path / "ev")
    tmp = scan_tmpdir  # private and empty (tests/conftest.py: tmp_path is too long)
    case = tmp_path / "case"
    proc = run_triage("scan", str(tmp_path / "ev"), "--case", str(case), "--no-match",
                      env={"TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stderr
    outputs = [p.read_bytes() for p in case.rglob("*") if p.is_file()]
    outputs += [proc.stdout.encode(), proc.stderr.encode()]
    assert list(tmp.iterdir()) == []           # no temp files left
    for out in outputs:
        for sig in SIGNATURES:
            assert sig not in out
        for blob in blobs:
            # any 48-byte window from several places of the content or of the pixels
            for start in range(0, len(blob) - 48, max(1, len(blob) // 16)):
                assert blob[start:start + 48] not in out
    # also not in compressed form (a zlib stream of the pixels)
    for blob in blobs[1::2]:
        packed = zlib.compress(blob)[2:50]
        assert all(packed not in out for out in outputs)


def test_internet_sockets_are_refused_here() -> None:
    with pytest.raises(NetworkBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(NetworkBlockedError):
        socket.getaddrinfo("example.org", 80)
    a, b = socket.socketpair()   # local AF_UNIX stays allowed (multiprocessing needs it)
    a.close()
    b.close()


def _try_network(q: mp.Queue[str]) -> None:
    import triage  # noqa: F401  (what every worker imports)

    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    except NetworkBlockedError:
        q.put("blocked")
    except OSError as e:
        q.put(f"not blocked: {e}")
    else:
        q.put("connected")


def test_internet_sockets_are_refused_in_worker_processes() -> None:
    ctx = mp.get_context("forkserver")
    q = ctx.Queue()
    p = ctx.Process(target=_try_network, args=(q,))
    p.start()
    p.join(30)
    assert q.get(timeout=5) == "blocked"


def test_text_inside_files_does_not_reach_the_case(tmp_path: Path) -> None:
    """libmagic quotes JPEG comments, EXIF fields and archive member names in its
    description; none of that may be stored."""
    import gzip
    import io

    root = tmp_path / "ev"
    root.mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (5, 6, 7)).save(buf, "JPEG", comment=b"SECRET-COMMENT-42")
    (root / "c.jpg").write_bytes(buf.getvalue())
    with open(root / "n.gz", "wb") as raw, \
            gzip.GzipFile(filename="SECRET-NAME-43.txt", mode="wb", fileobj=raw) as g:
        g.write(b"x")
    case = tmp_path / "case"
    proc = run_triage("scan", str(root), "--case", str(case), "--no-match", "--json")
    assert proc.returncode == 0, proc.stderr
    db = (case / "case.sqlite").read_bytes()
    assert b"SECRET-COMMENT-42" not in db
    assert b"SECRET-COMMENT-42" not in proc.stdout.encode()
    # the gzip member's stored name is data; it is kept only as the inner path of the item
    import sqlite3

    conn = sqlite3.connect(case / "case.sqlite")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(files)")]
    conn.close()
    assert "magic" not in columns  # libmagic's description (quotes file text) is not kept


def test_script_shebang_never_reaches_the_case(tmp_path: Path) -> None:
    """Issue 11, defect 8: a script's libmagic description is its shebang line."""
    root = tmp_path / "ev"
    root.mkdir()
    (root / "run").write_bytes(b"#!/usr/bin/CANARY_SHEBANG_SECRET\necho hello\n")
    case = tmp_path / "case"
    proc = run_triage("scan", str(root), "--case", str(case), "--no-match", "--json")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "r.jsonl"
    assert run_triage("report", str(case), "-f", "jsonl", "--out", str(out)).returncode == 0
    for blob in ((case / "case.sqlite").read_bytes(), out.read_bytes(),
                 proc.stdout.encode()):
        assert b"CANARY_SHEBANG_SECRET" not in blob
