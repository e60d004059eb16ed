"""``triage verify-image``: recompute an image's MD5/SHA-1 and compare with the stored E01
hashes. Thin: parsing and printing only; the work is :func:`triage.sources.image.verify_image`.

Exit codes (README "Exit codes"): 0 verified (every stored hash matches); 7 mismatch; 8
nothing stored to compare with (raw images, or an E01 without hashes: a coverage gap, not a
failure); 4 the image cannot be opened or read (EvidenceError); 5 ``--case`` cannot be used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .cli_errors import EXIT_COVERAGE_GAP, EXIT_OK, EXIT_VERIFICATION, exit_codes
from .errors import EvidenceError
from .textsafe import plain_terminal

#: verify-image's exit code for each result of :func:`~.sources.image.verify_image`.
EXIT_OF_RESULT = {"match": EXIT_OK, "mismatch": EXIT_VERIFICATION,
                  "no stored hash": EXIT_COVERAGE_GAP}


def verify_image_command(
    image: Annotated[Path, typer.Argument(help="Disk image: E01 (first segment), raw/dd, "
                                                "split raw, VMDK, VHD or QCOW2.")],
    case: Annotated[Path | None, typer.Option(
        "--case", help="Record the result in this existing case (never creates one): "
        "the computed hashes in the image's evidence row, the result in the audit trail.")
                                ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recompute the image hash (MD5 and SHA-1 of the media data) and compare it with the
    hash stored in the E01 at acquisition. Exit 0 verified, 7 mismatch, 8 when the image
    stores no hash to compare with."""
    from .sources.image import verify_image

    with exit_codes():
        try:
            result = verify_image(str(image))
        except OSError as e:
            if isinstance(e, EvidenceError):
                raise
            raise EvidenceError(f"{image}: {e.strerror or e}") from e
        evidence_id: int | None = None
        if case is not None:
            from .case import Case

            with Case.open(case, create=False) as c:
                evidence_id = c.image_evidence(str(image))
                c.record_image_verification(evidence_id, result)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True, indent=2))
    else:
        typer.echo(f"image:     {plain_terminal(result['path'])} ({result['container']}, "
                   f"{result['size']} bytes)")
        for algo in ("md5", "sha1"):
            stored = result["stored"].get(algo)
            line = f"{algo.upper():<5} computed {result['computed'][algo]}"
            if stored:
                verdict = "match" if result["compared"][algo] else "MISMATCH"
                line += f"  stored {stored}  {verdict}"
            typer.echo(plain_terminal(line))  # the stored hash comes from the image
        if "libewf" in result:
            typer.echo(f"libewf:    {result['libewf']['origin']} {result['libewf']['version']}")
        verdicts = {"match": "VERIFIED: the computed hash matches the stored hash",
                   "mismatch": "MISMATCH: the computed hash differs from the stored hash",
                   "no stored hash": "NOT VERIFIED: the image stores no hash to compare with"}
        typer.echo(verdicts[result["result"]])
        if case is not None:
            typer.echo(plain_terminal(
                f"recorded in {case}: evidence {evidence_id} (computed hashes in its "
                "evidence row; the result in the audit trail)" if evidence_id is not None
                else f"recorded in {case}'s audit trail only: the image is not evidence "
                "of that case"))
    raise typer.Exit(EXIT_OF_RESULT[result["result"]])
