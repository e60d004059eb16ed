"""PDF export for prosecutors (fpdf2): the same sections, sentences and tables as the HTML
(both render :mod:`triage.report.document`), text only, no images.

Font: DejaVu Sans from Debian's ``fonts-dejavu-core`` (embedded, subset) when installed;
a character the font has no glyph for is written as a visible ``\\uXXXX`` escape, never
dropped. Without the font, the PDF core font Helvetica is used and everything outside
Latin-1 is escaped the same way. Tables are rendered row by row as "column: value" lines,
which stay readable however wide the table is. The creation date is the report's generation
time, so the file is deterministic.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..textsafe import visible
from . import Exporter, Sink
from .document import GENERATED_LABEL, NO_IMAGES, TITLE, Para, Table, build
from .model import ReportModel

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
DEJAVU_MONO = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


@lru_cache(maxsize=4)
def _coverage(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap())


def _escaper(path: Path | None) -> Any:
    covered = _coverage(path) if path is not None else frozenset(range(0x20, 0x7F)) | \
        frozenset(range(0xA0, 0x100))

    def esc(text: str) -> str:
        out = []
        for ch in visible(text, keep_newlines=True):  # controls, bidi: triage.textsafe
            code = ord(ch)
            if code in covered or ch == "\n":
                out.append(ch)
            elif code > 0xFFFF:
                out.append(f"\\U{code:08x}")
            else:
                out.append(f"\\u{code:04x}")
        return "".join(out)

    return esc


class _Writer:
    """Text-only writer over an FPDF document with a sans and a mono font."""

    def __init__(self, pdf: Any, sans: str, mono: str, esc: Any, esc_mono: Any) -> None:
        self.pdf, self.sans, self.mono, self.esc, self.esc_mono = pdf, sans, mono, esc, esc_mono

    def line(self, text: str, size: float = 9, style: str = "", mono: bool = False,
             h: float = 4.2) -> None:
        from fpdf.enums import WrapMode, XPos, YPos

        self.pdf.set_font(self.mono if mono else self.sans, style, size)
        esc = self.esc_mono if mono else self.esc
        self.pdf.multi_cell(0, h, esc(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT,
                            wrapmode=WrapMode.CHAR)

    def table(self, t: Table) -> None:
        if t.kv:
            for k, v in t.rows:
                self.line(f"{k}: {v}", mono=1 in t.mono)
            return
        if not t.rows:
            self.line("(none)")
            return
        for n, row in enumerate(t.rows):
            if n:
                self.pdf.ln(1)
            for i, (h, v) in enumerate(zip(t.headers, row, strict=True)):
                if i == 0:
                    self.line(f"{h}: {v}", style="B")
                else:
                    self.line(f"  {h}: {v}", mono=i in t.mono)


class PDFExporter(Exporter):
    name = "pdf"
    extension = "pdf"
    description = "PDF for prosecutors (fpdf2; same content as the HTML, text only)"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        out.write(self.render(model, options))  # a whole document, built in memory

    def render(self, model: ReportModel, options: dict[str, Any]) -> bytes:
        from fpdf import FPDF

        pdf = FPDF(format="A4")
        pdf.set_creation_date(datetime.fromisoformat(model.generated_utc.replace("Z", "+00:00")))
        pdf.set_title(f"{TITLE} {model.case.get('number') or ''}".strip())
        pdf.set_creator(f"triage {model.tool_version}")
        pdf.set_producer(f"triage {model.tool_version}")
        pdf.set_auto_page_break(True, margin=14)
        if DEJAVU.is_file() and DEJAVU_BOLD.is_file() and DEJAVU_MONO.is_file():
            pdf.add_font("DejaVu", "", str(DEJAVU))
            pdf.add_font("DejaVu", "B", str(DEJAVU_BOLD))
            pdf.add_font("DejaVuMono", "", str(DEJAVU_MONO))
            w = _Writer(pdf, "DejaVu", "DejaVuMono", _escaper(DEJAVU), _escaper(DEJAVU_MONO))
        else:
            esc = _escaper(None)
            w = _Writer(pdf, "Helvetica", "Courier", esc, esc)
        pdf.set_margins(14, 14, 14)
        pdf.add_page()
        number = model.case.get("number") or ""
        w.line(f"{TITLE}: case {number}", 15, "B", h=8)
        w.line(f"{GENERATED_LABEL}: {model.generated_utc}", 8)
        w.line(NO_IMAGES, 8)
        for sec in build(model):
            pdf.ln(3)
            w.line(sec.title, 12, "B", h=6)
            for b in sec.blocks:
                if isinstance(b, Para):
                    w.line(b.text)
                else:
                    w.table(b)
        return bytes(pdf.output())
