"""Shared types of the container layer: limits, the per-container budget, members, errors.

Nothing in this package writes to disk or uses a member name as a path: member names are
data (``bytes``) that end up in the case database, never in ``open()``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

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
    max_seconds: float = 60.0  # per top-level container


class ContainerError(Exception):
    """The container as a whole could not be (fully) expanded.

    ``reason`` is the text to record on the container; ``flags`` are short machine tags
    (``"encrypted"``, ``"limit:time"``, ``"unsupported"``, ``"corrupt"``). Raised either
    before any member (unreadable container) or after some members were yielded
    (a limit or corruption part way through): members already yielded stay valid.
    """

    def __init__(self, reason: str, flags: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.flags = flags


@dataclass
class Member:
    """One item found inside a container.

    ``name`` is the inner path exactly as stored (raw bytes; for embedded pictures
    ``@<offset>.<ext>``); it is NEVER used as a file-system path. ``data`` is the member's
    bytes (decompressed) or ``None``, in which case ``reason`` says why (encrypted, limit
    hit, corrupt). Times are POSIX seconds.
    """

    name: bytes
    kind: str  # "member" (archive/document member) or "embedded" (carved picture)
    size: int | None
    mtime: float | None = None
    offset: int | None = None
    data: bytes | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None


@dataclass
class Budget:
    """Running totals for one top-level container and all its nested children.

    Create one per top-level container; pass the same object to every ``expand`` call for
    that container and its descendants. ``depth`` counts the containers currently open
    above the one being expanded (0 for the top-level container).
    """

    limits: Limits
    clock: Callable[[], float] = time.monotonic
    produced: int = 0
    depth: int = 0
    started: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

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


def short(e: BaseException, limit: int = 300) -> str:
    """A bounded, one-line message for an exception (library messages hold no content)."""
    msg = " ".join((str(e) or e.__class__.__name__).split())
    msg = _ADDRESS.sub("<stream>", msg)  # "<_io.BytesIO object at 0x7f..>": not reproducible
    msg = f"{e.__class__.__name__}: {msg}" if not msg.startswith(e.__class__.__name__) else msg
    return msg if len(msg) <= limit else msg[:limit] + "..."
