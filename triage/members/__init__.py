"""Media inside other files: archive and document members, files of disk images found
inside the evidence (nested evidence), and embedded pictures.

The worker calls this library on bytes it already holds (or on a seekable file opened
read-only); nothing here writes to disk, opens a path, or uses a member name as a path.

    kind = container_kind(head, mime)             # by content (registry.MEMBER_KINDS)
    budget = Budget(limits)                        # one per TOP-LEVEL container
    for m in expand(kind, data, limits, budget, name=b"photos.zip"): ...
    for m in find_embedded(data, limits): ...      # pictures not at offset 0

or, recursively with every bound applied (``walk`` yields ``Found`` and ``Problem``):

    for event in walk(data, limits, name=b"photos.zip"): ...

Contract of ``expand``: members come in a deterministic order; a member whose bytes are
not available has ``data=None`` and a ``reason``; a problem with the container as a whole
(corrupt, encrypted header, unsupported format, member-count/time/depth limit) raises
``ContainerError`` with a ``reason``, possibly after some members were yielded. Nothing is
dropped without a reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import (
    Budget,
    ContainerError,
    Limits,
    Member,
    Source,
    as_stream,
    memory_limit_error,
    problem_status,
    short,
)
from .carve import find_embedded
from .disk import nested_head_kind
from .registry import KINDS, MEMBER_KINDS, container_kind

__all__ = [
    "KINDS",
    "MEMBER_KINDS",
    "Budget",
    "ContainerError",
    "Found",
    "Limits",
    "Member",
    "Note",
    "Problem",
    "container_kind",
    "expand",
    "find_embedded",
    "inner_path",
    "nested_head_kind",
    "walk",
]

#: How many leading bytes ``walk`` passes to ``container_kind``: enough for a raw disk
#: image recognised by its ISO 9660 volume descriptor at 32 KiB (ECMA-119 8.1).
HEAD_BYTES = 64 << 10


def expand(kind: str, data: Source, limits: Limits, budget: Budget, *,
           name: bytes = b"") -> Iterator[Member]:
    """Members of one container of ``kind`` (from ``container_kind``).

    ``data`` is the container's bytes or a seekable binary file. ``name`` is the
    container's own name (last component is enough); only gzip/bzip2/xz use it, to name
    their stream when the file stores no name. ``budget`` is shared by a top-level
    container and all its nested children: ``budget.depth`` must say how many containers
    are open above this one (``walk`` keeps it). Raises ``ContainerError`` as described in
    the module docstring; unexpected parser exceptions are translated to it too.
    """
    budget.check_depth()
    budget.check_time()
    if kind not in MEMBER_KINDS:
        raise ValueError(f"{kind!r} is not a container kind (one of {', '.join(KINDS)})")
    try:
        yield from MEMBER_KINDS[kind].expand(as_stream(data), limits, budget, name)
    except ContainerError:
        raise
    except MemoryError as e:  # a bound was hit, whatever the parser: not damage
        raise memory_limit_error(kind, limits) from e
    except Exception as e:  # hostile input can make any parser step fail
        raise ContainerError(f"corrupt {kind}: {short(e)}", ("corrupt",)) from e


def inner_path(path: tuple[bytes, ...]) -> bytes:
    """``inner/dir/photo.jpg!@1572.jpg``: the names below a top-level file joined by ``!``
    (the caller prefixes the file's own path and ``!``, and escapes for display)."""
    return b"!".join(path)


@dataclass(frozen=True)
class Found:
    """A member found by ``walk``. ``path`` holds the names from the top-level container
    down to this member (``path[-1] == member.name``); ``container`` is the member's own
    container kind when it will be expanded next (its children follow it)."""

    path: tuple[bytes, ...]
    member: Member
    container: str | None


@dataclass(frozen=True)
class Note:
    """Something to record on the item at ``path`` that is not a problem: a disk image
    found inside the evidence and opened (``"nested disk image (ewf): opened read-only;
    3 files listed as items"``)."""

    path: tuple[bytes, ...]
    text: str


@dataclass(frozen=True)
class Problem:
    """A container that could not be fully expanded: record ``reason`` on the item at
    ``path`` (``()`` is the top-level file itself, which was yielded before as a Found
    with that path, or is the caller's own file)."""

    path: tuple[bytes, ...]
    reason: str
    flags: tuple[str, ...]

    @property
    def status(self) -> str:
        """``incomplete`` (a bound, or not expanded by design) or ``error`` (damage)."""
        return problem_status(self.flags)


def walk(data: bytes, limits: Limits, *, name: bytes = b"", kind: str | None = None,
         mime: str = "", carve: bool = True,
         budget: Budget | None = None) -> Iterator[Found | Problem | Note]:
    """Everything inside one top-level file, depth first, with every bound applied.

    The top-level file itself is not yielded. Members that are containers (by content)
    are expanded in turn, up to ``limits.max_depth``. With ``carve``, pictures embedded in
    any non-container member (and OLE2 streams, and the top-level file if it is not a
    container) are carved with ``find_embedded``. ``Problem`` events carry every
    container-level reason (a nested disk image that is not opened: ``nested disk image
    (KIND): not opened: WHY``) and the container's outcome (``Problem.status``);
    member-level reasons are on the members; a ``Note`` follows a nested disk image that was
    opened.

    The time limit counts expansion work only: the clock stops while an event is out with
    the caller (:meth:`Budget.outside`), so decoding and hashing members costs none of it.
    """
    budget = budget or Budget(limits)
    kind = kind if kind is not None else container_kind(data[:HEAD_BYTES], mime)
    for event in _walk((), data, kind, name, limits, budget, carve):
        with budget.outside():
            yield event


def _walk(path: tuple[bytes, ...], data: bytes, kind: str | None, name: bytes,
          limits: Limits, budget: Budget, carve: bool) -> Iterator[Found | Problem | Note]:
    if kind is None:
        if carve:
            try:
                for m in find_embedded(data, limits, budget):
                    yield Found((*path, m.name), m, None)
            except ContainerError as e:
                yield Problem(path, e.reason, e.flags)
        return
    items = 0
    try:
        for m in expand(kind, data, limits, budget, name=name):
            items += 1
            child_path = (*path, m.name)
            child_kind = None
            if m.data is not None:
                child_kind = container_kind(m.data[:HEAD_BYTES])
            yield Found(child_path, m, child_kind)
            if m.data is None:
                continue
            if child_kind is None and not carve:
                continue
            with budget.nested():
                yield from _walk(child_path, m.data, child_kind, m.name, limits, budget,
                                 carve)
    except ContainerError as e:
        if "boot-record" in e.flags:  # not a disk at all (members/disk.py): a note
            yield Note(path, e.reason)
            return
        yield Problem(path, e.reason, e.flags)
        return
    if kind == "disk":
        yield Note(path, f"nested disk image ({nested_head_kind(data[:HEAD_BYTES])}): "
                         f"opened read-only; {items} files listed as items")
