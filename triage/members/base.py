"""Shared types of the container layer: limits, the per-container budget, members, errors.

Nothing in this package writes to disk or uses a member name as a path: member names are
data (``bytes``) that end up in the case database, never in ``open()``.
"""

from __future__ import annotations

import io
import re
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from ..model import ERROR, FILE, INCOMPLETE

#: Read size while streaming a member out of a decompressor: bounds memory per step and
#: lets the time limit be checked between steps.
STREAM_CHUNK = 8 << 20

#: What ``expand`` accepts: the container's bytes, or a seekable binary file opened
#: read-only (so a large top-level container need not sit in memory).
Source = bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True)
class Limits:
    """Bounds for expanding one top-level container and everything nested inside it.

    Every limit that is hit is reported with a reason that names it (``... (max_ratio)``).
    """

    max_depth: int = 5  # nesting depth of containers; the top-level container is level 1
    max_members: int = 10_000  # per container
    max_total_bytes: int = 2 << 30  # bytes produced by one top-level container, all levels
    max_ratio: float = 200.0  # decompressed/compressed per member (zip bomb)
    #: The ratio limit only applies once a member has produced this many bytes: small,
    #: very compressible files (a 4 KiB run of zeros deflates 500:1) are not bombs.
    ratio_min_bytes: int = 1 << 20
    max_member_bytes: int = 512 << 20  # a larger member is not read into memory
    #: Expansion time per top-level container: the time spent parsing and decompressing,
    #: not the time the caller spends on each member (decoding, hashing): ``walk`` stops
    #: the clock while a member is out with its caller. 30 s is half the worker's default
    #: per-file deadline (``triage.pipeline.DEFAULT_TIMEOUT``, 60 s), so this limit is
    #: reached (and named) before the supervisor kills the worker.
    max_seconds: float = 30.0
    #: Largest LZMA/LZMA2 dictionary (or PPMd model) a 7z folder may declare: the decoder
    #: allocates all of it before the first byte. 1 GiB leaves room under the worker's
    #: default 4 GiB address space (``WorkerOptions.memory_limit``) for a member at
    #: ``max_member_bytes``; 7-Zip's own presets use at most 64 MiB (``-mx9``) and shrink
    #: the dictionary to the data's size.
    max_dictionary_bytes: int = 1 << 30
    #: The worker's address-space limit, only to name it when expansion runs out of memory.
    memory_bytes: int | None = None


#: Flags of content that is recognised but deliberately not expanded (no password tried, no
#: decoder for the format or method, names the 7z library refuses): a coverage gap.
NOT_EXPANDED_FLAGS = frozenset({"encrypted", "unsupported", "hostile-name"})


def problem_status(flags: tuple[str, ...]) -> str:
    """The outcome status (:mod:`triage.model`) of a member without data, or of a container
    that was not fully expanded, from its flags: a bound that was hit (``limit:*``) or
    content recognised but not expanded (:data:`NOT_EXPANDED_FLAGS`) is a coverage gap
    (``incomplete``); anything else (``corrupt``, an unreadable range) is an ``error``."""
    if any(f.startswith("limit:") or f in NOT_EXPANDED_FLAGS for f in flags):
        return INCOMPLETE
    return ERROR


class ContainerError(Exception):
    """The container as a whole could not be (fully) expanded.

    ``reason`` is the text to record on the container; ``flags`` are short machine tags
    (``"encrypted"``, ``"limit:time"``, ``"unsupported"``, ``"corrupt"``); ``status`` is
    the container's outcome (:func:`problem_status`). Raised either before any member
    (unreadable container) or after some members were yielded (a limit or corruption part
    way through): members already yielded stay valid.
    """

    def __init__(self, reason: str, flags: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.flags = flags

    @property
    def status(self) -> str:
        return problem_status(self.flags)


def memory_limit_error(kind: str | None, limits: Limits) -> ContainerError:
    """The ``ContainerError`` for a MemoryError while expanding a ``kind`` container (None:
    somewhere in a file's contents): a bound that was hit, named with its value."""
    bound = (f"the worker's memory limit ({limits.memory_bytes >> 20} MiB, --memory-limit)"
             if limits.memory_bytes else "the memory available to the worker")
    what = f"expanding the {kind} container" if kind else "expanding the file's contents"
    return ContainerError(f"limit: memory: {what} needed more than {bound} (MemoryError)",
                          ("limit:memory",))


@dataclass
class Member:
    """One item found inside a container.

    ``name`` is the inner path exactly as stored (raw bytes; for embedded pictures
    ``@<offset>.<ext>``); it is NEVER used as a file-system path. ``data`` is the member's
    bytes (decompressed) or ``None``, in which case ``reason`` says why (encrypted, limit
    hit, corrupt, not a regular file) and ``status`` what outcome that is. Times are POSIX
    seconds. ``entry_kind`` is the member's type with the file-system sources' names
    (:mod:`triage.model`: ``file``, ``directory``, ``symlink``, ``char_device``, ...);
    ``link_target`` is a link's stored target (a symbolic link's, or the earlier member a
    tar hard link names), as raw bytes.
    """

    name: bytes
    kind: str  # "member" (archive/document member) or "embedded" (carved picture)
    size: int | None
    mtime: float | None = None
    offset: int | None = None
    data: bytes | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None
    entry_kind: str = FILE
    link_target: bytes | None = None
    #: Outcome of a member without data; None: from its flags (:func:`problem_status`).
    status_hint: str | None = None

    @property
    def status(self) -> str | None:
        """None for a member with data; else ``skipped``, ``incomplete`` or ``error``."""
        if self.data is not None:
            return None
        return self.status_hint or problem_status(self.flags)


@dataclass
class Budget:
    """Running totals for one top-level container and all its nested children.

    Create one per top-level container; pass the same object to every ``expand`` call for
    that container and its descendants. ``depth`` counts the containers currently open
    above the one being expanded (0 for the top-level container). ``paused`` is the time
    spent outside expansion (see :meth:`outside`), which ``max_seconds`` does not count.
    """

    limits: Limits
    clock: Callable[[], float] = time.monotonic
    produced: int = 0
    depth: int = 0
    started: float = field(default=-1.0)
    paused: float = 0.0

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def elapsed(self) -> float:
        """Seconds of expansion work so far (time inside :meth:`outside` excluded)."""
        return self.clock() - self.started - self.paused

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Stop the clock for the duration of the block: ``walk`` holds it around each
        ``yield``, while the caller decodes and hashes the member, which is not expansion
        work and must not use up the container's time (issue 11, defect 5)."""
        start = self.clock()
        try:
            yield
        finally:
            self.paused += self.clock() - start

    def check_time(self) -> None:
        """Raise ``ContainerError`` once the container has used up ``max_seconds``."""
        spent = self.elapsed()
        if spent > self.limits.max_seconds:
            raise ContainerError(
                f"limit: time {spent:.1f} s > {self.limits.max_seconds:g} s (max_seconds)",
                ("limit:time",))

    def check_depth(self) -> None:
        """Raise ``ContainerError`` if a container at this depth may not be opened."""
        level = self.depth + 1
        if level > self.limits.max_depth:
            raise ContainerError(
                f"limit: nesting depth {level} > {self.limits.max_depth} (max_depth)",
                ("limit:depth",))

    def remaining(self) -> int:
        return max(0, self.limits.max_total_bytes - self.produced)

    def charge(self, n: int) -> None:
        self.produced += n

    @contextmanager
    def nested(self) -> Iterator[None]:
        """Count one more open container for the duration of the block."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


def as_stream(data: Source) -> BinaryIO:
    """A seekable binary stream over ``data`` (bytes-like) or ``data`` itself (a file)."""
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(data)
    return data


def stream_size(stream: BinaryIO) -> int:
    here = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(here)
    return end


_DRIVE = re.compile(rb"^[A-Za-z]:")
_ADDRESS = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def name_flags(name: bytes) -> tuple[str, ...]:
    """Flags for a hostile-looking stored name (the member is still hashed from memory)."""
    flags: list[str] = []
    norm = name.replace(b"\\", b"/")
    if norm.startswith(b"/") or _DRIVE.match(norm):
        flags.append("absolute-name")
    if b".." in norm.split(b"/"):
        flags.append("traversal-name")
    if b"\x00" in name:
        flags.append("nul-in-name")
    return tuple(flags)


@dataclass(frozen=True)
class Caps:
    """The byte cap for one member, and which limit each part of it comes from."""

    member: int
    total: int
    ratio: int | None  # None when the compressed size is unknown

    @property
    def cap(self) -> int:
        caps = [self.member, self.total]
        if self.ratio is not None:
            caps.append(self.ratio)
        return min(caps)


def member_caps(limits: Limits, budget: Budget, compressed: int | None) -> Caps:
    ratio = None
    if compressed is not None:
        ratio = max(int(limits.max_ratio * max(compressed, 1)), limits.ratio_min_bytes)
    return Caps(limits.max_member_bytes, budget.remaining(), ratio)


def limit_reason(limits: Limits, budget: Budget, caps: Caps, produced: int,
                 compressed: int | None, declared: bool) -> tuple[str, str]:
    """(reason, flag) for a member that went past ``caps.cap`` after ``produced`` bytes."""
    what = "declared size" if declared else "decompressed"
    if caps.ratio is not None and produced > caps.ratio and caps.ratio <= min(caps.member,
                                                                             caps.total):
        ratio = produced / max(compressed or 1, 1)
        more = "" if declared else " or more"
        return (f"limit: compression ratio {ratio:.1f}{more} > {limits.max_ratio:g} "
                f"(max_ratio; {what} {produced} bytes from {compressed} compressed)",
                "limit:ratio")
    if caps.member <= caps.total:
        return (f"limit: member {what} {produced} bytes > {limits.max_member_bytes} "
                f"(max_member_bytes)", "limit:member-bytes")
    return (f"limit: total bytes {budget.produced + produced} > {limits.max_total_bytes} "
            f"(max_total_bytes)", "limit:total-bytes")


def read_capped(read: Callable[[int], bytes], cap: int, budget: Budget) -> bytes | None:
    """Read a stream to its end, keeping at most ``cap`` bytes.

    Returns the bytes, or ``None`` once more than ``cap`` bytes come out (the caller names
    the limit). Reads in chunks and checks the time limit between chunks, so a bomb costs
    at most ``cap`` bytes of memory and ``max_seconds`` of time.
    """
    chunks: list[bytes] = []
    got = 0
    while True:
        budget.check_time()
        chunk = read(min(STREAM_CHUNK, cap + 1 - got))
        if not chunk:
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]
        got += len(chunk)
        if got > cap:
            return None
        chunks.append(chunk)


class Decompressor(Protocol):
    """One compressed stream being decoded, as ``bz2.BZ2Decompressor`` and
    ``lzma.LZMADecompressor`` are (``ZlibStream`` gives zlib the same shape)."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class ZlibStream:
    """``zlib.decompressobj`` with the ``needs_input``/``unused_data`` contract of bz2/lzma.

    zlib keeps the input it could not use because of ``max_length`` in ``unconsumed_tail``
    AND, once the stream has ended, the input after the end in ``unused_data``: the two can
    hold the same bytes. Only ``unused_data`` is what follows the stream; the tail is fed
    back here, never joined to it (joining duplicated every later gzip member).
    """

    def __init__(self, wbits: int) -> None:
        self._d = zlib.decompressobj(wbits)
        self._needs_input = True

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def needs_input(self) -> bool:
        return self._needs_input

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        """Decode ``data`` (empty when more output is pending from earlier input)."""
        if not data:
            data = self._d.unconsumed_tail
        out = self._d.decompress(data, max(max_length, 0))
        # More output may be pending while input remains in the tail, or when the output
        # filled max_length exactly (zlib can hold back part of a match).
        self._needs_input = not self._d.eof and not self._d.unconsumed_tail and (
            max_length <= 0 or len(out) < max_length)
        return out


@dataclass(frozen=True)
class StreamFormat:
    """How a command-line tool joins concatenated streams (gzip members, bzip2/xz streams).

    ``magic`` starts every stream; ``padding`` is the multiple of zero bytes allowed
    between streams (xz Stream Padding, xz file format 1.0.4 section 2.2), 0 for none.
    """

    name: str
    new: Callable[[], Decompressor]
    magic: bytes
    padding: int = 0


READ_CHUNK = 1 << 20  # compressed bytes read from the stream per step


def decompress_concatenated(read: Callable[[int], bytes], fmt: StreamFormat, cap: int,
                            budget: Budget) -> tuple[bytes | None, bool]:
    """Decode every stream of a file of concatenated ``fmt`` streams, as ``gzip -dc``,
    ``bzip2 -dc`` and ``xz -dc`` do, keeping at most ``cap`` bytes.

    Contract: returns (the joined output, or None once more than ``cap`` bytes came out;
    whether non-zero bytes follow the last stream). After a stream ends, decoding goes on
    only if the next bytes are ``fmt.magic`` (for xz after zero padding of a multiple of
    ``fmt.padding``); anything else ends the data, as the tools do ("trailing garbage
    ignored"), and a run of zero bytes there is not reported. Memory is bounded by
    ``cap`` plus one step (``STREAM_CHUNK`` out, ``READ_CHUNK`` in) whatever the ratio or
    the number of streams; time is checked between steps. Raises ``EOFError`` for a
    stream cut short, and the decompressor's error (``OSError``, ``zlib.error``,
    ``lzma.LZMAError``) for a corrupt one, including one that follows valid streams.
    """
    chunks: list[bytes] = []
    got = 0
    d = fmt.new()
    pending = b""
    while True:
        budget.check_time()
        if not pending and d.needs_input:
            pending = read(READ_CHUNK)
            if not pending:
                raise EOFError(f"{fmt.name} stream ends before its end marker (truncated)")
        out = d.decompress(pending, min(STREAM_CHUNK, cap + 1 - got))
        pending = b""
        got += len(out)
        if got > cap:
            return None, False
        if out:
            chunks.append(out)
        if not d.eof:
            continue
        rest = d.unused_data
        if fmt.padding:
            rest, zeros = _skip_zeros(rest, read, budget)
            if zeros % fmt.padding:
                return b"".join(chunks), bool(rest) or _nonzero_rest(read, budget)
        while len(rest) < len(fmt.magic):
            more = read(READ_CHUNK)
            if not more:
                break
            rest += more
        if rest.startswith(fmt.magic):
            d, pending = fmt.new(), rest
            continue
        trailing = bool(rest.strip(b"\x00")) or _nonzero_rest(read, budget)
        return b"".join(chunks), trailing


def _skip_zeros(rest: bytes, read: Callable[[int], bytes],
                budget: Budget) -> tuple[bytes, int]:
    """(the bytes after a run of zeros, the run's length), reading on as needed."""
    zeros = 0
    while True:
        stripped = rest.lstrip(b"\x00")
        zeros += len(rest) - len(stripped)
        if stripped:
            return stripped, zeros
        budget.check_time()
        rest = read(READ_CHUNK)
        if not rest:
            return b"", zeros


def _nonzero_rest(read: Callable[[int], bytes], budget: Budget) -> bool:
    """Whether the rest of the stream holds a non-zero byte."""
    while True:
        budget.check_time()
        chunk = read(READ_CHUNK)
        if not chunk:
            return False
        if chunk.strip(b"\x00"):
            return True


def short(e: BaseException, limit: int = 300) -> str:
    """A bounded, one-line message for an exception (library messages hold no content)."""
    msg = " ".join((str(e) or e.__class__.__name__).split())
    msg = _ADDRESS.sub("<stream>", msg)  # "<_io.BytesIO object at 0x7f..>": not reproducible
    msg = f"{e.__class__.__name__}: {msg}" if not msg.startswith(e.__class__.__name__) else msg
    return msg if len(msg) <= limit else msg[:limit] + "..."
