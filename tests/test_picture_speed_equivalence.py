"""Issue 13's faster picture steps compute exactly what the plain ones did.

* :func:`triage.picturecheck._scan_end` (vectorised) against the per-0xFF loop it replaced,
  kept here as the reference, on real JPEGs of the shared evidence and on random byte
  strings dense in 0xFF, restart codes and stuffed zeros (every window boundary too);
* :func:`hashsets.algorithms.compute_all` (one conversion per input mode) against each
  algorithm's own ``compute`` on the original image, for pictures of many Pillow modes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hashsets.algorithms import compute_all, example_picture, picture_algorithms
from triage import picturecheck
from triage.picturecheck import _scan_end

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "media"
_RST = frozenset(range(0xD0, 0xD8))


def _reference_scan_end(data: bytes, pos: int) -> tuple[int | None, int]:
    """The loop of picturecheck before issue 13: one ``bytes.find`` per 0xFF."""
    n = len(data)
    restarts = 0
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= n:
            return None, restarts
        nxt = data[pos + 1]
        if nxt == 0x00:
            pos += 2
        elif nxt in _RST:
            restarts += 1
            pos += 2
        elif nxt == 0xFF:
            pos += 1
        else:
            return pos, restarts


_BYTE = st.sampled_from([0x00, 0xFF, 0xD0, 0xD7, 0xD8, 0xD9, 0xDA, 0xC4, 0x12, 0xCF])


@settings(max_examples=300, deadline=None)
@given(st.lists(_BYTE, max_size=60), st.integers(0, 70), st.integers(1, 9))
def test_scan_end_equals_reference(raw: list[int], pos: int, window: int) -> None:
    data = bytes(raw)
    old = picturecheck.SCAN_WINDOW
    picturecheck.SCAN_WINDOW = window  # window boundaries everywhere
    try:
        assert _scan_end(data, pos) == _reference_scan_end(data, pos)
    finally:
        picturecheck.SCAN_WINDOW = old


def test_scan_end_equals_reference_on_real_jpegs() -> None:
    files = sorted(p for p in TESTDATA.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not files:
        pytest.skip("shared testdata not present")
    checked = 0
    for path in files[:80]:
        data = path.read_bytes()
        starts = [i + 2 for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
        for pos in [*starts[:12], 0, len(data) // 2, max(0, len(data) - 2)]:
            assert _scan_end(data, pos) == _reference_scan_end(data, pos), (path, pos)
            checked += 1
    assert checked > 100


def _pictures() -> list[Image.Image]:
    base = example_picture("gradient-rgb")
    out = [base, example_picture("linear-gradient"), base.convert("RGBA"), base.convert("P"),
           base.convert("CMYK"), base.convert("1"), base.convert("I"), base.convert("F"),
           base.convert("LA"), base.convert("YCbCr")]
    rgba = base.convert("RGBA")
    rgba.putalpha(example_picture("radial-gradient").convert("L"))
    out.append(rgba)
    return out


@pytest.mark.parametrize("index", range(11))
def test_compute_all_equals_each_compute(index: int) -> None:
    image = _pictures()[index]
    algorithms = picture_algorithms()
    assert {a.name for a in algorithms} >= {"phash", "dhash", "pdq"}
    got = [(a.name, v, q) for a, v, q in compute_all(image, algorithms)]
    want = [(a.name, *a.compute(image)) for a in algorithms]
    assert got == want


def test_compute_all_on_real_pictures() -> None:
    files = sorted(p for p in TESTDATA.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    if not files:
        pytest.skip("shared testdata not present")
    algorithms = picture_algorithms()
    for path in files[:25]:
        with Image.open(path) as im:
            im.draft("RGB", (360, 360))
            im.load()
            got = [(a.name, v, q) for a, v, q in compute_all(im, algorithms)]
            assert got == [(a.name, *a.compute(im)) for a in algorithms], path
