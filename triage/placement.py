"""Where a case may live: never inside the evidence, and the evidence never inside the case.

A case inside the evidence means triage writes to the evidence (``case.sqlite``, its
write-ahead log and lock); evidence inside the case means the scan reads its own database
as evidence, and reports it as a file that changed while it was read. Both are refused
before anything is created or written (:class:`~triage.errors.UsageError`, exit code 2).

"Inside" is decided three ways, any of which suffices:

* by identity: a directory on the path from the inner location up to ``/`` has the same
  device and inode as the outer one (this sees through symbolic links and through a bind
  mount of the outer folder elsewhere, whose root shows the same device and inode);
* by resolved path (``realpath``): the same text prefix, for file systems without stable
  inode numbers;
* by file-system location from ``/proc/self/mountinfo``: the mount's device number and
  the path within that file system (the mount's root plus the rest of the path), which
  also sees a bind mount of a folder *below* the outer one (Linux only; left out where
  mountinfo cannot be read).

Not detected: the evidence or case on a block device or loop device that is itself part
of the other (a partition of an evidence disk mounted as the case's location).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence

from .errors import UsageError

MOUNTINFO = "/proc/self/mountinfo"


def refuse_nesting(case_dir: str | os.PathLike[str], evidence: str,
                   evidence_files: Sequence[str], *, folder: bool) -> None:
    """Raise :class:`UsageError` when the case directory ``case_dir`` (which need not
    exist yet) is, or would be, inside the evidence, or the evidence is inside it.

    ``evidence`` is the path as given (for the message); ``evidence_files`` are the
    resolved paths read: the folder for a folder (``folder``), every segment for an
    image."""
    case = os.fspath(case_dir)
    existing = _nearest_existing(case)
    if folder:
        root = evidence_files[0]
        if _inside(existing, root):
            raise UsageError(
                f"{case}: the case directory is inside the evidence {evidence} "
                f"({_resolved(root)}); triage never writes to the evidence. Choose a case "
                "directory outside it.")
    if os.path.isdir(case):
        for f in evidence_files:
            if _inside(f, case):
                what = "the evidence" if folder or len(evidence_files) == 1 else \
                    f"the evidence's segment {f}"
                raise UsageError(
                    f"{evidence}: {what} is inside the case directory {case} "
                    f"({_resolved(case)}); the scan would read the case's own files as "
                    "evidence. Keep the evidence outside the case directory.")


def refuse_export_target(out: str | os.PathLike[str], case_dir: str | os.PathLike[str],
                         evidence: Sequence[str]) -> None:
    """Raise :class:`UsageError` when an export written to ``out`` would overwrite the case's
    own files (its database, write-ahead log, lock, kept schema copies), or land in or on
    any of the case's ``evidence`` paths (a folder, an image file or segment): triage never
    writes to the evidence, and ``--force`` only ever replaces an earlier export."""
    target = os.fspath(out)
    real = os.path.realpath(target)
    case_real = os.path.realpath(os.fspath(case_dir))
    name = os.path.basename(real)
    if os.path.dirname(real) == case_real and (name.startswith("case.sqlite")
                                                or name == "case.lock"):
        raise UsageError(f"{target}: that is one of the case's own files, not an export; "
                         "choose another --out")
    for ev in evidence:
        if os.path.lexists(ev) and (_inside(_nearest_existing(target), ev)
                                    or _same_file(target, ev)):
            raise UsageError(f"{target}: inside or on the evidence {ev}; triage never writes "
                             "to the evidence. Choose an --out outside it.")


def _same_file(a: str, b: str) -> bool:
    ia, ib = _ids(a), _ids(b)
    return ia is not None and ia == ib


def _resolved(path: str) -> str:
    return os.path.realpath(path)


def _nearest_existing(path: str) -> str:
    """``path`` made absolute, or its nearest ancestor that exists."""
    p = os.path.abspath(path)
    while not os.path.lexists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def _ids(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _ancestors(real: str) -> list[str]:
    """``real`` and every folder above it, up to ``/``."""
    out = [real]
    while True:
        parent = os.path.dirname(out[-1])
        if parent == out[-1]:
            return out
        out.append(parent)


def _inside(inner: str, outer: str) -> bool:
    """``inner`` is ``outer`` or lies beneath it (see module doc)."""
    inner_real, outer_real = os.path.realpath(inner), os.path.realpath(outer)
    if inner_real == outer_real or inner_real.startswith(outer_real.rstrip("/") + "/"):
        return True
    target = _ids(outer_real)
    if target is not None and any(_ids(p) == target for p in _ancestors(inner_real)):
        return True
    mounts = _mounts()
    a, b = _fs_location(inner_real, mounts), _fs_location(outer_real, mounts)
    return (a is not None and b is not None and a[0] == b[0]
            and (a[1] == b[1] or a[1].startswith(b[1].rstrip("/") + "/")))


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...): proc(5).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts(path: str = MOUNTINFO) -> list[tuple[str, str, str]]:
    """(device "major:minor", root within the file system, mount point) per mount, in
    mountinfo order (a later mount on the same point hides an earlier one). Fields per
    proc(5): 3 major:minor, 4 root, 5 mount point."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split(" - ", 1)[0].split()
                if len(fields) >= 5:
                    out.append((fields[2], _unescape(fields[3]), _unescape(fields[4])))
    except OSError:
        return []
    return out


def _fs_location(real: str, mounts: Sequence[tuple[str, str, str]]
                 ) -> tuple[str, str] | None:
    """(device, path within its file system) of the resolved path ``real``: the mount
    whose point is the longest prefix (the last such one when mounts are stacked)."""
    best: tuple[str, str, str] | None = None
    for dev, root, point in mounts:
        if real == point or real.startswith(point.rstrip("/") + "/"):
            if best is None or len(point) >= len(best[2]):
                best = (dev, root, point)
    if best is None:
        return None
    dev, root, point = best
    rest = real[len(point.rstrip("/")):]
    return dev, posixpath.normpath(root.rstrip("/") + rest) if rest else root
