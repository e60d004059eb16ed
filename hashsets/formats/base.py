"""The contract every hash-set file format implements, and the records it yields."""

from __future__ import annotations

import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import HashSetFileError
from .bounds import ImportLimits, LineReader, clip, open_lines, zip_member_reader

if TYPE_CHECKING:
    from ..video import Frame

#: Bytes of a file that ``detect`` looks at. Enough for a VICS header or a CSV header row.
HEAD_SIZE = 64 * 1024


_NO_METADATA = (None,) * 10


@dataclass(slots=True)
class Record:
    """One accepted record of a hash-set file: one known item and what the set says of it.

    ``hashes`` maps an algorithm name to its canonical lower-case hex value. ``ref`` is the
    1-based line number (text formats) or record number (JSON, SQLite) in the source, the
    number quoted in every message and stored with every match.
    """

    ref: int
    hashes: dict[str, str]
    category_raw: str | None = None
    series: str | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    is_distributed: bool | None = None
    baseline: bool | None = None
    entry_ref: str | None = None  # the source's own id (VICS MediaID, ICSE Image ID)
    name: str | None = None  # file name, when the source gives one
    photodna: str | None = None  # stored, exported, never matched (proprietary)
    #: The source's other fields of this record (iLook path and size, HashKeeper
    #: directory...), by the source's own column name: kept in the store and copied into
    #: every match on this entry.
    fields: dict[str, str] | None = None

    @property
    def has_metadata(self) -> bool:
        # A tuple comparison, not any(): this runs once per record of multi-million imports.
        return (self.category_raw, self.series, self.victim_identified,
                self.offender_identified, self.is_distributed, self.baseline, self.entry_ref,
                self.name, self.photodna, self.fields) != _NO_METADATA


@dataclass(slots=True)
class Rejected:
    """A record that was not imported, with its line/record number and the reason."""

    ref: int
    reason: str

    def __post_init__(self) -> None:
        # Reasons quote the file's text: never more than a screen line of it.
        self.reason = clip(self.reason)


@dataclass(slots=True)
class Batch:
    """Many accepted records without metadata at once: the bulk path of large lists.

    ``refs`` holds the records' line/record numbers (ascending). ``values`` maps an
    algorithm to an ``(n, bytes)`` uint8 array of raw digests, row ``i`` belonging to
    ``refs[i]``; ``present`` (when given for an algorithm) marks the rows that have a value
    (a record may lack one algorithm, never all). Equivalent to :meth:`records`.
    """

    refs: npt.NDArray[np.int64]
    values: dict[str, npt.NDArray[np.uint8]]
    present: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.refs)

    def records(self) -> Iterator[Record]:
        """The same content as one :class:`Record` per row (for tests and slow consumers)."""
        hexes = {alg: [row.tobytes().hex() for row in v] for alg, v in self.values.items()}
        for i, ref in enumerate(self.refs.tolist()):
            yield Record(ref, {alg: h[i] for alg, h in hexes.items()
                               if alg not in self.present or self.present[alg][i]})


@dataclass
class ParseContext:
    """What a parser is given and what it reports back besides records.

    ``options`` holds format options (e.g. ``algorithm`` for bare lists); ``limits`` the
    bounds every reader enforces (:mod:`hashsets.formats.bounds`). A parser sets
    ``version`` when the format carries one, and may add to ``info`` (shown by
    ``hashset show``), ``name``, ``known`` and ``notes``.
    """

    path: Path
    options: Mapping[str, Any] = field(default_factory=dict)
    limits: ImportLimits = field(default_factory=ImportLimits)
    version: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: What the file says of itself, used unless the examiner chose (a HashKeeper ``.hke``:
    #: the set's name, and ``known`` from its notable flag).
    name: str | None = None
    known: bool | None = None
    #: Sentences for the examiner, shown after the import (a missing ``.hke``...).
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class VideoRecord:
    """One accepted video of a video set (vPDQ, :mod:`hashsets.formats.vpdq`): its name,
    category and hashed frames in file order. ``ref`` is its 1-based record number."""

    ref: int
    name: str
    frames: list[Frame]
    category_raw: str | None = None
    #: Where in the source it was read (the file or archive member).
    source: str = ""


Item = Record | Rejected | VideoRecord
BulkItem = Record | Rejected | Batch | VideoRecord


class Format(ABC):
    """A hash-set file format.

    Contract:

    * ``name`` is stable (stored with every imported set).
    * ``detect(path, head)`` answers from the first :data:`HEAD_SIZE` bytes (and, for
      container formats, a read-only look at the file); it never consumes or changes
      anything and never raises for foreign input.
    * ``parse(ctx)`` yields one :class:`Record` or :class:`Rejected` per record, in file
      order, streaming (a multi-GB file never sits in memory). A problem that makes the rest
      of the file unreadable (truncated JSON, not a database) raises
      :class:`~hashsets.errors.HashSetFileError` naming the file and record number.
    * ``parse`` reads only through the bounded readers of :mod:`hashsets.formats.bounds`
      (``open_text``, ``zip_text``, ``JsonGuard``) or, for SQLite, with ``ctx.limits``
      applied: no input may make it allocate without bound.
    * ``known`` is True for sets of known (not "good") files such as NSRL.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    known: ClassVar[bool] = False
    #: Category presets (see :mod:`hashsets.categories`) used when none is chosen.
    default_category_map: ClassVar[str | None] = None

    @abstractmethod
    def detect(self, path: Path, head: bytes) -> bool: ...

    @abstractmethod
    def parse(self, ctx: ParseContext) -> Iterator[Item]: ...

    def parse_bulk(self, ctx: ParseContext) -> Iterator[BulkItem] | None:
        """Optional fast path for large, metadata-free lists: the same records as
        :meth:`parse` (same refs, values, rejections and messages, in file order), but
        runs of accepted records grouped in :class:`Batch` objects so that no Python runs
        per record. None (the default) when the format has no bulk path; the store then
        uses :meth:`parse`. Tests check ``parse_bulk`` against ``parse``."""
        return None


# -- helpers shared by the text formats --------------------------------------------------

def content_lines(f: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(line number, line without its line ending)`` for every line that is neither
    blank nor a ``#`` comment: the loop every line-oriented format shares."""
    for lineno, line in enumerate(f, 1):
        text = line.rstrip("\r\n")
        if text.strip() and not text.lstrip().startswith("#"):
            yield lineno, text


def open_text(ctx: ParseContext, *, records: bool = False) -> LineReader:
    """The lines of a text hash list: UTF-8 with or without BOM, any line ending,
    undecodable bytes replaced (they can only be in file names, never in valid hex), each
    line bounded by ``ctx.limits.line_bytes`` (and, with ``records=True``, rows spanning
    lines by ``record_bytes``: call ``mark()`` after each row)."""
    return open_lines(ctx.path, ctx.limits, records=records)


def text_head(head: bytes) -> str:
    """The decoded head of a file, BOM removed, for ``detect``."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.decode("utf-8", errors="replace")


def first_lines(head: bytes, n: int = 20) -> list[str]:
    """Up to ``n`` complete, non-blank, non-comment lines of the head (the last partial line
    is dropped unless the head is the whole file)."""
    text = text_head(head)
    lines = text.splitlines()
    if len(head) >= HEAD_SIZE and lines:
        lines = lines[:-1]
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")][:n]


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0", ""}


def parse_flag(value: object) -> bool | None:
    """A flag given as a JSON boolean, a number, or a string ("true", "Yes", "0"...).

    Returns None when absent or unrecognised (never guesses)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE and text:
        return False
    return None


def read_zip_member(path: Path, wanted: str) -> tuple[zipfile.ZipFile, str] | None:
    """Open ``path`` as a zip and find a member whose base name is ``wanted`` (any case)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return None
    for info in zf.infolist():
        if info.filename.replace("\\", "/").rsplit("/", 1)[-1].lower() == wanted.lower():
            return zf, info.filename
    zf.close()
    return None


def zip_text(zf: zipfile.ZipFile, member: str, ctx: ParseContext, *,
             records: bool = False) -> LineReader:
    """The lines of a zip member, as :func:`open_text`, its decompressed size capped
    (``unzipped_bytes`` and ``zip_ratio``)."""
    return LineReader(zip_member_reader(zf, member, ctx.path, ctx.limits), ctx.path,
                      ctx.limits, records=records)


def fail(ctx: ParseContext, ref: int | None, message: str) -> HashSetFileError:
    """The error that ends a parse: file, record number, and the message (its quotes of
    the file cut: at most 500 characters in all)."""
    where = f"{ctx.path}" + (f": record {ref}" if ref is not None else "")
    return HashSetFileError(f"{where}: {clip(message, 500)}")
