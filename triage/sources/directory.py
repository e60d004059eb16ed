"""A mounted image or any folder, read without changing it.

* Never follows symbolic links: links are recorded as links with their target bytes.
* Never crosses into another mounted file system below the root (recorded, skipped).
* Opens every directory and file relative to its parent's descriptor, with O_NOFOLLOW and
  O_NOATIME (where the kernel permits it), so paths longer than PATH_MAX work, a swapped-in
  symlink is refused, and access times do not change.
* FIFOs, sockets and device nodes are listed, never opened (a FIFO read blocks forever).
* Names are bytes end to end; the display form is escaped (:func:`triage.util.display_bytes`).

Identity is the path bytes: device numbers change across remounts (loop devices) and FAT
inode numbers are synthesised per mount, so neither could identify an entry across a
resumed scan; the inode is recorded as a column.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

from .. import faults
from ..errors import EvidenceError
from ..util import display_bytes
from .base import (
    BLOCK_DEVICE,
    CHAR_DEVICE,
    DIRECTORY,
    FIFO,
    FILE,
    OTHER,
    SOCKET,
    SYMLINK,
    ContentChangedError,
    FileEntry,
    Source,
)

_O_NOATIME = getattr(os, "O_NOATIME", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: Deeper than any real file system; protects against pathological trees.
MAX_DEPTH = 1024

_KINDS = (
    (stat.S_ISREG, FILE), (stat.S_ISDIR, DIRECTORY), (stat.S_ISLNK, SYMLINK),
    (stat.S_ISFIFO, FIFO), (stat.S_ISSOCK, SOCKET), (stat.S_ISCHR, CHAR_DEVICE),
    (stat.S_ISBLK, BLOCK_DEVICE),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return OTHER


def _open_noatime(name: bytes, flags: int, dir_fd: int | None,
                  refused: list[bool] | None = None) -> int:
    """os.open with O_NOATIME, falling back without it where the kernel refuses (EPERM:
    only the owner or CAP_FOWNER may use it); ``refused`` records that it did."""
    flags |= _O_NOFOLLOW | _O_CLOEXEC
    try:
        return os.open(name, flags | _O_NOATIME, dir_fd=dir_fd)
    except PermissionError:
        if not _O_NOATIME:
            raise
        if refused is not None:
            refused.append(True)
        return os.open(name, flags, dir_fd=dir_fd)


def _open_path(root_fd: int, path: bytes, flags: int,
               refused: list[bool] | None = None) -> int:
    """Open ``path`` (relative, ``/``-separated) below ``root_fd`` one component at a time,
    refusing symlinks at every step."""
    parts = [p for p in path.split(b"/") if p]
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            nfd = _open_noatime(part, os.O_RDONLY | _O_DIRECTORY, fd, refused)
            os.close(fd)
            fd = nfd
        return _open_noatime(parts[-1], flags, fd, refused)
    finally:
        os.close(fd)


class _ReadOnlyFile:
    """A raw file descriptor read sequentially; ``close`` checks the file did not change."""

    def __init__(self, fd: int, path: bytes, atime_preserved: bool = True) -> None:
        self._fd = fd
        self._path = path
        #: False when the kernel refused O_NOATIME for this file or a folder above it.
        self.atime_preserved = atime_preserved
        st = os.fstat(fd)
        self._before = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        self.bad_ranges: list[tuple[int, int]] = []
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except (AttributeError, OSError):
            pass

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            chunks = []
            while chunk := os.read(self._fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        return os.read(self._fd, n)

    def readinto(self, buf: Any) -> int:
        return os.readv(self._fd, [buf])

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            st = os.fstat(self._fd)
            after = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        finally:
            os.close(self._fd)
            self._fd = -1
        if after != self._before:
            raise ContentChangedError(
                f"{self._path!r}: changed while it was read "
                f"(size/mtime/ctime before {self._before[:3]}, after {after[:3]})")

    def __enter__(self) -> _ReadOnlyFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DirectorySource(Source):
    name = "directory"

    #: How much a file's modification time may differ from the listing's, in ns, on a
    #: cluster's worker (issue 19, :attr:`remote`).
    REMOTE_MTIME_SLACK_NS = 1_000_000_000

    def __init__(self, path: str, remote: bool = False) -> None:
        self.path = path
        #: Read on a Dask worker's mount of the evidence (``scan --cluster``): the listing
        #: was made through another mount, whose inode numbers may differ (CIFS without
        #: serverino, FUSE) and whose times may be kept at another precision, so a file
        #: counts as unchanged when its size is equal and its modification time within
        #: :data:`REMOTE_MTIME_SLACK_NS`. Its digests are computed from what is read.
        self.remote = remote
        self._root_fd: int | None = None
        try:
            st = os.stat(path)
        except OSError as e:
            raise EvidenceError(f"{path}: cannot open evidence directory: {e.strerror}") from e
        if not stat.S_ISDIR(st.st_mode):
            raise EvidenceError(f"{path}: not a directory")
        self._root_dev = st.st_dev

    @classmethod
    def detect(cls, path: str) -> bool:
        return os.path.isdir(path)

    def spec(self) -> tuple[str, Any]:
        return (self.name, self.path)

    @classmethod
    def from_spec(cls, args: Any) -> DirectorySource:
        if isinstance(args, dict):  # a cluster worker's mount (triage.cluster)
            return cls(args["path"], remote=bool(args.get("remote")))
        return cls(args)

    @property
    def root_fd(self) -> int:
        if self._root_fd is None:
            try:
                self._root_fd = os.open(os.fsencode(self.path),
                                        os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC | _O_NOATIME)
            except PermissionError:
                self._root_fd = os.open(os.fsencode(self.path),
                                        os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        return self._root_fd

    def describe(self) -> dict[str, Any]:
        vfs = os.statvfs(self.path)
        return {
            "type": self.name,
            "path": os.path.abspath(self.path),
            "size": None,
            "read_only_mount": bool(vfs.f_flag & os.ST_RDONLY),
            "device": self._root_dev,
        }

    def warnings(self) -> list[str]:
        if not os.statvfs(self.path).f_flag & os.ST_RDONLY:
            return [f"{self.path}: the evidence is on a writable mount; triage does not "
                    "write to it, but mount seized media read-only (mount -o ro,noload) "
                    "so that nothing else can"]
        return []

    # -- enumeration -----------------------------------------------------------------
    #: How many hung or crashed folders are skipped before enumeration gives up.
    MAX_SKIPPED_FOLDERS = 20

    def entries(self) -> Iterator[FileEntry]:
        """The walk runs in a child process (RELIABILITY #1): a folder whose listing hangs
        or crashes is recorded as an error with the reason, skipped, and the walk goes on
        from a fresh child; what was found is kept (repeats are ignored by the case)."""
        from .. import isolation
        from .dir_child import main

        skip: list[bytes] = []
        while True:
            current: bytes | None = None
            reason: str | None = None
            for msg in isolation.stream(main, (self.path, frozenset(skip)),
                                        self.enumeration_timeout, name="walk"):
                if msg[0] == "entries":
                    yield from msg[1]
                elif msg[0] == "at":
                    current = msg[1]
                elif msg[0] == "end":
                    reason = msg[1]
            if reason is None:
                return
            if current is None or current in skip or len(skip) >= self.MAX_SKIPPED_FOLDERS:
                yield self._error_entry(current or b".", f"enumeration stopped: {reason}",
                                        identity_suffix="stopped")
                return
            skip.append(current)
            yield self._error_entry(current or b".", f"listing this folder {reason}; its "
                                    "contents were skipped", identity_suffix="stalled")

    def walk_in_process(self, skip: frozenset[bytes] = frozenset(),
                        on_enter: Any = None) -> Iterator[FileEntry]:
        """The walk itself (run by :mod:`triage.sources.dir_child`)."""
        yield from self._walk(self.root_fd, skip, on_enter)

    def _entry(self, path: bytes, st: os.stat_result, dir_fd: int, name: bytes) -> FileEntry:
        kind = _kind(st.st_mode)
        link_target = None
        preset: tuple[str, str, str] | None = None
        if kind == SYMLINK:
            try:
                link_target = os.readlink(name, dir_fd=dir_fd)
            except OSError as e:
                link_target = None
                preset = ("error", "enumerate", f"cannot read link target: {e.strerror}")
            else:
                preset = ("skipped", "enumerate", "symbolic link (never followed)")
        elif kind in (FIFO, SOCKET, CHAR_DEVICE, BLOCK_DEVICE, OTHER):
            preset = ("skipped", "enumerate", f"not a regular file: {kind} (never opened)")
        elif kind == DIRECTORY:
            preset = ("skipped", "enumerate", "directory")
        return FileEntry(
            identity="p:" + path.hex(),
            path=path,
            kind=kind,
            size=st.st_size if kind == FILE else None,
            mtime=st.st_mtime,
            atime=st.st_atime,
            ctime=st.st_ctime,
            times_raw={"mtime_ns": st.st_mtime_ns, "atime_ns": st.st_atime_ns,
                       "ctime_ns": st.st_ctime_ns},
            inode=st.st_ino,
            link_target=link_target,
            locator=[st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns],
            preset_status=preset,
        )

    def _listing(self, dir_fd: int, prefix: bytes) -> tuple[list[bytes], FileEntry | None]:
        try:
            faults.check("enumerate", display_bytes(prefix) if prefix else ".")
            # listdir(fd) gives str names (surrogate-escaped); fsencode restores the exact
            # bytes, and sorting the bytes makes the order independent of locale.
            return sorted(os.fsencode(n) for n in os.listdir(dir_fd)), None
        except (OSError, faults.InjectedFault) as e:
            reason = e.strerror if isinstance(e, OSError) else str(e)
            return [], self._error_entry(prefix or b".", f"cannot list directory: {reason}")

    def _walk(self, root_fd: int, skip: frozenset[bytes] = frozenset(),
              on_enter: Any = None) -> Iterator[FileEntry]:
        """Depth-first, names in byte order, without recursion: a tree as deep as
        ``MAX_DEPTH`` must not exhaust Python's stack (a deep tree is a known trap).
        Folders in ``skip`` are not entered; ``on_enter(path)`` is told of each folder
        before it is listed."""
        visited: set[tuple[int, int]] = set()
        if b"" in skip:
            return
        if on_enter is not None:
            on_enter(b"")
        names, problem = self._listing(root_fd, b"")
        if problem is not None:
            yield problem
        # Each frame: [directory fd, path prefix, sorted names, next index, depth].
        stack: list[list[Any]] = [[root_fd, b"", names, 0, 0]]
        try:
            while stack:
                frame = stack[-1]
                dir_fd, prefix, names, index, depth = frame
                if index >= len(names):
                    stack.pop()
                    if dir_fd != root_fd:
                        os.close(dir_fd)
                    continue
                frame[3] = index + 1
                name = names[index]
                path = prefix + b"/" + name if prefix else name
                try:
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError as e:
                    yield self._error_entry(path, f"cannot stat: {e.strerror}")
                    continue
                entry = self._entry(path, st, dir_fd, name)
                if entry.kind != DIRECTORY:
                    yield entry
                    continue
                if st.st_dev != self._root_dev:
                    yield _replace_status(entry, ("skipped", "enumerate",
                                                  "mount point of another file system "
                                                  "(not crossed)"))
                    continue
                if (st.st_dev, st.st_ino) in visited:
                    yield _replace_status(entry, ("error", "enumerate",
                                                  "directory cycle (already visited)"))
                    continue
                if depth + 1 >= MAX_DEPTH:
                    yield _replace_status(entry, ("error", "enumerate",
                                                  f"deeper than {MAX_DEPTH} levels; not "
                                                  "entered"))
                    continue
                yield entry
                if path in skip:
                    continue
                if on_enter is not None:
                    on_enter(path)
                try:
                    sub = _open_noatime(name, os.O_RDONLY | _O_DIRECTORY, dir_fd)
                except OSError as e:
                    yield self._error_entry(path + b"/", f"cannot open directory: "
                                                          f"{e.strerror}",
                                            identity_suffix="open")
                    continue
                visited.add((st.st_dev, st.st_ino))
                sub_names, problem = self._listing(sub, path)
                if problem is not None:
                    yield problem
                stack.append([sub, path, sub_names, 0, depth + 1])
        finally:
            for frame in stack:
                if frame[0] != root_fd:
                    os.close(frame[0])

    @staticmethod
    def _error_entry(path: bytes, reason: str, identity_suffix: str = "") -> FileEntry:
        return FileEntry(identity="e:" + path.hex() + identity_suffix, path=path, kind=OTHER,
                         preset_status=("error", "enumerate", reason))

    # -- reading (worker side) -------------------------------------------------------
    def open_entry(self, entry: FileEntry) -> BinaryIO:
        refused: list[bool] = []
        try:
            fd = _open_path(self.root_fd, entry.path, os.O_RDONLY | os.O_NONBLOCK, refused)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise EvidenceError(f"{entry.path!r}: is now a symbolic link; not followed"
                                    ) from e
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise ContentChangedError(f"{entry.path!r}: no longer a regular file")
        if entry.locator is not None:
            _dev, ino, size, mtime_ns = entry.locator
            if self.remote:
                changed = (st.st_size != size
                           or abs(st.st_mtime_ns - mtime_ns) >= self.REMOTE_MTIME_SLACK_NS)
            else:
                changed = (st.st_ino, st.st_size, st.st_mtime_ns) != (ino, size, mtime_ns)
            if changed:
                os.close(fd)
                raise ContentChangedError(
                    f"{entry.path!r}: replaced or modified since enumeration "
                    f"(inode/size/mtime were {ino}/{size}/{mtime_ns}, now "
                    f"{st.st_ino}/{st.st_size}/{st.st_mtime_ns})")
        return _ReadOnlyFile(fd, entry.path,  # type: ignore[return-value]
                             atime_preserved=not refused)

    def close(self) -> None:
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None


def _replace_status(entry: FileEntry, status: tuple[str, str, str]) -> FileEntry:
    from dataclasses import replace

    return replace(entry, preset_status=status)
