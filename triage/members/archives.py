"""Archives: ZIP (incl. OOXML/ODF), TAR, GZIP/BZIP2/XZ (joined) streams, 7z; RAR refused.

Every member is read into memory through a byte cap (``read_capped``): declared sizes are
checked first, then actual decompressed bytes are counted, because declared sizes lie.
"""

from __future__ import annotations

import bz2
import calendar
import lzma
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from ..model import BLOCK_DEVICE, CHAR_DEVICE, DIRECTORY, FIFO, OTHER, SKIPPED, SYMLINK
from .base import (
    Budget,
    Caps,
    ContainerError,
    Limits,
    Member,
    StreamFormat,
    ZlibStream,
    decompress_concatenated,
    limit_reason,
    member_caps,
    memory_limit_error,
    name_flags,
    read_capped,
    short,
    stream_size,
)

# ------------------------------------------------------------------------------- zip

ZIP_FLAG_ENCRYPTED = 0x0001  # APPNOTE 4.4.4 bit 0 (traditional or AES)
ZIP_FLAG_STRONG = 0x0040  # bit 6: PKWARE strong encryption
ZIP_FLAG_UTF8 = 0x0800  # bit 11: name and comment are UTF-8
ZIP_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}  # what zipfile reads
ZIP_METHOD_NAMES = {1: "shrink", 6: "implode", 9: "deflate64", 93: "zstandard", 95: "xz",
                    96: "jpeg", 97: "wavpack", 98: "ppmd", 99: "aes"}
EXTRA_UNIX_TIME = 0x5455  # "UT" extended timestamp, UTC seconds
EXTRA_NTFS = 0x000A  # NTFS FILETIMEs
FILETIME_EPOCH = 11_644_473_600  # seconds from 1601-01-01 to 1970-01-01


def _zip_name(info: zipfile.ZipInfo) -> bytes:
    """The stored name bytes: zipfile decodes them as UTF-8 (flag bit 11) or cp437, both of
    which round-trip exactly; ``orig_filename`` keeps what ``filename`` truncates at NUL."""
    enc = "utf-8" if info.flag_bits & ZIP_FLAG_UTF8 else "cp437"
    return info.orig_filename.encode(enc, "surrogateescape")


def _zip_mtime(info: zipfile.ZipInfo) -> tuple[float | None, tuple[str, ...]]:
    """POSIX mtime from the UT or NTFS extra field (UTC); else the DOS time, which is the
    archiver's local time of unknown zone: returned as if UTC and flagged."""
    extra, i = info.extra, 0
    while i + 4 <= len(extra):
        hid, hsz = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + hsz]
        if hid == EXTRA_UNIX_TIME and len(body) >= 5 and body[0] & 1:
            return float(struct.unpack_from("<i", body, 1)[0]), ()
        if hid == EXTRA_NTFS and len(body) >= 32 and body[4:8] == b"\x01\x00\x18\x00":
            filetime = struct.unpack_from("<Q", body, 8)[0]
            return filetime / 1e7 - FILETIME_EPOCH, ()
        i += 4 + hsz
    try:
        return float(calendar.timegm((*info.date_time, 0, 0, 0))), ("dos-local-time",)
    except (ValueError, OverflowError):
        return None, ()


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits,
                budget: Budget) -> Member:
    name = _zip_name(info)
    mtime, tflags = _zip_mtime(info)
    flags = name_flags(name) + tflags
    size = info.file_size
    if info.flag_bits & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG) or info.compress_type == 99:
        return Member(name, "member", size, mtime, None, None, (*flags, "encrypted"),
                      "encrypted: zip member is encrypted (no password tried)")
    if info.compress_type not in ZIP_METHODS:
        method = ZIP_METHOD_NAMES.get(info.compress_type, "unknown")
        return Member(name, "member", size, mtime, None, None, (*flags, "unsupported"),
                      f"unsupported: zip compression method {info.compress_type} ({method})")
    compressed = info.compress_size
    caps = member_caps(limits, budget, compressed)
    if size > caps.cap:
        reason, flag = limit_reason(limits, budget, caps, size, compressed, declared=True)
        return Member(name, "member", size, mtime, None, None, (*flags, flag), reason)
    try:
        with zf.open(info) as f:
            data = read_capped(f.read, caps.cap, budget)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as e:
        return Member(name, "member", size, mtime, None, None, (*flags, "corrupt"),
                      f"corrupt: {short(e)}")
    if data is None:
        reason, flag = limit_reason(limits, budget, caps, caps.cap + 1, compressed,
                                    declared=False)
        return Member(name, "member", size, mtime, None, None, (*flags, flag), reason)
    if len(data) != size:
        flags = (*flags, "size-mismatch")
    budget.charge(len(data))
    return Member(name, "member", len(data), mtime, None, data, flags)


#: A zip entry made on Unix (APPNOTE 4.4.2.2 "version made by" host 3) keeps its st_mode in
#: the high 16 bits of the external attributes (Info-ZIP); a symbolic link stores its target
#: as the entry's content (at most PATH_MAX, 4,096 bytes on Linux, is read).
ZIP_HOST_UNIX = 3
ZIP_MAX_LINK_TARGET = 4096


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == ZIP_HOST_UNIX and stat.S_ISLNK(info.external_attr >> 16)


def _zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, kind: str) -> Member:
    """A directory or symbolic link entry: listed without data, ``skipped`` with its kind
    (a link with its target), as the file-system sources list them."""
    name = _zip_name(info)
    if kind == DIRECTORY:
        name = name.rstrip(b"/") or name
    mtime, tflags = _zip_mtime(info)
    target = None
    if kind == SYMLINK and not info.flag_bits & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG):
        try:
            with zf.open(info) as f:
                target = f.read(ZIP_MAX_LINK_TARGET) or None
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                ValueError, NotImplementedError, RuntimeError):
            target = None  # the entry is still listed; its target is unknown
    return Member(name, "member", None, mtime, None, None, name_flags(name) + tflags,
                  f"not a regular file: {kind}", entry_kind=kind, link_target=target,
                  status_hint=SKIPPED)


#: PKWARE APPNOTE section 8.5: the first segment of a split or spanned archive starts with the
#: "spanning signature" 0x08074b50.
ZIP_SPLIT_SEGMENT = b"PK\x07\x08"


def _starts_with(stream: BinaryIO, signature: bytes) -> bool:
    try:
        stream.seek(0)
        return stream.read(len(signature)) == signature
    except (OSError, ValueError):
        return False


def expand_zip(stream: BinaryIO, limits: Limits, budget: Budget) -> Iterator[Member]:
    """Entries of a zip in central-directory order: files with their data; directories and
    symbolic links (Unix entries, Info-ZIP) listed without data, ``skipped`` with their
    kind, a link with its target, as the file-system sources list them."""
    try:
        zf = zipfile.ZipFile(stream)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error,
            UnicodeDecodeError, NotImplementedError) as e:
        if _starts_with(stream, ZIP_SPLIT_SEGMENT):
            # The first segment of a split archive has no central directory of its own.
            raise ContainerError("unsupported: one segment of a split (spanned) zip; its "
                                 "other segments are needed to expand it (not expanded; "
                                 "the segment itself is hashed)", ("unsupported",)) from e
        raise ContainerError(f"corrupt zip: {short(e)}", ("corrupt",)) from e
    with zf:
        for index, info in enumerate(infos):
            if index >= limits.max_members:
                raise ContainerError(f"limit: {len(infos)} members > {limits.max_members} "
                                     f"(max_members)", ("limit:members",))
            budget.check_time()
            if info.is_dir():
                yield _zip_entry(zf, info, DIRECTORY)
            elif _zip_is_symlink(info):
                yield _zip_entry(zf, info, SYMLINK)
            else:
                yield _zip_member(zf, info, limits, budget)


# ------------------------------------------------------------------------------- tar


#: tarfile's entry types as the file-system sources name them (triage.model); every other
#: type that is not a regular file, a hard link or one of these is ``other``.
_TAR_KINDS = ((tarfile.TarInfo.isdir, DIRECTORY), (tarfile.TarInfo.issym, SYMLINK),
              (tarfile.TarInfo.ischr, CHAR_DEVICE), (tarfile.TarInfo.isblk, BLOCK_DEVICE),
              (tarfile.TarInfo.isfifo, FIFO))


def expand_tar(stream: BinaryIO, limits: Limits, budget: Budget) -> Iterator[Member]:
    """Every entry of a tar, in archive order, as the file-system sources list a folder:
    regular files with their data; hard links with the data of the member they name
    (``link_target``, flag ``hard-link``); directories, symbolic links (``link_target``),
    character and block devices and FIFOs without data, ``entry_kind`` set and status
    ``skipped`` (``not a regular file: KIND``). ``max_members`` counts every entry."""
    try:
        tf = tarfile.open(fileobj=stream, mode="r:", encoding="utf-8",
                          errors="surrogateescape")
    except (tarfile.TarError, OSError, ValueError, EOFError) as e:
        raise ContainerError(f"corrupt tar: {short(e)}", ("corrupt",)) from e
    count = 0
    #: Regular members so far, by name: a hard link names an earlier one (tar -x needs it
    #: first). tarfile's own lookup would read the whole rest of the archive at once (its
    #: ``getmembers``), after which ``next()`` finds nothing: every later entry was lost.
    regular: dict[str, tarfile.TarInfo] = {}
    with tf:
        while True:
            budget.check_time()
            try:
                ti = tf.next()
            except (tarfile.TarError, OSError, ValueError, EOFError) as e:
                raise ContainerError(f"corrupt tar after {count} members: {short(e)}",
                                     ("corrupt",)) from e
            if ti is None:
                break
            if count >= limits.max_members:
                raise ContainerError(f"limit: more than {limits.max_members} members "
                                     f"(max_members)", ("limit:members",))
            count += 1
            if ti.isreg():
                regular[ti.name] = ti
                yield _tar_member(tf, ti, ti, limits, budget)
            elif ti.islnk():
                yield _tar_member(tf, ti, regular.get(ti.linkname), limits, budget)
            else:
                yield _tar_entry(ti)


def _tar_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _tar_entry(ti: tarfile.TarInfo) -> Member:
    """A tar entry that has no content of its own (directory, link, device, FIFO)."""
    name = _tar_bytes(ti.name)
    kind = next((k for test, k in _TAR_KINDS if test(ti)), OTHER)
    flags = name_flags(name)
    if ti.ischr() or ti.isblk():
        flags += (f"device-{ti.devmajor},{ti.devminor}",)
    target = _tar_bytes(ti.linkname) if ti.issym() else None
    return Member(name, "member", None, float(ti.mtime), None, None, flags,
                  f"not a regular file: {kind}", entry_kind=kind, link_target=target,
                  status_hint=SKIPPED)


def _tar_member(tf: tarfile.TarFile, ti: tarfile.TarInfo, content: tarfile.TarInfo | None,
                limits: Limits, budget: Budget) -> Member:
    """A regular member (``content`` is ``ti``) or a hard link (``content`` is the earlier
    regular member it names, None when there is none)."""
    name = _tar_bytes(ti.name)
    flags = name_flags(name)
    target = None
    if ti.islnk():
        target = _tar_bytes(ti.linkname)
        flags += ("hard-link",)
    mtime = float(ti.mtime)
    if content is None:
        return Member(name, "member", None, mtime, None, None, (*flags, "corrupt"),
                      "corrupt: hard link to a name that is not an earlier regular member",
                      link_target=target)
    caps = member_caps(limits, budget, None)
    if content.size > caps.cap:
        reason, flag = limit_reason(limits, budget, caps, content.size, None, declared=True)
        return Member(name, "member", content.size, mtime, None, None, (*flags, flag),
                      reason, link_target=target)
    try:
        f = tf.extractfile(content)
        if f is None:
            raise tarfile.TarError("no data")
        with f:
            data = read_capped(f.read, caps.cap, budget)
    except (tarfile.TarError, OSError, ValueError, EOFError, KeyError) as e:
        return Member(name, "member", ti.size, mtime, None, None, (*flags, "corrupt"),
                      f"corrupt: {short(e)}", link_target=target)
    if data is None:  # a link target larger than its own header said
        reason, flag = limit_reason(limits, budget, caps, caps.cap + 1, None, declared=False)
        return Member(name, "member", ti.size, mtime, None, None, (*flags, flag), reason,
                      link_target=target)
    budget.charge(len(data))
    return Member(name, "member", len(data), mtime, None, data, flags,
                  link_target=target)


# ------------------------------------------------------------ gzip / bzip2 / xz streams

_SUFFIXES = {
    "gzip": ((b".tgz", b".tar"), (b".taz", b".tar"), (b".gz", b""), (b".z", b"")),
    "bzip2": ((b".tbz2", b".tar"), (b".tbz", b".tar"), (b".bz2", b""), (b".bz", b"")),
    "xz": ((b".txz", b".tar"), (b".xz", b"")),
}
GZIP_FEXTRA, GZIP_FNAME, GZIP_FCOMMENT, GZIP_FHCRC = 4, 8, 16, 2  # RFC 1952 2.3.1
GZIP_HEADER_WINDOW = 64 << 10


def derived_name(kind: str, container_name: bytes) -> bytes:
    """The name ``gzip -d`` would give: the container's last path component without its
    compression suffix (``.tgz`` becomes ``.tar``); the whole name if it has none."""
    base = container_name.replace(b"\\", b"/").rsplit(b"/", 1)[-1]
    lower = base.lower()
    for suffix, repl in _SUFFIXES.get(kind, ()):
        if lower.endswith(suffix) and len(base) > len(suffix):
            return base[:-len(suffix)] + repl
    return base or b"decompressed"


def gzip_header(head: bytes) -> tuple[bytes | None, float | None]:
    """(FNAME, MTIME) of the first gzip member header; None where absent or unreadable."""
    if len(head) < 10:
        return None, None
    flg = head[3]
    mtime = struct.unpack_from("<I", head, 4)[0] or None
    pos = 10
    if flg & GZIP_FEXTRA:
        if pos + 2 > len(head):
            return None, mtime
        pos += 2 + struct.unpack_from("<H", head, pos)[0]
    name = None
    if flg & GZIP_FNAME:
        end = head.find(b"\x00", pos)
        if end >= 0:
            name = head[pos:end]
    return name, (float(mtime) if mtime else None)


#: The concatenation rules of the command-line tools (RFC 1952 2.2 gzip members; bzip2
#: streams "BZh"; xz file format 1.0.4 section 2.1.1.1 magic, 2.2 Stream Padding of 4).
#: zlib wbits 31 = 16 (gzip wrapper, CRC-32 and ISIZE checked) + 15 (32 KiB window), zlib
#: manual, inflateInit2.
STREAM_FORMATS = {
    "gzip": StreamFormat("gzip", lambda: ZlibStream(31), b"\x1f\x8b"),
    "bzip2": StreamFormat("bzip2", bz2.BZ2Decompressor, b"BZh"),
    "xz": StreamFormat("xz", lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
                       b"\xfd7zXZ\x00", padding=4),
}


def expand_compressed(kind: str, stream: BinaryIO, limits: Limits, budget: Budget,
                      container_name: bytes) -> Iterator[Member]:
    """The single decompressed stream of a gzip/bzip2/xz file: concatenated members or
    streams are joined, byte for byte as ``gzip -dc``/``bzip2 -dc``/``xz -dc`` write them
    (``decompress_concatenated``), within the member, total and ratio caps. Named by the
    stored gzip FNAME if any, else by the container's name without its suffix, flagged
    ``derived-name``; ``trailing-data`` when non-zero bytes follow the last stream."""
    compressed = stream_size(stream)
    name: bytes | None = None
    mtime: float | None = None
    if kind == "gzip":
        name, mtime = gzip_header(stream.read(GZIP_HEADER_WINDOW))
        stream.seek(0)
    flags: tuple[str, ...] = ()
    if name is None:
        name, flags = derived_name(kind, container_name), ("derived-name",)
    flags += name_flags(name)
    caps = member_caps(limits, budget, compressed)
    try:
        data, trailing = decompress_concatenated(stream.read, STREAM_FORMATS[kind], caps.cap,
                                                 budget)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
        yield Member(name, "member", None, mtime, None, None, (*flags, "corrupt"),
                     f"corrupt {kind} stream: {short(e)}")
        return
    if data is None:
        reason, flag = limit_reason(limits, budget, caps, caps.cap + 1, compressed,
                                    declared=False)
        yield Member(name, "member", None, mtime, None, None, (*flags, flag), reason)
        return
    if trailing:
        flags += ("trailing-data",)
    budget.charge(len(data))
    yield Member(name, "member", len(data), mtime, None, data, flags)


# -------------------------------------------------------------------------------- 7z


class _CappedWriter:
    """py7zr output sink that keeps at most ``cap`` bytes and counts the rest."""

    def __init__(self, cap: int, budget: Budget) -> None:
        self.cap, self.budget = cap, budget
        self.chunks: list[bytes] = []
        self.count = 0

    def write(self, s: bytes | bytearray) -> int:
        self.budget.check_time()
        self.count += len(s)
        if self.count <= self.cap:
            self.chunks.append(bytes(s))
        else:
            self.chunks.clear()
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.count

    def close(self) -> None:
        return None


def expand_7z(stream: BinaryIO, limits: Limits, budget: Budget) -> Iterator[Member]:
    """Files of a 7z archive in archive order (py7zr, in memory through a writer factory).

    py7zr refuses to extract an archive holding a traversal or absolute name; such an
    archive is listed with every member's reason saying so.
    """
    import py7zr
    from py7zr.helpers import get_sanitized_output_path
    from py7zr.io import Py7zIO, WriterFactory

    compressed = stream_size(stream)
    try:
        z = py7zr.SevenZipFile(stream, mode="r", max_extract_size=max(budget.remaining(), 1))
    except py7zr.PasswordRequired as e:
        raise ContainerError("encrypted: 7z header is encrypted (no password tried)",
                             ("encrypted",)) from e
    except MemoryError as e:  # an encoded header's decoder can be told to allocate GiBs
        raise memory_limit_error("7z", limits) from e
    except Exception as e:  # a hostile archive can make any parser step fail
        raise ContainerError(f"corrupt 7z: {short(e)}", ("corrupt",)) from e
    with z:
        try:
            # py7zr has no public "is encrypted" query short of archiveinfo(), which needs a
            # file name; the method list is what it uses itself.
            encrypted = any("AES" in m for m in z._get_method_names())
            files = list(z.files)
            dictionary = _largest_dictionary(z)
        except Exception as e:
            raise ContainerError(f"corrupt 7z: {short(e)}", ("corrupt",)) from e
        entries: list[tuple[bytes, int, float | None, str | None]] = []
        seen: dict[str, int] = {}
        for f in files:
            if f.is_directory or f.is_socket:
                continue
            out = f.filename if f.filename not in seen else f"{f.filename}_{seen[f.filename]}"
            seen[f.filename] = seen.get(f.filename, -1) + 1
            if not f.is_file:
                continue
            try:
                key: str | None = get_sanitized_output_path(out, None).as_posix()
            except Exception:
                key = None
            mtime = None
            if f.lastwritetime is not None:
                mtime = float(f.lastwritetime) / 1e7 - FILETIME_EPOCH
            entries.append((f.filename.encode("utf-8", "surrogateescape"), f.uncompressed,
                            mtime, key))
        if len(entries) > limits.max_members:
            raise ContainerError(f"limit: {len(entries)} members > {limits.max_members} "
                                 f"(max_members)", ("limit:members",))
        writers: dict[str, _CappedWriter] = {}
        caps: dict[str, Caps] = {}
        refused = None
        if encrypted:
            refused = ("encrypted", "encrypted: 7z member data is encrypted (no password tried)")
        elif dictionary is not None and dictionary[1] > limits.max_dictionary_bytes:
            # Every folder is decoded by one extractall(): one over the bound stops all.
            refused = ("limit:dictionary", f"limit: {dictionary[0]} dictionary "
                       f"{_mib(dictionary[1])} > {_mib(limits.max_dictionary_bytes)} "
                       f"(max_dictionary_bytes); the 7z is not expanded")
        elif any(key is None for *_, key in entries):
            refused = ("hostile-name", "not expanded: py7zr refuses archives with a traversal "
                       "or absolute member name")
        else:
            planned = 0
            for _name, size, _mtime, key in entries:
                assert key is not None
                c = member_caps(limits, budget, compressed)
                c = Caps(c.member, max(0, c.total - planned), c.ratio)
                caps[key] = c
                keep = size <= c.cap  # 7z never produces more than the declared size
                writers[key] = _CappedWriter(c.cap if keep else -1, budget)
                planned += size if keep else 0

            class Factory(WriterFactory):
                def create(self, filename: str) -> Py7zIO:
                    w = writers.get(filename) or _CappedWriter(-1, budget)
                    return w  # type: ignore[return-value]

            try:
                z.extractall(factory=Factory())  # noqa: S202 - into memory, no path
            except ContainerError:
                raise
            except MemoryError as e:
                raise memory_limit_error("7z", limits) from e
            except py7zr.exceptions.DecompressionBombError as e:
                raise ContainerError(f"limit: total bytes > {limits.max_total_bytes} "
                                     f"(max_total_bytes)", ("limit:total-bytes",)) from e
            except Exception as e:
                raise ContainerError(f"corrupt 7z: {short(e)}", ("corrupt",)) from e
        for name, size, mtime, key in entries:
            flags = name_flags(name)
            if refused is not None:
                yield Member(name, "member", size, mtime, None, None, (*flags, refused[0]),
                             refused[1])
                continue
            assert key is not None
            w = writers[key]
            if w.cap < 0 or w.count > w.cap:
                declared = w.cap < 0
                produced = size if declared else w.count
                reason, flag = limit_reason(limits, budget, caps[key], produced, compressed,
                                            declared=declared)
                yield Member(name, "member", size, mtime, None, None, (*flags, flag), reason)
                continue
            data = b"".join(w.chunks)
            budget.charge(len(data))
            yield Member(name, "member", len(data), mtime, None, data, flags)


#: 7z coder ids (7-Zip's DOC/Methods.txt) whose properties declare the memory their decoder
#: allocates up front: LZMA (props: lc/lp/pb byte, dictionary size UInt32 LE), LZMA2 (one
#: byte, xz file format 1.0.4 section 5.3.1: 40 means 4 GiB - 1), PPMd (order byte, model
#: size UInt32 LE).
_LZMA, _LZMA2, _PPMD = b"\x03\x01\x01", b"\x21", b"\x03\x04\x01"


def _dictionary_size(method: bytes, props: bytes) -> tuple[str, int] | None:
    if method in (_LZMA, _PPMD) and len(props) >= 5:
        return ("LZMA" if method == _LZMA else "PPMd"), struct.unpack_from("<I", props, 1)[0]
    if method == _LZMA2 and len(props) >= 1:
        p = props[0] & 0x3F
        return "LZMA2", (0xFFFFFFFF if p >= 40 else (2 | (p & 1)) << (p // 2 + 11))
    return None


def _largest_dictionary(z: object) -> tuple[str, int] | None:
    """The largest dictionary (or PPMd model) any folder of an open py7zr archive
    declares, with its method's name; None when no folder declares one."""
    streams = getattr(getattr(z, "header", None), "main_streams", None)
    info = getattr(streams, "unpackinfo", None)
    found: list[tuple[int, str]] = []
    for folder in getattr(info, "folders", None) or ():
        for coder in getattr(folder, "coders", None) or ():
            got = _dictionary_size(bytes(coder.get("method", b"")),
                                   bytes(coder.get("properties") or b""))
            if got is not None:
                found.append((got[1], got[0]))
    if not found:
        return None
    size, name = max(found)
    return name, size


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def refuse_rar(limits: Limits, budget: Budget) -> Iterator[Member]:
    """RAR is recognised but not expanded: there is no maintained free RAR decoder in our
    dependency set (unrar's licence forbids re-implementing the format)."""
    raise ContainerError("unsupported: RAR archives are not expanded (no free RAR decoder); "
                         "the archive itself is hashed", ("unsupported",))
    yield  # pragma: no cover - makes this a generator like the others
