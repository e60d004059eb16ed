"""Disk images read directly: raw/dd, split raw, E01, VMDK, VHD/VHDX, QCOW2.

:class:`ImageSource` detects the container by content (:mod:`.disk_containers`), finds volumes and
file systems with libtsk and lists every entry, deleted and orphan ones included
(:mod:`.tsk`).

Process safety: libtsk can crash or hang on a damaged file system. ``describe()`` and
``entries()`` run in the supervisor, so they run every libtsk call in an isolated child
(:mod:`triage.isolation` via :mod:`.tsk_child`), which streams its results back over a pipe.
A child that dies or stays silent longer than ``enumeration_timeout`` seconds (``scan
--timeout``) ends that volume with an error entry; what it already sent is kept, and a
fresh child carries on with the next volume.
``open_entry()`` runs in a worker process, which the pipeline isolates; the worker opens its
own image handles.

Identity of an entry: ``"{partition byte offset}:{meta address}:{attribute}:{path}"`` with
attribute ``"{type}-{id}"`` (NTFS) or ``default``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Generator, Iterator
from typing import Any, BinaryIO, ClassVar

from ..errors import EvidenceError
from . import base
from .base import EntryAmendment, FileEntry, Source
from .disk_containers import Container, ReadAhead, detect_container, open_container
from .tsk_child import run_child

#: Largest read-ahead window of :meth:`ImageSource.read_image` (carving's small reads).
CARVE_WINDOW = 16 << 20


class ImageSource(Source):
    """A disk image file (or the first segment of a split set)."""

    name: ClassVar[str] = "image"
    #: List each volume's unallocated space, its files' slack and the disk's unpartitioned
    #: space as carving entries (issue 17; ``scan --no-carve`` turns it off).
    carve: bool = True

    def __init__(self, path: str, *, timeout: float | None = None) -> None:
        """``timeout``: :attr:`enumeration_timeout` (default: the Source contract's)."""
        self.path = os.path.abspath(path)
        self.kind = detect_container(self.path)
        if self.kind is None:
            raise EvidenceError(f"{path}: not a disk image (not a regular file or block "
                                "device, or smaller than one sector)")
        if timeout is not None:
            self.enumeration_timeout = timeout
        self._container: Container | None = None
        self._fs_cache: dict[int, Any] = {}
        self._img: Any = None
        self._ahead: ReadAhead | None = None
        self._layout: dict[str, Any] | None = None
        self._warnings: list[str] = []
        # Open once here so that a missing/truncated E01 segment fails fast, by name.
        self._container_info = self._open_container().describe()

    # -- Source API -----------------------------------------------------------------

    @classmethod
    def detect(cls, path: str) -> bool:
        return detect_container(path) is not None

    def spec(self) -> tuple[str, Any]:
        return (self.name, {"path": self.path, "kind": self.kind})

    @classmethod
    def from_spec(cls, args: Any) -> ImageSource:
        return cls(args["path"])

    def describe(self) -> dict[str, Any]:
        layout = self._probe()
        info: dict[str, Any] = {"type": "image", "path": self.path,
                                "size": self._container_info["size"]}
        info.update(self._container_info)
        info["sector_size"] = layout.get("sector_size") or info.get("sector_size", 512)
        info["volume_system"] = layout.get("volume_system")
        info["partitions"] = layout.get("partitions", [])
        info["volumes"] = layout.get("volumes", [])
        info["file_systems"] = [v["fs_type"] for v in layout.get("volumes", [])
                                if v.get("fs_type")]
        if layout.get("error"):
            info["error"] = layout["error"]
        return info

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def entries(self) -> Iterator[FileEntry | EntryAmendment]:
        """Every entry of every volume, volume by volume, from child processes; after each
        volume's entries, the amendments of its block-ownership check
        (:class:`~triage.sources.tsk.BlockCheck`: cross-linked files, deleted files whose
        blocks were reallocated, ...)."""
        layout = self._probe()
        if layout.get("error"):
            yield self._image_error(layout["error"])
            return
        volumes = layout["volumes"]
        for vol in volumes:
            if vol.get("error"):
                self._warnings.append(vol["error"])
        start = 0
        while start < len(volumes):
            current = [start]
            finished: list[int] = []
            outcome = yield from self._run_child("walk", start, current, finished)
            if outcome is None:
                return
            failed = current[0]
            vol = volumes[failed]
            msg = f"volume at byte offset {vol['offset']} ({vol['description']}): " \
                  f"enumeration {outcome}; entries found before it are kept"
            self._warnings.append(msg)
            prefix = vol["prefix"].encode()
            yield FileEntry(identity=f"{vol['offset']}:volume:error", path=prefix,
                            kind=base.OTHER, preset_status=("error", "enumerate", msg))
            start = failed + 1

    def open_entry(self, entry: FileEntry) -> BinaryIO:
        from .tsk import open_content

        if not entry.readable or entry.locator is None:
            raise EvidenceError(f"{self.path}: {entry.path!r} is not a readable entry")
        if entry.locator[0] == "carve":  # a carving area (issue 17): its ranges, in order
            return _RangeStream(self._open_container(),  # type: ignore[return-value]
                                [(int(o), int(n)) for o, n, _ in entry.locator[5]])
        offset = entry.locator[0]
        fs = self._fs(offset)
        label = f"{self.path}:{entry.path.decode('utf-8', 'backslashreplace')}"
        return open_content(fs, entry.locator, label)  # type: ignore[return-value]

    def read_image(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the media at ``offset`` (worker side: carving reads the
        image's unallocated ranges directly). Raises ``OSError`` for an unreadable range.

        Small reads (a file's slack: a few bytes per file) are served from windows of up to
        :data:`CARVE_WINDOW` read ahead where they go forward (:class:`ReadAhead`): two
        workers carving two areas at once then jump between them once per window, not once
        per range."""
        if self._ahead is None:
            container = self._open_container()
            self._ahead = ReadAhead(container.read, container.size, max_window=CARVE_WINDOW,
                                    budget=2 * CARVE_WINDOW, slots=8)
        return self._ahead.read(offset, size)

    def close(self) -> None:
        self._fs_cache.clear()
        self._img = None
        self._ahead = None
        if self._container is not None:
            self._container.close()
            self._container = None

    # -- helpers ----------------------------------------------------------------------

    def _open_container(self) -> Container:
        if self._container is None:
            assert self.kind is not None
            self._container = open_container(self.path, self.kind)
        return self._container

    def _fs(self, offset: int) -> Any:
        import pytsk3

        from .tsk import ContainerImg

        fs = self._fs_cache.get(offset)
        if fs is None:
            if self._img is None:
                self._img = ContainerImg(self._open_container())
            try:
                fs = pytsk3.FS_Info(self._img, offset=offset)
            except OSError as e:
                raise EvidenceError(f"{self.path}: no file system at byte offset {offset}: "
                                    f"{e}") from e
            self._fs_cache[offset] = fs
        return fs

    def _image_error(self, reason: str) -> FileEntry:
        return FileEntry(identity="image:error", path=b"", kind=base.OTHER,
                         preset_status=("error", "enumerate", f"{self.path}: {reason}"))

    def _probe(self) -> dict[str, Any]:
        if self._layout is None:
            out: list[dict[str, Any]] = []
            gen = self._run_child("probe", 0, [0], [], sink=out.append)
            outcome: str | None = None
            try:
                while True:
                    next(gen)
            except StopIteration as stop:
                outcome = stop.value
            if out:
                self._layout = out[0]
            else:
                self._layout = {"error": f"reading the partition table / file systems "
                                         f"{outcome or 'failed'}", "volumes": []}
        return self._layout

    def _run_child(self, mode: str, start: int, current: list[int], finished: list[int],
                   sink: Callable[[dict[str, Any]], None] | None = None,
                   ) -> Generator[FileEntry | EntryAmendment, None, str | None]:
        """Run one enumeration child; yield its entries. Returns None when it finished
        cleanly, else why not ("crashed ...", "hung ..."); ``current[0]`` is then the
        volume it was working on."""
        for msg in run_child(self.path, self.kind or "raw", mode, start,
                             self.enumeration_timeout, carve=self.carve):
            tag = msg[0]
            if tag == "layout":
                if sink is not None:
                    sink(msg[1])
                elif self._layout is None:
                    self._layout = msg[1]
            elif tag == "volume":
                current[0] = msg[1]
            elif tag == "entries":
                yield from msg[1]
            elif tag == "volume_done":
                finished.append(msg[1])
            elif tag == "end":
                return msg[1]
        return "ended without a status"  # pragma: no cover - run_child always ends with "end"


class _RangeStream(io.RawIOBase):
    """The bytes of some ranges of the media, one after the other (a carving area)."""

    def __init__(self, container: Container, ranges: list[tuple[int, int]]) -> None:
        super().__init__()
        self._container = container
        self._ranges = ranges
        self._i = 0
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while self._i < len(self._ranges):
            off, length = self._ranges[self._i]
            if self._pos >= length:
                self._i += 1
                self._pos = 0
                continue
            n = length - self._pos if size is None or size < 0 else min(size,
                                                                         length - self._pos)
            data = self._container.read(off + self._pos, n)
            if len(data) != n:
                raise OSError(f"image range at byte {off + self._pos}: short read")
            self._pos += n
            return data
        return b""


# --------------------------------------------------------------------------- verify


def verify_image(path: str, progress: Callable[[int, int], None] | None = None,
                 chunk: int = 4 << 20) -> dict[str, Any]:
    """Recompute MD5 and SHA-1 of the media data and compare with the stored E01 hashes.

    Returns ``{"path", "container", "size", "computed": {...}, "stored": {...},
    "result": "match" | "mismatch" | "no stored hash", "libewf": ...}``; a ``path`` that
    is or passes through a symbolic link is read through its target (an E01's segments
    are found beside the target), named in ``"resolved_path"``.
    Raises EvidenceError if the image cannot be opened or read.
    """
    real = os.path.realpath(path)
    kind = detect_container(real)
    container = open_container(real, kind)
    try:
        info = container.describe()
        md5 = hashlib.md5()
        sha1 = hashlib.sha1()
        offset = 0
        while offset < container.size:
            try:
                data = container.read(offset, min(chunk, container.size - offset))
            except OSError as e:
                raise EvidenceError(f"{path}: read error at media offset {offset}: "
                                    f"{e}") from e
            if not data:
                raise EvidenceError(f"{path}: media data ends at {offset}, "
                                    f"expected {container.size} bytes")
            md5.update(data)
            sha1.update(data)
            offset += len(data)
            if progress is not None:
                progress(offset, container.size)
    finally:
        container.close()
    computed = {"md5": md5.hexdigest(), "sha1": sha1.hexdigest()}
    stored = dict(info.get("stored_hashes") or {})
    compared = {k: stored[k] == computed[k] for k in ("md5", "sha1") if k in stored}
    if not compared:
        result = "no stored hash"
    elif all(compared.values()):
        result = "match"
    else:
        result = "mismatch"
    out: dict[str, Any] = {"path": os.path.abspath(path), "container": info["container"],
                           "segments": info.get("segments"), "size": container.size,
                           "computed": computed, "stored": stored, "compared": compared,
                           "result": result}
    if real != out["path"]:
        out["resolved_path"] = real
    if "libewf" in info:
        out["libewf"] = info["libewf"]
    return out
