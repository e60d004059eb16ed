"""``triage leads``: series clusters of the case's media and the ranked leads queue (issue 16
items 3 and 4; rules in docs/leads.md). Prints cluster ids, scores, counts and one-line
reasons: never a path, a metadata value or anything of the content."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
from .textsafe import for_terminal, terminal_line

LEADS_EXITS = exit_codes_help(
    EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_CASE, EXIT_VERIFICATION, EXIT_INTERRUPTED,
    c7="the case's data rows were changed outside triage (nothing written)")
#: Leads shown unless --limit says otherwise (all are recorded in the case).
DEFAULT_LIMIT = 20

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def leads_command(
    case_dir: Annotated[Path, typer.Argument(help="An existing case directory.")],
    store: Annotated[Path | None, typer.Option(
        "--store", envvar="TRIAGE_HASHSET_STORE",
        help="Hash-set store searched for known series near the case's media (default: "
             "per-user data directory; also $TRIAGE_HASHSET_STORE).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0,
                                       help="Leads shown (0: all; every lead is recorded "
                                            "in the case).")] = DEFAULT_LIMIT,
    variants: Annotated[bool, typer.Option(
        help="Also search every picture's rotations, mirror images and unletterboxed form "
             "(rotated copies join their originals); --no-variants searches up to 9 times "
             "fewer values on very large cases.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of "
                                           "tables.")] = False,
) -> None:
    """Cluster the case's pictures and video frames into series (near perceptual hashes,
    the same camera body) and rank the clusters of unknown media by signals explained in
    one line each. Recorded as a new run ('leads') in the case's audit trail; reports
    show the latest. Shows no content, paths or metadata values (docs/leads.md)."""
    from .clusters import leads

    with exit_codes():
        summary, found = leads(case_dir, store=store, variants=variants, argv=sys.argv[1:])
    queue = [x for x in found if x.rank is not None]
    shown = queue if limit == 0 else queue[:limit]
    if json_out:
        doc = {"summary": summary.record(),
               "leads": [{"rank": x.rank, "cluster_id": x.cluster_id, "score": x.score,
                          "size": x.size, "known_members": x.known_members,
                          "review_members": x.review_members,
                          "reasons": [{"signal": s, "points": p, "reason": r}
                                      for s, p, r in x.reasons]} for x in shown]}
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    out.print(terminal_line(
        f"leads run {summary.run}: {summary.media} media files in {summary.clusters} "
        f"clusters ({summary.multi_member_clusters} of 2 or more files, "
        f"{summary.known_clusters} with known material); {summary.leads} leads"))
    joined = ", ".join(f"{k} {v}" for k, v in summary.joined_by.items())
    out.print(terminal_line(f"joins: {joined} (thresholds: PDQ {summary.thresholds['pdq']}, "
                            f"pHash {summary.thresholds['phash']} with dHash "
                            f"{summary.thresholds['dhash']})"))
    for note in summary.notes:
        err.print(terminal_line(("note:", "cyan"), " ", note))
    if not shown:
        out.print("no leads")
        return
    t = Table(title=f"leads (best first; {len(shown)} of {len(queue)})")
    for col, justify in (("#", "right"), ("cluster", "left"), ("score", "right"),
                         ("files", "right"), ("known", "right"), ("reasons", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for x in shown:
        t.add_row(str(x.rank), x.cluster_id, str(x.score), str(x.size),
                  str(x.known_members), _reasons(x.reasons))
    out.print(t)


def _reasons(reasons: tuple[tuple[str, int, str], ...]) -> Text:
    """One line per reason; each escaped (series and set names come from hash sets)."""
    text = Text()
    for i, (_, points, reason) in enumerate(reasons):
        if i:
            text.append("\n")
        text.append_text(for_terminal(f"+{points} {reason}"))
    return text
