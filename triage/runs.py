"""Every command that changes a case is a library operation inside ONE context manager.

:func:`case_run` opens the case for writing, which takes its exclusive lock (another
triage process using the case is refused with a clear :class:`~triage.errors.CaseError`,
exit code 5), checks the database before writing anything (its integrity, and its data
rows against the digests the audit trail recorded: rows changed outside triage are refused,
exit 7), migrates an older schema forward and marks runs left ``running`` by a dead process
``interrupted``. It then records a run row and its start and end in the hash-chained audit
trail, whatever happens inside: ``completed``, ``failed`` (with the error) or
``interrupted`` (Ctrl-C, SIGTERM); the end row records the digest of every data table
(:mod:`triage.datadigest`).

The operations: :func:`triage.scan.scan`, :func:`match` (below), :func:`triage.report.
export.export` (locked; the export is an audit row, not a run) and :func:`triage.report.
verify.verify` (read-only: never locks out others, never writes, never creates). The
command line only parses options, calls these and maps errors to exit codes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .case import Case
from .errors import CaseError
from .model import MatchSummary, record_dict
from .versions import versions


@dataclass
class Run:
    """A run in progress: the open, locked case and its run row. ``status`` and ``summary``
    are what the run row records at the end unless an exception decides otherwise."""

    case: Case
    run_id: int
    command: str
    status: str = "completed"
    summary: dict[str, Any] = field(default_factory=dict)
    #: Case details this run changed: ``(field, old, new)`` (see ``case_info``).
    case_changes: list[tuple[str, str | None, str]] = field(default_factory=list)


@contextmanager
def case_run(case_dir: str | os.PathLike[str], command: str, *,
             argv: Sequence[str] = (), options: dict[str, Any] | None = None,
             create: bool = False, case_info: dict[str, str | None] | None = None,
             preflight: Callable[[Case], None] | None = None) -> Iterator[Run]:
    """Open (``create``: or create) the case, locked, and record one run of ``command``
    around the body (see module doc). ``preflight`` runs first, before anything is
    recorded: a refusal there leaves the case as it was. ``case_info`` (number, examiner,
    agency, notes) is recorded next, so that a new case's creation precedes its first run
    in the audit trail."""
    with Case.open(case_dir, create=create) as case:
        if preflight is not None:
            preflight(case)
        changes = case.set_case_info(**case_info) if case_info else []
        run_id = case.start_run(command, list(argv), options or {}, versions())
        run = Run(case, run_id, command, case_changes=changes)
        status = "failed"
        try:
            yield run
            status = run.status
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except BaseException as e:
            run.summary.setdefault("error", str(e) or type(e).__name__)
            raise
        finally:
            try:
                case.end_run(run_id, status, run.summary)
            except CaseError:
                if status == "completed":
                    raise
                # Already failing: the original error is the one to report; the run stays
                # 'running' and is marked 'interrupted' at the next opening.


def scan_options(case: Case, evidence_id: int, run_id: int | None = None
                 ) -> dict[str, Any] | None:
    """The options a scan of the evidence was run with, as its run row records them
    (``ScanOptions.recorded``): those of ``run_id`` when it is a scan run (the run that
    wrote a file's result, ``files.run_id``), else those of the last scan run that wrote a
    result of the evidence or added it. None when the case records no such scan."""
    conn = case.conn
    if run_id is not None:
        row = conn.execute("SELECT options FROM runs WHERE id=? AND command='scan'",
                           (run_id,)).fetchone()
        if row is not None:
            return _options(row[0])
    row = conn.execute(
        "SELECT options FROM runs WHERE command='scan' AND id IN (SELECT run_id FROM files "
        "WHERE evidence_id=? UNION SELECT added_run_id FROM evidence WHERE id=?) "
        "ORDER BY id DESC LIMIT 1", (evidence_id, evidence_id)).fetchone()
    return None if row is None else _options(row[0])


def _options(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def match(case_dir: str | os.PathLike[str], *, store: str | Path | None = None,
          thresholds: dict[str, int] | None = None,
          argv: Sequence[str] = ()) -> MatchSummary:
    """``triage match``: match an existing case against the current store, as a new run.

    The summary says how many entries were still pending (an interrupted scan): matches
    over an unfinished scan are recorded but a report prefers a run over a finished one
    (:meth:`~triage.case.Case.report_match_run`)."""
    from hashsets.store import default_store_path

    from .confirm import confirm_for_match
    from .matching import effective_thresholds, match_case

    options = {"store": str(store) if store else None, "thresholds": thresholds or {}}
    with case_run(case_dir, "match", argv=argv, options=options) as run:
        pending = run.case.pending_count()
        # Issue 14: draft-decoded near candidates are decoded again at full size where
        # the evidence can be re-opened; elsewhere their hits stay unconfirmed candidates.
        confirmation = confirm_for_match(
            run.case, run.run_id, Path(store) if store else default_store_path(),
            effective_thresholds(thresholds or None))
        summary = match_case(run.case, run.run_id, store_path=store,
                             thresholds=thresholds or None, confirmation=confirmation)
        notes = summary.notes
        if pending:
            notes = (*notes, f"{pending} entries of this case are not scanned yet (an "
                             "interrupted scan): run the scan again to finish it, then match")
        summary = replace(summary, pending_entries=pending, notes=notes)
        run.summary = record_dict(summary)
    return summary
