"""Bounds on what one hash-set import may cost (issue 11, defect 3), and the readers that
enforce them.

A hash set comes from someone else and is hostile input like the evidence. Every importer
reads through these readers, so no line, JSON record, nesting level, zip member or SQLite
value can make an import allocate more than a bounded amount of memory, and each bound
that is hit ends the import with a :class:`~hashsets.errors.HashSetFileError` naming the
file, the place and the bound (the triage CLI turns it into exit code 6). The bounds are
:class:`ImportLimits`; ``triage hashset import --limit NAME=N`` changes one.

* :class:`LineReader`: the lines of a text format (optionally inside a zip), read in
  chunks; a line longer than ``line_bytes`` fails (Python's own ``readline`` would grow
  without end on a file with no newline).
* :class:`JsonGuard`: a file object between a JSON file and ijson that scans every chunk
  (vectorised, numpy) BEFORE the parser sees it: nesting depth, length of one string or
  scalar token, and size of one record. ijson keeps a prefix string per open level, so its
  memory grows with the square of the depth: the depth must be stopped before it parses.
* :class:`CappedReader`: a zip member's decompressed bytes, capped absolutely and by ratio
  to its compressed size (a 2 MB zip can hold 2 GB of zeros).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from ..errors import HashSetFileError

MiB = 1 << 20
GiB = 1 << 30

#: Longest message text quoted from a hash-set file (characters); longer text is cut and
#: its size given instead (issue 11: a 100 MB value was echoed whole).
CLIP_CHARS = 200


def clip(text: str, limit: int = CLIP_CHARS) -> str:
    """``text`` itself when short, else its first ``limit`` characters and
    ``…(N bytes)``, N being the UTF-8 size of the whole text."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text.encode('utf-8', errors='replace'))} bytes)"


@dataclass(frozen=True)
class ImportLimits:
    """The bounds of one import. Defaults are far above any real set (NSRL RDS 2.x lines
    are under 1 KiB; a VICS Media record a few KiB, nested 6 deep) and far below what
    would exhaust a workstation; each is named on the command line by its field name with
    ``-`` for ``_`` (``--limit line-bytes=4194304``)."""

    #: Longest line (without its line end) of a text format, in bytes.
    line_bytes: int = 1 * MiB
    #: Largest record: a JSON record (a VICS Media object) or a CSV row spanning lines.
    record_bytes: int = 16 * MiB
    #: Longest single JSON string or scalar (outside or inside a record), in bytes.
    value_bytes: int = 1 * MiB
    #: Deepest JSON nesting (VICS records are about 6 deep).
    depth: int = 64
    #: Most records (lines, JSON records, rows) in one file.
    records: int = 1_000_000_000
    #: Most decompressed bytes of a zipped member.
    unzipped_bytes: int = 64 * GiB
    #: Largest decompressed/compressed ratio of a zipped member (text compresses about
    #: 3-10 times; zeros 1,000 times). Members under ``unzipped_floor`` bytes are exempt.
    zip_ratio: int = 100
    #: Decompressed size below which the ratio is not checked.
    unzipped_floor: int = 16 * MiB
    #: Longest value SQLite may produce while an RDSv3 database is read
    #: (``SQLITE_LIMIT_LENGTH``; hashes are 64 characters).
    sqlite_value_bytes: int = 1 * MiB
    #: Longest SQLite may work without producing a row (a view that never yields one).
    sqlite_stall_seconds: float = 120.0
    #: Longest one SQLite read may take in total.
    sqlite_seconds: float = 6 * 3600.0

    @classmethod
    def names(cls) -> list[str]:
        return [f.name.replace("_", "-") for f in dataclasses.fields(cls)]

    def setting(self, field: str) -> str:
        """A bound as the command line names it: ``line-bytes=1048576``."""
        value = getattr(self, field)
        return f"{field.replace('_', '-')}={value:g}" if isinstance(value, float) else \
            f"{field.replace('_', '-')}={value}"

    def with_items(self, items: Iterable[str]) -> ImportLimits:
        """A copy with ``NAME=N`` items applied. Raises ValueError naming a bad item."""
        changes: dict[str, Any] = {}
        types = {f.name: f.type for f in dataclasses.fields(self)}
        for item in items:
            name, sep, value = item.partition("=")
            key = name.strip().lower().replace("-", "_")
            if not sep or key not in types:
                raise ValueError(f"{item!r} is not NAME=N with NAME one of "
                                 f"{', '.join(self.names())}")
            try:
                number = float(value) if "float" in str(types[key]) else int(value)
            except ValueError:
                raise ValueError(f"{item!r}: {value!r} is not a number") from None
            if number <= 0:
                raise ValueError(f"{item!r}: a bound must be positive")
            changes[key] = number
        return dataclasses.replace(self, **changes)


def exceeded(path: Path, where: str, what: str, limits: ImportLimits, field: str
             ) -> HashSetFileError:
    """The error of a bound that was hit: file, place, what and the option to change it."""
    name = field.replace("_", "-")
    return HashSetFileError(f"{path}: {where}: {what}: over the bound {limits.setting(field)} "
                            f"(raise it with --limit {name}=N); nothing imported")


def line_too_long(path: Path, lineno: int, limits: ImportLimits) -> HashSetFileError:
    """The error of a line over ``line_bytes`` (the same from every reader)."""
    return exceeded(path, f"line {lineno}", "a line too long", limits, "line_bytes")


# -- text lines -------------------------------------------------------------------------

#: Bytes read at a time by the line reader.
CHUNK_BYTES = 1 * MiB
_BOM = b"\xef\xbb\xbf"


class CappedReader:
    """A binary stream whose total size is capped: reading past ``cap`` bytes raises the
    error made by ``error(total)``. For zip members, whose sizes in the header can lie."""

    def __init__(self, raw: IO[bytes], cap: int, ratio_cap: int | None,
                 error: Any) -> None:
        self.raw = raw
        self.cap = cap
        self.ratio_cap = ratio_cap
        self.error = error
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else CHUNK_BYTES)
        self.total += len(data)
        if self.total > self.cap:
            raise self.error(self.total, "unzipped_bytes")
        if self.ratio_cap is not None and self.total > self.ratio_cap:
            raise self.error(self.total, "zip_ratio")
        return data

    def close(self) -> None:
        self.raw.close()


def zip_member_reader(zf: Any, member: str, path: Path, limits: ImportLimits
                      ) -> CappedReader:
    """A zip member's decompressed bytes, capped by ``unzipped_bytes`` and by ``zip_ratio``
    times its compressed size (sizes from the central directory, which bounds how much
    compressed data is read)."""
    info = zf.getinfo(member)
    ratio_cap = max(limits.unzipped_floor, limits.zip_ratio * max(info.compress_size, 1))

    def error(total: int, field: str) -> HashSetFileError:
        if field == "zip_ratio":
            return exceeded(path, f"zip member {clip(member)}",
                            f"more than {total} bytes from {info.compress_size} compressed "
                            f"(ratio over {limits.zip_ratio})", limits, field)
        return exceeded(path, f"zip member {clip(member)}",
                        f"more than {total} bytes decompressed", limits, field)

    return CappedReader(zf.open(member), limits.unzipped_bytes, ratio_cap, error)


class LineReader:
    """The lines of a binary stream as text, each with its line end (like a text file
    opened with ``newline=""``: lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``), UTF-8
    with or without BOM, undecodable bytes replaced.

    Reads ``CHUNK_BYTES`` at a time; a line longer than ``limits.line_bytes`` (without its
    line end) raises, naming the line number. With ``records=True`` the caller calls
    :meth:`mark` after each record it completed (a CSV row may span lines) and the bytes
    read since the last mark are bounded by ``limits.record_bytes``.
    """

    def __init__(self, raw: IO[bytes] | CappedReader, path: Path, limits: ImportLimits,
                 *, records: bool = False) -> None:
        self.raw = raw
        self.path = path
        self.limits = limits
        self.records = records
        self.lineno = 0  # lines handed out so far
        self._since_mark = 0
        self._mark_line = 1
        self._it = self._lines()

    def __enter__(self) -> LineReader:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.raw.close()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._it)

    def mark(self) -> None:
        """A record ended with the last line handed out."""
        self._since_mark = 0
        self._mark_line = self.lineno + 1

    def _too_long(self, lineno: int, size: int) -> HashSetFileError:
        return line_too_long(self.path, lineno, self.limits)

    def _emit(self, line: bytes) -> str:
        self.lineno += 1
        body = len(line.rstrip(b"\r\n"))
        if body > self.limits.line_bytes:
            raise self._too_long(self.lineno, body)
        if self.records:
            self._since_mark += len(line)
            if self._since_mark > self.limits.record_bytes:
                raise exceeded(self.path, f"lines {self._mark_line}-{self.lineno}",
                               f"one record of more than {self._since_mark} bytes",
                               self.limits, "record_bytes")
        return line.decode("utf-8", errors="replace")

    def _lines(self) -> Iterator[str]:
        carry = b""
        first = True
        bound = self.limits.line_bytes
        while True:
            chunk = self.raw.read(CHUNK_BYTES)
            eof = not chunk
            if first:
                while len(chunk) < len(_BOM) and (more := self.raw.read(CHUNK_BYTES)):
                    chunk += more  # (short reads: the BOM is whole before it is looked at)
                chunk = chunk.removeprefix(_BOM)
                first = False
            buf = carry + chunk if carry else chunk
            if eof:
                if buf:
                    yield self._emit(buf)
                return
            parts = buf.splitlines(keepends=True)
            last = parts[-1] if parts else b""
            # An unterminated last part, or one ending in \r (its \n may follow), waits.
            if last and not last.endswith(b"\n"):
                carry = parts.pop()
            else:
                carry = b""
            for part in parts:
                yield self._emit(part)
            if len(carry) > bound + 1:
                raise self._too_long(self.lineno + 1, len(carry))


def open_lines(path: Path, limits: ImportLimits, *, records: bool = False) -> LineReader:
    """A :class:`LineReader` over a file (raises ``HashSetFileError`` when unreadable)."""
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise HashSetFileError(f"{path}: cannot read: {e.strerror or e}") from e
    return LineReader(raw, path, limits, records=records)


# -- JSON -------------------------------------------------------------------------------

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("{"), ord("[")]] = 1
_OPEN[[ord("}"), ord("]")]] = -1
_SPECIAL = np.zeros(256, dtype=bool)
_SPECIAL[[ord(c) for c in '{}[],:']] = True
#: bytes.translate table: 1 for the bytes the guard looks at, 0 for all others (translate
#: runs at memory speed, faster than a numpy table lookup).
_INTEREST = bytes(1 if chr(i) in '"\\{}[],:' else 0 for i in range(256))


class JsonGuard:
    """A binary file object for ijson that checks each chunk before handing it on.

    Tracks, across chunks and in vectorised form, whether each byte is inside a string
    (quotes not escaped by an odd run of backslashes) and the nesting depth of the
    brackets outside strings. Raises when the depth exceeds ``limits.depth``, when a string
    or scalar token exceeds ``limits.value_bytes``, or when a container opened at
    ``record_depth`` (1 = the root) spans more than ``limits.record_bytes``. Offsets in
    messages are byte offsets in the file. Sound for valid JSON; on invalid JSON it may
    raise one of these errors where the parser would have said "malformed": both fail.
    """

    def __init__(self, raw: IO[bytes], path: Path, limits: ImportLimits,
                 record_depth: int | None = None) -> None:
        self.raw = raw
        self.path = path
        self.limits = limits
        self.record_depth = record_depth
        self.pos = 0  # file offset of the next chunk
        self.in_string = False
        self.backslashes = 0  # backslashes ending the previous chunk
        self.depth = 0
        self.record_start: int | None = None  # offset of the open record's first byte
        self.last_special = -1  # offset of the last quote/structural byte

    def __enter__(self) -> JsonGuard:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.raw.close()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else CHUNK_BYTES)
        if data:
            self._scan(data)
            self.pos += len(data)
        return data

    def _fail(self, offset: int, what: str, field: str) -> HashSetFileError:
        return exceeded(self.path, f"byte {offset}", what, self.limits, field)

    def _scan(self, data: bytes) -> None:
        # Only the bytes that matter (quotes, backslashes, brackets, commas, colons) are
        # looked at, as a sparse array of their positions: a JSON file is mostly other
        # bytes, so this is several times faster than working on every byte.
        a = np.frombuffer(data, dtype=np.uint8)
        n = len(a)
        pos = np.flatnonzero(np.frombuffer(data.translate(_INTEREST), dtype=np.bool_))
        m = len(pos)
        if m == 0:  # one token or string goes on through the whole chunk
            self._check_gap(self.pos + n)
            self._records_tail(self.record_start, n)
            self.backslashes = 0
            return
        c = a[pos]
        quote = c == _QUOTE
        carry = self.backslashes if pos[0] == 0 else 0
        if b"\\" in data:
            # A backslash "chains" when the next byte of the chunk is the next interesting
            # one: the chained backslashes just before a byte are the run that may escape it.
            k = np.arange(m, dtype=np.int64)
            adjacent = np.empty(m, dtype=bool)
            adjacent[:-1] = pos[1:] == pos[:-1] + 1
            adjacent[-1] = False
            chain = (c == _BACKSLASH) & adjacent
            last_break = np.maximum.accumulate(np.where(chain, -1, k))
            run_before = np.zeros(m, dtype=np.int64)
            run_before[0] = carry
            if m > 1:
                lb = last_break[:-1]
                run_before[1:] = k[:-1] - lb + np.where(lb == -1, carry, 0)
            quote &= run_before % 2 == 0
        elif carry % 2:
            quote[0] = False  # escaped by the backslashes that ended the last chunk
        # Inside a string: an odd number of real quotes before (this quote excluded).
        toggles = np.cumsum(quote) - quote + int(self.in_string)
        inside = (toggles % 2 == 1) & ~quote
        delta = np.where(inside, 0, _OPEN[c])
        depth = np.cumsum(delta, dtype=np.int64) + self.depth
        if int(depth.max()) > self.limits.depth:
            at = int(pos[int(np.argmax(depth > self.limits.depth))])
            raise self._fail(self.pos + at, f"JSON nested more than {self.limits.depth} "
                             "levels deep", "depth")
        # Longest string or scalar token: the gap between consecutive quotes/structurals.
        special = pos[quote | (_SPECIAL[c] & ~inside)] + self.pos
        if len(special):
            gaps = np.diff(special, prepend=self.last_special)
            worst = int(np.argmax(gaps))
            if int(gaps[worst]) - 1 > self.limits.value_bytes:
                raise self._fail(int(special[worst]) - int(gaps[worst]) + 1,
                                 f"a JSON value of {int(gaps[worst]) - 1} bytes",
                                 "value_bytes")
            self.last_special = int(special[-1])
        self._check_gap(self.pos + n)
        if self.record_depth is not None:
            self._records(pos + self.pos, delta, depth, n)
        self.depth = int(depth[-1])
        self.in_string = bool((int(toggles[-1]) + int(quote[-1])) % 2)
        tail = n - len(data.rstrip(b"\\"))
        self.backslashes = self.backslashes + n if tail == n else tail

    def _check_gap(self, end: int) -> None:
        """The token or string still open at ``end`` (no quote or structural byte since
        the last one) must not already be over the bound."""
        if end - self.last_special - 1 > self.limits.value_bytes:
            raise self._fail(self.last_special + 1, f"a JSON value of more than "
                             f"{end - self.last_special - 1} bytes", "value_bytes")

    def _records(self, offsets: np.ndarray, delta: np.ndarray, depth: np.ndarray,
                 n: int) -> None:
        """Sizes of the containers opened at ``record_depth`` (``offsets``: file offsets of
        the interesting bytes, ``delta``/``depth`` theirs)."""
        r = self.record_depth
        assert r is not None
        opens = offsets[(delta == 1) & (depth == r)]
        closes = offsets[(delta == -1) & (depth == r - 1)]
        # Opens and closes at the record level alternate: the i-th close ends the i-th
        # open, counting the record still open from the last chunk first.
        starts = opens if self.record_start is None else \
            np.concatenate(([self.record_start], opens))
        sizes = closes - starts[:len(closes)] + 1
        if len(sizes) and int(sizes.max()) > self.limits.record_bytes:
            i = int(np.argmax(sizes > self.limits.record_bytes))
            raise self._fail(int(starts[i]), f"a JSON record of {int(sizes[i])} bytes",
                             "record_bytes")
        start = int(starts[len(closes)]) if len(starts) > len(closes) else None
        self._records_tail(start, n)

    def _records_tail(self, start: int | None, n: int) -> None:
        """The record still open at the end of this chunk must not be over the bound."""
        if start is not None and self.pos + n - start > self.limits.record_bytes:
            raise self._fail(start, f"a JSON record of more than {self.pos + n - start} "
                             "bytes", "record_bytes")
        self.record_start = start


def open_json(path: Path, limits: ImportLimits, record_depth: int | None = None
              ) -> JsonGuard:
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise HashSetFileError(f"{path}: cannot read: {e.strerror or e}") from e
    return JsonGuard(raw, path, limits, record_depth)
