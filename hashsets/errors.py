"""Errors raised by the :mod:`hashsets` library.

:mod:`hashsets` is usable without :mod:`triage`, so it has its own exception; the triage
CLI translates it into ``triage.errors.HashSetError`` (exit code 6) at the boundary.
"""

from __future__ import annotations


class HashSetFileError(ValueError):
    """A hash-set file or the store cannot be used. The message names the file and, where
    it applies, the line or record number."""
