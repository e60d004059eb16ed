"""The directory enumeration child: ``python -m triage.sources.dir_child PATH SKIP FD``.

Walks PATH (a :class:`~triage.sources.directory.DirectorySource`) and writes messages to FD
with the framing of :mod:`triage.sources.tsk_child`: ``("at", folder path bytes)`` before
each folder is listed, ``("entries", [FileEntry, ...])`` in batches, then ``("done",)``.
SKIP is ``-`` or comma-separated hex of folders not to enter (they hung or crashed an
earlier child). Core dumps are off; nothing is written anywhere else.
"""

from __future__ import annotations

import resource
import sys
import time

from .directory import DirectorySource
from .tsk_child import BATCH, BATCH_SECONDS, _send


def main(path: str, skip_arg: str, fd: int) -> int:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    skip = frozenset() if skip_arg == "-" else frozenset(
        bytes.fromhex(h) for h in skip_arg.split(","))
    source = DirectorySource(path)
    batch: list[object] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal batch, last
        if batch:
            _send(fd, ("entries", batch))
            batch = []
        last = time.monotonic()

    def entering(folder: bytes) -> None:
        flush()  # everything found before this folder is safe before we touch it
        _send(fd, ("at", folder))

    try:
        for entry in source.walk_in_process(skip, entering):
            batch.append(entry)
            if len(batch) >= BATCH or time.monotonic() - last > BATCH_SECONDS:
                flush()
        flush()
    except Exception as e:  # reported, then the supervisor decides
        _send(fd, ("error", f"{e.__class__.__name__}: {e}"))
        return 1
    _send(fd, ("done",))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
