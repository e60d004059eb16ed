"""The one place where library errors become a message and an exit code (the CLI's edge).

Every command runs its library call inside :func:`exit_codes`. A :class:`~triage.errors.
TriageError` carries its own exit code (4 evidence, 5 case, 6 hash sets, ...); a
``hashsets`` library error (:class:`~hashsets.errors.HashSetFileError`: the library does not
know triage) is a hash-set problem, exit 6; Ctrl-C and SIGTERM are 130. The message is
printed terminal-safe (:mod:`triage.textsafe`): errors quote paths and set names, which come
from evidence and hash sets. Anything else is a bug and keeps its traceback (exit 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from hashsets.errors import HashSetFileError

from .errors import HashSetError, TriageError

#: Exit codes (README "Exit codes"; issue 12 owns this table, the other issues use it).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
#: Some entries ended in the outcome class "error" (error, quarantined).
EXIT_FILE_ERRORS = 3
EXIT_EVIDENCE = 4
EXIT_CASE = 5
EXIT_HASH_SETS = 6
EXIT_VERIFICATION = 7
#: Some entries ended as coverage gaps (status incomplete), nothing worse; for
#: ``verify-image``: no stored hash to compare with.
EXIT_COVERAGE_GAP = 8
#: ``scan --cluster``: the Dask cluster cannot be used (issue 19).
EXIT_CLUSTER = 9
#: Exit code of an interrupted command (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130

#: When several codes apply, the first of this order wins (issue 12, item 3).
EXIT_PRECEDENCE = (EXIT_INTERRUPTED, EXIT_INTERNAL, EXIT_USAGE, EXIT_CASE, EXIT_EVIDENCE,
                   EXIT_CLUSTER, EXIT_HASH_SETS, EXIT_VERIFICATION, EXIT_FILE_ERRORS,
                   EXIT_COVERAGE_GAP, EXIT_OK)


#: What each exit code means, as the help texts say it (README "Exit codes").
EXIT_MEANINGS = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug: please report it)",
    EXIT_USAGE: "usage error",
    EXIT_FILE_ERRORS: "finished, but some entries ended as error or quarantined",
    EXIT_EVIDENCE: "evidence cannot be opened or read",
    EXIT_CASE: "case cannot be used",
    EXIT_HASH_SETS: "hash-set problem",
    EXIT_VERIFICATION: "verification failed",
    EXIT_COVERAGE_GAP: "coverage gap: some entries ended incomplete (nothing worse)",
    EXIT_CLUSTER: "the Dask cluster cannot be used (scan --cluster: not reachable, no "
                  "worker, or a worker refused: other versions, evidence not readable there)",
    EXIT_INTERRUPTED: "interrupted",
}


def exit_codes_help(*codes: int, **meanings: str) -> str:
    """The help text listing ``codes`` (one command's own exit codes, in numeric order) with
    :data:`EXIT_MEANINGS`; ``meanings`` overrides a code's text (keyword ``c7="..."``)."""
    parts = [f"{c} {meanings.get(f'c{c}', EXIT_MEANINGS[c])}" for c in sorted(set(codes))]
    return "Exit codes: " + "; ".join(parts) + "."


def worst_exit(*codes: int) -> int:
    """The one code to exit with when several apply (:data:`EXIT_PRECEDENCE`)."""
    present = set(codes) or {EXIT_OK}
    return next(c for c in EXIT_PRECEDENCE if c in present)


def print_error(message: str) -> None:
    from .console import err_console
    from .textsafe import terminal_line

    err_console.print(terminal_line(("error:", "red"), " ", message), soft_wrap=True)


@contextmanager
def exit_codes(interrupted: str = "interrupted") -> Iterator[None]:
    """Run a command's library call; turn its errors into a message on stderr and the
    matching exit code (see module doc). ``interrupted`` is said on Ctrl-C/SIGTERM."""
    try:
        yield
    except HashSetFileError as e:
        print_error(str(e))
        raise typer.Exit(HashSetError.exit_code) from None
    except TriageError as e:
        print_error(str(e))
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        typer.echo(interrupted, err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
