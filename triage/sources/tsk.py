"""The Sleuth Kit side of disk images: volumes, file-system walk, content streams.

Everything here calls libtsk (pytsk3) and may crash or hang on a damaged file system, so
:mod:`triage.sources.image` only calls :func:`probe_layout` and :func:`walk_volume` inside
a child process, and :func:`open_content` inside a worker.

Volumes: a volume system (DOS/MBR incl. extended partitions, GPT, BSD, Sun, Mac) through
``pytsk3.Volume_Info``; partitions flagged allocated are scanned; no volume system means the
whole image is one volume (a bare file system). Paths of a partitioned disk are prefixed
with ``p<N>/`` (N counts scanned partitions in table order, 1-based, like dfvfs).

The walk follows ``fls -r -p``: every name including deleted names and ``$OrphanFiles``,
NTFS ``$DATA`` streams as ``file:stream`` entries, named index roots as ``file:$NAME``.
"""

from __future__ import annotations

import heapq
import io
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytsk3

from ..errors import EvidenceError
from . import base, unalloc
from .base import EntryAmendment, FileEntry, Problem
from .disk_containers import Container, ReadAhead
from .unalloc import SlackCollector

MAX_DEPTH = 128  # deeper directory nesting is treated as a damaged file system (cycle)
READ_CHUNK = 1 << 20
#: Largest read-ahead window of libtsk's small reads (:class:`ContainerImg`).
IMG_WINDOW = 1 << 20
OVERWRITTEN_NOTE = "deleted: content may be overwritten"
FAT_RECOVERY_NOTE = ("deleted FAT file recovered as contiguous clusters from its first "
                     "cluster (TSK naive recovery): wrong if the file was fragmented")
ORPHAN_NOTE = "orphan: parent directory unknown"

# libtsk enum values (tsk_fs.h); pytsk3 exposes them as enum objects, int() gives the value.
_ATTR_DEFAULT = int(pytsk3.TSK_FS_ATTR_TYPE_DEFAULT)
_ATTR_NTFS_DATA = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_DATA)
_ATTR_NTFS_IDXROOT = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_IDXROOT)
_ATTR_HFS_DATA = int(pytsk3.TSK_FS_ATTR_TYPE_HFS_DATA)
_ATTR_FLAG_NONRES = int(pytsk3.TSK_FS_ATTR_NONRES)
_ATTR_FLAG_SPARSE_COMP = int(pytsk3.TSK_FS_ATTR_SPARSE) | int(pytsk3.TSK_FS_ATTR_COMP)
_RUN_FLAG_NODATA = int(pytsk3.TSK_FS_ATTR_RUN_FLAG_SPARSE) | int(
    pytsk3.TSK_FS_ATTR_RUN_FLAG_FILLER)
_NAME_FLAG_UNALLOC = int(pytsk3.TSK_FS_NAME_FLAG_UNALLOC)
_META_FLAG_ALLOC = int(pytsk3.TSK_FS_META_FLAG_ALLOC)
_META_FLAG_UNALLOC = int(pytsk3.TSK_FS_META_FLAG_UNALLOC)
_VS_PART_FLAG_ALLOC = int(pytsk3.TSK_VS_PART_FLAG_ALLOC)
_VS_PART_FLAG_UNALLOC = int(pytsk3.TSK_VS_PART_FLAG_UNALLOC)

# Not applicable by design (status ``skipped``, issue 12's outcome classes): entries that are
# recorded but never read because there is nothing of the user's to read, by the format's
# own definition. Anything else that cannot be read stays an error.
#
# NTFS $BadClus (reserved MFT entry 8, NTFS_MFT_BADCLUS in TSK's tsk_ntfs.h) keeps the
# volume's bad clusters in its $DATA stream named $Bad: a sparse stream exactly as long as the
# volume whose only allocated runs sit on clusters marked bad (LCN = VCN; Microsoft's
# chkdsk sources, badfile.hxx: "stored as a sparse file with LCN = VCN"). istat on DFTT
# 7-undel-ntfs shows "$DATA (128-1) Name: $Bad Non-Resident size: 6160384 init_size: 0":
# nothing in it was ever written. libtsk drops its single all-sparse run (ntfs.c,
# ntfs_make_data_run: "special case for $BADCLUST ... If there is only one run entry and it
# is sparse, then there are no bad blocks, so get rid of it"), so a read returns no bytes
# (icat 8-128-1 prints nothing) and reading it would count the whole volume as unreadable.
# Other sparse streams (a user's sparse file, $UsnJrnl:$J) hold real data and are read:
# their sparse runs read as zeros, which is their content.
_NTFS_MFT_BADCLUS = 8
_NTFS_BADCLUS_STREAM = b"$Bad"
BADCLUS_REASON = ("NTFS bad-cluster list $BadClus:$Bad: sparse by design, as long as the "
                  "volume and allocated only on clusters marked bad ({n} marked bad): "
                  "recorded, never read")
#: A volume without a file system whose every byte has one value (zeroed, or erased flash
#: at 0xFF) is unformatted: nothing to list or read (checked by reading all of it).
BLANK_VOLUME_REASON = ("{where}: unformatted: no file system, and all {n} bytes are "
                       "{value:#04x}: nothing to read")
EMPTY_VOLUME_REASON = "{where}: empty partition (0 bytes): nothing to read"
BLANK_CHECK_CHUNK = 4 << 20

_META_KIND = {
    int(pytsk3.TSK_FS_META_TYPE_REG): base.FILE,
    int(pytsk3.TSK_FS_META_TYPE_DIR): base.DIRECTORY,
    int(pytsk3.TSK_FS_META_TYPE_VIRT_DIR): base.DIRECTORY,
    int(pytsk3.TSK_FS_META_TYPE_LNK): base.SYMLINK,
    int(pytsk3.TSK_FS_META_TYPE_FIFO): base.FIFO,
    int(pytsk3.TSK_FS_META_TYPE_SOCK): base.SOCKET,
    int(pytsk3.TSK_FS_META_TYPE_CHR): base.CHAR_DEVICE,
    int(pytsk3.TSK_FS_META_TYPE_BLK): base.BLOCK_DEVICE,
}
_META_VIRT = int(pytsk3.TSK_FS_META_TYPE_VIRT)
_NAME_KIND = {
    int(pytsk3.TSK_FS_NAME_TYPE_REG): base.FILE,
    int(pytsk3.TSK_FS_NAME_TYPE_DIR): base.DIRECTORY,
    int(pytsk3.TSK_FS_NAME_TYPE_LNK): base.SYMLINK,
    int(pytsk3.TSK_FS_NAME_TYPE_FIFO): base.FIFO,
    int(pytsk3.TSK_FS_NAME_TYPE_SOCK): base.SOCKET,
    int(pytsk3.TSK_FS_NAME_TYPE_CHR): base.CHAR_DEVICE,
    int(pytsk3.TSK_FS_NAME_TYPE_BLK): base.BLOCK_DEVICE,
    int(pytsk3.TSK_FS_NAME_TYPE_VIRT_DIR): base.DIRECTORY,
}


class ContainerImg(pytsk3.Img_Info):
    """A ``pytsk3.Img_Info`` reading through any :class:`Container` (the dfvfs pattern).

    libtsk's small reads (its 64 KiB cache pieces: inode tables, MFT, directories, small
    files) go through a :class:`ReadAhead`: where they go forward they are read in windows
    of up to a megabyte, instead of one jump back to the inode table per 64 KiB of it.
    """

    def __init__(self, container: Container) -> None:
        self._container = container
        self._ahead = ReadAhead(container.read, container.size, max_window=IMG_WINDOW)
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def read(self, offset: int, size: int) -> bytes:
        return self._ahead.read(offset, size)

    def get_size(self) -> int:
        return self._container.size

    def close(self) -> None:
        """The container is owned (and closed) by the caller."""


def _enum_names(prefix: str, skip: tuple[str, ...]) -> dict[int, str]:
    out: dict[int, str] = {}
    for name in dir(pytsk3):
        if name.startswith(prefix) and not name.endswith(skip):
            value = getattr(pytsk3, name)
            if isinstance(value, int):
                out.setdefault(int(value), name[len(prefix):].lower())
    return out


_FS_TYPES = _enum_names("TSK_FS_TYPE_", ("_DETECT", "_ENUM"))
_VS_TYPES = _enum_names("TSK_VS_TYPE_", ("_DETECT", "_ENUM"))


def fs_type_name(ftype: int) -> str:
    """libtsk's name of a file-system type (``ntfs``, ``fat16``, ``ext4``, ...)."""
    return _FS_TYPES.get(ftype, f"tsk-{ftype:#x}")


# --------------------------------------------------------------------------- layout


@dataclass
class Volume:
    """One volume to scan (a partition, or the whole image for a bare file system)."""

    index: int  # position among scanned volumes (0-based)
    offset: int  # bytes from the start of the media
    length: int  # bytes
    description: str
    prefix: bytes  # path prefix: b"" for a bare file system, b"p1" ... for partitions
    slot: int | None = None  # TSK partition address
    fs_type: str | None = None
    fs_block_size: int | None = None
    error: str | None = None


@dataclass
class Layout:
    volume_system: str | None
    sector_size: int
    partitions: list[dict[str, Any]] = field(default_factory=list)  # every table entry
    volumes: list[Volume] = field(default_factory=list)
    error: str | None = None
    #: ``(byte offset, length)`` of the volume system's unallocated entries (space no
    #: partition holds; issue 17 carves it).
    unpartitioned: list[tuple[int, int]] = field(default_factory=list)


def probe_layout(img: pytsk3.Img_Info, sector_size: int = 512) -> Layout:
    """Find the volume system (if any) and the file system of every volume.

    Never raises for a damaged volume: its ``error`` says why it cannot be scanned.
    """
    try:
        vs = pytsk3.Volume_Info(img)
    except OSError:
        vs = None
    if vs is None:
        layout = Layout(volume_system=None, sector_size=sector_size)
        vol = Volume(0, 0, int(img.get_size()), "whole image (no partition table)", b"")
        _probe_fs(img, vol)
        if vol.error:
            vol.error = ("no partition table and no file system libtsk recognises "
                         f"({vol.error})")
        layout.volumes.append(vol)
        return layout
    block = int(vs.info.block_size) or sector_size
    vstype = int(vs.info.vstype)
    layout = Layout(volume_system=_VS_TYPES.get(vstype, f"tsk-{vstype:#x}"),
                    sector_size=block)
    size = int(img.get_size())
    scanned = 0
    for part in vs:
        desc = part.desc.decode("utf-8", "replace") if isinstance(part.desc, bytes) \
            else str(part.desc)
        entry: dict[str, Any] = {"slot": int(part.addr), "start_sector": int(part.start),
                 "offset": int(part.start) * block, "sectors": int(part.len),
                 "length": int(part.len) * block, "description": desc,
                 "allocated": bool(int(part.flags) & _VS_PART_FLAG_ALLOC)}
        layout.partitions.append(entry)
        if not entry["allocated"]:
            if int(part.flags) & _VS_PART_FLAG_UNALLOC and entry["length"] > 0:
                layout.unpartitioned.append((entry["offset"], entry["length"]))
            continue
        scanned += 1
        vol = Volume(len(layout.volumes), entry["offset"], entry["length"], desc,
                     f"p{scanned}".encode(), slot=entry["slot"])
        if vol.offset >= size:
            vol.error = (f"partition {scanned} starts at byte {vol.offset}, past the end of "
                         f"the image ({size} bytes)")
        else:
            if vol.offset + vol.length > size:
                entry["note"] = "extends past the end of the image"
            _probe_fs(img, vol)
            if vol.error:
                vol.error = f"partition {scanned} ({desc}): {vol.error}"
        layout.volumes.append(vol)
    return layout


def blank_volume(img: pytsk3.Img_Info, vol: Volume,
                 tick: Callable[[], None] = lambda: None) -> str | None:
    """Why a volume without a file system (``vol.error`` set by :func:`probe_layout`) is
    not applicable, or None when it is not blank (it then stays an error).

    Blank means empty (0 bytes) or every byte one value, found by reading all of it
    (``tick`` is called after each 4 MiB, so that the caller can say it is alive). A volume
    that extends past the end of the image, or whose bytes cannot all be read, is never
    blank: what is missing might have held anything.
    """
    where = (f"partition {vol.prefix[1:].decode()} ({vol.description})" if vol.prefix
             else vol.description)
    if vol.length == 0:
        return EMPTY_VOLUME_REASON.format(where=where)
    if vol.offset + vol.length > int(img.get_size()):
        return None
    value: bytes | None = None
    pos = 0
    while pos < vol.length:
        n = min(BLANK_CHECK_CHUNK, vol.length - pos)
        try:
            chunk = bytes(img.read(vol.offset + pos, n))
        except OSError:
            return None
        if len(chunk) != n:
            return None
        if value is None:
            value = chunk[:1]
        if chunk.strip(value):
            return None
        pos += n
        tick()
    assert value is not None
    return BLANK_VOLUME_REASON.format(where=where, n=vol.length, value=value[0])


def _probe_fs(img: pytsk3.Img_Info, vol: Volume) -> None:
    try:
        fs = pytsk3.FS_Info(img, offset=vol.offset)
    except OSError as e:
        vol.error = f"no file system libtsk can open: {_tsk_msg(e)}"
        return
    vol.fs_type = fs_type_name(int(fs.info.ftype))
    vol.fs_block_size = int(fs.info.block_size)


def _tsk_msg(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


# --------------------------------------------------------------------------- walk


def _identity_path(path: bytes) -> str:
    """An injective str form of path bytes (backslash escaped, bad UTF-8 as \\xNN)."""
    return path.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def _times(meta: Any) -> tuple[dict[str, float | None], dict[str, Any]]:
    out: dict[str, float | None] = {}
    raw: dict[str, Any] = {}
    for key in ("mtime", "atime", "ctime", "crtime"):
        sec = int(getattr(meta, key, 0) or 0)
        nano = int(getattr(meta, f"{key}_nano", 0) or 0)
        raw[key] = sec
        if nano:
            raw[f"{key}_nano"] = nano
        out[key] = (sec + nano / 1e9) if (sec or nano) else None
    return out, raw


def walk_volume(img: pytsk3.Img_Info, vol: Volume, check: bool = True,
                carve: bool = False) -> Iterator[FileEntry | EntryAmendment]:
    """Every entry of one volume, depth first, children in name-byte order, then (``check``)
    the :class:`EntryAmendment` items of the block-ownership consistency check
    (:class:`BlockCheck`), then (``carve``, issue 17) the entries of the volume's
    unallocated space and of its files' slack (:func:`carve_areas`).

    Cycle and depth protection: a directory meta address is entered once; nesting deeper
    than MAX_DEPTH ends that branch with an error entry. Per-directory failures become error
    entries; the walk goes on.
    """
    fs = pytsk3.FS_Info(img, offset=vol.offset)
    blocks = BlockCheck(img, fs, vol) if check else None
    slack = SlackCollector(vol.offset, int(fs.info.block_size)) if carve else None
    ntfs = vol.fs_type == "ntfs"
    fat = vol.fs_type in ("fat12", "fat16", "fat32")
    root = int(fs.info.root_inum)
    visited: set[int] = {root}
    stack: list[tuple[int, bytes, int, bool]] = [(root, b"", 0, False)]
    while stack:
        dir_addr, dir_path, depth, dir_deleted = stack.pop()
        try:
            directory = fs.open_dir(inode=dir_addr)
            children = [f for f in directory]
        except OSError as e:
            yield _error_entry(vol, dir_path, dir_addr, "enumerate",
                               f"cannot list directory (meta {dir_addr}): {_tsk_msg(e)}")
            continue
        named = []
        for f in children:
            name = f.info.name.name
            if name in (b".", b"..") or name is None:
                continue
            named.append((bytes(name), f))
        named.sort(key=lambda t: t[0])
        subdirs: list[tuple[int, bytes, int, bool]] = []
        for name, f in named:
            rel = dir_path + b"/" + name if dir_path else name
            loaded: list[Any] = []
            produced: list[FileEntry] = []
            for entry, descend in _file_entries(fs, vol, f, rel, ntfs, fat, dir_deleted,
                                                loaded):
                produced.append(entry)
                yield entry
                if descend is None:
                    continue
                if descend in visited:
                    continue
                if depth + 1 >= MAX_DEPTH:
                    yield _error_entry(vol, rel, descend, "enumerate",
                                       f"directory nesting deeper than {MAX_DEPTH}: not "
                                       "entered (damaged file system or a cycle)")
                    continue
                visited.add(descend)
                subdirs.append((descend, rel, depth + 1, entry.deleted))
            if blocks is not None and loaded:
                blocks.add(loaded[0], produced)
            if slack is not None and loaded and produced and not produced[0].deleted:
                slack.add(loaded[0], _display(produced[0].path), _DATA_ATTRS,
                          _ATTR_FLAG_NONRES, _RUN_FLAG_NODATA)
        stack.extend(reversed(subdirs))
    if blocks is not None:
        yield from blocks.finish()
    if slack is not None:
        yield from carve_areas(img, fs, vol, slack)


def carve_areas(img: Any, fs: Any, vol: Volume, slack: SlackCollector) -> Iterator[FileEntry]:
    """The carving entries of one walked volume (issue 17): its unallocated space, from
    the file system's allocation map (:func:`unalloc.free_blocks`), and its files' slack.
    An allocation map that cannot be read is an error entry, never a silent skip."""
    folder = vol.prefix
    limit = int(img.get_size())
    try:
        runs, bs, method = unalloc.free_blocks(img.read, fs, vol.fs_type, vol.offset,
                                               slack.allocated)
    except (OSError, ValueError, struct.error) as e:
        yield FileEntry(identity=f"{vol.offset}:carve:unallocated:error",
                        path=(folder + b"/" if folder else b"") + b"$Unallocated",
                        kind=base.OTHER, preset_status=(
                            "error", "enumerate", f"unallocated space not carved: the "
                            f"allocation map of the {vol.fs_type} volume cannot be read: "
                            f"{type(e).__name__}: {_tsk_msg(e)}"))
    else:
        area = unalloc.Area(unalloc.UNALLOCATED, vol.offset, bs, method,
                            unalloc.to_bytes(runs, vol.offset, bs, limit))
        if area.ranges:
            yield from unalloc.area_entries(area, folder)
    if slack.slack:
        note = (f"slack of only the first {unalloc.MAX_SLACK_RANGES} files listed; "
                f"{slack.dropped} more not carved") if slack.dropped else None
        ranges = [(o, min(n, limit - o), w) for o, n, w in sorted(slack.slack) if o < limit]
        area = unalloc.Area(unalloc.SLACK, vol.offset, slack.block_size,
                            "the allocated files' data runs past their sizes", ranges, note)
        yield from unalloc.area_entries(area, folder)


def _error_entry(vol: Volume, path: bytes, addr: int | None, stage: str,
                 reason: str) -> FileEntry:
    full = _full_path(vol, path)
    return FileEntry(identity=f"{vol.offset}:{addr}:error:{_identity_path(full)}",
                     path=full, kind=base.OTHER, inode=addr,
                     preset_status=("error", stage, reason))


def _full_path(vol: Volume, rel: bytes) -> bytes:
    if not vol.prefix:
        return rel
    return vol.prefix + b"/" + rel if rel else vol.prefix


def _file_entries(fs: Any, vol: Volume, f: Any, rel: bytes, ntfs: bool, fat: bool,
                  parent_deleted: bool, loaded: list[Any] | None = None,
                  ) -> Iterator[tuple[FileEntry, int | None]]:
    """The entries for one name: (entry, meta address to descend into or None).

    ``loaded`` receives the libtsk file object (with metadata) when the name has metadata
    that is not a reallocated one (for :class:`BlockCheck`)."""
    name = f.info.name
    name_unalloc = bool(int(name.flags) & _NAME_FLAG_UNALLOC)
    addr = int(name.meta_addr)
    meta = f.info.meta
    if meta is None and addr != 0:
        # pytsk3's directory iterator leaves meta unloaded for many deleted names; load it
        # (fls does the same) and judge reallocation below.
        try:
            f = fs.open_meta(inode=addr)
            meta = f.info.meta
        except OSError:
            meta = None
    full = _full_path(vol, rel)
    notes: list[str] = []
    preset: tuple[str, str, str] | None = None
    if meta is None:
        kind = _NAME_KIND.get(int(name.type), base.OTHER)
        deleted = True if name_unalloc else parent_deleted
        reason = (f"deleted name without metadata (meta address {addr}): content cannot be "
                  "recovered" if name_unalloc else
                  f"name without readable metadata (meta address {addr})")
        if kind == base.FILE:
            # A deleted name of meta address 0 has no metadata at all, by design: in
            # ext2/3/4 inode 0 marks an unused directory entry ("A value of 0 indicate that
            # the entry is not used", Poirier, "The Second Extended File System", directory
            # entry field ``inode``) and TSK lists such names so (fls "r/- * 0:"). Nothing
            # to read: not applicable. A name whose metadata exists but cannot be loaded
            # (nonzero address) or an allocated name without metadata stays an error.
            no_metadata = name_unalloc and addr == 0
            preset = ("skipped" if no_metadata else "error", "enumerate", reason)
        notes.append(reason)
        yield (FileEntry(identity=f"{vol.offset}:{addr}:none:{_identity_path(full)}",
                         path=full, kind=kind, allocated=False, deleted=deleted, inode=addr,
                         preset_status=preset, notes=tuple(notes)), None)
        return
    meta_flags = int(meta.flags)
    meta_alloc = bool(meta_flags & _META_FLAG_ALLOC)
    meta_type = int(meta.type)
    realloc = name_unalloc and meta_alloc  # fls "(realloc)"
    if loaded is not None and not realloc and meta_type != _META_VIRT:
        loaded.append(f)
    deleted = name_unalloc or not meta_alloc or parent_deleted
    allocated = not name_unalloc and meta_alloc
    if meta_type == _META_VIRT:
        kind = base.OTHER
        preset = ("skipped", "enumerate",
                  "TSK virtual file (file-system metadata such as $MBR or $FAT): not a file")
    else:
        kind = _META_KIND.get(meta_type, base.OTHER)
    if realloc:
        notes.append("deleted name whose metadata entry now belongs to another file")
        if kind == base.FILE:
            preset = ("skipped", "enumerate",
                      "deleted name whose metadata entry was reallocated to another file: "
                      "its content belongs to that file")
    elif deleted:
        notes.append(OVERWRITTEN_NOTE)
        if fat and kind == base.FILE:
            notes.append(FAT_RECOVERY_NOTE)
    if rel.startswith(b"$OrphanFiles/"):
        notes.append(ORPHAN_NOTE)
    times, raw = _times(meta)
    link = None
    if kind == base.SYMLINK:
        target = getattr(meta, "link", None)
        if target:
            link = target if isinstance(target, bytes) else str(target).encode()
    if kind not in (base.FILE, base.DIRECTORY) and kind != base.OTHER and preset is None:
        preset = ("skipped", "enumerate", f"not a regular file: {kind}")
    descend = addr if kind == base.DIRECTORY and not realloc else None
    common: dict[str, Any] = dict(
        mtime=times["mtime"], atime=times["atime"], ctime=times["ctime"],
        crtime=times["crtime"], times_raw=raw, allocated=allocated, deleted=deleted,
        inode=addr, notes=tuple(notes))

    def make(suffix: bytes, attr: tuple[int, int] | None, entry_kind: str, size: int | None,
             entry_preset: tuple[str, str, str] | None) -> FileEntry:
        path = full + b":" + suffix if suffix else full
        attr_key = f"{attr[0]}-{attr[1]}" if attr else "default"
        locator: tuple[Any, ...] | None = None
        if entry_kind == base.FILE and entry_preset is None:
            locator = (vol.offset, addr, attr, size)
            first = _first_data_byte(fs, f, attr, vol.offset)
            if first is not None:
                locator = (*locator, first)
        return FileEntry(identity=f"{vol.offset}:{addr}:{attr_key}:{_identity_path(path)}",
                         path=path, kind=entry_kind, size=size, link_target=link,
                         locator=locator, preset_status=entry_preset, **common)

    if ntfs:
        printed = False
        dir_done = False
        for a in _attrs(f):
            atype, aid, aname, asize = a
            if atype == _ATTR_NTFS_DATA:
                printed = True
                if kind == base.DIRECTORY and not aname:
                    continue
                stream_preset = preset
                if (stream_preset is None and addr == _NTFS_MFT_BADCLUS
                        and aname == _NTFS_BADCLUS_STREAM):
                    stream_preset = ("skipped", "enumerate", BADCLUS_REASON.format(
                        n=_allocated_blocks(f, atype, aid)))
                yield make(aname or b"", (atype, aid),
                           base.FILE if kind in (base.FILE, base.DIRECTORY) else kind,
                           asize, stream_preset), None
            elif atype == _ATTR_NTFS_IDXROOT:
                printed = True
                if aname == b"$I30":
                    if not dir_done:
                        dir_done = True
                        yield make(b"", (atype, aid), kind, None, preset), descend
                else:
                    yield make(aname or b"", (atype, aid), base.FILE, asize, preset), None
        if not printed:
            size = int(meta.size) if kind == base.FILE else None
            yield make(b"", None, kind, size, preset), descend
        return
    size = int(meta.size) if kind == base.FILE else None
    yield make(b"", None, kind, size, preset), descend


def _allocated_blocks(f: Any, atype: int, aid: int) -> int:
    """Blocks of one attribute's data runs that are neither sparse nor filler (0 when it
    has no runs or they cannot be loaded)."""
    try:
        for a in f:
            if (int(a.info.type), int(a.info.id)) != (atype, aid):
                continue
            if not int(a.info.flags) & _ATTR_FLAG_NONRES:
                return 0
            return sum(max(int(run.len), 0) for run in a
                       if not int(run.flags) & _RUN_FLAG_NODATA)
    except OSError:
        pass
    return 0


def _attrs(f: Any) -> list[tuple[int, int, bytes | None, int]]:
    out = []
    try:
        for a in f:
            info = a.info
            name = info.name
            out.append((int(info.type), int(info.id),
                        bytes(name) if name else None, int(info.size)))
    except OSError:
        pass
    return out


# --------------------------------------------------------------------------- consistency

CROSS_LINKED = "CrossLinked"
UNALLOCATED_BLOCKS = "UnallocatedBlocks"
SIZE_MISMATCH = "SizeMismatch"
INCONSISTENT = "FileSystemInconsistent"
#: Note on a deleted entry whose blocks now belong to allocated files (RELIABILITY #6).
OVERWRITTEN_PRECISE = "deleted: content overwritten: {n} of {m} blocks now belong to {who}"
#: Overlap comparisons per volume before the sweep gives up (a damaged file system where
#: everything overlaps everything must not turn the check into a hang).
MAX_COMPARISONS = 20_000_000
#: Largest allocation bitmap read (bytes); 512 MiB covers 4 Gi clusters.
MAX_BITMAP = 512 << 20
#: File systems whose format lets files share data blocks: ISO9660 (and its Joliet / Rock
#: Ridge trees) points hard links and identical files at one extent.
_SHARING_ALLOWED = ("iso9660",)
_DATA_ATTRS = (_ATTR_DEFAULT, _ATTR_NTFS_DATA, _ATTR_HFS_DATA)


@dataclass
class _Owner:
    identity: str
    display: str
    allocated: bool
    meta: int
    blocks: int = 0


class BlockCheck:
    """File-system-independent block-ownership check of one volume, from libtsk's data runs.

    During the walk, :meth:`add` records every non-resident attribute's data runs (sparse
    and filler runs, resident data and virtual files left out) as ``[start, end)`` block
    ranges in three flat arrays; :meth:`finish` sorts them by start and sweeps once
    (``O(n log n)``), keeping the ranges that are still open in two heaps (allocated and
    deleted owners). It yields :class:`EntryAmendment` items:

    * allocated entries sharing blocks with other allocated entries: problem
      ``CrossLinked`` on each (not on ISO9660, where sharing is allowed);
    * deleted entries whose blocks now belong to allocated entries: the note
      "deleted: content overwritten: N of M blocks now belong to <path>";
    * allocated data streams whose size exceeds what their runs cover: ``SizeMismatch``;
    * where the file system's allocation bitmap is a file libtsk lists (exFAT
      ``$ALLOC_BITMAP``, NTFS ``$Bitmap``): allocated entries using blocks it marks free,
      ``UnallocatedBlocks``;

    and, if any of these problems was found, one error entry for the volume that sums them up.
    """

    def __init__(self, img: Any, fs: Any, vol: Volume) -> None:
        self.img = img
        self.fs = fs
        self.vol = vol
        self.block_size = int(fs.info.block_size) or 512
        self.starts = array("q")
        self.ends = array("q")
        self.owner_of = array("q")
        self.owners: list[_Owner] = []
        self.seen: set[int] = set()
        self.problems: dict[int, list[tuple[str, str, str]]] = {}
        self.bitmap_addr: int | None = None

    # -- collecting --------------------------------------------------------------------

    def add(self, f: Any, produced: list[FileEntry]) -> None:
        """Record the data runs of one file (once per meta address: hard links and
        several names of one metadata entry are one owner)."""
        meta = f.info.meta
        if meta is None or not produced:
            return
        addr = int(meta.addr)
        if addr in self.seen:
            return
        self.seen.add(addr)
        main = produced[0]
        allocated = not main.deleted
        if allocated:
            self._note_bitmap(addr, main)
        by_attr: dict[str, int] = {}
        main_owner: int | None = None

        def owner(e: FileEntry) -> int:
            self.owners.append(_Owner(e.identity, _display(e.path), allocated, addr))
            return len(self.owners) - 1

        try:
            for a in f:
                info = a.info
                if not int(info.flags) & _ATTR_FLAG_NONRES:
                    continue
                atype = int(info.type)
                key = f"{atype}-{int(info.id)}"
                entry = next((e for e in produced if e.identity.split(":", 3)[2] == key),
                             None)
                if entry is not None:
                    idx = by_attr.get(key)
                    if idx is None:
                        idx = by_attr[key] = owner(entry)
                else:
                    if main_owner is None:
                        main_owner = owner(main)
                    idx = main_owner
                covered, nruns = self._runs(a, idx)
                size = int(info.size)
                target = entry or main
                # No runs at all is how libtsk gives a sparse stream (NTFS $BadClus:$Bad);
                # compressed and sparse-flagged streams have their own accounting.
                if (allocated and nruns and atype in _DATA_ATTRS and target.kind == base.FILE
                        and not int(info.flags) & _ATTR_FLAG_SPARSE_COMP
                        and size > covered * self.block_size):
                    self.problems.setdefault(idx, []).append((
                        "filesystem", SIZE_MISMATCH,
                        f"size {size} bytes but its data runs cover only "
                        f"{covered * self.block_size} bytes ({covered} blocks of "
                        f"{self.block_size})"))
        except OSError:
            return  # attributes libtsk cannot load: nothing to check

    def _runs(self, attr: Any, idx: int) -> tuple[int, int]:
        """Record one attribute's runs; (blocks covered incl. sparse runs, run count)."""
        covered = nruns = 0
        for run in attr:
            length = int(run.len)
            if length <= 0:
                continue
            covered += length
            nruns += 1
            if int(run.flags) & _RUN_FLAG_NODATA:
                continue
            start = int(run.addr)
            self.starts.append(start)
            self.ends.append(start + length)
            self.owner_of.append(idx)
            self.owners[idx].blocks += length
        return covered, nruns

    def _note_bitmap(self, addr: int, entry: FileEntry) -> None:
        if self.vol.fs_type == "exfat" and entry.path == _full_path(self.vol,
                                                                     b"$ALLOC_BITMAP"):
            self.bitmap_addr = addr
        elif self.vol.fs_type == "ntfs" and addr == 6 and entry.path == _full_path(
                self.vol, b"$Bitmap"):
            self.bitmap_addr = addr

    # -- checking ----------------------------------------------------------------------

    def finish(self) -> Iterator[FileEntry | EntryAmendment]:
        """The amendments (and the volume's summary entry), once the walk is over."""
        try:
            cross, over, complete = self._sweep()
            unalloc, bitmap_note = self._bitmap_check()
        except (OSError, MemoryError) as e:
            yield self._volume_entry("error", f"block-ownership check failed: "
                                     f"{type(e).__name__}: {_tsk_msg(e)}")
            return
        owners = self.owners
        notes: dict[int, list[str]] = {}
        for (a, b), (n, first) in sorted(cross.items()):
            for me, other in ((a, b), (b, a)):
                self.problems.setdefault(me, []).append((
                    "filesystem", CROSS_LINKED,
                    f"shares {n} blocks (first: block {first}) with {owners[other].display}"))
        by_deleted: dict[int, dict[int, int]] = {}
        for (d, a), n in over.items():
            by_deleted.setdefault(d, {})[a] = by_deleted.get(d, {}).get(a, 0) + n
        for d, hits in by_deleted.items():
            total = min(sum(hits.values()), owners[d].blocks)
            ranked = sorted(hits.items(), key=lambda t: (-t[1], owners[t[0]].display))
            who = owners[ranked[0][0]].display
            if len(ranked) > 1:
                who += f" and {len(ranked) - 1} other file{'s' if len(ranked) > 2 else ''}"
            notes.setdefault(d, []).append(
                OVERWRITTEN_PRECISE.format(n=total, m=owners[d].blocks, who=who))
        for idx, (n, first) in unalloc.items():
            self.problems.setdefault(idx, []).append((
                "filesystem", UNALLOCATED_BLOCKS,
                f"uses {n} blocks that the allocation bitmap marks free (first: block "
                f"{first})"))
        # One amendment per entry, in walk order (several owners may share an identity).
        merged: dict[str, tuple[list[str], list[tuple[str, str, str]]]] = {}
        for idx in sorted(set(notes) | set(self.problems)):
            n_list, p_list = merged.setdefault(owners[idx].identity, ([], []))
            n_list.extend(x for x in notes.get(idx, []) if x not in n_list)
            p_list.extend(x for x in self.problems.get(idx, []) if x not in p_list)
        counts: dict[str, set[str]] = {}
        for identity, (n_list, p_list) in merged.items():
            yield EntryAmendment(identity, notes=tuple(n_list),
                                 problems=tuple(Problem(*p) for p in p_list))
            for _stage, cls, _msg in p_list:
                counts.setdefault(cls, set()).add(identity)
        parts = []
        for cls, label in ((CROSS_LINKED, "cross-linked"),
                           (UNALLOCATED_BLOCKS, "using blocks the allocation bitmap marks free"),
                           (SIZE_MISMATCH, "with a size their data runs do not cover")):
            if cls in counts:
                n = len(counts[cls])
                parts.append(f"{n} {'entry' if n == 1 else 'entries'} {label}")
        if not complete:
            parts.append(f"check stopped after {MAX_COMPARISONS} overlap comparisons "
                         "(too many overlapping runs)")
        if parts:
            msg = "file system inconsistencies found: " + "; ".join(parts)
            if bitmap_note:
                msg += f" ({bitmap_note})"
            yield self._volume_entry("error", msg)
            yield EntryAmendment(self._volume_identity(),
                                 problems=(Problem("filesystem", INCONSISTENT, msg),))

    def _volume_identity(self) -> str:
        return f"{self.vol.offset}:volume:consistency"

    def _volume_entry(self, status: str, msg: str) -> FileEntry:
        return FileEntry(identity=self._volume_identity(), path=self.vol.prefix,
                         kind=base.OTHER, preset_status=(status, "filesystem", msg))

    def _sweep(self) -> tuple[dict[tuple[int, int], list[int]], dict[tuple[int, int], int],
                              bool]:
        starts, ends, owner_of, owners = self.starts, self.ends, self.owner_of, self.owners
        sharing_ok = self.vol.fs_type in _SHARING_ALLOWED
        order = sorted(range(len(starts)), key=starts.__getitem__)
        live: list[tuple[int, int]] = []  # (end, run) of allocated owners
        dead: list[tuple[int, int]] = []  # (end, run) of deleted owners
        cross: dict[tuple[int, int], list[int]] = {}
        over: dict[tuple[int, int], int] = {}
        work = 0
        for i in order:
            s, e, o = starts[i], ends[i], owner_of[i]
            while live and live[0][0] <= s:
                heapq.heappop(live)
            while dead and dead[0][0] <= s:
                heapq.heappop(dead)
            me = owners[o]
            work += len(live) + (len(dead) if me.allocated else 0)
            if work > MAX_COMPARISONS:
                return cross, over, False
            for end2, j in live:
                o2 = owner_of[j]
                if owners[o2].meta == me.meta:
                    continue
                n = min(e, end2) - s
                if me.allocated:
                    if sharing_ok:
                        continue
                    key = (o2, o) if o2 < o else (o, o2)
                    hit = cross.get(key)
                    if hit is None:
                        cross[key] = [n, s]
                    else:
                        hit[0] += n
                        hit[1] = min(hit[1], s)
                else:
                    over[(o, o2)] = over.get((o, o2), 0) + n
            if me.allocated:
                for end2, j in dead:
                    o2 = owner_of[j]
                    if owners[o2].meta != me.meta:
                        over[(o2, o)] = over.get((o2, o), 0) + min(e, end2) - s
                heapq.heappush(live, (e, i))
            else:
                heapq.heappush(dead, (e, i))
        return cross, over, True

    def _bitmap_check(self) -> tuple[dict[int, tuple[int, int]], str]:
        """Allocated owners' blocks that the allocation bitmap marks free: {owner: (count,
        first block)}. Only where the bitmap is a file libtsk lists (exFAT, NTFS)."""
        if self.bitmap_addr is None:
            return {}, ""
        geometry = self._cluster_geometry()
        if geometry is None:
            return {}, ""
        heap, per_cluster, count = geometry
        f = self.fs.open_meta(inode=self.bitmap_addr)
        size = int(f.info.meta.size)
        if size > MAX_BITMAP or size * 8 < count:
            return {}, "allocation bitmap not checked: unexpected size"
        bitmap = bytearray()
        while len(bitmap) < size:
            chunk = bytes(f.read_random(len(bitmap), min(READ_CHUNK, size - len(bitmap))))
            if not chunk:
                return {}, "allocation bitmap not checked: unreadable"
            bitmap += chunk
        out: dict[int, tuple[int, int]] = {}
        for i in range(len(self.starts)):
            o = self.owner_of[i]
            if not self.owners[o].allocated:
                continue
            s, e = self.starts[i], self.ends[i]
            if s < heap:
                continue  # not in the cluster heap (exFAT); NTFS heap is 0
            c0 = (s - heap) // per_cluster
            c1 = min((e - 1 - heap) // per_cluster + 1, count)
            if c0 >= c1:
                continue
            free, first = _free_bits(bitmap, c0, c1)
            if free:
                block = heap + (first * per_cluster)
                n = free * per_cluster
                prev = out.get(o)
                out[o] = (n, block) if prev is None else (prev[0] + n, min(prev[1], block))
        return out, ""

    def _cluster_geometry(self) -> tuple[int, int, int] | None:
        """(first block of the cluster heap, blocks per cluster, cluster count): bit i of
        the bitmap is the i-th cluster of the heap (exFAT cluster i + 2, NTFS cluster i)."""
        if self.vol.fs_type == "ntfs":
            return 0, 1, int(self.fs.info.last_block) + 1
        boot = bytes(self.img.read(self.vol.offset, 512))
        if len(boot) < 512 or boot[3:11] != b"EXFAT   ":
            return None
        heap, count = struct.unpack_from("<II", boot, 0x58)[0], struct.unpack_from(
            "<I", boot, 0x5C)[0]
        sector = 1 << boot[0x6C]
        if sector != self.block_size:
            return None
        return heap, 1 << boot[0x6D], count


def _free_bits(bitmap: bytearray, c0: int, c1: int) -> tuple[int, int]:
    """(number of clear bits in [c0, c1), index of the first clear bit, relative to 0)."""
    b0, b1 = c0 // 8, (c1 + 7) // 8
    chunk = bitmap[b0:b1]
    if chunk.count(0xFF) == len(chunk):
        return 0, 0
    value = int.from_bytes(chunk, "little") >> (c0 - 8 * b0)
    width = c1 - c0
    mask = (1 << width) - 1
    clear = ~value & mask
    if not clear:
        return 0, 0
    first = (clear & -clear).bit_length() - 1
    return clear.bit_count(), c0 + first


def _display(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace") or "/"


# --------------------------------------------------------------------------- content


class TskStream(io.RawIOBase):
    """Sequential reads of one attribute of one file, for a worker.

    Unreadable ranges are zero-filled and listed in ``bad_ranges`` ``[(offset, length)]``;
    a short read from libtsk before ``size`` is reached counts as unreadable too.
    """

    def __init__(self, f: Any, attr: tuple[int, int] | None, size: int, label: str,
                 block: int) -> None:
        super().__init__()
        self._f = f
        self._attr = attr
        self._size = size
        self._pos = 0
        self._label = label
        self._block = max(512, block)
        self.bad_ranges: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def _tsk_read(self, offset: int, length: int) -> bytes:
        if self._attr is None:
            data = self._f.read_random(offset, length)
        else:
            data = self._f.read_random(offset, length, self._attr[0], self._attr[1])
        return bytes(data)

    def _bad(self, offset: int, length: int) -> None:
        if self.bad_ranges and sum(self.bad_ranges[-1]) == offset:
            start, n = self.bad_ranges[-1]
            self.bad_ranges[-1] = (start, n + length)
        else:
            self.bad_ranges.append((offset, length))

    def _read_at(self, offset: int, length: int) -> bytes:
        try:
            data = self._tsk_read(offset, length)
        except OSError:
            data = None
        if data is not None and len(data) == length:
            return data
        # Narrow the failure down to blocks: keep what reads, zero-fill the rest.
        out = bytearray()
        pos = offset
        end = offset + length
        while pos < end:
            n = min(self._block - (pos % self._block), end - pos)
            try:
                piece = self._tsk_read(pos, n)
            except OSError:
                piece = b""
            if len(piece) < n:
                self._bad(pos + len(piece), n - len(piece))
                piece = piece + bytes(n - len(piece))
            out += piece
            pos += n
        return bytes(out)

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        n = min(len(buffer), self._size - self._pos)
        data = self._read_at(self._pos, n)
        buffer[:n] = data
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        """Like ``RawIOBase.read`` but returns libtsk's bytes as they are: the default goes
        through ``readinto`` and copies every chunk twice more."""
        if self._pos >= self._size:
            return b""
        n = self._size - self._pos if size is None or size < 0 else \
            min(size, self._size - self._pos)
        data = self._read_at(self._pos, n)
        self._pos += n
        return data


def _first_data_byte(fs: Any, f: Any, attr: tuple[int, int] | None,
                     vol_offset: int) -> int | None:
    """Where in the image the content of ``attr`` (the default data attribute when None)
    starts: the byte offset of its first run with data, the key by which the pending files of
    an image are read in physical order (issue 13). None when it has no such run (resident
    or empty data, sparse) or libtsk cannot say."""
    try:
        for a in f:
            t, i = int(a.info.type), int(a.info.id)
            if (attr is not None and (t, i) == tuple(attr)) or (
                    attr is None and t in (_ATTR_DEFAULT, _ATTR_NTFS_DATA, _ATTR_HFS_DATA)):
                if not int(a.info.flags) & _ATTR_FLAG_NONRES:
                    return None
                for run in a:
                    if not int(run.flags) & _RUN_FLAG_NODATA:
                        return vol_offset + int(run.addr) * int(fs.info.block_size)
                return None
    except OSError:
        return None
    return None


def open_content(fs: Any, locator: tuple[Any, ...], label: str) -> TskStream:
    """Open the attribute a locator names. Raises EvidenceError when it has no content.

    A deleted file with a size but no data runs (e.g. an ext4 file whose extents were
    cleared on deletion) is refused, never read as zeros or as the empty file (RELIABILITY
    #5). An allocated file without runs is sparse: its zeros are its content.
    """
    # A fifth element, where the content starts in the image, only orders the reads.
    _offset, addr, attr, size = locator[:4]
    try:
        f = fs.open_meta(inode=addr)
    except OSError as e:
        raise EvidenceError(f"{label}: libtsk cannot open meta address {addr}: "
                            f"{_tsk_msg(e)}") from e
    if size is None:
        size = int(f.info.meta.size) if f.info.meta is not None else 0
    if size > 0:
        chosen = None
        try:
            for a in f:
                t, i = int(a.info.type), int(a.info.id)
                if attr is not None and (t, i) == tuple(attr):
                    chosen = a
                    break
                if attr is None and t in (_ATTR_DEFAULT, _ATTR_NTFS_DATA, _ATTR_HFS_DATA):
                    chosen = a
                    break
        except OSError as e:
            raise EvidenceError(f"{label}: libtsk cannot load the attributes of meta address "
                                f"{addr}: {_tsk_msg(e)}") from e
        if chosen is None:
            raise EvidenceError(f"{label}: size {size} bytes but no data attribute "
                                "(content not recoverable)")
        meta_unalloc = bool(int(f.info.meta.flags) & _META_FLAG_UNALLOC)
        if meta_unalloc and int(chosen.info.flags) & _ATTR_FLAG_NONRES and not any(
                not int(run.flags) & _RUN_FLAG_NODATA for run in chosen):
            # An allocated file without data runs is a sparse file (its zeros are its
            # content); a deleted one had its block pointers cleared (ext4, NTFS).
            raise EvidenceError(f"{label}: deleted file of {size} bytes with no data runs "
                                "left (block pointers cleared): content not recoverable")
    return TskStream(f, tuple(attr) if attr is not None else None, size, label,
                     int(fs.info.block_size))
