"""Court-ready exports of a case: HTML, CSV, JSONL, PDF and VICS 2.0.

The exporter registry: one module per format, one line each below, stable names, duplicates
refused. An exporter turns a :class:`~triage.report.model.ReportModel` into bytes; it never
reads the database and never writes content (only hashes, paths and metadata). Writing the
file, the manifest, the audit row and the signature is :mod:`triage.report.export`'s job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from .model import ReportModel


class Exporter(ABC):
    """A report format. ``render`` must be deterministic: the same model gives the same bytes
    (the generation time is part of the model, and is the only value allowed to vary)."""

    name: ClassVar[str]
    extension: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def render(self, model: ReportModel, options: dict[str, Any]) -> bytes:
        """The export's bytes. ``options`` holds format options (e.g. CSV ``rows``)."""


EXPORTERS: dict[str, Exporter] = {}


def register(exporter: Exporter) -> Exporter:
    if exporter.name in EXPORTERS:
        raise ValueError(f"exporter {exporter.name!r} is already registered")
    EXPORTERS[exporter.name] = exporter
    return exporter


def get(name: str) -> Exporter:
    try:
        return EXPORTERS[name]
    except KeyError:
        raise KeyError(f"unknown report format {name!r} (known: "
                       f"{', '.join(sorted(EXPORTERS))})") from None


def _register_all() -> None:
    from .csv_ import CSVExporter
    from .html import HTMLExporter
    from .jsonl import JSONLExporter
    from .pdf import PDFExporter
    from .vics import VICSExporter

    for exporter in (HTMLExporter(), CSVExporter(), JSONLExporter(), PDFExporter(),
                     VICSExporter()):
        register(exporter)


_register_all()

__all__ = ["EXPORTERS", "Exporter", "ReportModel", "get", "register"]
