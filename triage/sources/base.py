"""Evidence sources: the contract every source implements.

A source turns evidence (a directory, a disk image, ...) into a stream of
:class:`FileEntry` values and, given an entry, opens its content for reading.

Two halves, two processes:

* ``entries()`` runs in the supervisor's enumeration step. A source whose enumeration
  touches the evidence (a walk, native code that may crash or hang such as libtsk) runs it
  in an isolated child (:mod:`triage.isolation`) and gives up on a child that sends nothing
  for :attr:`Source.enumeration_timeout` seconds (``scan --timeout``).
* ``open_entry()`` runs in a worker process. Workers rebuild the source from
  :meth:`Source.spec` (a picklable tuple) with :func:`triage.sources.open_spec`, so no
  native handle is ever shared across processes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar

from ..errors import EvidenceError

# Entry kinds and the entry record live in the result model; re-exported here for sources.
from ..model import (
    BLOCK_DEVICE,
    CHAR_DEVICE,
    DIRECTORY,
    FIFO,
    FILE,
    OTHER,
    SOCKET,
    SYMLINK,
    FileEntry,
    Problem,
)

__all__ = ["BLOCK_DEVICE", "CHAR_DEVICE", "DIRECTORY", "FIFO", "FILE", "OTHER", "SOCKET",
           "SYMLINK", "ContentChangedError", "EntryAmendment", "FileEntry", "Problem", "Source"]


#: Seconds an enumeration child may go without progress before it is killed and the part it
#: was listing is recorded as an error; the default of ``scan --timeout``
#: (:data:`triage.pipeline.DEFAULT_TIMEOUT`), which sets it on every source.
DEFAULT_ENUMERATION_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class EntryAmendment:
    """Something learned about an entry after it was yielded (e.g. by a consistency check at
    the end of a volume's walk): extra notes, and problems recorded in the errors table.
    ``entries()`` may yield these after the entry they name (by ``identity``); the scan
    applies them to the entry's row."""

    identity: str
    notes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()


class ContentChangedError(EvidenceError):
    """The file changed while it was read (RELIABILITY #12): status ``unstable``."""


class Source(ABC):
    """An evidence source. Subclasses register in :mod:`triage.sources` by ``name``."""

    name: ClassVar[str]
    #: Part of the contract: ``describe()`` and ``entries()`` give up on a child that makes
    #: no progress for this many seconds (a stuck mount, a looping libtsk), record why and go
    #: on. ``triage scan`` sets it from ``--timeout`` before calling either.
    enumeration_timeout: float = DEFAULT_ENUMERATION_TIMEOUT

    @classmethod
    @abstractmethod
    def detect(cls, path: str) -> bool:
        """True when this source can read ``path``. Never changes or consumes anything."""

    @abstractmethod
    def spec(self) -> tuple[str, Any]:
        """A picklable ``(name, args)`` from which a worker rebuilds this source."""

    @classmethod
    @abstractmethod
    def from_spec(cls, args: Any) -> Source:
        """Rebuild from ``spec()[1]`` (in a worker process)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Evidence metadata recorded before any file is read: at least ``type``, ``path``,
        ``size``; images add partitions, file systems, stored acquisition hashes."""

    @abstractmethod
    def entries(self) -> Iterator[FileEntry | EntryAmendment]:
        """Every entry, in a deterministic order. Problems with one entry or one volume are
        reported as entries with ``preset_status`` (or ``warnings()``), never raised.
        :class:`EntryAmendment` items may follow the entries they name."""

    @abstractmethod
    def open_entry(self, entry: FileEntry) -> BinaryIO:
        """Open the content of a readable entry for sequential reading (worker side).

        Raise :class:`EvidenceError` (or an ``OSError``) with a clear reason when it cannot
        be read. ``close()`` on the returned object may raise
        :class:`ContentChangedError` if the content changed while it was read.
        If some ranges could not be read, the object fills them with zero bytes and lists
        them afterwards in an attribute ``bad_ranges`` (``[(offset, length), ...]``); the
        worker then records read status ``partial`` and never presents the digests as the
        file's hashes (RELIABILITY #4).
        """

    def warnings(self) -> list[str]:
        """Problems about the evidence as a whole (e.g. mounted read-write)."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release handles."""
