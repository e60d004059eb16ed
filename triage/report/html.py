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
from .document import GENERATED_LABEL, TITLE, Para, Section, Table, build
from .model import ReportModel

CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:10.5pt;margin:1.5em;color:#000;
background-color:#fff}
h1{font-size:16pt}h2{font-size:13pt;border-bottom:1px solid #444;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;width:100%}
th,td{border:1px solid #888;padding:2px 4px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background-color:#e8e8e8}
table.kv th{width:28%}
.mono{font-family:"DejaVu Sans Mono",monospace;font-size:8.5pt;word-break:break-all}
.note{font-style:italic}
.generated{border:1px dashed #444;padding:2px 4px}
@media print{body{margin:0;font-size:8.5pt}.mono{font-size:7pt}
thead{display:table-header-group}tr{page-break-inside:avoid}
h2{page-break-after:avoid}@page{margin:12mm}}
""".strip()

CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
#: Everything forbidden except the inline style sheet above (by hash).
CSP = ("default-src 'none'; img-src 'none'; script-src 'none'; object-src 'none'; "
       "media-src 'none'; font-src 'none'; connect-src 'none'; frame-src 'none'; "
       "child-src 'none'; worker-src 'none'; manifest-src 'none'; form-action 'none'; "
       f"base-uri 'none'; style-src 'sha256-{CSS_HASH}'")


MONO_TD = '<td class="mono">'


def e(value: object) -> str:
    """HTML-escape any value (quotes too), control and bidi characters escaped visibly
    (``triage.textsafe.for_html``)."""
    return for_html(value)


def _table(t: Table) -> str:
    out = [f'<table class="{"kv" if t.kv else "grid"}">']
    if t.kv:
        for row in t.rows:
            td = MONO_TD if 1 in t.mono else "<td>"
            out.append(f"<tr><th>{e(row[0])}</th>{td}{e(row[1])}</td></tr>")
    else:
        out.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.headers)
                   + "</tr></thead><tbody>")
        if not t.rows:
            out.append(f'<tr><td colspan="{len(t.headers)}">none</td></tr>')
        for row in t.rows:
            out.append("<tr>" + "".join(
                (MONO_TD if i in t.mono else "<td>") + f"{e(v)}</td>"
                for i, v in enumerate(row)) + "</tr>")
        out.append("</tbody>")
    out.append("</table>")
    return "\n".join(out)


def _section(s: Section) -> str:
    parts = [f'<section id="{e(s.id)}">', f"<h2>{e(s.title)}</h2>"]
    for b in s.blocks:
        if isinstance(b, Para):
            cls = f' class="{e(b.cls)}"' if b.cls else ""
            parts.append(f"<p{cls}>{e(b.text)}</p>")
        else:
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
