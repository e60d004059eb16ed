"""The source registry: tried in order, the catch-all last. One line per source."""

from __future__ import annotations

import os
from typing import Any

from ..errors import EvidenceError
from .base import FileEntry, Source
from .directory import DirectorySource
from .image import ImageSource

SOURCES: dict[str, type[Source]] = {}


def register(cls: type[Source]) -> type[Source]:
    if cls.name in SOURCES:
        raise ValueError(f"source {cls.name!r} is already registered")
    SOURCES[cls.name] = cls
    return cls


register(DirectorySource)
register(ImageSource)  # accepts any regular file or block device: tried last


def open_source(path: str) -> Source:
    """Open evidence at ``path`` with the first source whose ``detect`` accepts it."""
    if not os.path.lexists(path):
        raise EvidenceError(f"{path}: no such file or directory")
    for cls in SOURCES.values():
        if cls.detect(path):
            return cls(path)  # type: ignore[call-arg]
    raise EvidenceError(f"{path}: not a directory or a disk image format triage can read")


def open_spec(spec: tuple[str, Any]) -> Source:
    """Rebuild a source in a worker from :meth:`Source.spec`."""
    name, args = spec
    return SOURCES[name].from_spec(args)


__all__ = ["SOURCES", "FileEntry", "Source", "open_source", "open_spec", "register"]
