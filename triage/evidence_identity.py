"""What identifies a piece of evidence, so that a case never mistakes other evidence at the
same path for the one it scanned.

A scan of evidence already in the case resumes it: enumeration is not redone. That is only
right for the SAME evidence. Swap another exhibit into the mounted folder, or replace the
image file, and a resume would silently report the old listing. So the case records, with
the evidence, facts that change when the evidence does, and a resume compares them:

* a folder: the device and inode of its root, the file system's id (``statvfs`` f_fsid,
  which ext4 and XFS derive from the file-system UUID), the file system's type, source and
  UUID from ``/proc/self/mountinfo`` and ``/dev/disk/by-uuid`` where the system has them,
  and a digest of the top-level listing (names, inode numbers, sizes and modification
  times of the entries directly in the root);
* a disk image: its container type, media size, the stored acquisition hashes, and per
  segment file its size and a digest of its first and last 64 KiB (a quick fingerprint: a
  full hash is ``verify-image``'s job).

Only the facts in :data:`COMPARED` that both records hold are compared (a fact this machine
cannot see, such as a UUID without udev, is left out rather than guessed). The device
number, the mount source and ``f_fsid`` (which FAT derives from the device number) are
recorded but not compared: the same exhibit attached again, after a reboot or on another
loop device, gets new ones, and refusing that resume would be wrong.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Any

#: Version of the set of facts below; bump it when facts change meaning.
METHOD = 1
#: The facts whose difference means "other evidence".
COMPARED = ("kind", "inode", "fs_type", "fs_uuid", "listing_sha256", "container",
            "media_size", "segments", "segment_bytes", "fingerprint_sha256", "stored_md5",
            "stored_sha1")
#: Bytes read at each end of every image segment for the quick fingerprint.
FINGERPRINT_BYTES = 64 * 1024


def identify(path: str, description: dict[str, Any]) -> dict[str, Any]:
    """The identity facts of the evidence at ``path`` (``description``: the source's own
    ``describe()``, for images its segments, size and stored hashes)."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        return _folder(path, st)
    return _image(path, description)


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Human-readable differences between two identities; empty when they agree on every
    fact both hold."""
    out = []
    for key in COMPARED:
        if recorded.get(key) is None or now.get(key) is None:
            continue
        if recorded[key] != now[key]:
            out.append(f"{key.replace('_', ' ')} was {_short(recorded[key])}, now "
                       f"{_short(now[key])}")
    return out


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _folder(path: str, st: os.stat_result) -> dict[str, Any]:
    vfs = os.statvfs(path)
    mount = _mount_of(path, st.st_dev)
    return {
        "method": METHOD,
        "kind": "folder",
        "device": f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}",
        "inode": st.st_ino,
        "fsid": f"{vfs.f_fsid:x}",
        "fs_type": mount.get("fs_type"),
        "fs_source": mount.get("source"),
        "fs_uuid": mount.get("uuid"),
        "listing_sha256": _listing_digest(path),
    }


def _listing_digest(path: str) -> str:
    h = hashlib.sha256()
    with os.scandir(os.fsencode(path)) as it:
        rows = []
        for e in it:
            try:
                s = e.stat(follow_symlinks=False)
            except OSError:
                rows.append((e.name, 0, -1, -1))
                continue
            size = s.st_size if stat.S_ISREG(s.st_mode) else 0
            rows.append((e.name, s.st_ino, size, s.st_mtime_ns))
    for name, ino, size, mtime in sorted(rows):
        h.update(b"%s\0%d\0%d\0%d\n" % (name, ino, size, mtime))
    return h.hexdigest()


def _mount_of(path: str, dev: int) -> dict[str, str | None]:
    """The mount holding ``path``: file-system type and source from mountinfo, and the
    source's UUID from ``/dev/disk/by-uuid`` when udev maintains it."""
    want = f"{os.major(dev)}:{os.minor(dev)}"
    real = os.path.realpath(path)
    best: tuple[int, dict[str, str | None]] = (-1, {})
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, rest = left.split(), right.split()
                if len(fields) < 5 or len(rest) < 2 or fields[2] != want:
                    continue
                point = _unescape(fields[4])
                if (real == point or real.startswith(point.rstrip("/") + "/")) \
                        and len(point) > best[0]:
                    best = (len(point), {"fs_type": rest[0], "source": _unescape(rest[1])})
    except OSError:
        return {}
    info = dict(best[1])
    source = info.get("source")
    if source and source.startswith("/dev/"):
        info["uuid"] = _uuid_of(source)
    return info


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _uuid_of(device: str) -> str | None:
    by_uuid = Path("/dev/disk/by-uuid")
    try:
        target = os.path.realpath(device)
        for link in sorted(by_uuid.iterdir()):
            if os.path.realpath(link) == target:
                return link.name
    except OSError:
        pass
    return None


def _image(path: str, description: dict[str, Any]) -> dict[str, Any]:
    segments = [str(s) for s in description.get("segments") or [path]]
    h = hashlib.sha256()
    sizes = []
    for seg in segments:
        with open(seg, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(FINGERPRINT_BYTES)
            f.seek(max(0, size - FINGERPRINT_BYTES))
            tail = f.read(FINGERPRINT_BYTES)
        sizes.append(size)
        h.update(b"%d\0%s\0%s" % (size, head, tail))
    # A source describes the E01's acquisition hashes as "stored_hashes" {"md5", "sha1"}.
    held = description.get("stored_hashes") or {}
    stored = {f"stored_{k}": held.get(k) for k in ("md5", "sha1") if held.get(k)}
    return {
        "method": METHOD,
        "kind": "image",
        "container": description.get("container"),
        "media_size": description.get("size"),
        "segments": len(segments),
        "segment_bytes": sum(sizes),
        "fingerprint_sha256": h.hexdigest(),
        **stored,
    }
