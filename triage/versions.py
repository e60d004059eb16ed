"""Tool and library versions recorded with every run (reproducibility, DESIGN.md)."""

from __future__ import annotations

import platform
import sqlite3
import ssl
import sys
import threading
import zlib
from functools import cache
from importlib import metadata
from typing import Any

from hashsets.algorithms import ALGORITHMS

from . import __version__

#: Libraries that decide results besides the algorithms' own (those come from the registry):
#: decoding and identification, disk images, what is found inside containers (olefile,
#: py7zr, pikepdf), hash-set parsing, reports and their signatures; pillow-heif decodes
#: HEIC/HEIF (its libheif and HEVC decoder: ``heif`` below).
_DISTRIBUTIONS = ("Pillow", "numpy", "python-magic", "typer", "rich", "PyWavelets",
                  "pytsk3", "libewf-python", "libvmdk-python", "libvhdi-python",
                  "libqcow-python", "olefile", "py7zr", "pikepdf", "ijson", "sqlite-utils",
                  "fpdf2", "cryptography", "av", "pillow-heif")


@cache
def _version(dist: str) -> str | None:
    """The installed version of a distribution, None when it is not installed (the first
    found on the path wins, as with ``metadata.version``, which finds a name in the path's
    cached listings without reading every distribution's metadata: start-up time)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def algorithm_versions() -> dict[str, dict[str, str]]:
    """Each registered algorithm's libraries (distribution -> version, "missing" when not
    installed), from the registry; stream algorithms use Python's hashlib (OpenSSL)."""
    out: dict[str, dict[str, str]] = {}
    for alg in ALGORITHMS.values():
        libs = {dist: _version(dist) or "missing" for dist in sorted(set(alg.libraries.values()))}
        if alg.computed_from == "bytes":
            libs.setdefault("hashlib", ssl.OPENSSL_VERSION)
        out[alg.name] = libs
    return out


#: A collection started ahead by :func:`prefetch`: the thread and, once it ends, its answer.
_ahead: dict[str, Any] = {}
_ahead_lock = threading.Lock()


def prefetch() -> None:
    """Start collecting :func:`versions` in a thread now; the next :func:`versions` call
    takes its answer (start-up time, issue 13: about half of the collection waits for
    ``uname -p`` and ``ldconfig -p``, which the libraries' lookups run, and for shared
    libraries to load, while the supervisor goes on with its own imports). The answer is
    used once; a failure there is ignored and the next call collects again."""
    def run() -> None:
        try:
            _ahead["answer"] = _collect()
        except BaseException:  # noqa: S110 - versions() collects again and raises then
            pass

    with _ahead_lock:
        if "thread" not in _ahead:
            _ahead["thread"] = threading.Thread(target=run, name="triage-versions",
                                                daemon=True)
            _ahead["thread"].start()


def versions() -> dict[str, Any]:
    """Tool and library versions (recorded with every run); see :func:`prefetch`."""
    with _ahead_lock:
        thread = _ahead.pop("thread", None)
    if thread is not None:
        thread.join()
        if (answer := _ahead.pop("answer", None)) is not None:
            return answer
    return _collect()


def _collect() -> dict[str, Any]:
    libs: dict[str, str] = {}
    algorithms = algorithm_versions()
    for dist in sorted({*_DISTRIBUTIONS, *(d for a in ALGORITHMS.values()
                                           for d in a.libraries.values())}):
        if (v := _version(dist)) is not None:
            libs[dist] = v
    out: dict[str, Any] = {
        "triage": __version__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "libraries": libs,
        "algorithms": algorithms,
    }
    try:
        from .identify import Identifier

        out["libmagic"] = Identifier.libmagic_version()
    except Exception as e:  # libmagic missing is reported by the scan itself
        out["libmagic"] = f"unavailable: {e}"
    try:
        # Which libewf reads E01 (Debian's zlib-backed build or the PyPI wheel) and libtsk.
        import pytsk3

        from .sources.disk_containers import pyewf_library

        ewf = pyewf_library()
        out["libewf"] = {"origin": ewf.origin, "version": ewf.version}
        out["libtsk"] = str(pytsk3.TSK_VERSION_STR)
    except Exception as e:  # a missing disk-image library is reported when one is opened
        out["libewf"] = f"unavailable: {e}"
    try:
        from PIL import features

        out["pillow_codecs"] = {name: features.version(name)
                                for name in ("jpg", "zlib", "libtiff", "webp", "libimagequant")
                                if features.version(name)}
    except Exception as e:  # Pillow without the features module: say so, do not fail
        out["pillow_codecs"] = f"unavailable: {e}"
    try:
        # pillow-heif's libheif and HEVC decoder (bundled in its wheel): read here, the
        # opener itself is registered only in the workers (triage.heif).
        from .heif import versions as heif_versions

        out["heif"] = heif_versions()
    except Exception as e:  # not installed: HEIC pictures are then a coverage gap
        out["heif"] = f"unavailable: {e}"
    return out
