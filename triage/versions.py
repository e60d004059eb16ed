"""Tool and library versions recorded with every run (reproducibility, DESIGN.md)."""

from __future__ import annotations

import platform
import sqlite3
import sys
from importlib import metadata
from typing import Any

from . import __version__

_DISTRIBUTIONS = ("Pillow", "ImageHash", "pdqhash", "numpy", "python-magic", "typer", "rich",
                  "PyWavelets", "scipy", "pytsk3", "libewf-python", "libvmdk-python",
                  "libvhdi-python", "libqcow-python", "faiss-cpu", "ijson")


def versions() -> dict[str, Any]:
    libs: dict[str, str] = {}
    for dist in _DISTRIBUTIONS:
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    out: dict[str, Any] = {
        "triage": __version__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "libraries": libs,
    }
    try:
        from .identify import Identifier

        out["libmagic"] = Identifier.libmagic_version()
    except Exception as e:  # libmagic missing is reported by the scan itself
        out["libmagic"] = f"unavailable: {e}"
    try:
        from PIL import features

        out["pillow_codecs"] = {name: features.version(name)
                                for name in ("jpg", "zlib", "libtiff", "webp", "libimagequant")
                                if features.version(name)}
    except Exception as e:  # Pillow without the features module: say so, do not fail
        out["pillow_codecs"] = f"unavailable: {e}"
    return out
