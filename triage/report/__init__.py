"""Court-ready exports of a case: HTML, CSV, JSONL, PDF, VICS 2.0 and lead packages.

The exporter registry: one module per format, one line each below, stable names, duplicates
refused. An exporter writes a :class:`~triage.report.model.ReportModel` to a binary stream;
it never reads the database itself (the model streams file rows from it) and never writes
content (only hashes, paths and metadata). Where the file goes (a temp file, hashed while
written, renamed into place), the manifest, the audit row and the signature are
:mod:`triage.report.export`'s job.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

from .model import ReportModel


class Sink(Protocol):
    """Where an exporter writes (a file being hashed, or a buffer)."""

    def write(self, data: bytes, /) -> int: ...


class Exporter(ABC):
    """A report format. ``write`` must be deterministic: the same model gives the same bytes
    (the generation time is part of the model, and is the only value allowed to vary).

    Streaming formats (CSV, JSONL) write file rows as they come and keep nothing per file;
    formats that print a whole document (HTML, PDF, VICS) may hold what they print (hits,
    unprocessed files, errors) but never every file row (docs/reports.md)."""

    name: ClassVar[str]
    extension: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        """Write the export to ``out``. ``options`` holds format options (e.g. CSV
        ``rows``); a bad option raises ValueError before anything is written."""

    def render(self, model: ReportModel, options: dict[str, Any]) -> bytes:
        """The export's bytes, in memory (for small cases and tests)."""
        buf = io.BytesIO()
        self.write(model, options, buf)
        return buf.getvalue()


EXPORTERS: dict[str, Exporter] = {}
#: Lead packages (issue 16 item 5: :mod:`triage.report.leadpkg`): written, recorded and
#: given a manifest by the same code as reports (``triage report --format leads-json``),
#: but not case reports: they hold the clusters of a leads run, not the case's hits, so
#: the exporter contract (tests/contracts/test_exporters.py: every hit reported, an empty
#: case rendered) is not theirs.
PACKAGES: dict[str, Exporter] = {}


def register(exporter: Exporter, *, package: bool = False) -> Exporter:
    if exporter.name in EXPORTERS or exporter.name in PACKAGES:
        raise ValueError(f"exporter {exporter.name!r} is already registered")
    (PACKAGES if package else EXPORTERS)[exporter.name] = exporter
    return exporter


def formats() -> dict[str, Exporter]:
    """Every ``--format``: the reports, then the lead packages."""
    return {**EXPORTERS, **PACKAGES}


def get(name: str) -> Exporter:
    try:
        return formats()[name]
    except KeyError:
        raise KeyError(f"unknown report format {name!r} (known: "
                       f"{', '.join(sorted(formats()))})") from None


def _register_all() -> None:
    from .csv_ import CSVExporter
    from .html import HTMLExporter
    from .jsonl import JSONLExporter
    from .leadpkg import LeadsCSVExporter, LeadsJSONExporter
    from .pdf import PDFExporter
    from .vics import VICSExporter

    for exporter in (HTMLExporter(), CSVExporter(), JSONLExporter(), PDFExporter(),
                     VICSExporter()):
        register(exporter)
    for package in (LeadsJSONExporter(), LeadsCSVExporter()):
        register(package, package=True)


_register_all()

__all__ = ["EXPORTERS", "PACKAGES", "Exporter", "ReportModel", "Sink", "formats", "get",
           "register"]
