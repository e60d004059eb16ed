"""hashsets.algorithms.pdqluma: PDQ of every dihedral variant from one luma computation,
checked value for value (and quality for quality) against ``pdqhash.compute`` of the
transformed RGB picture, the definition it replaces (issue 13: the variants' cost)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from hashsets.algorithms import pdqluma
from hashsets.algorithms.variants import DIHEDRAL, pdq_dihedral, transform
from tests.support import TESTDATA


def _compute(rgb: Image.Image) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.asarray(rgb))
    return f"{int(''.join('1' if b else '0' for b in bits), 2):064x}", int(quality)


def _pictures() -> list[Path]:
    media = TESTDATA / "media"
    found = sorted(p for p in media.rglob("*")
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif"))
    return found[::max(1, len(found) // 40)]  # about 40, from every folder


def test_the_ctypes_hasher_is_available_with_the_pinned_pdqhash() -> None:
    """The fast path is what a scan uses with the bundled pdqhash; if a pdqhash build ever
    stops exporting the C++ function this fails (the fallback still gives the same values,
    see below), so that the loss of speed is seen."""
    assert pdqluma.hasher() is not None


def test_permutations_are_pillows_transpositions() -> None:
    a = np.arange(5 * 7, dtype=np.uint8).reshape(5, 7)
    im = Image.fromarray(a)
    for name in DIHEDRAL:
        assert np.array_equal(pdqluma.PERMUTATIONS[name](a),
                              np.asarray(transform(im, name))), name


def test_luma_is_the_bindings_float32_luma() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, size=(31, 17, 3), dtype=np.uint8)
    binding = (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587
               + rgb[:, :, 2] * 0.114).astype("float32")
    assert np.array_equal(pdqluma.luma(rgb), binding)
    assert pdqluma.luma(rgb).dtype == np.float32


@pytest.mark.parametrize("path", _pictures(), ids=lambda p: p.name)
def test_every_variant_equals_pdqhash_of_the_transformed_picture(path: Path) -> None:
    try:
        with Image.open(path) as im:
            im.draft("RGB", (360, 360))
            rgb = im.convert("RGB")
    except Exception:  # damaged or hostile samples (bombs, odd modes): not this test's
        pytest.skip("not decodable by Pillow here")
    got = pdqluma.pdq_values(np.asarray(rgb), DIHEDRAL)
    assert got is not None
    for name in DIHEDRAL:
        assert got[name] == _compute(transform(rgb, name)), name


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 3), (63, 65), (64, 64),
                                   (127, 129), (300, 7)])
def test_odd_sizes_and_noise(shape: tuple[int, int]) -> None:
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, size=(*shape, 3),
                                                    dtype=np.uint8)
    im = Image.fromarray(rgb)
    got = pdqluma.pdq_values(rgb, DIHEDRAL)
    assert got is not None
    for name in DIHEDRAL:
        assert got[name] == _compute(transform(im, name)), (shape, name)


def test_without_the_fast_path_pdq_dihedral_gives_the_same(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    with Image.open(TESTDATA / "media" / "pdq" / "sample-b.jpg") as im:
        im.load()
        fast = pdq_dihedral(im)
        monkeypatch.setattr(pdqluma, "hasher", lambda: None)
        assert pdqluma.pdq_values(np.asarray(im.convert("RGB"))) is None
        assert pdq_dihedral(im) == fast


def test_the_hasher_refuses_what_the_cpp_code_cannot_read() -> None:
    run = pdqluma.hasher()
    assert run is not None
    with pytest.raises(ValueError):
        run(np.zeros((8, 8), np.float64))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run(np.zeros((8, 8), np.float32).T[:, ::2])
    with pytest.raises(ValueError):
        pdqluma.luma(np.zeros((4, 4, 4), np.uint8))
    for empty in ((0, 5), (5, 0), (0, 0)):
        with pytest.raises(ValueError):
            run(np.zeros(empty, np.float32))
