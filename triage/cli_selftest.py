"""``triage selftest``: run the known-answer tests (:mod:`triage.selftest`) and write the
validation record (:mod:`triage.selftest.record`). Thin: parsing and printing only.

Exit codes (README "Validation"): 0 every check passed; 7 (``EXIT_VERIFICATION``) any
check failed, each failed check named on stderr and in the record; 2 a record already in
``--out`` or an unusable ``--sign`` key; 5 the record cannot be written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from .cli_errors import (
    EXIT_CASE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFICATION,
    exit_codes,
    exit_codes_help,
)
from .console import err_console, out_console
from .textsafe import terminal_line

SELFTEST_EXITS = exit_codes_help(
    EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_CASE, EXIT_VERIFICATION, EXIT_INTERRUPTED,
    c0="every check passed",
    c2="usage error (also: --out already holds a validation record; an unusable --sign key)",
    c5="the validation record cannot be written",
    c7="a check failed (each failed check is named)")


def selftest_command(
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for the validation record (validation.json, .html, .pdf "
        "and validation.manifest.json; created if missing, never overwritten). Default: "
        "triage-validation-<UTC time> in the current folder.")] = None,
    sign: Annotated[Path | None, typer.Option(
        "--sign", help="Sign the record's manifest with this Ed25519 private key (from "
        "'triage key generate'), as 'triage report --sign' signs an export.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the record as JSON on "
                                           "stdout instead of a table.")] = False,
) -> None:
    """Known-answer self-test for validating this installation (ISO/IEC 17025): digests of
    standard test vectors, perceptual hashes of synthetic pictures, a scan of a tiny disk
    image shipped with triage (partition table, FAT, ext2, deleted files), hash-set import
    and matching, an export and its verification, the offline guard. Needs no data outside
    the installed package; takes seconds. Writes a validation record with every check's
    expected and observed value and the verdict."""
    from . import selftest
    from .selftest import record as rec

    with exit_codes():
        key = None
        if sign is not None:
            from .report.signing import load_private

            key = load_private(sign)
        folder = out or Path(
            "triage-validation-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
        rec.refuse_existing(folder)  # before the checks run, not after
        result = selftest.run()
        record = rec.build(result, fingerprint=key.public.fingerprint if key else None)
        written = rec.write(folder, record, key)
    if json_out:
        typer.echo(json.dumps(record, indent=2, sort_keys=True))
    else:
        for c in result.checks:
            out_console.print(terminal_line(("pass", "green") if c.ok else ("FAIL", "red"),
                                            " ", c.id), soft_wrap=True)
            if not c.ok:
                out_console.print(terminal_line("     expected: ", c.expected), soft_wrap=True)
                out_console.print(terminal_line("     observed: ", c.observed), soft_wrap=True)
        summary = record["summary"]
        out_console.print(f"{summary['checks']} checks: {summary['passed']} passed, "
                          f"{summary['failed']} failed ({result.elapsed_seconds} s)")
        for p in written:
            out_console.print(terminal_line("written: ", str(p)), soft_wrap=True)
    if result.failed:
        err_console.print(terminal_line(("self-test FAILED: ", "red"),
                                        ", ".join(c.id for c in result.failed)),
                          soft_wrap=True)
        raise typer.Exit(EXIT_VERIFICATION)
    if not json_out:
        out_console.print("self-test passed: every check agrees with its reference value")
