"""``triage report``, ``triage verify`` and ``triage key generate``: parse, call
:mod:`triage.report`, print. No SQL, no hashing here.

Registered in :mod:`triage.cli` with::

    from .cli_report import key_app, report_command, verify_command
    app.command("report", epilog=EXIT_CODES_HELP)(report_command)
    app.command("verify", epilog=EXIT_CODES_HELP)(verify_command)
    app.add_typer(key_app, name="key")
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .cli_errors import exit_codes
from .report import formats
from .textsafe import terminal_line

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

key_app = typer.Typer(
    name="key",
    help="Ed25519 signing keys for export manifests.",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: option names are never cut at 80 columns
)


#: The --format choices, from the exporter registry (a new exporter needs no edit here):
#: the reports, then the lead packages.
ReportFormat = StrEnum("ReportFormat", {name: name for name in formats()})  # type: ignore[misc]
DEFAULT_FORMAT = ReportFormat("html")


class VicsMedia(StrEnum):
    hits = "hits"
    unknown = "unknown"


class CsvRows(StrEnum):
    files = "files"
    hits = "hits"
    duplicates = "duplicates"


def report_command(
    case_dir: Annotated[Path, typer.Argument(help="An existing case directory.")],
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="Export format.")
                      ] = DEFAULT_FORMAT,
    out_path: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output file (default: CASE_DIR/exports/report.<ext>; "
        "vics-case.json for vics (vics-unknown.json with --media unknown), "
        "lead-package.json or .csv for leads-json/leads-csv, report-hits.csv for --rows "
        "hits, report-duplicates.csv for --rows duplicates; -2, -3 ... added when "
        "taken, never overwritten). The manifest is written beside it as "
        "<out>.manifest.json. An existing --out is refused without --force.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the export at --out and its manifest (and signature).")
                     ] = False,
    rows: Annotated[CsvRows, typer.Option(help="CSV only: one row per file, per hit, or "
                                          "per member of a duplicate group (same SHA-256; "
                                          "files and items inside files apart).")
                    ] = CsvRows.files,
    media: Annotated[VicsMedia, typer.Option(
        help="VICS only: media with case-set hits, or unknown pictures and videos (no "
        "exact or confirmed hit, no known-file hit; cluster ids in Comments) for "
        "submission as new material.")] = VicsMedia.hits,
    cluster: Annotated[list[str] | None, typer.Option(
        "--cluster", metavar="ID", help="leads-json/leads-csv only: this cluster of the "
        "latest leads run (repeatable; default: every lead, best first).")] = None,
    generated_at: Annotated[str | None, typer.Option(
        help="Generation time to print (ISO-8601, UTC), for byte-identical re-exports; "
        "default: $SOURCE_DATE_EPOCH, else now.")] = None,
    sign: Annotated[Path | None, typer.Option(
        "--sign", help="Sign the manifest with this Ed25519 private key (from 'triage key "
        "generate'); its fingerprint is printed in the report.")] = None,
    redact: Annotated[str | None, typer.Option(
        "--redact", metavar="<list>", help="Leave sensitive picture and video metadata out "
        "of every part of this export, a comma list of: location (GPS fields and tags), "
        "serial (body and lens serial numbers, image unique id). The method section, the "
        "manifest and the audit row say what was redacted.")] = None,
    include_free_text: Annotated[bool, typer.Option(
        "--include-free-text", help="Include free-text metadata tags (comments, "
        "descriptions, titles written by a person); left out by default.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")
                        ] = False,
) -> None:
    """Export a case (HTML, CSV, JSONL, PDF, VICS 2.0, or a lead package of the latest
    leads run's clusters as JSON or CSV) with a manifest of SHA-256 digests; the export is
    recorded in the case's audit trail. No picture is ever exported."""
    from .report.export import ReportError, export

    options: dict[str, object] = {"rows": rows.value} if format.value == "csv" else {}
    if media is not VicsMedia.hits:
        if format.value != "vics":
            with exit_codes():
                raise ReportError("--media is for --format vics")
        options["media"] = media.value
    if cluster:
        if not format.value.startswith("leads-"):
            with exit_codes():
                raise ReportError("--cluster is for --format leads-json or leads-csv")
        options["clusters"] = list(cluster)
    if redact is not None:
        options["redact"] = redact
    if include_free_text:
        options["include_free_text"] = True
    with exit_codes():
        r = export(case_dir, format.value, out_path, options=options,
                   generated_at=generated_at, sign_key=sign, argv=sys.argv[1:],
                   force=force)
    if json_out:
        typer.echo(json.dumps(r.to_dict(), indent=2, sort_keys=True))
        return
    out.print(terminal_line(f"{r.format}: ", str(r.output), f" ({r.size} bytes, {r.files} "
                            f"entries, {r.hits} hits)"))
    out.print(f"SHA-256 {r.sha256}")
    if r.metadata and r.metadata.get("redact"):
        out.print("redacted: " + ", ".join(r.metadata["redact"]))
    if r.metadata and r.metadata.get("include_free_text"):
        out.print("free-text metadata tags included")
    out.print(terminal_line("manifest: ", str(r.manifest)))
    if r.signature:
        out.print(terminal_line("signature: ", str(r.signature),
                                f" (key fingerprint {r.fingerprint})"))


def verify_command(
    case_dir: Annotated[Path, typer.Argument(help="An existing case directory.")],
    manifest: Annotated[list[Path] | None, typer.Option(
        "--manifest", "-m", help="Manifest(s) to check (default: every *.manifest.json "
        "under the case directory).")] = None,
    pubkey: Annotated[Path | None, typer.Option(
        help="Trusted public key (PEM from KEYFILE.pub, or 64 hex digits) to check "
        "signatures against; without it a signature is checked against the key the manifest "
        "declares.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")
                        ] = False,
) -> None:
    """Check the case database's integrity, the audit chain, every export manifest (each
    file's SHA-256, the database's SHA-256) and signatures. Names every mismatch; exit code 7
    when anything does not match."""
    from .report.verify import EXIT_VERIFY_FAILED, verify

    with exit_codes():
        checks = verify(case_dir, manifest, pubkey)
    bad = [c for c in checks if not c.ok]
    if json_out:
        typer.echo(json.dumps({"ok": not bad, "checks": [c.to_dict() for c in checks]},
                              indent=2, sort_keys=True))
    else:
        for c in checks:
            tag = ("OK  ", "green") if c.ok else ("FAIL", "red")
            out.print(terminal_line(tag, " ", c.subject, ": ", c.detail))
        out.print(terminal_line("verification failed: ", "; ".join(c.subject for c in bad))
                  if bad else "all checks passed")
    if bad:
        raise typer.Exit(EXIT_VERIFY_FAILED)


@key_app.command("generate")
def key_generate(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Private key file to write "
                                           "(0600); the public key goes to OUT.pub.")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file.")] = False,
) -> None:
    """Generate an Ed25519 signing key; print the public key's fingerprint (SHA-256 of the raw
    public key)."""
    from .report.signing import generate

    with exit_codes():
        key = generate(out_path, force=force)
    out.print(terminal_line("private key: ", str(out_path), " (0600; keep it secret)"))
    out.print(terminal_line("public key: ", str(out_path), ".pub"))
    typer.echo(f"fingerprint: {key.public.fingerprint}")
