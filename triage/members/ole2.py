"""OLE2 compound documents (old .doc/.xls/.ppt, .msg, thumbs.db...) through olefile.

Every stream is a member, named by its storage path joined with ``/`` (UTF-8 of the
UTF-16 directory names). Office keeps pictures inside streams behind record headers
("Pictures" in PowerPoint, "Data" in Word, "Workbook" in Excel), so callers carve the
streams with ``find_embedded``; ``walk`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import BinaryIO

from .base import (
    Budget,
    ContainerError,
    Limits,
    Member,
    limit_reason,
    member_caps,
    name_flags,
    short,
)


def expand_ole2(stream: BinaryIO, limits: Limits, budget: Budget) -> Iterator[Member]:
    """Every stream of the compound file, in directory order sorted by path."""
    import olefile

    # Always a file object: olefile treats a short ``bytes`` argument as a FILE NAME.
    try:
        ole = olefile.OleFileIO(stream)
        paths = sorted(ole.listdir(streams=True, storages=False))
    except Exception as e:  # olefile raises OSError, IndexError, struct.error, ...
        raise ContainerError(f"corrupt OLE2: {short(e)}", ("corrupt",)) from e
    with ole:
        if len(paths) > limits.max_members:
            raise ContainerError(f"limit: {len(paths)} streams > {limits.max_members} "
                                 f"(max_members)", ("limit:members",))
        for path in paths:
            budget.check_time()
            yield _stream(ole, path, limits, budget)


def _stream(ole: object, path: list[str], limits: Limits, budget: Budget) -> Member:
    import olefile

    assert isinstance(ole, olefile.OleFileIO)
    name = "/".join(path).encode("utf-8", "surrogatepass")
    flags = name_flags(name)
    mtime = None
    try:
        size = ole.get_size(path)
        when = ole.getmtime(path)
        if when is not None:
            mtime = when.replace(tzinfo=UTC).timestamp()  # FILETIME is UTC
    except Exception as e:
        return Member(name, "member", None, None, None, None, (*flags, "corrupt"),
                      f"corrupt: {short(e)}")
    caps = member_caps(limits, budget, None)
    if size > caps.cap:
        reason, flag = limit_reason(limits, budget, caps, size, None, declared=True)
        return Member(name, "member", size, mtime, None, None, (*flags, flag), reason)
    try:
        with ole.openstream(path) as f:
            data = f.read(size)
    except Exception as e:
        return Member(name, "member", size, mtime, None, None, (*flags, "corrupt"),
                      f"corrupt: {short(e)}")
    budget.charge(len(data))
    return Member(name, "member", len(data), mtime, None, data, flags)
