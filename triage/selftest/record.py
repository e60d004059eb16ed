"""The validation record of ``triage selftest``: JSON, HTML and PDF, a manifest, a signature.

Written into one folder (``--out``), never over an earlier record:

* ``validation.json``: the whole record (sorted keys): tool and library versions
  (:func:`triage.versions.versions`), platform and host, the SHA-256 of the reference
  files used, every check with its expected and observed value and result, the verdict;
* ``validation.html``: the same, self-contained (no scripts, images or remote resources:
  a Content-Security-Policy forbids them), every value escaped (:func:`triage.textsafe.
  for_html`);
* ``validation.pdf``: the same as text (fpdf2, DejaVu Sans when installed, as the PDF
  report);
* ``validation.manifest.json``: SHA-256 and size of the three files; with ``--sign KEY``
  also ``validation.manifest.json.sig``, the base64 Ed25519 signature of the manifest's
  exact bytes, made and laid out as an export's (:mod:`triage.report.signing`,
  :mod:`triage.report.manifest`): check it with ``openssl pkeyutl -verify`` and the files
  with ``sha256sum`` (README "Validation").
"""

from __future__ import annotations

import getpass
import hashlib
import html
import json
import os
import platform
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import TriageError
from ..report import manifest as mf
from ..report.signing import PrivateKey, encode_signature
from ..textsafe import for_html, visible
from . import DATA, REFERENCE, SelftestResult, load_reference

RECORD_VERSION = 1
JSON_NAME, HTML_NAME, PDF_NAME = "validation.json", "validation.html", "validation.pdf"
MANIFEST_NAME = "validation" + mf.MANIFEST_SUFFIX
TITLE = "triage validation record (known-answer self-test)"


class RecordExistsError(TriageError):
    """The output folder already holds a validation record (never overwritten)."""

    exit_code = 2


class RecordWriteError(TriageError):
    """The record cannot be written (as an unwritable export: exit code 5)."""

    exit_code = 5


def build(result: SelftestResult, data: Path | None = None,
          fingerprint: str | None = None) -> dict[str, Any]:
    """The record as a JSON-able dict."""
    from ..versions import versions

    folder = DATA if data is None else data
    ref = load_reference(folder)
    references = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                  for name in (REFERENCE, ref["disk"]["listing"], ref["disk"]["image"])}
    checks = [c.to_dict() for c in result.checks]
    failed = [c.id for c in result.failed]
    return {
        "record": TITLE, "record_version": RECORD_VERSION,
        "tool": "triage", "tool_version": __version__,
        "started_utc": result.started_utc, "elapsed_seconds": result.elapsed_seconds,
        "host": platform.node(), "user": _user(),
        "environment": versions(),
        "reference_files_sha256": references,
        "checks": checks,
        "summary": {"checks": len(checks), "passed": len(checks) - len(failed),
                    "failed": len(failed)},
        "failed": failed,
        "verdict": "PASS" if result.passed else "FAIL",
        "signed_by": fingerprint,
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container): the uid says who
        return f"uid {os.getuid()}"


NAMES = (JSON_NAME, HTML_NAME, PDF_NAME, MANIFEST_NAME, MANIFEST_NAME + mf.SIGNATURE_SUFFIX)


def refuse_existing(out: Path) -> None:
    """Raise :class:`RecordExistsError` when ``out`` holds any file of a record."""
    if taken := [n for n in NAMES if os.path.lexists(out / n)]:
        raise RecordExistsError(f"{out}: already holds a validation record ({taken[0]}); "
                                "choose another --out (a record is never overwritten)")


def write(out: Path, record: dict[str, Any], key: PrivateKey | None = None) -> list[Path]:
    """Write the record's files into ``out`` (created 0700 if missing); refuse a folder
    that already holds a record. Returns the paths written (signature last)."""
    refuse_existing(out)
    blobs = {
        JSON_NAME: (json.dumps(record, indent=2, sort_keys=True, ensure_ascii=True)
                    + "\n").encode("ascii"),
        HTML_NAME: render_html(record).encode("utf-8"),
        PDF_NAME: render_pdf(record),
    }
    written: list[Path] = []
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, data in blobs.items():
            mf.write_atomic(out / name, data, mode=0o644)
            written.append(out / name)
        signer = None if key is None else {
            "algorithm": "ed25519", "public_key": key.public.raw.hex(),
            "fingerprint": key.public.fingerprint}
        manifest = {
            "manifest_version": 1, "tool": "triage", "tool_version": __version__,
            "kind": "validation record", "verdict": record["verdict"],
            "generated_utc": record["started_utc"],
            "files": [{"path": name, "sha256": hashlib.sha256(data).hexdigest(),
                       "size": len(data)} for name, data in blobs.items()],
            "signature": signer,
        }
        mbytes = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True)
                  + "\n").encode("ascii")
        mf.write_atomic(out / MANIFEST_NAME, mbytes, mode=0o644)
        written.append(out / MANIFEST_NAME)
        if key is not None:
            sig = out / (MANIFEST_NAME + mf.SIGNATURE_SUFFIX)
            mf.write_atomic(sig, encode_signature(key.sign(mbytes)), mode=0o644)
            written.append(sig)
    except OSError as e:
        raise RecordWriteError(f"{out}: cannot write the validation record: "
                               f"{e.strerror or e}") from e
    return written


def _rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    env = record["environment"]
    rows = [("verdict", record["verdict"]),
            ("checks", "{checks} run, {passed} passed, {failed} failed".format(
                **record["summary"])),
            ("failed checks", ", ".join(record["failed"]) or "none"),
            ("tool", f"triage {record['tool_version']}"),
            ("started (UTC)", record["started_utc"]),
            ("duration", f"{record['elapsed_seconds']} s"),
            ("host", record["host"]), ("user", record["user"]),
            ("platform", str(env.get("platform"))),
            ("python", f"{env.get('implementation')} {env.get('python')}"),
            ("sqlite, zlib", f"{env.get('sqlite')}, {env.get('zlib')}"),
            ("libmagic", str(env.get("libmagic"))), ("libtsk", str(env.get("libtsk"))),
            ("libewf", json.dumps(env.get("libewf"), sort_keys=True)),
            ("libraries", ", ".join(f"{k} {v}" for k, v in
                                    sorted(env.get("libraries", {}).items()))),
            ("signed by (key fingerprint)", record["signed_by"] or "not signed")]
    rows += [(f"reference {k} SHA-256", v)
             for k, v in sorted(record["reference_files_sha256"].items())]
    return rows


#: The inline style sheet, allowed by its hash in the Content-Security-Policy.
CSS = ("body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:10pt;margin:1.2em}"
       "table{border-collapse:collapse;width:100%;table-layout:fixed;margin-bottom:1em}"
       "th,td{border:1px solid #888;padding:2px 4px;text-align:left;vertical-align:top;"
       "overflow-wrap:anywhere}th{background:#e8e8e8}td.mono{font-family:'DejaVu Sans "
       "Mono',monospace;font-size:8.5pt}td.FAIL{font-weight:bold;color:#a00}"
       "col.k{width:22%}col.id{width:18%}col.d{width:22%}col.v{width:26%}col.r{width:6%}")


def render_html(record: dict[str, Any]) -> str:
    import base64

    e = for_html
    digest = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'sha256-{digest}'"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">',
           f"<title>{e(TITLE)}</title><style>{CSS}</style></head><body>",
           f"<h1>{e(TITLE)}</h1>", f"<p><strong>Verdict: {e(record['verdict'])}</strong></p>",
           '<table><colgroup><col class="k"><col></colgroup>']
    out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _rows(record)]
    out.append("</table><h2>Checks</h2><table><colgroup><col class=\"id\"><col class=\"d\">"
               "<col class=\"v\"><col class=\"v\"><col class=\"r\"></colgroup><tr><th>check"
               "</th><th>what</th><th>expected</th><th>observed</th><th>result</th></tr>")
    for c in record["checks"]:
        out.append(f"<tr><td>{e(c['id'])}</td><td>{e(c['description'])}</td>"
                   f"<td class=\"mono\">{e(c['expected'])}</td>"
                   f"<td class=\"mono\">{e(c['observed'])}</td>"
                   f"<td class=\"{e(c['result'])}\">{e(c['result'])}</td></tr>")
    out.append("</table></body></html>\n")
    return "\n".join(out)


def render_pdf(record: dict[str, Any]) -> bytes:
    """The record as a text-only PDF (fpdf2); its creation date is the record's start time,
    so the same record gives the same file."""
    from datetime import datetime

    from fpdf import FPDF
    from fpdf.enums import WrapMode, XPos, YPos

    from ..report.pdf import DEJAVU, DEJAVU_BOLD, DEJAVU_MONO, _escaper

    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.fromisoformat(record["started_utc"].replace("Z", "+00:00")))
    pdf.set_title(TITLE)
    pdf.set_creator(f"triage {record['tool_version']}")
    if DEJAVU.is_file() and DEJAVU_BOLD.is_file() and DEJAVU_MONO.is_file():
        pdf.add_font("sans", "", str(DEJAVU))
        pdf.add_font("sans", "B", str(DEJAVU_BOLD))
        pdf.add_font("mono", "", str(DEJAVU_MONO))
        sans, mono, esc, esc_mono = "sans", "mono", _escaper(DEJAVU), _escaper(DEJAVU_MONO)
    else:  # no Unicode font: core fonts, everything outside Latin-1 escaped visibly
        sans, mono, esc = "helvetica", "courier", _escaper(None)
        esc_mono = esc
    pdf.set_auto_page_break(True, margin=14)
    pdf.add_page()

    def line(text: str, size: float = 9, style: str = "", font: str = sans,
             escape: Any = esc) -> None:
        pdf.set_font(font, style, size)
        pdf.multi_cell(0, size * 0.45, escape(visible(text)), new_x=XPos.LMARGIN,
                       new_y=YPos.NEXT,
                       wrapmode=WrapMode.CHAR if font == mono else WrapMode.WORD)

    line(TITLE, 14, "B")
    pdf.ln(2)
    line(f"Verdict: {record['verdict']}", 12, "B")
    pdf.ln(2)
    for k, v in _rows(record):
        line(f"{k}: {v}", 8.5)
    pdf.ln(3)
    line("Checks", 12, "B")
    for c in record["checks"]:
        pdf.ln(1.5)
        line(f"{c['result']}  {c['id']}", 9, "B")
        line(c["description"], 8.5)
        line(f"expected: {c['expected']}", 7.5, font=mono, escape=esc_mono)
        line(f"observed: {c['observed']}", 7.5, font=mono, escape=esc_mono)
    return bytes(pdf.output())
