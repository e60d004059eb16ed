"""Terminal output: a rich progress bar on stderr (only when it is a terminal) and the
end-of-scan summary. Never prints content: paths, counts, hashes and reasons only. Text
that may come from evidence goes through :mod:`triage.textsafe` (never console markup)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.status import Status
from rich.table import Table

from .model import (
    OUTCOME_CLASSES,
    OUTCOME_COVERAGE_GAP,
    OUTCOME_DONE,
    OUTCOME_ERROR,
    OUTCOME_NOT_APPLICABLE,
    OUTCOME_PENDING,
    CaseCounts,
    FileProblem,
    ImageCheck,
    MatchSummary,
    RunSummary,
    outcome_counts,
)
from .textsafe import for_terminal, terminal_line

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


class RichProgress:
    """Implements :class:`triage.scan.Progress`; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._total_files = 0
        self._done_files = 0
        self._enum_status: Status | None = None
        self._verify: Progress | None = None
        self._verify_task: TaskID | None = None

    def warn(self, message: str) -> None:
        err_console.print(terminal_line(("warning:", "yellow"), " ", message),
                          soft_wrap=True)

    def note(self, message: str) -> None:
        """Something the examiner should know that is not a problem (resuming, new
        evidence added to a case, changed case details)."""
        err_console.print(terminal_line(("note:", "cyan"), " ", message), soft_wrap=True)

    def verifying(self, done: int, total: int) -> None:
        """``--verify-image``: bytes of the image hashed so far."""
        if not self.enabled:
            return
        if self._verify is None:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
            self._verify = Progress(
                TextColumn("[bold]verifying image"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=err_console)
            self._verify_task = self._verify.add_task("verify", total=max(total, 1))
            self._verify.start()
        assert self._verify_task is not None
        self._verify.update(self._verify_task, completed=done)

    def enumerated(self, count: int) -> None:
        if self.enabled:
            if self._enum_status is None:
                self._enum_status = err_console.status("listing entries...")
                self._enum_status.start()
            self._enum_status.update(f"listing entries... {count:,}")

    def start_processing(self, files: int, total_bytes: int) -> None:
        if self._enum_status is not None:
            self._enum_status.stop()
            self._enum_status = None
        if not self.enabled:
            return
        self._total_files = files
        self._done_files = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=err_console)
        self._task = self._progress.add_task(self._label(), total=max(total_bytes, 1))
        self._progress.start()

    def _label(self) -> str:
        return f"files {self._done_files:,}/{self._total_files:,}"

    def advance(self, files: int, nbytes: int) -> None:
        if self._progress is not None and self._task is not None:
            self._done_files += files
            self._progress.update(self._task, advance=nbytes, description=self._label())

    def finish(self) -> None:
        if self._enum_status is not None:
            self._enum_status.stop()
            self._enum_status = None
        for bar in (self._progress, self._verify):
            if bar is not None:
                bar.stop()
        self._progress = self._verify = None


def print_summary(summary: RunSummary, console: Console = out_console) -> None:
    """The end-of-scan summary: what was scanned and whether it resumed, counts, the image
    verification, matches, the errors and the coverage gaps, and a verdict. A table with
    nothing to show is left out."""
    t = Table(title="Scan summary", show_header=False, title_justify="left")
    t.add_column("what")
    t.add_column("value", justify="right", overflow="fold")
    counts = summary.counts or CaseCounts()
    ev = summary.evidence
    if ev is not None:
        t.add_row("evidence", for_terminal(ev.path))
        if ev.resolved_path is not None:
            t.add_row("  read at (link target)", for_terminal(ev.resolved_path))
        if ev.added and ev.other_evidence:
            t.add_row("  added to a case holding", f"{ev.other_evidence:,} other evidence")
        if ev.resumed_run is not None:
            t.add_row("resumed", f"the scan listed by run {ev.resumed_run}")
            t.add_row("  entries finished by earlier runs", f"{ev.earlier_entries:,}")
        t.add_row("new entries (listed by this run)", f"{ev.new_entries:,}")
        t.add_row("entries processed by this run", f"{ev.pending_entries:,}")
    elif summary.resumed:
        t.add_row("resumed", "yes")
    t.add_row("entries", f"{counts.entries:,}")
    by_outcome = counts.by_outcome or outcome_counts(counts.by_status)
    for outcome in OUTCOME_CLASSES:
        n = by_outcome.get(outcome, 0)
        if n or outcome != OUTCOME_PENDING:
            t.add_row(f"  {OUTCOME_LABELS[outcome]}", f"{n:,}")
    for kind, n in counts.by_kind.items():
        t.add_row(f"  kind: {kind}", f"{n:,}")
    t.add_row("extension mismatches", f"{counts.extension_mismatches:,}")
    t.add_row("images with perceptual hashes", f"{counts.images_with_perceptual_hashes:,}")
    if counts.videos is not None:  # issue 15
        v = counts.videos
        t.add_row("videos: decoded / in part / not decoded",
                  f"{v.decoded:,} / {v.decoded_in_part:,} / {v.not_decoded:,} "
                  f"({v.frames:,} frames hashed)")
        for why, n in v.reasons.items():
            t.add_row(for_terminal(f"  not fully decoded: {why}"), f"{n:,}")
    t.add_row("duplicate groups (same SHA-256)",
              f"{counts.duplicate_groups:,} ({counts.files_in_duplicate_groups:,} files)")
    t.add_row("bytes hashed", f"{counts.hashed_bytes:,}")
    pool = summary.pool
    if pool is not None:
        t.add_row("worker crashes / timeouts / quarantined",
                  f"{pool.worker_crashes} / {pool.timeouts} / {pool.quarantined}")
        if pool.decodes_waited or pool.decodes_refused:
            t.add_row("large decodes that waited for memory / refused",
                      f"{pool.decodes_waited} / {pool.decodes_refused}")
    if summary.cluster is not None:  # scan --cluster (issue 19)
        cl = summary.cluster
        t.add_row("Dask batches (lost and resent)", f"{cl.batches:,} ({cl.batches_lost:,})")
        for worker, n in cl.files_by_worker.items():
            t.add_row(for_terminal(f"  files processed by {worker}"), f"{n:,}")
    t.add_row("elapsed", f"{summary.elapsed_seconds:.1f} s")
    console.print(t)
    if summary.case_changes:
        c = Table(title="Case details changed (audited)", title_justify="left")
        for col in ("detail", "was", "now"):
            c.add_column(col, overflow="fold")
        for ch in summary.case_changes:
            c.add_row(ch.field, for_terminal("(none)" if ch.old is None else ch.old),
                      for_terminal(ch.new or ""))
        console.print(c)
    if summary.image_verification is not None:
        print_image_check(summary.image_verification, console)
    if summary.carving is not None:  # issue 17
        cs = summary.carving
        k = Table(title="Carved from unallocated space, slack and unpartitioned space",
                  title_justify="left")
        k.add_column("what")
        k.add_column("count", justify="right")
        k.add_row("carved items", f"{cs.items:,}")
        k.add_row("  intact (end parsed, decodes)", f"{cs.intact:,}")
        k.add_row("  partial carves (coverage gaps)", f"{cs.partial:,}")
        k.add_row("  a listed file's own data (found again)", f"{cs.found_again:,}")
        k.add_row("  a listed file's content at another place (another copy)",
                  f"{cs.copies:,}")
        k.add_row("fragments of known files (block hashes)", f"{cs.fragments:,}")
        console.print(k)
        console.print(terminal_line("caution: ", cs.caution))
    if summary.matches is not None:
        print_matches(summary.matches, console)
    _print_files(console, "Files that could not be processed (errors)",
                 counts.problems_shown, by_outcome.get(OUTCOME_ERROR, 0))
    _print_files(console, "Coverage gaps: hashed and matched, but not fully examined",
                 counts.gaps_shown, by_outcome.get(OUTCOME_COVERAGE_GAP, 0))
    console.print(verdict(by_outcome))
    if summary.case_database:
        console.print(terminal_line("case database: ", summary.case_database))


#: How the summary names each outcome class (issue 12), with the statuses it holds.
OUTCOME_LABELS = {
    OUTCOME_DONE: "done",
    OUTCOME_NOT_APPLICABLE: "not applicable by design (skipped)",
    OUTCOME_COVERAGE_GAP: "coverage gaps (incomplete)",
    OUTCOME_ERROR: "errors (error, quarantined)",
    OUTCOME_PENDING: "pending (not processed yet)",
}


def verdict(by_outcome: dict[str, int]) -> str:
    """One sentence on how far the entries were processed. "Every entry was processed" only
    when no entry ended as an error, a coverage gap or still pending."""
    errors = by_outcome.get(OUTCOME_ERROR, 0)
    gaps = by_outcome.get(OUTCOME_COVERAGE_GAP, 0)
    pending = by_outcome.get(OUTCOME_PENDING, 0)
    parts = []
    if errors:
        parts.append(f"{errors:,} could not be processed (errors)")
    if gaps:
        parts.append(f"{gaps:,} {'was' if gaps == 1 else 'were'} processed only in part "
                     "(coverage gaps)")
    if pending:
        parts.append(f"{pending:,} {'is' if pending == 1 else 'are'} still pending (run the "
                     "scan again to resume)")
    if not parts:
        return ("Every entry was processed (or is not applicable by design: directories, "
                "links, sparse-by-design streams, names without metadata).")
    return "Not every entry was processed: " + "; ".join(parts) + "."


def _print_files(console: Console, title: str, rows: tuple[FileProblem, ...],
                 total: int) -> None:
    if not rows:
        return
    shown = f"first {len(rows)} of {total:,}" if total > len(rows) else f"{total:,}"
    p = Table(title=f"{title} ({shown})", title_justify="left")
    for col in ("path", "status", "stage", "reason"):
        p.add_column(col, overflow="fold")
    for row in rows:
        p.add_row(*(for_terminal(v or "") for v in (row.path, row.status, row.stage,
                                                      row.reason)))
    console.print(p)


#: What ``--verify-image`` says for each result (the verdict line).
IMAGE_VERDICTS = {
    "match": "VERIFIED: the computed hash matches the hash stored at acquisition",
    "mismatch": "MISMATCH: the computed hash differs from the hash stored at acquisition",
    "no stored hash": "NOT VERIFIED: the image stores no hash to compare with",
    "not an image": "NOT VERIFIED: the evidence is a folder, not a disk image",
}


def print_image_check(check: ImageCheck, console: Console = out_console) -> None:
    """The image verification of ``scan --verify-image``: computed and stored hashes, and
    the verdict (stored hashes come from the image: printed terminal-safe)."""
    if check.result != "not an image":
        t = Table(title="Image verification (recorded in the evidence row)",
                  title_justify="left")
        for col in ("hash", "computed", "stored"):
            t.add_column(col, overflow="fold")
        t.add_row("MD5", check.computed_md5 or "", for_terminal(check.stored_md5 or "none"))
        t.add_row("SHA-1", check.computed_sha1 or "",
                  for_terminal(check.stored_sha1 or "none"))
        console.print(t)
    console.print(IMAGE_VERDICTS[check.result])


def print_matches(matches: MatchSummary, console: Console = out_console) -> None:
    """Print the match summary of :func:`triage.matching.match_case`."""
    from .cli_hashset import print_match_summary

    print_match_summary(matches)
