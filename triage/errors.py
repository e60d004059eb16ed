"""Project exceptions. Each also subclasses the matching built-in where one exists, so that
``except OSError`` keeps working for callers that do not know ours."""

from __future__ import annotations


class TriageError(Exception):
    """Base class: a problem the user can act on, with a message that names the thing."""

    exit_code = 1


class EvidenceError(TriageError, OSError):
    """The evidence cannot be opened or is not what it claims to be."""

    exit_code = 4


class CaseError(TriageError):
    """The case directory or database is unusable (corrupt, locked, not writable)."""

    exit_code = 5


class HashSetError(TriageError, ValueError):
    """A hash-set file or store problem."""

    exit_code = 6


class EvidenceMismatchError(CaseError):
    """The evidence at a path the case already holds is not the evidence it scanned there
    (exit code 5: the case cannot be used for it)."""


class CaseInUseError(CaseError):
    """Another triage process holds the case (a scan, match or report is running)."""


class CaseDataError(TriageError):
    """The case's data rows do not match the digests its audit trail recorded: they were
    changed outside triage (exit code 7, like a failed verification). Nothing is written."""

    exit_code = 7


class UsageError(TriageError, ValueError):
    """The command cannot be run as given (exit code 2): the case would sit inside the
    evidence, or the scan's case details contradict the case's. The message says what to
    change; nothing was written."""

    exit_code = 2


class ClusterError(TriageError):
    """``scan --cluster``: the Dask cluster cannot be used (the scheduler cannot be reached,
    no worker, a worker refused: other versions, evidence not readable there). Exit code 9;
    finished files are kept and the same command resumes."""

    exit_code = 9
