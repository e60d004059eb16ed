"""Image containers: raw/dd, split raw, E01 (libewf), VMDK, VHD/VHDX, QCOW2 (libyal).

Every container is opened read-only and exposed as a :class:`Container`: a random-access
``read(offset, size)`` over the *media data* (the bytes the acquired disk held), its
``size`` and a ``describe()`` dict. :class:`ContainerImg` wraps any container as a
``pytsk3.Img_Info`` (the dfvfs pattern), so libtsk reads through it.

Detection is by content (signatures), except split raw, which has no header and is
recognised by its segment names (``.000``/``.001``, ``.001``/``.002``, ``.aa``/``.ab``).

libewf: Debian's ``python3-libewf`` is built against zlib and decompresses about 8x faster
than the PyPI ``libewf-python`` wheel (DESIGN.md). Debian builds it for
``/usr/bin/python3`` (3.11); the same CPython ABI tag loads in our venv, so we load that
one extension file by path (never the whole dist-packages directory) and fall back to the
wheel's ``pyewf``. ``TRIAGE_PYEWF=wheel`` forces the wheel, ``=debian`` requires Debian's.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import stat
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, BinaryIO

from ..errors import EvidenceError

# Signatures (offset 0 unless noted). Sources: libyal format documentation for each format.
EWF1_SIGNATURE = b"EVF\x09\x0d\x0a\xff\x00"  # EWF-E01 / SMART (libewf "EWF format" doc)
EWF2_SIGNATURE = b"EVF2\x0d\x0a\x81\x00"  # EWF2-Ex01
LEF_SIGNATURES = (b"LVF\x09\x0d\x0a\xff\x00", b"LEF2\x0d\x0a\x81\x00")  # logical L01/Lx01
QCOW_SIGNATURE = b"QFI\xfb"  # QEMU qcow header magic
VHDX_SIGNATURE = b"vhdxfile"  # VHDX file type identifier
VHD_COOKIE = b"conectix"  # VHD footer cookie (copy at offset 0 in dynamic disks)
VMDK_SPARSE_SIGNATURES = (b"KDMV", b"COWD")  # VMDK sparse extent, ESX COW disk
VMDK_DESCRIPTOR_PREFIX = b"# Disk DescriptorFile"

DEBIAN_PYEWF = "/usr/lib/python3/dist-packages/pyewf.cpython-311-x86_64-linux-gnu.so"

_SPLIT_NUMERIC = re.compile(r"^(?P<stem>.*)\.(?P<num>\d{3})$")
_SPLIT_ALPHA = re.compile(r"^(?P<stem>.*)\.(?P<alpha>[a-z]{2})$")


# --------------------------------------------------------------------------- libewf


@dataclass(frozen=True)
class EwfLibrary:
    module: ModuleType
    origin: str  # "debian-python3-libewf" or "pypi-libewf-python"
    version: str
    path: str


_pyewf_lock = threading.Lock()
_pyewf: EwfLibrary | None = None


def _load_debian_pyewf() -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader("pyewf", DEBIAN_PYEWF)
    spec = importlib.util.spec_from_file_location("pyewf", DEBIAN_PYEWF, loader=loader)
    if spec is None:
        raise ImportError(f"{DEBIAN_PYEWF}: no module spec")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def pyewf_library() -> EwfLibrary:
    """The libewf binding in use: Debian's zlib build when it loads, else the PyPI wheel."""
    global _pyewf
    with _pyewf_lock:
        if _pyewf is not None:
            return _pyewf
        choice = os.environ.get("TRIAGE_PYEWF", "auto")
        errors: list[str] = []
        if choice in ("auto", "debian"):
            try:
                module = _load_debian_pyewf()
                _pyewf = EwfLibrary(module, "debian-python3-libewf",
                                    str(module.get_version()), DEBIAN_PYEWF)
                return _pyewf
            except (ImportError, OSError) as e:
                errors.append(f"Debian python3-libewf: {e}")
                if choice == "debian":
                    raise EvidenceError(
                        f"TRIAGE_PYEWF=debian but {DEBIAN_PYEWF} does not load: {e} "
                        "(apt-get install python3-libewf)") from e
        try:
            import pyewf as wheel
        except ImportError as e:
            errors.append(f"libewf-python wheel: {e}")
            raise EvidenceError("no libewf binding available (" + "; ".join(errors) +
                                "): apt-get install python3-libewf or pip install "
                                "libewf-python") from e
        _pyewf = EwfLibrary(wheel, "pypi-libewf-python", str(wheel.get_version()),
                            str(getattr(wheel, "__file__", "")))
        return _pyewf


# --------------------------------------------------------------------------- detection


def _head(path: str, size: int = 512) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _tail(path: str, size: int = 512) -> bytes:
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        f.seek(max(0, end - size))
        return f.read(size)


def split_raw_segments(path: str) -> list[str] | None:
    """The segments of a split raw image starting at ``path``, or None if it is not one.

    ``path`` must be the first segment (``.000``, ``.001`` or ``.aa``) and a second segment
    must exist; later segments are taken while consecutive names exist.
    """
    name = os.path.basename(path)
    m = _SPLIT_NUMERIC.match(name)
    segments: list[str] = []
    if m:
        num = int(m.group("num"))
        if num not in (0, 1):
            return None
        stem = os.path.join(os.path.dirname(path), m.group("stem"))
        n = num
        while os.path.isfile(f"{stem}.{n:03d}"):
            segments.append(f"{stem}.{n:03d}")
            n += 1
    else:
        m = _SPLIT_ALPHA.match(name)
        if not m or m.group("alpha") != "aa":
            return None
        stem = os.path.join(os.path.dirname(path), m.group("stem"))
        for i in range(26 * 26):
            seg = f"{stem}.{chr(97 + i // 26)}{chr(97 + i % 26)}"
            if not os.path.isfile(seg):
                break
            segments.append(seg)
    return segments if len(segments) >= 2 else None


# --------------------------------------------------------------------------- containers


class Container(ABC):
    """Random access to an image's media data. Not shared across processes."""

    kind: str
    size: int

    @abstractmethod
    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (short only at the end of the media).

        Raises ``OSError`` when the range cannot be read.
        """

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Container facts: type, segments, size, sector size, stored hashes..."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release handles."""


class ReadAhead:
    """Small reads of a container served from larger windows read ahead where the reads
    go forward (issue 13: what a spinning or USB disk pays is the jumps between reads).

    libtsk reads an image in 64 KiB pieces through its own small cache: an inode table or
    an MFT is read a piece at a time, each time jumping there from the file data and back,
    and carving reads a slack range (a few bytes) per file. Like the kernel's read-ahead, a
    miss right at the end of a kept window, or inside or just past one (within its length)
    whose read-ahead was used, continues that *stream*: the new window is twice as long, up
    to ``max_window``; any other miss reads only its own ``chunk``-aligned pieces
    (directory blocks scattered over a volume do not pull in megabytes each). Windows are
    dropped least recently used first, beyond ``budget`` bytes or ``slots`` windows, so
    that a stream read from again and again (the inode table) outlives the one-off reads
    around it. Reads larger than ``chunk`` go straight to the container.

    The bytes are exactly the container's: a window that cannot be read in full (an
    unreadable range, a short read) is remembered and the request is read on its own,
    with the container's own error or short result, as without this class.
    """

    def __init__(self, read: Callable[[int, int], bytes], size: int, *,
                 max_window: int = 4 << 20, budget: int = 16 << 20, slots: int = 32,
                 chunk: int = 64 << 10) -> None:
        self._read = read
        self._size = size
        self._chunk = chunk
        self._max = max(chunk, max_window)
        self._budget = max(self._max, budget)
        self._slots = max(1, slots)
        #: [start, bytes, reads served from it], least recently used first
        self._windows: list[list[Any]] = []
        self._held = 0
        self._failed: set[int] = set()

    def read(self, offset: int, size: int) -> bytes:
        end = min(offset + size, self._size)
        if size <= 0 or size > self._chunk or offset < 0 or offset >= end:
            return self._read(offset, size)
        windows = self._windows
        for i in range(len(windows) - 1, -1, -1):
            w = windows[i]
            start, data = w[0], w[1]
            if start <= offset and end <= start + len(data):
                w[2] += 1
                if i != len(windows) - 1:
                    windows.append(windows.pop(i))
                return data[offset - start:end - start]
        chunk = self._chunk
        first = offset - offset % chunk
        if first in self._failed:
            return self._read(offset, size)
        want = -(-(end - first) // chunk) * chunk
        for i in range(len(windows) - 1, -1, -1):
            start, data, hits = windows[i]
            # The stream goes on (grow it) where it was read right to its end, or where
            # what it read ahead was used and the miss lies within its length past it.
            if first == start + len(data) or (hits and start <= offset <= start + 2 * len(data)):
                want = max(want, min(2 * len(data), self._max))
                break
        stop = min(first + want, self._size)
        try:
            data = self._read(first, stop - first)
        except OSError:
            data = b""
        if len(data) != stop - first:
            if len(self._failed) > 4096:
                self._failed.clear()
            self._failed.add(first)
            return self._read(offset, size)
        windows.append([first, data, 0])
        self._held += len(data)
        while len(windows) > 1 and (self._held > self._budget or len(windows) > self._slots):
            self._held -= len(windows.pop(0)[1])
        return data[offset - first:end - first]


class RawContainer(Container):
    """A raw image in one or more segment files, read with ``os.pread``."""

    def __init__(self, segments: list[str], kind: str = "raw") -> None:
        self.kind = kind
        self.segments = segments
        self._fds: list[int] = []
        self._starts: list[int] = []
        pos = 0
        try:
            for seg in segments:
                fd = os.open(seg, os.O_RDONLY)
                self._fds.append(fd)
                self._starts.append(pos)
                pos += os.lseek(fd, 0, os.SEEK_END)
        except OSError as e:
            self.close()
            raise EvidenceError(f"{e.filename or segments[0]}: cannot open: {e.strerror}") from e
        self.size = pos

    def read(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        size = min(size, self.size - offset)
        i = len(self._starts) - 1
        while self._starts[i] > offset:
            i -= 1
        seg_end = self._starts[i + 1] if i + 1 < len(self._starts) else self.size
        if offset + size <= seg_end:
            # The common case, one segment: hand pread's bytes over without copying again
            # (libtsk reads through here for every file; copies cost as much as hashing).
            data = os.pread(self._fds[i], size, offset - self._starts[i])
            if len(data) != size:
                raise OSError(f"{self.segments[i]}: short read at {offset - self._starts[i]}")
            return data
        out = bytearray()
        while size > 0 and i < len(self._fds):
            seg_off = offset - self._starts[i]
            seg_end = (self._starts[i + 1] if i + 1 < len(self._starts) else self.size)
            n = min(size, seg_end - offset)
            data = os.pread(self._fds[i], n, seg_off)
            if len(data) != n:
                raise OSError(f"{self.segments[i]}: short read at {seg_off}")
            out += data
            offset += n
            size -= n
            i += 1
        return bytes(out)

    def describe(self) -> dict[str, Any]:
        return {"container": self.kind, "segments": list(self.segments), "size": self.size,
                "sector_size": 512}

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


class EwfContainer(Container):
    """An EWF (E01/Ex01) image: all segments found from the first via libewf's glob."""

    kind = "ewf"

    def __init__(self, path: str) -> None:
        self.lib = pyewf_library()
        pyewf = self.lib.module
        try:
            self.segments = list(pyewf.glob(path))
        except Exception as e:  # pyewf raises IOError/RuntimeError/TypeError variants
            raise EvidenceError(f"{path}: cannot list the E01 segments: {e}") from e
        check_ewf_segments(path, self.segments)
        self._handle = pyewf.handle()
        try:
            self._handle.open(self.segments, "r")
        except Exception as e:
            raise EvidenceError(f"{path}: libewf cannot open the E01 set "
                                f"({len(self.segments)} segments: "
                                f"{', '.join(os.path.basename(s) for s in self.segments)}): "
                                f"{e}") from e
        self.size = int(self._handle.get_media_size())
        self._lock = threading.Lock()

    def read(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        size = min(size, self.size - offset)
        with self._lock:
            try:
                self._handle.seek(offset)
                data = self._handle.read(size)
            except Exception as e:  # libewf: IOError on chunk checksum/decompression errors
                raise OSError(f"E01 read error at media offset {offset} (+{size}): {e}") from e
        return bytes(data)

    def describe(self) -> dict[str, Any]:
        h = self._handle
        headers: dict[str, str] = {}
        try:
            for key, value in (h.get_header_values() or {}).items():
                if value:
                    headers[str(key)] = str(value)
        except Exception as e:
            headers["error"] = f"cannot read header values: {e}"
        stored: dict[str, str] = {}
        for name, key in (("md5", "MD5"), ("sha1", "SHA1")):
            try:
                value = h.get_hash_value(key)
            except Exception:
                value = None
            if value:
                stored[name] = str(value).lower()
        info: dict[str, Any] = {
            "container": "ewf", "segments": list(self.segments), "size": self.size,
            "acquisition": headers, "stored_hashes": stored,
            "libewf": {"origin": self.lib.origin, "version": self.lib.version,
                       "path": self.lib.path},
        }
        for attr, key in (("get_bytes_per_sector", "sector_size"),
                          ("get_chunk_size", "chunk_size"),
                          ("get_compression_method", "compression_method"),
                          ("get_media_type", "media_type"),
                          ("get_format", "format")):
            fn = getattr(h, attr, None)
            if fn is not None:
                try:
                    info[key] = int(fn())
                except Exception:  # noqa: S112 - optional metadata
                    continue
        info.setdefault("sector_size", 512)
        return info

    def close(self) -> None:
        try:
            self._handle.close()
        except Exception:  # noqa: S110 - closing a read-only handle; nothing to report
            pass


def check_ewf_segments(path: str, segments: list[str]) -> None:
    """Fail fast on a missing or truncated E01 segment, naming it (RELIABILITY #7).

    libewf's glob stops at the first missing name, so a gap shows as a later segment that
    exists beyond the list; the chain must also end with a ``done`` section, which only a
    complete last segment has.
    """
    if not segments:
        raise EvidenceError(f"{path}: no E01 segment files found")
    segments.sort(key=lambda s: _segment_number(os.path.splitext(s)[1]))
    first = segments[0]
    if os.path.abspath(first) != os.path.abspath(path):
        raise EvidenceError(f"{path}: not the first segment of its E01 set (first is {first})")
    last = segments[-1]
    stem, ext = os.path.splitext(last)
    # Look a few names beyond the last globbed one for stragglers (a gap in the chain).
    nxt = _next_ewf_names(ext, 5)
    stragglers = [f"{stem}{e}" for e in nxt if os.path.exists(f"{stem}{e}")]
    if stragglers:
        missing = f"{stem}{nxt[0]}"
        raise EvidenceError(f"{path}: E01 segment {os.path.basename(missing)} is missing "
                            f"(found later segment(s) "
                            f"{', '.join(os.path.basename(s) for s in stragglers)})")
    for i, seg in enumerate(segments):
        last_one = i == len(segments) - 1
        end = _ewf_chain_end(seg)
        if end is None:
            raise EvidenceError(f"{seg}: E01 segment is truncated or damaged (its section "
                                "chain runs past the end of the file)")
        if last_one and end != "done":
            raise EvidenceError(
                f"{path}: the E01 set ends at {os.path.basename(seg)} without a 'done' "
                f"section: the next segment "
                f"({os.path.basename(os.path.splitext(seg)[0])}"
                f"{''.join(_next_ewf_names(os.path.splitext(seg)[1], 1))}) is missing")
        if not last_one and end != "next":
            raise EvidenceError(f"{seg}: E01 segment ends the set ('done') but more "
                                "segments follow")


def _segment_number(ext: str) -> int:
    rest = ext[2:].upper()
    if len(rest) != 2:
        return 0
    if rest.isdigit():
        return int(rest)
    return 100 + (ord(rest[0]) - 65) * 26 + (ord(rest[1]) - 65)


def _next_ewf_names(ext: str, n: int) -> list[str]:
    """The ``n`` segment extensions after ``ext`` (.E01..E99, then .EAA..; case kept)."""
    out: list[str] = []
    upper = ext[1:].upper()
    first, rest = ext[1], upper[1:]
    lower = ext[1].islower()
    if len(rest) != 2:
        return out
    if rest.isdigit():
        idx = int(rest)
    else:
        idx = 100 + (ord(rest[0]) - 65) * 26 + (ord(rest[1]) - 65)
    for k in range(1, n + 1):
        i = idx + k
        if i <= 99:
            e = f"{first}{i:02d}"
        else:
            j = i - 100
            if j >= 26 * 26:
                break
            e = f"{first}{chr(65 + j // 26)}{chr(65 + j % 26)}"
        out.append("." + (e.lower() if lower else e))
    return out


_EWF1_SECTION_HEADER = 76  # type[16] next[8] size[8] padding[40] checksum[4]


def _ewf_chain_end(segment: str) -> str | None:
    """Follow the EWF-E01 section chain of one segment file: ``"done"`` (last segment),
    ``"next"`` (more follow), ``"ewf2"`` (Ex01, left to libewf), or None when the chain
    breaks (a truncated or damaged segment)."""
    try:
        with open(segment, "rb") as f:
            return ewf_stream_chain_end(f)
    except OSError:
        return None


def ewf_stream_chain_end(f: BinaryIO) -> str | None:
    """:func:`_ewf_chain_end` of a segment held in a seekable file object."""
    f.seek(0)
    head = f.read(13)
    if head.startswith(EWF2_SIGNATURE):
        return "ewf2"
    if not head.startswith(EWF1_SIGNATURE):
        return None
    size = f.seek(0, os.SEEK_END)
    offset = 13
    for _ in range(1_000_000):
        if offset + _EWF1_SECTION_HEADER > size:
            return None
        f.seek(offset)
        hdr = f.read(_EWF1_SECTION_HEADER)
        kind = hdr[:16].rstrip(b"\x00")
        nxt = int.from_bytes(hdr[16:24], "little")
        if kind in (b"done", b"next"):
            return kind.decode()
        if nxt <= offset or nxt > size:
            return None
        offset = nxt
    return None


class _LibyalContainer(Container):
    """A libyal virtual-disk handle (pyvmdk/pyvhdi/pyqcow) behind the Container API."""

    def __init__(self, path: str, kind: str, handle: Any, module: ModuleType,
                 extra: dict[str, Any]) -> None:
        self.kind = kind
        self.path = path
        self._handle = handle
        self._module = module
        self.size = int(handle.get_media_size())
        self._extra = extra
        self._lock = threading.Lock()

    def read(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        size = min(size, self.size - offset)
        with self._lock:
            try:
                if hasattr(self._handle, "read_buffer_at_offset"):
                    data = self._handle.read_buffer_at_offset(size, offset)
                else:  # Debian's pyewf handle: seek + read
                    self._handle.seek(offset)
                    data = self._handle.read(size)
            except Exception as e:
                raise OSError(f"{self.kind} read error at media offset {offset} (+{size}): "
                              f"{e}") from e
        return bytes(data)

    def describe(self) -> dict[str, Any]:
        return {"container": self.kind, "segments": [self.path], "size": self.size,
                "sector_size": 512, "library": {"name": self._module.__name__,
                                                "version": str(self._module.get_version())},
                **self._extra}

    def close(self) -> None:
        try:
            self._handle.close()
        except Exception:  # noqa: S110 - closing a read-only handle; nothing to report
            pass


def _open_vmdk(path: str) -> Container:
    import pyvmdk

    handle = pyvmdk.handle()
    try:
        handle.open(path)
        handle.open_extent_data_files()
    except Exception as e:
        raise EvidenceError(f"{path}: libvmdk cannot open the VMDK (or one of its extent "
                            f"files): {e}") from e
    return _LibyalContainer(path, "vmdk", handle, pyvmdk, {})


def _open_vhdi(path: str) -> Container:
    import pyvhdi

    handle = pyvhdi.file()
    try:
        handle.open(path)
    except Exception as e:
        raise EvidenceError(f"{path}: libvhdi cannot open the VHD/VHDX: {e}") from e
    extra: dict[str, Any] = {}
    disk_type = getattr(handle, "get_disk_type", None)
    if disk_type is not None:
        try:
            extra["disk_type"] = int(disk_type())
        except Exception:  # noqa: S110 - optional metadata
            pass
    parent = getattr(handle, "get_parent_identifier", None)
    if parent is not None:
        try:
            pid = parent()
        except Exception:
            pid = None
        if pid:
            handle.close()
            raise EvidenceError(f"{path}: a differencing VHD needs its parent image "
                                f"({pid}); open the merged or parent image instead")
    return _LibyalContainer(path, "vhdi", handle, pyvhdi, extra)


def _open_qcow(path: str) -> Container:
    import pyqcow

    handle = pyqcow.file()
    try:
        handle.open(path)
    except Exception as e:
        raise EvidenceError(f"{path}: libqcow cannot open the QCOW image: {e}") from e
    return _LibyalContainer(path, "qcow", handle, pyqcow, {})


def _open_splitraw(path: str) -> Container:
    segments = split_raw_segments(path)
    if not segments:
        raise EvidenceError(f"{path}: split raw segments not found")
    return RawContainer(segments, "splitraw")


def _refuse_lef(path: str) -> Container:
    raise EvidenceError(f"{path}: a logical evidence file (L01/Lx01) is not a disk image; "
                        "triage reads physical E01 images only")


# ----------------------------------------------------------------- nested (file objects)


class StreamContainer(Container):
    """A raw disk image held in a seekable file object (a disk image found inside the
    evidence, already in a worker's memory)."""

    def __init__(self, stream: BinaryIO, label: str, kind: str = "raw") -> None:
        self.kind = kind
        self.label = label
        self._stream = stream
        self.size = stream.seek(0, os.SEEK_END)

    def read(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        self._stream.seek(offset)
        return self._stream.read(min(size, self.size - offset))

    def describe(self) -> dict[str, Any]:
        return {"container": self.kind, "segments": [self.label], "size": self.size,
                "sector_size": 512}


def _libyal_stream(kind: str, module_name: str, factory: str,
                   extents: bool = False) -> Callable[[BinaryIO, str], Container]:
    """An opener for a libyal format from one file object (no other segment/extent)."""
    def open_stream(stream: BinaryIO, label: str) -> Container:
        module: Any = pyewf_library().module if kind == "ewf" else \
            importlib.import_module(module_name)
        if kind == "ewf":
            end = ewf_stream_chain_end(stream)
            stream.seek(0)
            if end not in ("done", "ewf2"):
                raise EvidenceError(
                    "one segment of a multi-segment E01 set (its other segments are "
                    "separate files)" if end == "next" else
                    "the E01 segment is truncated or damaged")
        handle = getattr(module, factory)()
        try:
            if kind == "ewf":
                handle.open_file_objects([stream])
            else:
                handle.open_file_object(stream)
            if extents:
                handle.open_extent_data_files_as_file_objects([stream])
        except Exception as e:  # libyal raises IOError/RuntimeError/TypeError variants
            raise EvidenceError(f"lib{kind} cannot open it from its one file (a "
                                f"multi-segment or multi-extent image needs its other "
                                f"files): {' '.join(str(e).split())[:300]}") from e
        return _LibyalContainer(label, kind, handle, module, {"nested": True})
    return open_stream


# ----------------------------------------------------------------- raw disk layout by content

# Offsets and values. Sources: UEFI 2.10 section 5.2.1 (legacy MBR: entries at 446, 0x55AA
# at 510) and 5.3.2 (GPT header "EFI PART" in LBA 1); the ext4 disk layout (kernel.org:
# superblock at 1024, s_magic 0xEF53 at +0x38); Microsoft FAT spec fatgen103 (BS_FilSysType
# at 54, FAT32 at 82); Microsoft exFAT spec 3.1.2 (FileSystemName at 3); NTFS boot sector
# OEM ID at 3 (libyal libfsntfs docs); Apple TN1150 (HFS+ volume header at 1024, "H+" v4 /
# "HX" v5); ECMA-119 8.1 (ISO 9660 volume descriptor at 32768, "CD001" at +1).
BOOT_SIGNATURE = b"\x55\xaa"
GPT_SIGNATURE = b"EFI PART"
EXT_SUPERBLOCK = 1024
ISO9660_DESCRIPTOR = 32768
#: Head bytes a caller should pass so that every raw layout below can be seen (ISO 9660).
LAYOUT_HEAD_BYTES = ISO9660_DESCRIPTOR + 8


def _mbr_ok(head: bytes) -> bool:
    if head[510:512] != BOOT_SIGNATURE:
        return False
    used = 0
    for i in range(4):
        e = head[446 + 16 * i: 462 + 16 * i]
        if e[0] not in (0x00, 0x80):
            return False
        if e[4] != 0:  # partition type
            start, count = struct.unpack_from("<II", e, 8)
            if start == 0 or count == 0:
                return False
            used += 1
    return used > 0


def _ext_ok(head: bytes) -> bool:
    sb = head[EXT_SUPERBLOCK:EXT_SUPERBLOCK + 1024]
    if len(sb) < 1024 or sb[0x38:0x3A] != b"\x53\xef":
        return False
    inodes, blocks, _r, _f, _fi, first_data, log_block = struct.unpack_from("<7I", sb, 0)
    return inodes > 0 and blocks > 0 and first_data <= 1 and log_block <= 6


def has_disk_layout(head: bytes) -> str | None:
    """What marks ``head`` as the start of a raw disk or volume (``"gpt"``, ``"mbr"``, a
    file-system name), or None. Used only for data found inside evidence: a file given as
    evidence is read as raw whatever its content."""
    checks: tuple[tuple[str, bool], ...] = (
        ("gpt", head[512:520] == GPT_SIGNATURE and head[510:512] == BOOT_SIGNATURE),
        ("ntfs", head[3:11] == b"NTFS    " and head[510:512] == BOOT_SIGNATURE),
        ("exfat", head[3:11] == b"EXFAT   " and head[510:512] == BOOT_SIGNATURE),
        ("fat", head[510:512] == BOOT_SIGNATURE and (
            head[54:62] in (b"FAT12   ", b"FAT16   ", b"FAT     ")
            or head[82:90] == b"FAT32   ")),
        ("mbr", _mbr_ok(head)),
        ("ext", _ext_ok(head)),
        ("hfs+", head[1024:1026] in (b"H+", b"HX") and head[1026:1028] in (b"\x00\x04",
                                                                          b"\x00\x05")),
        ("iso9660", head[ISO9660_DESCRIPTOR + 1:ISO9660_DESCRIPTOR + 6] == b"CD001"),
    )
    return next((name for name, ok in checks if ok), None)


#: Bytes :func:`declared_size` needs: up to the ISO 9660 primary descriptor's block size.
DECLARED_SIZE_HEAD_BYTES = ISO9660_DESCRIPTOR + 2048


def declared_size(head: bytes) -> int | None:
    """The size in bytes that the partition table or file system at the start of ``head``
    says it spans (None when unknown): data that declares more than it holds is a boot
    record (NTFS ``$Boot``, a saved MBR) or a truncated image, not a disk to look into.
    Fields (lower bounds where a format has more): NTFS bytes per sector (0x0B) x total
    sectors (0x28); FAT bytes per sector x total sectors (0x13, else 0x20); exFAT volume
    length (0x48) << bytes-per-sector shift (0x6C); ext2/3/4 s_blocks_count_lo x
    1024 << s_log_block_size (superblock at 1024); HFS+ total blocks x block size
    (big-endian, at 1024+40); ISO 9660 volume space size x logical block size (primary
    descriptor, both-endian fields read little-endian); GPT the backup header's LBA (header
    at 512, field 0x20) + 1, x 512; MBR the end of the last partition (x 512)."""
    kind = has_disk_layout(head)
    try:
        if kind == "gpt":
            return (struct.unpack_from("<Q", head, 512 + 0x20)[0] + 1) * 512
        if kind == "ntfs":
            bps = struct.unpack_from("<H", head, 0x0B)[0]
            return bps * struct.unpack_from("<Q", head, 0x28)[0]
        if kind == "fat":
            bps, total16 = struct.unpack_from("<H", head, 0x0B)[0], \
                struct.unpack_from("<H", head, 0x13)[0]
            return bps * (total16 or struct.unpack_from("<I", head, 0x20)[0])
        if kind == "exfat":
            return struct.unpack_from("<Q", head, 0x48)[0] << head[0x6C]
        if kind == "ext":
            blocks, log = struct.unpack_from("<II", head, 1024 + 4)[0], \
                struct.unpack_from("<I", head, 1024 + 24)[0]
            return blocks * (1024 << min(log, 16))
        if kind == "hfs+":
            size, blocks = struct.unpack_from(">II", head, 1024 + 40)
            return size * blocks
        if kind == "iso9660":
            blocks = struct.unpack_from("<I", head, ISO9660_DESCRIPTOR + 80)[0]
            return blocks * struct.unpack_from("<H", head, ISO9660_DESCRIPTOR + 128)[0]
        if kind == "mbr":
            ends = [sum(struct.unpack_from("<II", head, 446 + 16 * i + 8))
                    for i in range(4) if head[446 + 16 * i + 4] != 0]
            return max(ends) * 512
    except struct.error:
        return None
    return None


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Probe:
    """What detection may look at: the first and last bytes, and for evidence given by
    path, the path and its file type (``path`` is None for data inside the evidence)."""

    head: bytes
    tail: bytes = b""
    path: str | None = None
    regular: bool = True
    size: int | None = None


@dataclass(frozen=True)
class DiskKind:
    """One disk image format. ``name`` is stable (recorded in cases). ``detect`` looks at
    a :class:`Probe` only; ``open`` opens evidence by path; ``open_stream`` opens one file
    object (a disk image found inside the evidence), None when the format needs more files."""

    name: str
    detect: Callable[[Probe], bool]
    open: Callable[[str], Container]
    open_stream: Callable[[BinaryIO, str], Container] | None = None
    catch_all: bool = False


def _vhd(p: Probe) -> bool:
    return p.head.startswith((VHDX_SIGNATURE, VHD_COOKIE)) or \
        p.tail[-512:].startswith(VHD_COOKIE) or p.tail[-511:].startswith(VHD_COOKIE)


def _raw(p: Probe) -> bool:
    if p.path is None:
        return has_disk_layout(p.head) is not None
    return not p.regular or (p.size or 0) >= 512  # smaller: no volume or file system fits


DISK_KINDS: dict[str, DiskKind] = {}


def register(kind: DiskKind) -> DiskKind:
    """Add a format; tried in registration order. Duplicates and kinds after the catch-all
    are refused."""
    if kind.name in DISK_KINDS:
        raise ValueError(f"disk image kind {kind.name!r} is already registered")
    if any(k.catch_all for k in DISK_KINDS.values()):
        raise ValueError(f"disk image kind {kind.name!r} registered after the catch-all")
    DISK_KINDS[kind.name] = kind
    return kind


register(DiskKind("ewf", lambda p: p.head.startswith((EWF1_SIGNATURE, EWF2_SIGNATURE)),
                  EwfContainer, _libyal_stream("ewf", "pyewf", "handle")))
register(DiskKind("lef", lambda p: p.head.startswith(LEF_SIGNATURES), _refuse_lef))
register(DiskKind("qcow", lambda p: p.head.startswith(QCOW_SIGNATURE), _open_qcow,
                  _libyal_stream("qcow", "pyqcow", "file")))
register(DiskKind("vhdi", _vhd, _open_vhdi, _libyal_stream("vhdi", "pyvhdi", "file")))
register(DiskKind("vmdk", lambda p: p.head.startswith(VMDK_SPARSE_SIGNATURES) or
                  p.head.startswith(VMDK_DESCRIPTOR_PREFIX), _open_vmdk,
                  _libyal_stream("vmdk", "pyvmdk", "handle", extents=True)))
register(DiskKind("splitraw", lambda p: p.path is not None and p.regular and
                  split_raw_segments(p.path) is not None, _open_splitraw))
register(DiskKind("raw", _raw, lambda path: RawContainer([path], "raw"), StreamContainer,
                  catch_all=True))  # any file or block device given as evidence: last


def _first(probe: Probe) -> str | None:
    return next((k.name for k in DISK_KINDS.values() if k.detect(probe)), None)


def detect_container(path: str) -> str | None:
    """The disk image kind of evidence at ``path`` (a name in :data:`DISK_KINDS`), or None
    when it is not a regular file or block device that could be an image.

    Side-effect free: opens the file read-only, reads its first and last 512 bytes.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    regular = stat.S_ISREG(st.st_mode)
    if not (regular or stat.S_ISBLK(st.st_mode)):
        return None
    try:
        head = _head(path)
        tail = _tail(path) if regular else b""
    except OSError:
        return None
    return _first(Probe(head, tail, path, regular, st.st_size if regular else None))


def detect_nested(head: bytes, tail: bytes = b"") -> str | None:
    """The disk image kind of data found inside the evidence, by content only: a
    signature, or for raw data a partition table or file-system superblock
    (:func:`has_disk_layout`; pass :data:`LAYOUT_HEAD_BYTES` of head). None otherwise."""
    return _first(Probe(head, tail))


def open_container(path: str, kind: str | None = None) -> Container:
    """Open ``path`` as the container ``kind`` (detected when None). Raises EvidenceError."""
    kind = kind or detect_container(path)
    if kind is None:
        raise EvidenceError(f"{path}: not a disk image (not a regular file or block device, "
                            "or smaller than one sector)")
    if kind not in DISK_KINDS:
        raise EvidenceError(f"{path}: unknown container type {kind!r}")
    return DISK_KINDS[kind].open(path)


def open_nested(kind: str, stream: BinaryIO, label: str) -> Container:
    """Open a disk image found inside the evidence from one seekable file object
    (``label`` names it in ``describe()``). Raises EvidenceError whose message says why,
    without the label (the format needs other files, or the library refuses it)."""
    opener = DISK_KINDS[kind].open_stream
    if opener is None:
        raise EvidenceError(f"a {kind} image needs its other files (segments, extents)")
    return opener(stream, label)
