"""The one place the contract suites reach triage's plugin registries.

Every contract test asks this module for "all registered X" and for the few public
operations it checks (detect, open, expand, render). When a registry is renamed or moved
(issue 10 item 5 renames both container layers; item 2 adds an algorithm registry), only
the functions here change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- evidence sources


def sources() -> dict[str, Any]:
    """Every registered evidence source class by name, in the order they are tried."""
    from triage.sources import SOURCES

    return dict(SOURCES)


def open_source(path: Path) -> Any:
    """The source the registry picks for ``path`` (first ``detect`` that accepts it)."""
    from triage.sources import open_source as _open

    return _open(str(path))


def open_spec(spec: tuple[str, Any]) -> Any:
    """A source rebuilt from its ``spec()``, as a worker does."""
    from triage.sources import open_spec as _open_spec

    return _open_spec(spec)


def entry_types() -> tuple[Any, Any]:
    """(FileEntry, EntryAmendment): what ``entries()`` may yield."""
    from triage.sources.base import EntryAmendment, FileEntry

    return FileEntry, EntryAmendment


def display(raw: bytes) -> str:
    """The printable display form of an entry's path bytes."""
    from triage.util import display_bytes

    return display_bytes(raw)


# --------------------------------------------------------------------------- disk containers


def disk_container_kinds() -> list[str]:
    """Every registered disk-image container kind (``DISK_KINDS``, the catch-all last)."""
    from triage.sources.disk_containers import DISK_KINDS

    return list(DISK_KINDS)


def detect_disk_container(path: Path) -> str | None:
    from triage.sources.disk_containers import detect_container

    return detect_container(str(path))


def open_disk_container(path: Path) -> Any:
    """The container for ``path`` (``read(offset, size)``, ``size``, ``describe()``,
    ``close()``); raises EvidenceError when the kind is refused."""
    from triage.sources.disk_containers import open_container

    return open_container(str(path))


def evidence_error() -> type[Exception]:
    from triage.errors import EvidenceError

    return EvidenceError


# --------------------------------------------------------------------------- archive members


def member_kinds() -> tuple[str, ...]:
    """Every archive / document kind whose members triage lists."""
    from triage.members import KINDS

    return tuple(KINDS)


def member_kind(data: bytes) -> str | None:
    """The kind detected from content, as the worker asks (first 4,096 bytes)."""
    from triage.members import HEAD_BYTES, container_kind

    return container_kind(data[:HEAD_BYTES])


def member_error() -> type[Exception]:
    """Raised (with ``reason`` and ``flags``) when a container cannot be expanded."""
    from triage.members import ContainerError

    return ContainerError


def expand_members(kind: str, data: bytes, name: bytes) -> Iterator[Any]:
    """The members of one container of ``kind`` (``name``, ``size``, ``data``, ``reason``),
    with the default limits."""
    from triage.members import Budget, Limits, expand

    limits = Limits()
    yield from expand(kind, data, limits, Budget(limits), name=name)


# --------------------------------------------------------------------------- exporters


def exporters() -> dict[str, Any]:
    """Every registered report exporter by name (``name``, ``extension``, ``render``)."""
    from triage.report import EXPORTERS

    return dict(EXPORTERS)


def render(name: str, case_dir: Path, generated_utc: str,
           options: dict[str, Any] | None = None) -> bytes:
    """Render the case at ``case_dir`` with exporter ``name``, read-only (no file written,
    nothing recorded in the case)."""
    from triage import __version__
    from triage.case import Case
    from triage.report import get
    from triage.report.model import reading

    # The model streams file rows from the case: render inside its read snapshot.
    with Case.open(case_dir, create=False, readonly=True) as case, \
            reading(case, generated_utc, __version__) as model:
        return bytes(get(name).render(model, dict(options or {})))


def create_empty_case(case_dir: Path) -> None:
    """A new case with no evidence, as ``triage scan`` creates it before enumeration."""
    from triage.case import Case

    with Case.open(case_dir, create=True):
        pass


# --------------------------------------------------------------------------- hash-set formats


def hashset_formats() -> dict[str, Any]:
    """Every registered hash-set format. Its contract suite is
    ``tests/hashsets/test_formats.py`` (one sample per format, checked to cover all)."""
    from hashsets.formats import FORMATS

    return dict(FORMATS)
