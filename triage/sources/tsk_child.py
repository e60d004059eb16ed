"""The libtsk enumeration child, and the supervisor side that runs it.

The child is an isolated process (:mod:`triage.isolation`: memory capped, no core dumps,
output discarded, killed after ``timeout`` seconds without a message). It sends messages
over its pipe: ``("layout", dict)``, then per volume ``("volume", i)``, ``("entries",
[...])``, ``("volume_done", i)``, and finally ``("done",)`` or ``("error", reason)``. The
supervisor side (:func:`run_child`) turns a dead child, a silent child (timeout) and a
protocol error into a final ``("end", reason)``; a clean finish is ``("end", None)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

from .. import faults, isolation
from ..util import display_bytes

BATCH = 256
BATCH_SECONDS = 0.5


def run_child(path: str, kind: str, mode: str, start: int,
              timeout: float, carve: bool = False) -> Iterator[tuple[Any, ...]]:
    """Start the child and yield its messages; always ends with ``("end", reason|None)``.
    ``carve``: list each volume's carving areas too (issue 17)."""
    yield from isolation.stream(child_main, (path, kind, mode, start, carve), timeout,
                                name="tsk-enumeration")


# --------------------------------------------------------------------------- child side


def child_main(conn: Connection, path: str, kind: str, mode: str, start: int,
               carve: bool = False) -> int:
    """Probe the layout and (mode ``walk``) walk volumes ``start``.. sending messages."""
    # libtsk converts FAT local times with mktime(): the child runs in UTC.
    os.environ["TZ"] = "UTC"
    time.tzset()
    _fault_injection("start")
    from . import base, unalloc
    from .base import FileEntry
    from .disk_containers import open_container
    from .tsk import ContainerImg, blank_volume, probe_layout, walk_volume

    try:
        container = open_container(path, kind)
        img = ContainerImg(container)
        sector = int(container.describe().get("sector_size") or 512)
        layout = probe_layout(img, sector)
    except Exception as e:  # any failure of the probe is the image's error
        conn.send(("error", f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"))
        return 0
    vols = []
    for v in layout.volumes:
        d = asdict(v)
        d["prefix"] = v.prefix.decode()
        vols.append(d)
    conn.send(("layout", {"volume_system": layout.volume_system,
                          "sector_size": layout.sector_size,
                          "partitions": layout.partitions, "volumes": vols}))
    if mode == "walk":
        for vol in layout.volumes[start:]:
            conn.send(("volume", vol.index))
            # Test-only (TRIAGE_INJECT_FAULT=enumerate:KIND:PATTERN): the pattern is matched
            # against the volume's folder in the evidence, "." for a lone file system.
            faults.check("enumerate", display_bytes(vol.prefix) if vol.prefix else ".")
            if vol.error:
                # An unformatted (blank) volume is not applicable; any other volume without
                # a file system libtsk can open is an error.
                blank = blank_volume(img, vol, _heartbeat(conn)) if vol.fs_type is None \
                    else None
                status = ("skipped", "enumerate", blank) if blank else \
                    ("error", "enumerate", vol.error)
                listed: list[Any] = [FileEntry(
                    identity=f"{vol.offset}:volume:error", path=vol.prefix,
                    kind=base.OTHER, preset_status=status)]
                if carve and not blank and vol.length > 0 and vol.offset < img.get_size():
                    # No file system to ask: every byte of the volume may hold deleted
                    # pictures (a card whose file system was wiped), so all of it is carved.
                    whole = unalloc.Area(
                        unalloc.UNALLOCATED, vol.offset, layout.sector_size,
                        "the whole volume (no file system libtsk can open)",
                        [(vol.offset, min(vol.length, img.get_size() - vol.offset), None)])
                    listed.extend(unalloc.area_entries(whole, vol.prefix))
                conn.send(("entries", listed))
                conn.send(("volume_done", vol.index))
                continue
            batch: list[Any] = []
            last = time.monotonic()
            try:
                for entry in walk_volume(img, vol, carve=carve):
                    batch.append(entry)
                    if len(batch) >= BATCH or time.monotonic() - last > BATCH_SECONDS:
                        conn.send(("entries", batch))
                        batch = []
                        last = time.monotonic()
                        _fault_injection("walk")
            except Exception as e:  # libtsk error mid-walk: keep what was found
                batch.append(FileEntry(
                    identity=f"{vol.offset}:volume:walk-error", path=vol.prefix,
                    kind=base.OTHER,
                    preset_status=("error", "enumerate",
                                   f"walk of volume at byte offset {vol.offset} stopped: "
                                   f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")))
            if batch:
                conn.send(("entries", batch))
            _fault_injection("volume_done")
            conn.send(("volume_done", vol.index))
        if carve and layout.unpartitioned:  # the child that reaches the end says it
            size = img.get_size()
            ranges: list[tuple[int, int, str | None]] = [
                (o, min(n, size - o), None) for o, n in layout.unpartitioned if o < size]
            area = unalloc.Area(unalloc.UNPARTITIONED, 0, layout.sector_size,
                                f"the {layout.volume_system} partition table's unallocated "
                                "entries", ranges)
            conn.send(("entries", unalloc.area_entries(area, b"")))
    conn.send(("done",))
    return 0


def _heartbeat(conn: Connection) -> Callable[[], None]:
    """A callback that sends an empty batch at most every BATCH_SECONDS: the supervisor
    gives up on a child that says nothing for ``timeout`` seconds."""
    last = [time.monotonic()]

    def tick() -> None:
        if time.monotonic() - last[0] > BATCH_SECONDS:
            conn.send(("entries", []))
            last[0] = time.monotonic()

    return tick


def _fault_injection(stage: str) -> None:
    """Test-only: ``TRIAGE_TSK_FAULT=<stage>:<segv|hang|exit>`` (RELIABILITY: every
    isolation path is tested without real exploits)."""
    spec = os.environ.get("TRIAGE_TSK_FAULT", "")
    if not spec or ":" not in spec:
        return
    want, action = spec.split(":", 1)
    if want != stage:
        return
    if action == "segv":
        import ctypes

        ctypes.string_at(0)  # segmentation fault, like a libtsk crash
    elif action == "hang":
        time.sleep(3600)
    elif action == "exit":
        os._exit(3)

