"""Errors raised by the :mod:`hashsets` library.

:mod:`hashsets` is usable without :mod:`triage`, so it has its own exception; the triage
CLI translates it into ``triage.errors.HashSetError`` (exit code 6) at the boundary.
"""

from __future__ import annotations


class HashSetFileError(ValueError):
    """A hash-set file or the store cannot be used. The message names the file and, where
    it applies, the line or record number."""


class DamagedSetError(HashSetFileError):
    """One set in the store cannot be read (a missing or corrupt table, values of the wrong
    width). The other sets are usable: matching can skip this one and report it."""

    def __init__(self, message: str, set_id: str, set_name: str) -> None:
        super().__init__(message)
        self.set_id = set_id
        self.set_name = set_name
