"""The directory enumeration child, run isolated by :mod:`triage.isolation`.

Walks PATH (a :class:`~triage.sources.directory.DirectorySource`) and sends messages over
its pipe: ``("at", folder path bytes)`` before each folder is listed, ``("entries",
[FileEntry, ...])`` in batches, then ``("done",)``. SKIP holds folders not to enter (they
hung or crashed an earlier child). Nothing is written anywhere else.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection

from .directory import DirectorySource
from .tsk_child import BATCH, BATCH_SECONDS


def main(conn: Connection, path: str, skip: frozenset[bytes]) -> int:
    source = DirectorySource(path)
    batch: list[object] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal batch, last
        if batch:
            conn.send(("entries", batch))
            batch = []
        last = time.monotonic()

    def entering(folder: bytes) -> None:
        flush()  # everything found before this folder is safe before we touch it
        conn.send(("at", folder))

    try:
        for entry in source.walk_in_process(skip, entering):
            batch.append(entry)
            if len(batch) >= BATCH or time.monotonic() - last > BATCH_SECONDS:
                flush()
        flush()
    except Exception as e:  # reported, then the supervisor decides
        conn.send(("error", f"{e.__class__.__name__}: {e}"))
        return 1
    conn.send(("done",))
    return 0
