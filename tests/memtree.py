"""Large-picture evidence and process-tree memory, for the memory-budget test and benchmark
(issue 11, defect 4). Shared by ``tests/test_memory_budget.py`` and
``benchmarks/bench_memory.py``.

* :func:`write_png` writes a valid PNG of any size without Pillow and without holding the
  picture: rows of zeros (one row that differs per ``seed``, so files differ) streamed
  through zlib. An 11000x11000 RGB picture (363 MB of pixels) is a 0.35 MB file, made in
  about a second.
* :class:`TreeMemory` samples the resident memory of a process and all its descendants
  from /proc at a fixed interval and keeps the peak of their sum (and optionally kills the
  tree when the sum passes a cap, so that a regression fails a test instead of exhausting
  the machine).
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
import zlib
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
#: PNG colour types and their samples per pixel (PNG specification, 11.2.2 IHDR).
BANDS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_png(path: Path, width: int, height: int, color_type: int = 2, bit_depth: int = 8,
              seed: int = 0) -> int:
    """Write a ``width`` x ``height`` PNG (``color_type`` 0 grey, 2 RGB, 3 palette, 4 grey
    with alpha, 6 RGBA) of black rows, its first row varied by ``seed``. Returns its size."""
    row_bytes = (width * BANDS[color_type] * bit_depth + 7) // 8
    comp = zlib.compressobj(1)
    first = bytearray(row_bytes + 1)  # filter byte 0, then samples
    for i in range(1, min(row_bytes, 64) + 1):
        first[i] = (seed * 37 + i) & 0xFF
    zero_rows = bytes(row_bytes + 1) * 64
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth,
                                            color_type, 0, 0, 0)))
        if color_type == 3:
            f.write(_chunk(b"PLTE", bytes(range(256)) * 3))
        parts = [comp.compress(bytes(first))]
        left = height - 1
        while left > 0:
            n = min(64, left)
            parts.append(comp.compress(zero_rows if n == 64 else bytes(row_bytes + 1) * n))
            left -= n
        parts.append(comp.flush())
        f.write(_chunk(b"IDAT", b"".join(parts)))
        f.write(_chunk(b"IEND", b""))
        return f.tell()


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow the last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, as /proc shows them now."""
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def rss(pid: int) -> int:
    """Resident bytes of one process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class TreeMemory:
    """Sample the summed resident memory of ``pid``'s process tree every ``interval``
    seconds in a thread; :attr:`peak` is the largest sum seen, :attr:`peak_processes` the
    number of processes then. With ``cap``, the whole tree is killed (SIGKILL) as soon as
    the sum passes it, and :attr:`capped` is set."""

    def __init__(self, pid: int, interval: float = 0.1, cap: int | None = None) -> None:
        self.pid, self.interval, self.cap = pid, interval, cap
        self.peak = 0
        self.peak_processes = 0
        self.samples = 0
        self.capped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = tree(self.pid)
            total = sum(rss(p) for p in pids)
            self.samples += 1
            if total > self.peak:
                self.peak, self.peak_processes = total, len(pids)
            if self.cap is not None and total > self.cap:
                self.capped = True
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                return
            time.sleep(self.interval)
