"""Archive and document recognition by content (signatures), never by name: the ``detect``
predicates of :mod:`.registry` that do not fit on its one line."""

from __future__ import annotations

# Signatures at offset 0. Sources: PKWARE APPNOTE 4.3.7 (zip), RFC 1952 (gzip), the bzip2
# file format (Seward), the .xz file format 1.1.0, 7-Zip 7zFormat.txt, [MS-CFB] 2.2 (OLE2),
# RARLAB technote (RAR 1.4 / 4.x / 5.0).
ZIP_LOCAL = b"PK\x03\x04"
ZIP_EMPTY = b"PK\x05\x06"  # end of central directory only: an empty archive
ZIP_SPANNED = b"PK\x07\x08"  # split/spanned archive marker before the first local header
#: The temporary spanning marker of old PKZIP/WinZip (PKWARE APPNOTE section 8.5,
#: 0x30304b50): a spanned archive that fitted on one segment, a plain zip after these 4
#: bytes (unzip and Python's zipfile read it). Recognised only with a local header after.
ZIP_PK00 = b"PK00"
GZIP = b"\x1f\x8b\x08"  # magic + CM=deflate
BZIP2 = b"BZh"  # + block size '1'..'9' + block or end-of-stream magic
BZIP2_BLOCK = b"\x31\x41\x59\x26\x53\x59"
BZIP2_EOS = b"\x17\x72\x45\x38\x50\x90"
XZ = b"\xfd7zXZ\x00"
SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
RAR = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00", b"RE~^")
PDF = b"%PDF-"
#: PDF readers accept a header anywhere in the first 1024 bytes (PDF 1.7 Annex H.3 note 13).
PDF_HEADER_WINDOW = 1024
TAR_MAGIC_OFFSET = 257  # "ustar\0" (POSIX) or "ustar  \0" (GNU)


def _tar_checksum_ok(head: bytes) -> bool:
    """A pre-POSIX (v7) tar header has no magic: accept it if its checksum is right."""
    if len(head) < 512 or head[0] == 0:
        return False
    field = head[148:156].split(b"\x00", 1)[0].strip(b" ")
    if not field or any(c not in b"01234567" for c in field):
        return False
    stored = int(field, 8)
    block = head[:148] + b" " * 8 + head[156:512]
    return stored in (sum(block), sum(b - 256 if b > 127 else b for b in block))


def is_zip(head: bytes, mime: str = "") -> bool:
    """A local header, an empty archive, a split-archive marker, or the ``PK00`` marker
    followed by a local header."""
    return head.startswith((ZIP_LOCAL, ZIP_EMPTY, ZIP_SPANNED)) or \
        head.startswith(ZIP_PK00 + ZIP_LOCAL)


def is_bzip2(head: bytes, mime: str = "") -> bool:
    return head.startswith(BZIP2) and len(head) >= 10 and 0x31 <= head[3] <= 0x39 \
        and head[4:10] in (BZIP2_BLOCK, BZIP2_EOS)


def is_pdf(head: bytes, mime: str = "") -> bool:
    """A header at offset 0, or (libmagic agreeing) anywhere in the first 1,024 bytes."""
    return head.startswith(PDF) or (mime == "application/pdf"
                                    and PDF in head[:PDF_HEADER_WINDOW])


def is_tar(head: bytes, mime: str = "") -> bool:
    """POSIX/GNU magic, a v7 header with a right checksum, or libmagic's word for it."""
    return head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] == b"ustar" or _tar_checksum_ok(head) \
        or (mime == "application/x-tar" and len(head) >= 512)
