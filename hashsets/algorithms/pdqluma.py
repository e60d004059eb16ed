"""PDQ of a picture and of its rotations and mirror images, bit for bit as
``pdqhash.compute`` gives them, at a fraction of its cost.

Why not ``pdqhash.compute`` for each: its binding (pdqhash 0.2, ``bindings.pyx``) computes
the luma in Python-level numpy, ``(R*0.299 + G*0.587 + B*0.114).astype('float32')``, through
five float64 temporaries the size of the picture, zero-fills a scratch buffer and builds
the 256 bits as a Python list on every call, and takes an RGB picture, so the eight dihedral
variants of a picture cost eight RGB transposes and eight luma conversions: about 4/5 of
the time of hashing a 640x480 picture is outside Meta's C++ code.

Here the luma is computed once per picture with the same float64 operations in the same
order (so the same float32 values), and each variant is a permutation of it: the luma of a
pixel depends on that pixel alone, so the luma of a rotated picture is the rotated luma,
value for value. Each is then hashed by the same C++ function that ``pdqhash.compute``
calls, ``facebook::pdq::hashing::pdqHash256FromFloatLuma``, from the same compiled module
(``pdqhash.bindings``, which exports it), through ctypes. The hash of every variant is
therefore exactly ``pdqhash.compute`` of the transformed picture (tests compare both on
every variant of real and synthetic pictures).

When the module does not export that function (another build of pdqhash), :func:`hasher`
returns None and callers use ``pdqhash.compute`` as before.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: ``void pdqHash256FromFloatLuma(float* fullBuffer1, float* fullBuffer2, int numRows,
#: int numCols, float buffer64x64[64][64], float buffer16x64[16][64],
#: float buffer16x16[16][16], Hash256& hash, int& quality)`` (Meta's pdqhashing.h), as the
#: Itanium C++ ABI names it.
_SYMBOL = ("_ZN8facebook3pdq7hashing23pdqHash256FromFloatLumaEPfS2_iiPA64_fS4_PA16_f"
           "RNS1_7Hash256ERi")

#: numpy's forms of Pillow's ``Image.Transpose`` operations on an array indexed
#: [row, column] (Pillow's y, x): ``transpose`` swaps x and y, ``rot90`` turns
#: counter-clockwise like Pillow's ROTATE_90 (the names are those of
#: :data:`hashsets.algorithms.variants.DIHEDRAL`).
PERMUTATIONS: dict[str, Callable[[Any], Any]] = {
    "original": lambda a: a,
    "rot90": lambda a: a.T[::-1, :],
    "rot180": lambda a: a[::-1, ::-1],
    "rot270": lambda a: a.T[:, ::-1],
    "flipx": lambda a: a[:, ::-1],
    "flipy": lambda a: a[::-1, :],
    "transpose": lambda a: a.T,
    "transverse": lambda a: a[::-1, ::-1].T,
}

Hasher = Callable[["npt.NDArray[np.float32]"], tuple[str, int]]


@cache
def hasher() -> Hasher | None:
    """A function hashing a C-contiguous float32 luma array (which it overwrites: PDQ's
    Jarosz filter works in place) to ``(64 hex digits, quality)``, or None when pdqhash's
    compiled module does not export the C++ function."""
    import numpy as np
    import pdqhash.bindings

    try:
        fn = getattr(ctypes.CDLL(pdqhash.bindings.__file__), _SYMBOL)
    except (OSError, AttributeError):
        return None
    ptr = ctypes.c_void_p
    fn.argtypes = [ptr, ptr, ctypes.c_int, ctypes.c_int, ptr, ptr, ptr, ptr, ptr]
    fn.restype = None

    def run(luma: npt.NDArray[np.float32]) -> tuple[str, int]:
        if luma.dtype != np.float32 or luma.ndim != 2 or not luma.flags.c_contiguous:
            raise ValueError("PDQ luma must be a C-contiguous 2-D float32 array")
        rows, cols = luma.shape
        if not rows or not cols:  # the binding fails on these too (IndexError)
            raise ValueError("PDQ of an empty picture")
        scratch = np.zeros_like(luma)  # as the binding's placeholder (calloc: cheap)
        b64 = np.empty((64, 64), np.float32)
        b16x64 = np.empty((16, 64), np.float32)
        b16 = np.empty((16, 16), np.float32)
        words = np.zeros(16, np.uint16)  # Hash256: unsigned short w[16]
        quality = ctypes.c_int(0)
        fn(luma.ctypes.data, scratch.ctypes.data, rows, cols, b64.ctypes.data,
           b16x64.ctypes.data, b16.ctypes.data, words.ctypes.data, ctypes.byref(quality))
        # pdqhash.compute's bit k (0: least significant) is bit k % 16 of w[k // 16];
        # it returns them most significant first, which this module's callers pack into
        # one 256-bit number: w as little-endian 16-bit words.
        value = int.from_bytes(words.astype("<u2").tobytes(), "little")
        return f"{value:064x}", int(quality.value)

    return run


def luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """PDQ's luma of an RGB uint8 array [rows, columns, 3], as pdqhash's binding computes
    it: ``(R*0.299 + G*0.587 + B*0.114)`` in float64, left to right, then float32."""
    import numpy as np

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("PDQ needs an RGB uint8 array")
    grey = rgb[:, :, 0] * 0.299
    grey += rgb[:, :, 1] * 0.587
    grey += rgb[:, :, 2] * 0.114
    return grey.astype(np.float32)


def pdq_values(rgb: npt.NDArray[np.uint8], variants: tuple[str, ...] = ("original",)
               ) -> dict[str, tuple[str, int]] | None:
    """``{variant: (hex, quality)}``: PDQ of ``rgb`` transformed as each of ``variants``
    (names of :data:`PERMUTATIONS`) says, each exactly ``pdqhash.compute`` of the
    transformed picture; None when :func:`hasher` is not available."""
    import numpy as np

    run = hasher()
    if run is None:
        return None
    base = luma(rgb)
    out: dict[str, tuple[str, int]] = {}
    for name in variants:
        form = PERMUTATIONS[name](base)
        # A copy for every variant: the C++ code overwrites its input.
        out[name] = run(np.array(form, dtype=np.float32, order="C", copy=True))
    return out
