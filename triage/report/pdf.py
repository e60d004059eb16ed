"""PDF export for prosecutors (fpdf2): the same sections, sentences and tables as the HTML
(both render :mod:`triage.report.document`), text only, no images.

Font: DejaVu Sans from Debian's ``fonts-dejavu-core`` (embedded, subset) when installed;
a character the font has no glyph for is written as a visible ``\\uXXXX`` escape, never
dropped. Without the font, the PDF core font Helvetica is used and everything outside
Latin-1 is escaped the same way. Tables are real tables (fpdf2's ``table``: ruled cells,
headings repeated on every page) with the column widths the document declares; a table that
needs it gets a landscape page. A footer names the case and the page ("page n of N"). The
creation date is the report's generation time, so the file is deterministic.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..textsafe import visible
from . import Exporter, Sink
from .document import GENERATED_LABEL, TITLE, Cell, Lines, Para, Table, build
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
        for ch in visible(text):  # controls, bidi, newlines: triage.textsafe
            code = ord(ch)
            if code in covered:
                out.append(ch)
            elif code > 0xFFFF:
                out.append(f"\\U{code:08x}")
            else:
                out.append(f"\\u{code:04x}")
        return "".join(out)

    return esc


#: Font sizes (pt) and line height (mm) of table cells; A4 portrait leaves 182 mm.
TABLE_PT, MONO_PT, LINE_MM = 7.5, 6.5, 3.3
MARGIN_MM = 14


def _text(cell: Cell, esc: Any) -> str:
    """A cell's text: a shortened hash as shown (the full value is in an appendix), one
    line per value of a multi-line cell (each escaped on its own)."""
    if isinstance(cell, Lines):
        return "\n".join(esc(p) for p in cell.parts)
    return esc(str(cell))


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
                            wrapmode=WrapMode.WORD)

    def page(self, landscape: bool) -> None:
        """A table that needs a landscape page starts one (other blocks stay on the current
        page, whatever its orientation; each appendix starts its own page)."""
        if landscape and getattr(self.pdf.cur_orientation, "value", "") != "L":
            self.pdf.add_page(orientation="L")

    def table(self, t: Table) -> None:
        from fpdf.enums import Align, TableCellFillMode, VAlign, WrapMode
        from fpdf.fonts import FontFace

        if not t.rows:
            return  # an empty table is not drawn
        self.page(t.landscape)
        if t.caption:
            self.pdf.ln(1)
            self.line(t.caption, 8.5, "B", h=4.5)
        width = self.pdf.epw
        sans = FontFace(family=self.sans, emphasis="", size_pt=TABLE_PT)
        mono = FontFace(family=self.mono, emphasis="", size_pt=MONO_PT)
        key = FontFace(family=self.sans, emphasis="B", size_pt=TABLE_PT,
                       fill_color=(240, 240, 240))
        head = FontFace(family=self.sans, emphasis="B", size_pt=TABLE_PT,
                        fill_color=(225, 225, 225))
        self.pdf.set_font(self.sans, "", TABLE_PT)
        self.pdf.set_draw_color(140, 140, 140)
        self.pdf.set_line_width(0.2)
        with self.pdf.table(col_widths=tuple(c.width for c in t.cols), width=width,
                            align=Align.L, text_align=Align.L, v_align=VAlign.T,
                            line_height=LINE_MM, padding=(0.6, 1.0, 0.6, 1.0),
                            first_row_as_headings=not t.kv, headings_style=head,
                            cell_fill_mode=TableCellFillMode.NONE,
                            wrapmode=WrapMode.WORD, repeat_headings=1) as table:
            if not t.kv:
                row = table.row()
                for c in t.cols:
                    row.cell(self.esc(c.header))
            for values in t.rows:
                row = table.row()
                for i, (c, v) in enumerate(zip(t.cols, values, strict=True)):
                    is_mono = c.kind == "mono"
                    style = key if t.kv and i == 0 else (mono if is_mono else sans)
                    row.cell(_text(v, self.esc_mono if is_mono else self.esc),
                             style=style, align=Align.R if c.kind == "num" else Align.L)
        self.pdf.ln(1.5)


class _PDF:
    """FPDF with a footer (case number, page n of N), made on first use (lazy import)."""

    @staticmethod
    def make(footer: str) -> Any:
        from fpdf import FPDF

        class Doc(FPDF):
            def footer(self) -> None:
                self.set_y(-10)
                self.set_font(self.font_family or "Helvetica", "", 7)
                self.cell(0, 4, f"{footer}  |  page {self.page_no()} of {{nb}}",
                          align="C")

        return Doc(format="A4")


class PDFExporter(Exporter):
    name = "pdf"
    extension = "pdf"
    description = "PDF for prosecutors (fpdf2; same content as the HTML, text only)"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        out.write(self.render(model, options))  # a whole document, built in memory

    def render(self, model: ReportModel, options: dict[str, Any]) -> bytes:
        number = model.case.get("number") or ""
        use_dejavu = DEJAVU.is_file() and DEJAVU_BOLD.is_file() and DEJAVU_MONO.is_file()
        esc0 = _escaper(DEJAVU) if use_dejavu else _escaper(None)
        pdf = _PDF.make(esc0(f"{TITLE}: case {number}"))
        pdf.set_creation_date(datetime.fromisoformat(model.generated_utc.replace("Z", "+00:00")))
        pdf.set_title(f"{TITLE} {number}".strip())
        pdf.set_creator(f"triage {model.tool_version}")
        pdf.set_producer(f"triage {model.tool_version}")
        pdf.set_auto_page_break(True, margin=MARGIN_MM)
        if use_dejavu:
            pdf.add_font("DejaVu", "", str(DEJAVU))
            pdf.add_font("DejaVu", "B", str(DEJAVU_BOLD))
            pdf.add_font("DejaVuMono", "", str(DEJAVU_MONO))
            w = _Writer(pdf, "DejaVu", "DejaVuMono", _escaper(DEJAVU), _escaper(DEJAVU_MONO))
        else:
            esc = _escaper(None)
            w = _Writer(pdf, "Helvetica", "Courier", esc, esc)
        pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        pdf.add_page()
        w.line(f"{TITLE}: case {number}", 14, "B", h=7)
        w.line(f"{GENERATED_LABEL}: {model.generated_utc}", 7.5, h=3.6)
        for sec in build(model):
            if sec.appendix:
                pdf.add_page(orientation="L" if sec.landscape else "P")
            else:
                pdf.ln(2)
            w.line(sec.title, 11.5, "B", h=6)
            for b in sec.blocks:
                if isinstance(b, Para):
                    w.line(b.text, 8.5, "B" if b.cls == "key" else "", h=4)
                else:
                    w.table(b)
        return bytes(pdf.output())
