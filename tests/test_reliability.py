"""RELIABILITY.md catalogue items not covered elsewhere: image modes, broken EXIF, hostile
input to libmagic, truncated videos, disk full while writing the case."""

from __future__ import annotations

import io
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import rows, scan_json


def _save(img: Image.Image, path: Path, fmt: str, **kw: object) -> None:
    img.save(path, fmt, **kw)


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One picture per mode that breaks naive perceptual hashing (RELIABILITY #16)."""
    root = tmp_path_factory.mktemp("modes")
    rng = np.random.default_rng(11)
    base = Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    _save(Image.fromarray((rng.integers(0, 65535, (96, 128))).astype(np.uint16)),
          root / "gray16.png", "PNG")
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 255, (96, 128), dtype=np.uint8)))
    _save(rgba, root / "rgba.png", "PNG")
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE)
    pal.info["transparency"] = 0
    _save(pal, root / "palette_transparent.png", "PNG", transparency=0)
    _save(base.convert("CMYK"), root / "cmyk.jpg", "JPEG")
    _save(base.convert("1"), root / "bilevel.png", "PNG")
    frames = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
              for _ in range(300)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:],
                   duration=20)
    _save(Image.new("RGB", (1, 1), (9, 9, 9)), root / "one_pixel.png", "PNG")
    # A JPEG whose EXIF block is garbage: hashing must still proceed.
    buf = io.BytesIO()
    base.save(buf, "JPEG", exif=b"Exif\x00\x00MM\x00*\xff\xff\xff\xff" + b"\x00" * 20)
    (root / "broken_exif.jpg").write_bytes(buf.getvalue())
    return root


def test_every_awkward_mode_gets_perceptual_hashes(modes: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(modes, case, expect=(0,))
    got = {r["display_path"]: r for r in rows(
        case, "SELECT f.display_path, f.status, i.mode, i.frames, i.preprocessing, "
              "(SELECT count(*) FROM hashes h WHERE h.file_id=f.id) AS n "
              "FROM files f LEFT JOIN images i ON i.file_id=f.id")}
    expect_modes = {"gray16.png": "I;16", "rgba.png": "RGBA", "palette_transparent.png": "P",
                    "cmyk.jpg": "CMYK", "bilevel.png": "1", "animated.gif": "P",
                    "one_pixel.png": "RGB", "broken_exif.jpg": "RGB"}
    for name, mode in expect_modes.items():
        r = got[name]
        assert r["status"] == "done", name
        assert r["n"] == 6, name                      # 3 digests + pHash, dHash, PDQ
        assert r["mode"].startswith(mode[:3]), (name, r["mode"])
        assert "first frame" in r["preprocessing"]
    assert got["animated.gif"]["frames"] == 300


def test_libmagic_on_pathological_input_is_bounded(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    root.mkdir()
    # Text-like data is libmagic's slow path; deeply nested brackets and long lines too.
    (root / "brackets.txt").write_bytes(b"{[(" * 400_000)
    (root / "longline.txt").write_bytes(b"a" * 3_000_000)
    (root / "mixed.bin").write_bytes(bytes(range(256)) * 8000)
    case = tmp_path / "case"
    summary = scan_json(root, case, "--timeout", "30", expect=(0,))
    assert summary["by_status"] == {"done": 3}


def test_truncated_and_broken_videos_get_a_final_status(testdata: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(testdata / "video" / "matroska", case)
    for r in rows(case, "SELECT * FROM files WHERE kind='file'"):
        # Hashed in full; videos are decoded (issue 15): a broken one is an error at stage
        # decode with the reason, its digests kept.
        assert r["status"] in ("done", "error"), dict(r)
        assert r["status"] == "done" or (r["status_stage"] == "decode" and r["status_reason"])
        assert r["read_status"] == "full"


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)    # get EFBIG instead of being killed


def test_disk_full_while_writing_the_case_is_a_clear_error(tmp_path: Path) -> None:
    """The case file may not grow past 256 KiB, as on a full disk (RELIABILITY #23)."""
    root = tmp_path / "ev"
    root.mkdir()
    for i in range(3000):
        (root / f"file-{i:05d}-with-a-long-name-to-fill-pages.txt").write_text(str(i))
    case = tmp_path / "case"
    proc = subprocess.run([sys.executable, "-m", "triage", "scan", str(root), "--case",
                           str(case), "--no-match", "-q"], capture_output=True, text=True,
                          preexec_fn=_limit_file_size, timeout=300, check=False)
    assert proc.returncode == 5, (proc.returncode, proc.stderr[-2000:])
    assert "case.sqlite" in proc.stderr
    assert "Traceback" not in proc.stderr
    # What was committed is intact and readable.
    ok = subprocess.run(["sqlite3", str(case / "case.sqlite"), "PRAGMA integrity_check"],
                        capture_output=True, text=True, check=False)
    if ok.returncode == 0:                            # sqlite3 CLI present
        assert ok.stdout.strip() == "ok"
    assert os.path.getsize(case / "case.sqlite") <= 256 * 1024


def test_sparse_file_over_4_gib(tmp_path: Path) -> None:
    """RELIABILITY #8: a file larger than 4 GiB (sparse: no disk space used) is hashed in
    full; its digest equals md5sum's and its size is exact."""
    root = tmp_path / "ev"
    root.mkdir()
    big = root / "big.img"
    size = (4 << 30) + 4097
    with open(big, "wb") as f:
        f.truncate(size)
        f.seek(size - 5)
        f.write(b"tail!")
    case = tmp_path / "case"
    scan_json(root, case, "--timeout", "600", expect=(0,))
    r = rows(case, "SELECT f.size, f.status, h.value FROM files f JOIN hashes h "
                   "ON h.file_id=f.id AND h.algorithm='md5'")[0]
    assert r["status"] == "done" and r["size"] == size
    md5 = subprocess.run(["md5sum", str(big)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert r["value"] == md5
