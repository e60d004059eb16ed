"""Where a volume's deleted data can lie: its unallocated blocks and the slack of its files
(issue 17), as byte ranges of the image, for carving.

Unallocated blocks come from the file system's own allocation map, read through libtsk's
image handle: the FAT (FAT12/16/32: a cluster is free when its FAT entry is 0; Microsoft
"FAT: General Overview of On-Disk Format" 1.03, section "FAT Data Structure"), the ext2/3/4
block bitmaps (one per block group, located by the group descriptors; "ext4 Data
Structures and Algorithms", kernel.org, "Block Group Descriptors"), the NTFS ``$Bitmap``
file (one bit per cluster). Any other file system (exFAT, HFS+, ISO 9660, ...): the
complement of every allocated file's data runs, which also counts file-system metadata that
no file lists as unallocated (said in the area's ``method``). ``blkls`` (The Sleuth Kit)
gives the same blocks for FAT and ext (tests/test_carve_unalloc.py checks it).

Slack of a file: the bytes of its allocated blocks past its size (libtsk's data runs,
sparse and filler runs left out), where a previous file's bytes may remain.

Everything here runs in the enumeration child (it reads through libtsk); the ranges travel
to a worker inside an entry's locator (:func:`area_entries`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Ranges in one carving entry; an area with more is split into several entries (between
#: ranges, never inside one), so that a locator stays small in the case database.
MAX_RANGES_PER_ENTRY = 20_000
#: Slack ranges collected per volume at most (one per allocated file); more are dropped
#: and the volume's slack entry says so.
MAX_SLACK_RANGES = 200_000
#: Largest allocation map read (bytes): 64 MiB of FAT32 entries is 16 Mi clusters.
MAX_MAP_BYTES = 256 << 20

UNALLOCATED = "unallocated"
SLACK = "slack"
UNPARTITIONED = "unpartitioned"


@dataclass
class Area:
    """Byte ranges of the image to carve: ``ranges`` are ``(image offset, length, owner)``
    in disk order, ``owner`` the display path of the file whose slack it is (None for
    unallocated space)."""

    kind: str
    vol_offset: int
    block_size: int
    method: str
    ranges: list[tuple[int, int, str | None]] = field(default_factory=list)
    note: str | None = None


def _runs_from_bits(bitmap: bytes, count: int) -> Iterator[tuple[int, int]]:
    """(first index, length) of every run of clear bits among the first ``count`` bits of
    an allocation bitmap (bit i is bit ``i % 8`` of byte ``i // 8``, least significant
    first: ext and NTFS). Bytes that are all set are skipped in C (``re``); what is left is
    taken 512 bytes at a time, so a hostile bitmap of alternating bits stays linear."""
    nbytes = (count + 7) // 8
    pending: tuple[int, int] | None = None
    for m in _NOT_FULL.finditer(bitmap, 0, nbytes):
        for at in range(m.start(), m.end(), _BITMAP_STEP):
            chunk = bitmap[at:min(at + _BITMAP_STEP, m.end())]
            width = len(chunk) * 8
            clear = ~int.from_bytes(chunk, "little") & ((1 << width) - 1)
            pos = at * 8
            while clear:
                low = (clear & -clear).bit_length() - 1
                clear >>= low
                pos += low
                run = (~clear & (clear + 1)).bit_length() - 1
                clear >>= run
                start, n = pos, min(run, count - pos)
                pos += run
                if n <= 0:
                    break
                if pending is not None and pending[0] + pending[1] == start:
                    pending = (pending[0], pending[1] + n)
                else:
                    if pending is not None:
                        yield pending
                    pending = (start, n)
    if pending is not None:
        yield pending


_NOT_FULL = re.compile(rb"[^\xff]+")
_BITMAP_STEP = 512


def _merge(blocks: Iterator[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, n in blocks:
        if n <= 0:
            continue
        if out and out[-1][0] + out[-1][1] == start:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((start, n))
    return out


def fat_free_blocks(read: Any, vol_offset: int) -> tuple[list[tuple[int, int]], int]:
    """Free sectors of a FAT12/16/32 volume as ``(first sector, count)`` runs, and the
    sector size. Sectors are libtsk's FAT block addresses. Sectors after the last whole
    cluster are left out (no cluster holds them; blkls leaves them out too)."""
    boot = bytes(read(vol_offset, 512))
    bps, spc = struct.unpack_from("<HB", boot, 0x0B)
    rsvd, nfats, root_ents, tot16, _media, fatsz16 = struct.unpack_from("<HBHHBH", boot, 0x0E)
    tot32 = struct.unpack_from("<I", boot, 0x20)[0]
    fatsz = fatsz16 or struct.unpack_from("<I", boot, 0x24)[0]
    total = tot16 or tot32
    if bps not in (512, 1024, 2048, 4096) or spc == 0 or nfats == 0 or fatsz == 0:
        raise ValueError("FAT boot sector: implausible geometry")
    root_secs = (root_ents * 32 + bps - 1) // bps
    first_data = rsvd + nfats * fatsz + root_secs
    clusters = max(0, (total - first_data) // spc)
    if clusters < 4085:
        width = 12
    elif clusters < 65525:
        width = 16
    else:
        width = 32
    if fatsz16 == 0:  # a FAT32 BPB: the FAT is 32-bit whatever the count (TSK agrees)
        width = 32
    need = (clusters + 2) * width // 8 + 2
    if need > MAX_MAP_BYTES:
        raise ValueError(f"FAT of {need} bytes is over {MAX_MAP_BYTES}")
    fat = bytes(read(vol_offset + rsvd * bps, min(need, fatsz * bps)))

    def free() -> Iterator[tuple[int, int]]:
        for c in range(2, clusters + 2):
            if width == 32:
                off = c * 4
                if off + 4 > len(fat):
                    break
                v = struct.unpack_from("<I", fat, off)[0] & 0x0FFFFFFF
            elif width == 16:
                off = c * 2
                if off + 2 > len(fat):
                    break
                v = struct.unpack_from("<H", fat, off)[0]
            else:
                off = c + c // 2
                if off + 2 > len(fat):
                    break
                pair = struct.unpack_from("<H", fat, off)[0]
                v = pair >> 4 if c & 1 else pair & 0xFFF
            if v == 0:
                yield first_data + (c - 2) * spc, spc

    return _merge(free()), bps


def ext_free_blocks(read: Any, vol_offset: int) -> tuple[list[tuple[int, int]], int]:
    """Free blocks of an ext2/3/4 volume from its block bitmaps, and the block size.

    A group flagged BLOCK_UNINIT has no bitmap written: all its blocks are free except
    what the kernel computes as its metadata; here the whole group counts as free (at worst
    a backup superblock is carved over: nothing is found there)."""
    sb = bytes(read(vol_offset + 1024, 1024))
    if struct.unpack_from("<H", sb, 0x38)[0] != 0xEF53:
        raise ValueError("ext superblock: bad magic")
    blocks_lo, = struct.unpack_from("<I", sb, 0x04)
    first_data, log_bs, _, bpg = struct.unpack_from("<IIII", sb, 0x14)
    incompat, = struct.unpack_from("<I", sb, 0x60)
    bs = 1024 << log_bs
    is64 = bool(incompat & 0x80)
    blocks = blocks_lo | ((struct.unpack_from("<I", sb, 0x150)[0] << 32) if is64 else 0)
    desc_size = struct.unpack_from("<H", sb, 0xFE)[0] if is64 else 32
    desc_size = max(desc_size, 32)
    if bpg == 0 or bs > 65536:
        raise ValueError("ext superblock: implausible geometry")
    groups = (blocks - first_data + bpg - 1) // bpg
    gdt = bytes(read(vol_offset + (first_data + 1) * bs, groups * desc_size))
    out: list[tuple[int, int]] = []
    for g in range(groups):
        d = gdt[g * desc_size:(g + 1) * desc_size]
        if len(d) < 32:
            raise ValueError(f"ext group descriptor {g} unreadable")
        bitmap_at = struct.unpack_from("<I", d, 0)[0]
        if is64 and desc_size >= 64:
            bitmap_at |= struct.unpack_from("<I", d, 0x20)[0] << 32
        flags = struct.unpack_from("<H", d, 0x12)[0]
        base = first_data + g * bpg
        count = min(bpg, blocks - base)
        if flags & 0x2:  # EXT4_BG_BLOCK_UNINIT
            out.append((base, count))
            continue
        bitmap = bytes(read(vol_offset + bitmap_at * bs, (count + 7) // 8))
        out.extend((base + s, n) for s, n in _runs_from_bits(bitmap, count))
    return _merge(iter(out)), bs


def ntfs_free_blocks(fs: Any) -> tuple[list[tuple[int, int]], int]:
    """Free clusters of an NTFS volume from ``$Bitmap`` (MFT entry 6), read through
    libtsk, and the cluster size."""
    bs = int(fs.info.block_size)
    count = int(fs.info.last_block) + 1
    f = fs.open_meta(inode=6)
    size = int(f.info.meta.size)
    if size > MAX_MAP_BYTES or size * 8 < count:
        raise ValueError(f"$Bitmap of {size} bytes for {count} clusters")
    bitmap = bytes(f.read_random(0, size))
    if len(bitmap) != size:
        raise ValueError("$Bitmap: short read")
    return _merge(_runs_from_bits(bitmap, count)), bs


def complement(allocated: list[tuple[int, int]], first: int, last: int
               ) -> list[tuple[int, int]]:
    """The blocks in ``[first, last]`` that no ``(start, end)`` range covers."""
    out: list[tuple[int, int]] = []
    pos = first
    for s, e in sorted(allocated):
        if s > pos:
            out.append((pos, min(s, last + 1) - pos))
        pos = max(pos, e)
        if pos > last:
            break
    if pos <= last:
        out.append((pos, last + 1 - pos))
    return [(s, n) for s, n in out if n > 0]


def free_blocks(read: Any, fs: Any, fs_type: str | None, vol_offset: int,
                allocated: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], int, str]:
    """(free block runs, block size, how they were found) of one volume. ``allocated``
    holds the ``(start, end)`` blocks of every allocated file's runs (for the fallback).
    Raises ValueError/OSError when the allocation map cannot be read."""
    t = fs_type or ""
    if t in ("fat12", "fat16", "fat32"):
        runs, bs = fat_free_blocks(read, vol_offset)
        return runs, bs, "the FAT (clusters whose entry is 0)"
    if t in ("ext2", "ext3", "ext4"):
        runs, bs = ext_free_blocks(read, vol_offset)
        return runs, bs, "the ext block bitmaps"
    if t == "ntfs":
        runs, bs = ntfs_free_blocks(fs)
        return runs, bs, "the NTFS $Bitmap"
    bs = int(fs.info.block_size)
    runs = complement(allocated, int(fs.info.first_block), int(fs.info.last_block))
    return runs, bs, ("the complement of every allocated file's data runs (file-system "
                      "metadata that no file lists is included)")


class SlackCollector:
    """Collects, during a volume's walk, the allocated files' data runs (for
    :func:`complement`) and their slack ranges."""

    def __init__(self, vol_offset: int, block_size: int) -> None:
        self.vol_offset = vol_offset
        self.block_size = block_size
        self.allocated: list[tuple[int, int]] = []
        self.slack: list[tuple[int, int, str | None]] = []
        self.dropped = 0
        self.seen: set[int] = set()

    def add(self, f: Any, display: str, data_attr_types: tuple[int, ...], nonres: int,
            nodata: int) -> None:
        """Record one allocated file (once per meta address)."""
        meta = f.info.meta
        if meta is None:
            return
        addr = int(meta.addr)
        if addr in self.seen:
            return
        self.seen.add(addr)
        bs = self.block_size
        try:
            for a in f:
                info = a.info
                if not int(info.flags) & nonres:
                    continue
                size = int(info.size)
                is_data = int(info.type) in data_attr_types
                logical = 0
                for run in a:
                    n = int(run.len)
                    if n <= 0:
                        continue
                    if not int(run.flags) & nodata:
                        start = int(run.addr)
                        self.allocated.append((start, start + n))
                        if is_data and logical + n * bs > size:
                            # The part of this run past the file's end is slack.
                            cut = max(0, size - logical)
                            off = self.vol_offset + start * bs + cut
                            length = n * bs - cut
                            if len(self.slack) < MAX_SLACK_RANGES:
                                self.slack.append((off, length, display))
                            else:
                                self.dropped += 1
                    logical += n * bs
        except OSError:
            return


def to_bytes(runs: list[tuple[int, int]], vol_offset: int, bs: int, limit: int
             ) -> list[tuple[int, int, str | None]]:
    """Block runs as image byte ranges, clipped to ``limit`` (the image's end)."""
    out: list[tuple[int, int, str | None]] = []
    for s, n in runs:
        off = vol_offset + s * bs
        length = min(n * bs, limit - off)
        if length > 0:
            out.append((off, length, None))
    return out


#: Names of the carving entries in a volume's folder (``$`` like TSK's ``$OrphanFiles``).
AREA_NAMES = {UNALLOCATED: b"$Unallocated", SLACK: b"$Slack", UNPARTITIONED: b"$Unpartitioned"}
#: Signatures are looked for every ALIGN bytes from the volume's start: sectors in
#: unallocated and unpartitioned space (where files start), every byte in slack.
AREA_ALIGN = {UNALLOCATED: 512, SLACK: 1, UNPARTITIONED: 512}


def area_entries(area: Area, folder: bytes) -> list[Any]:
    """The entries of one carving area (several when it has more than
    MAX_RANGES_PER_ENTRY ranges): kind ``file``, path ``<folder>/$Unallocated`` (``.2``,
    ``.3`` ... for later parts), size the bytes of its ranges, and a carving locator (see
    :mod:`triage.carving`). None when the area is empty."""
    from ..model import FILE, FileEntry

    out = []
    name = AREA_NAMES[area.kind]
    for part, i in enumerate(range(0, len(area.ranges), MAX_RANGES_PER_ENTRY), start=1):
        ranges = area.ranges[i:i + MAX_RANGES_PER_ENTRY]
        label = name if part == 1 else name + f".{part}".encode()
        path = folder + b"/" + label if folder else label
        notes = [f"{area.kind} {'area' if area.kind != SLACK else 'ranges'} of the volume "
                 f"({len(ranges)} ranges), from {area.method}: carved for pictures and videos"]
        if area.note:
            notes.append(area.note)
        out.append(FileEntry(
            identity=(f"disk:carve:{area.kind}:{part}" if area.kind == UNPARTITIONED
                      else f"{area.vol_offset}:carve:{area.kind}:{part}"),
            path=path, kind=FILE,
            size=sum(n for _, n, _ in ranges), allocated=False, deleted=False,
            locator=("carve", area.kind, area.vol_offset, area.block_size,
                     AREA_ALIGN[area.kind], [list(r) for r in ranges]),
            notes=tuple(notes)))
    return out
