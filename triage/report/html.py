"""HTML export: one self-contained file, readable on screen and printed.

No scripts, no images, no remote resources, no links: a Content-Security-Policy meta forbids
everything but the one inline style sheet (allowed by its SHA-256, not 'unsafe-inline'), so
even a value that slipped through escaping could not run or load anything. Every value is
escaped with ``triage.textsafe.for_html``: control, bidi and undecodable characters visibly
(a VICS category holding ESC shows ``\x1b``), then ``html.escape(quote=True)``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ..textsafe import for_html
from . import Exporter, Sink
from .document import (
    GENERATED_LABEL,
    TITLE,
    Cell,
    Lines,
    Para,
    Section,
    Short,
    Table,
    build,
)
from .model import ReportModel

#: Column width classes (``<col class="wN">``: N percent of the table), one per percent.
WIDTHS = "".join(f"col.w{n}{{width:{n}%}}" for n in range(1, 101))

CSS = ("""
body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:10pt;margin:1.2em;color:#000;
background-color:#fff}
h1{font-size:15pt;margin:.2em 0}h2{font-size:12.5pt;border-bottom:1px solid #444;
margin-top:1.4em}
table{border-collapse:collapse;margin:.4em 0 .8em 0;width:100%;table-layout:fixed}
caption{text-align:left;font-weight:bold;padding:2px 0}
th,td{border:1px solid #888;padding:2px 4px;text-align:left;vertical-align:top;
white-space:pre-line;overflow-wrap:break-word;hyphens:none}
th{background-color:#e8e8e8;overflow-wrap:normal}
td.path{overflow-wrap:anywhere}
td.nowrap{white-space:pre}
td.num{text-align:right;white-space:nowrap}
td.mono,td.mono span{font-family:"DejaVu Sans Mono",monospace;font-size:8.5pt;
word-break:break-all}
table.kv th{font-weight:normal;background-color:#f2f2f2}
p.key{font-weight:bold}
.note{font-style:italic}
.generated{border:1px dashed #444;padding:2px 4px}
@page{size:A4 portrait;margin:12mm}
@page landscape{size:A4 landscape;margin:12mm}
div.landscape,section.landscape{page:landscape}
@media print{body{margin:0;font-size:8.5pt}td.mono,td.mono span{font-size:7pt}
thead{display:table-header-group}tr{break-inside:avoid}
h2{break-after:avoid}caption{break-after:avoid}section.appendix{break-before:page}}
""".strip() + "\n" + WIDTHS)

CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
#: Everything forbidden except the inline style sheet above (by hash).
CSP = ("default-src 'none'; img-src 'none'; script-src 'none'; object-src 'none'; "
       "media-src 'none'; font-src 'none'; connect-src 'none'; frame-src 'none'; "
       "child-src 'none'; worker-src 'none'; manifest-src 'none'; form-action 'none'; "
       f"base-uri 'none'; style-src 'sha256-{CSS_HASH}'")


def e(value: object) -> str:
    """HTML-escape any value (quotes too), control and bidi characters escaped visibly
    (``triage.textsafe.for_html``)."""
    return for_html(value)


def _cell(v: Cell) -> str:
    """A cell's content; a shortened value carries its full value as a hover ``title``."""
    if isinstance(v, Short):
        return f'<span title="{e(v.full)}">{e(v.text)}</span>'
    if isinstance(v, Lines):
        # One line per value (white-space: pre-line); each value escaped on its own, so a
        # newline inside a value (a file name) stays visible as \x0a.
        return "\n".join(e(part) for part in v.parts)
    return e(v)


def _td(kind: str, v: Cell) -> str:
    cls = f' class="{kind}"' if kind != "text" else ""
    return f"<td{cls}>{_cell(v)}</td>"


def _table(t: Table) -> str:
    tid = f' id="{e(t.name)}"' if t.name else ""
    out = [f'<table class="{"kv" if t.kv else "grid"}"{tid}>']
    if t.caption:
        out.append(f"<caption>{e(t.caption)}</caption>")
    out.append("<colgroup>" + "".join(f'<col class="w{c.width}">' for c in t.cols)
               + "</colgroup>")
    if t.kv:
        kind = t.cols[1].kind
        for row in t.rows:
            out.append(f"<tr><th>{_cell(row[0])}</th>{_td(kind, row[1])}</tr>")
    else:
        out.append("<thead><tr>" + "".join(f"<th>{e(c.header)}</th>" for c in t.cols)
                   + "</tr></thead><tbody>")
        for row in t.rows:
            out.append("<tr>" + "".join(_td(c.kind, v) for c, v in zip(t.cols, row,
                                                                        strict=True))
                       + "</tr>")
        out.append("</tbody>")
    out.append("</table>")
    html = "\n".join(out)
    return f'<div class="landscape">\n{html}\n</div>' if t.landscape else html


def _section(s: Section) -> str:
    cls = (' class="appendix landscape"' if s.landscape else ' class="appendix"'
           if s.appendix else "")
    parts = [f'<section id="{e(s.id)}"{cls}>', f"<h2>{e(s.title)}</h2>"]
    for b in s.blocks:
        if isinstance(b, Para):
            pcls = f' class="{e(b.cls)}"' if b.cls else ""
            parts.append(f"<p{pcls}>{e(b.text)}</p>")
        elif b.rows:  # an empty table is not drawn
            parts.append(_table(b))
    parts.append("</section>")
    return "\n".join(parts)


class HTMLExporter(Exporter):
    name = "html"
    extension = "html"
    description = "self-contained HTML (no scripts, images or remote resources; prints)"

    def write(self, model: ReportModel, options: dict[str, Any], out: Sink) -> None:
        out.write(self.render(model, options))  # a whole document, built in memory

    def render(self, model: ReportModel, options: dict[str, Any]) -> bytes:
        number = model.case.get("number") or ""
        head = (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">\n'
            '<meta name="referrer" content="no-referrer">\n'
            f"<title>{e(TITLE)} {e(number)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{e(TITLE)}: case {e(number)}</h1>\n"
            f'<p class="generated">{e(GENERATED_LABEL)}: '
            f'<span id="generated-utc">{e(model.generated_utc)}</span></p>\n')
        body = "\n".join(_section(s) for s in build(model))
        return (head + body + "\n</body>\n</html>\n").encode("utf-8")
