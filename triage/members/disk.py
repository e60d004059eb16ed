"""Disk images found inside the evidence (nested evidence): an E01, VMDK, VHD/VHDX, QCOW2
or raw disk that is a file on a drive, in a folder, or a member of an archive.

The image is opened read-only from the bytes the worker already holds, through the same
machinery as evidence given on the command line (:mod:`triage.sources.disk_containers`
for the container, :mod:`triage.sources.tsk` for volumes and file systems), and its files
become members like those of an archive: same limits (members, bytes per member, total
bytes, time, depth), names are the paths inside the image (``p1/dir/photo.jpg`` on a
partitioned disk), deleted files carry the ``deleted`` flag. Formats that need more than
one file (a multi-segment E01, a VMDK descriptor with its extents, split raw) are detected
and reported as not opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from ..errors import EvidenceError
from ..sources.base import FILE, FileEntry
from ..sources.disk_containers import (
    DECLARED_SIZE_HEAD_BYTES,
    LAYOUT_HEAD_BYTES,
    declared_size,
    detect_nested,
    has_disk_layout,
    open_nested,
)
from .base import Budget, ContainerError, Limits, Member, member_caps, read_capped, short


def nested_kind(stream: BinaryIO) -> str | None:
    """The disk image kind of the data in ``stream`` (position restored), or None."""
    here = stream.tell()
    try:
        stream.seek(0)
        head = stream.read(LAYOUT_HEAD_BYTES)
        end = stream.seek(0, 2)
        stream.seek(max(0, end - 512))
        tail = stream.read(512)
    finally:
        stream.seek(here)
    return detect_nested(head, tail)


def nested_head_kind(head: bytes) -> str | None:
    """The disk image kind of data whose first bytes are ``head`` (the registry's
    ``detect``; a VHD with its footer only at the end is not seen here but as raw when its
    disk holds a partition table)."""
    return detect_nested(head[:LAYOUT_HEAD_BYTES])


def expand_disk(stream: BinaryIO, limits: Limits, budget: Budget,
                name: bytes = b"") -> Iterator[Member]:
    """Files of a nested disk image, volume by volume, in the file-system walk's order
    (directories are not members). Raises ``ContainerError`` (``"nested disk image (KIND):
    not opened: ..."``) when the image cannot be opened or holds no file system libtsk
    reads; volumes that cannot be read are named in a ``ContainerError`` raised after the
    members of the others."""
    import pytsk3

    from ..sources.tsk import ContainerImg, probe_layout, walk_volume

    kind = nested_kind(stream) or "raw"
    label = name.decode("utf-8", "backslashreplace") or "nested image"
    try:
        container = open_nested(kind, stream, label)
    except EvidenceError as e:
        raise ContainerError(f"nested disk image ({kind}): not opened: "
                             f"{' '.join(str(e).split())[:300]}",
                             ("nested-disk", "unsupported")) from e
    try:
        img = ContainerImg(container)
        layout = probe_layout(img)
        problems = [v.error for v in layout.volumes if v.error]
        if not any(v.error is None for v in layout.volumes) and kind == "raw":
            _refuse_boot_record(stream, problems)
        # libtsk cannot tell a damaged file system from one it does not support (APFS,
        # btrfs, XFS ...): either way not looked into, a coverage gap rather than damage.
        if not any(v.error is None for v in layout.volumes):
            raise ContainerError(f"nested disk image ({kind}): not opened: "
                                 f"{'; '.join(problems) or 'no volume'}",
                                 ("nested-disk", "unsupported"))
        count = 0
        for vol in layout.volumes:
            if vol.error is not None:
                continue
            fs = pytsk3.FS_Info(img, offset=vol.offset)
            for entry in walk_volume(img, vol, check=False):
                budget.check_time()
                if not isinstance(entry, FileEntry) or entry.kind != FILE:
                    continue
                count += 1
                if count > limits.max_members:
                    raise ContainerError(f"limit: more than {limits.max_members} members "
                                         f"(max_members)", ("limit:members",))
                yield _member(fs, entry, limits, budget, label)
        if problems:
            raise ContainerError(f"nested disk image ({kind}): some volumes not read: "
                                 f"{'; '.join(problems)}", ("nested-disk", "unsupported"))
    finally:
        container.close()


def _refuse_boot_record(stream: BinaryIO, problems: list[str]) -> None:
    """Raise ``ContainerError`` flagged ``boot-record`` when the raw data declares a larger
    volume than it holds: a boot record (NTFS ``$Boot`` is the first sectors of the very
    volume being scanned; a saved MBR) or a truncated image. Neither is a disk that could be
    looked into, so it is a note on the file, not a coverage gap: otherwise every NTFS
    volume would end with a gap (issue 12: healthy images exit 0)."""
    here = stream.tell()
    try:
        stream.seek(0)
        head = stream.read(DECLARED_SIZE_HEAD_BYTES)
        held = stream.seek(0, 2)
    finally:
        stream.seek(here)
    declared = declared_size(head)
    if declared is not None and declared > held:
        raise ContainerError(
            f"nested disk image (raw, {has_disk_layout(head)}): not opened: a boot record "
            f"or a truncated image: it declares {declared} bytes and holds {held}"
            + (f" ({'; '.join(problems)})" if problems else ""), ("nested-disk", "boot-record"))


def _member(fs: Any, entry: FileEntry, limits: Limits, budget: Budget,
            label: str) -> Member:
    from ..sources.tsk import open_content

    flags = ("deleted",) if entry.deleted else ()
    if entry.preset_status is not None:  # the file-system walk's own outcome for it
        status, _stage, why = entry.preset_status
        return Member(entry.path, "member", entry.size, entry.mtime, None, None, flags, why,
                      status_hint=status)
    caps = member_caps(limits, budget, None)
    which, flag = ("max_member_bytes", "limit:member-bytes") if caps.member <= caps.total \
        else ("max_total_bytes", "limit:total-bytes")
    if entry.size is not None and entry.size > caps.cap:
        return Member(entry.path, "member", entry.size, entry.mtime, None, None,
                      (*flags, flag),
                      f"limit: member declared size {entry.size} bytes > {caps.cap} "
                      f"({which})")
    try:
        stream = open_content(fs, entry.locator,
                              f"{label}!{entry.path.decode('utf-8', 'backslashreplace')}")
        data = read_capped(stream.read, caps.cap, budget)
    except (EvidenceError, OSError) as e:
        return Member(entry.path, "member", entry.size, entry.mtime, None, None, flags,
                      short(e))
    if data is None:
        return Member(entry.path, "member", entry.size, entry.mtime, None, None,
                      (*flags, flag),
                      f"limit: member more than {caps.cap} bytes ({which})")
    if stream.bad_ranges:
        shown = ", ".join(f"{o}+{n}" for o, n in stream.bad_ranges[:10])
        return Member(entry.path, "member", entry.size, entry.mtime, None, None, flags,
                      f"unreadable ranges (offset+length): {shown}")
    budget.charge(len(data))
    return Member(entry.path, "member", len(data), entry.mtime, None, data, flags)
