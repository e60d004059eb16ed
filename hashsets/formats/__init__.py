"""The hash-set format registry: one line per format, tried in this order by ``detect``.

Specific formats come first; the catch-all bare hex list is last. ``detect_format`` reads
only the first :data:`~hashsets.formats.base.HEAD_SIZE` bytes (plus a read-only look inside
zip and SQLite files) and consumes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import HashSetFileError
from .base import (
    HEAD_SIZE,
    Batch,
    BulkItem,
    Format,
    Item,
    ParseContext,
    Record,
    Rejected,
    VideoRecord,
    first_lines,
)
from .bsd import BSDChecksums
from .csvtable import CSVTable
from .hashdeep import Hashdeep
from .hashkeeper import HashKeeper
from .icse import ICSE
from .ilook import ILook
from .md5sum import SumFile
from .nsrl2 import NSRLRDS2
from .nsrl3 import NSRLRDS3
from .perceptual import PerceptualList
from .plain import PlainList
from .vics import CAID, VICS
from .vpdq import VPDQSet

FORMATS: dict[str, Format] = {}
#: A line that starts with 64 hex digits and goes on (a label): SHA-256 or PDQ.
_HEX64 = re.compile(r"^[0-9A-Fa-f]{64}\b")


def register(fmt: Format) -> Format:
    if fmt.name in FORMATS:
        raise ValueError(f"format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


for _fmt in (CAID(), VICS(), VPDQSet(), NSRLRDS3(), NSRLRDS2(), Hashdeep(), ICSE(), HashKeeper(),
             ILook(), BSDChecksums(), SumFile(), CSVTable(), PerceptualList(), PlainList()):
    register(_fmt)


#: Other names a format is known by (md5deep writes md5sum-style lines, with or without
#: sizes; its own documentation and ours call them md5deep lists).
ALIASES = {"md5deep": "md5sum"}


def get(name: str) -> Format:
    try:
        key = name.lower()
        return FORMATS[ALIASES.get(key, key)]
    except KeyError:
        known = ", ".join([*FORMATS, *ALIASES])
        raise HashSetFileError(f"unknown hash-set format {name!r} (known: {known})") from None


def read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_SIZE)
    except OSError as e:
        raise HashSetFileError(f"{path}: cannot read: {e.strerror or e}") from e


def detect_format(path: str | Path) -> Format:
    """The first registered format whose ``detect`` accepts the file.

    Raises :class:`HashSetFileError` naming the file when none does.
    """
    p = Path(path)
    if p.is_dir():  # only video sets come as folders (one file per video)
        return FORMATS["vpdq"]
    head = read_head(p)
    for fmt in FORMATS.values():
        if fmt.detect(p, head):
            return fmt
    hint = ""
    lines = first_lines(head)
    if lines and all(_HEX64.match(ln) for ln in lines):
        hint = (" (64 hex digits with a label: SHA-256 or PDQ? for PDQ give --format "
                "perceptual --algorithm pdq)")
    raise HashSetFileError(f"{p}: format not recognised{hint}; choose one with --format "
                           f"({', '.join(FORMATS)})")


__all__ = ["FORMATS", "Batch", "BulkItem", "Format", "Item", "ParseContext", "Record",
           "Rejected", "VideoRecord", "detect_format", "get", "register"]
