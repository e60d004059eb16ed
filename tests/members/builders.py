"""Builders for container test evidence, all in memory, no downloads.

Pictures are benign synthetic gradients made with Pillow. OLE2 files are made by a
minimal compound-file writer below ([MS-CFB] version 3, 512-byte sectors, every stream
>= 4,096 bytes so no mini stream is needed): olefile can only read, not create, files.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image


def jpeg(seed: int = 0, size: tuple[int, int] = (64, 48), quality: int = 85,
         progressive: bool = False) -> bytes:
    """A small benign JPEG: a colour gradient with a seed-dependent pattern."""
    w, h = size
    img = Image.new("RGB", size)
    img.putdata([((x * 4 + seed * 17) % 256, (y * 5 + seed * 31) % 256, (x * y + seed) % 256)
                 for y in range(h) for x in range(w)])
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, progressive=progressive,
             restart_marker_blocks=4 if progressive else 0)
    return out.getvalue()


def png(seed: int = 0, size: tuple[int, int] = (40, 30)) -> bytes:
    w, h = size
    img = Image.new("RGB", size)
    img.putdata([((x * 6 + seed) % 256, (y * 8) % 256, (seed * 13) % 256)
                 for y in range(h) for x in range(w)])
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def gif(seed: int = 0, size: tuple[int, int] = (32, 24)) -> bytes:
    w, h = size
    img = Image.new("P", size)
    img.putdata([(x + y + seed) % 64 for y in range(h) for x in range(w)])
    img.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 3) % 256)])
    out = io.BytesIO()
    img.save(out, "GIF")
    return out.getvalue()


def zip_bytes(members: Sequence[tuple[str, bytes]], deflate: bool = True) -> bytes:
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


def tar_bytes(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def nested_zip(inner: bytes, inner_name: str, depth: int) -> bytes:
    """``depth`` zips, each holding the next; the innermost holds ``inner``."""
    data, name = inner, inner_name
    for level in range(depth, 0, -1):
        data = zip_bytes([(name, data)])
        name = f"level{level}.zip"
    return data


# ------------------------------------------------------------------ hand-written zips


@dataclass
class RawEntry:
    name: bytes
    payload: bytes  # as stored (compressed)
    method: int  # 0 stored, 8 deflate
    crc: int
    size: int  # declared uncompressed size
    flags: int = 0


def raw_zip(entries: Sequence[RawEntry]) -> bytes:
    """A zip written field by field (APPNOTE 4.3), so names, flags and declared sizes are
    exactly what the test says, hostile or not."""
    out = io.BytesIO()
    central = io.BytesIO()
    for e in entries:
        offset = out.tell()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, e.flags, e.method, 0, 0x21,
                              e.crc, len(e.payload), e.size, len(e.name), 0))
        out.write(e.name)
        out.write(e.payload)
        central.write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, e.flags,
                                  e.method, 0, 0x21, e.crc, len(e.payload), e.size,
                                  len(e.name), 0, 0, 0, 0, 0, offset))
        central.write(e.name)
    cd = central.getvalue()
    start = out.tell()
    out.write(cd)
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                          len(cd), start, 0))
    return out.getvalue()


def stored_entry(name: bytes, data: bytes, flags: int = 0) -> RawEntry:
    return RawEntry(name, data, 0, zlib.crc32(data), len(data), flags)


def zip_bomb(gib: int = 1, declared: int | None = None) -> bytes:
    """One member of ``gib`` GiB of zeros, deflated, built by repeating one fully flushed
    1 MiB block (a full flush resets the compressor, so every block is identical). The
    declared size is the true size unless ``declared`` says otherwise (a lying header)."""
    chunk = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    n = gib << 10
    payload = block * n + c.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(n):  # the true CRC, so only the caps can stop a reader
        crc = zlib.crc32(chunk, crc)
    size = n << 20
    return raw_zip([RawEntry(b"zeros.bin", payload, 8, crc, size if declared is None
                             else declared)])


# ------------------------------------------------------------------------- documents


def docx(picture: bytes) -> bytes:
    """A minimal valid Word document holding ``picture`` as word/media/image1.jpeg."""
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" '
          'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Default Extension="jpeg" ContentType="image/jpeg"/>'
          '<Override PartName="/word/document.xml" ContentType="application/'
          'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.'
            'org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>')
    doc_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                'relationships"><Relationship Id="rId5" Type="http://schemas.openxmlformats'
                '.org/officeDocument/2006/relationships/image" Target="media/image1.jpeg"/>'
                '</Relationships>')
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/'
                '2006/main"><w:body><w:p><w:r><w:t>report</w:t></w:r></w:p></w:body>'
                '</w:document>')
    return zip_bytes([("[Content_Types].xml", ct.encode()), ("_rels/.rels", rels.encode()),
                      ("word/document.xml", document.encode()),
                      ("word/_rels/document.xml.rels", doc_rels.encode()),
                      ("word/media/image1.jpeg", picture)])


SECTOR = 512
ENDOFCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
MINI_CUTOFF = 4096


def _dir_entry(name: str, kind: int, left: int, right: int, child: int, start: int,
               size: int) -> bytes:
    raw = (name + "\x00").encode("utf-16-le") if name else b""
    return struct.pack("<64sHBBIII16sIQQIQ", raw, len(raw), kind, 1, left, right, child,
                       b"\x00" * 16, 0, 0, 0, start, size)


def ole2(streams: Sequence[tuple[str, bytes]]) -> bytes:
    """A compound file with the given root-level streams (each padded to >= 4,096 bytes
    with zeros; at most 3 streams, one FAT sector). The directory tree is the root's child
    with the rest as right siblings, in [MS-CFB] order (length, then upper-case name)."""
    streams = sorted(streams, key=lambda s: (len(s[0]), s[0].upper()))
    assert 1 <= len(streams) <= 3
    padded = [(n, d + bytes(max(0, MINI_CUTOFF - len(d)))) for n, d in streams]
    fat: list[int] = [FATSECT, ENDOFCHAIN]  # sector 0: FAT, sector 1: directory
    body = b""
    entries = [b""]  # root placeholder
    for i, (name, data) in enumerate(padded):
        nsect = -(-len(data) // SECTOR)
        start = len(fat)
        fat += [start + k + 1 for k in range(nsect - 1)] + [ENDOFCHAIN]
        body += data + bytes(nsect * SECTOR - len(data))
        right = i + 2 if i + 1 < len(padded) else NOSTREAM
        entries.append(_dir_entry(name, 2, NOSTREAM, right, NOSTREAM, start, len(data)))
    assert len(fat) <= SECTOR // 4, "test helper: one FAT sector only"
    entries[0] = _dir_entry("Root Entry", 5, NOSTREAM, NOSTREAM, 1, ENDOFCHAIN, 0)
    while len(entries) < 4:
        entries.append(_dir_entry("", 0, NOSTREAM, NOSTREAM, NOSTREAM, 0, 0))
    fat_sector = struct.pack(f"<{SECTOR // 4}I", *(fat + [FREESECT] * (SECTOR // 4 - len(fat))))
    difat = [0] + [FREESECT] * 108
    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
                         b"\x00" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\x00" * 6, 0, 1, 1, 0,
                         MINI_CUTOFF, ENDOFCHAIN, 0, ENDOFCHAIN, 0)
    header += struct.pack("<109I", *difat)
    assert len(header) == SECTOR
    return header + fat_sector + b"".join(entries) + body


def old_doc(picture: bytes) -> bytes:
    """An old-style Word file: the picture sits in the "Data" stream behind a PICF-like
    68-byte header and an OfficeArt BLIP record header, as Word stores it."""
    picf = struct.pack("<IH", 68 + 8 + 17 + len(picture), 68) + bytes(62)
    blip = struct.pack("<HHI", 0x46A0, 0xF01D, 17 + len(picture)) + bytes(17)
    return ole2([("WordDocument", b"\xec\xa5" + bytes(1000)),
                 ("Data", picf + blip + picture)])


def pdf_with_images(images: Sequence[tuple[bytes, str]]) -> bytes:
    """A minimal one-page PDF whose page draws image XObjects; each image is (stream bytes
    as stored, /Filter value as PDF text, e.g. "/DCTDecode" or "[/FlateDecode /DCTDecode]")."""
    objs: list[bytes] = []
    n_img = len(images)
    first_img = 5
    names = " ".join(f"/Im{i} {first_img + i} 0 R" for i in range(n_img))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] /Resources "
                f"<< /XObject << {names} >> >> /Contents 4 0 R >>".encode())
    content = b"".join(f"q 10 0 0 10 {i * 10} 0 cm /Im{i} Do Q\n".encode()
                       for i in range(n_img))
    objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    for data, filt in images:
        objs.append(f"<< /Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace "
                    f"/DeviceRGB /BitsPerComponent 8 /Filter {filt} /Length {len(data)} >>"
                    f"\nstream\n".encode() + data + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objs) + 1, xref))
    return out.getvalue()


# ------------------------------------------------- issue 11, defects 5 and 10: outcomes


def sevenzip_with_dictionary(members: Sequence[tuple[str, bytes]],
                             lzma2_property: int = 40) -> bytes:
    """A 7z (py7zr, LZMA2, plain header) whose LZMA2 dictionary property byte is then set to
    ``lzma2_property`` (40: 4 GiB - 1, xz format 1.0.4 section 5.3.1), header and start
    header CRCs recomputed (7-Zip's 7zFormat.txt): a small archive whose decoder would
    allocate the whole declared dictionary before the first byte."""
    import lzma

    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", filters=[{"id": lzma.FILTER_LZMA2,
                                                "dict_size": 1 << 20}]) as z:
        z.encoded_header_mode = False  # the coder properties stay findable
        for name, data in members:
            z.writestr(data, name)
    out = bytearray(buf.getvalue())
    at = out.find(b"\x21\x01\x10")  # coder id LZMA2, one property byte, 1 MiB
    assert at > 0, "LZMA2 coder properties not found in the header"
    out[at + 2] = lzma2_property
    offset, size, _ = struct.unpack_from("<QQI", out, 12)
    struct.pack_into("<I", out, 28, zlib.crc32(bytes(out[32 + offset:32 + offset + size])))
    struct.pack_into("<I", out, 8, zlib.crc32(bytes(out[12:32])))
    return bytes(out)


def lying_jpeg(width: int = 65500, height: int = 2700, progressive: bool = False) -> bytes:
    """A 16x16 JPEG whose frame header is then made to say ``width`` x ``height``: the
    rest of the picture is simply not there (issue 11, defect 10)."""
    img = Image.new("RGB", (16, 16))
    img.putdata([((x * 16) % 256, (y * 16) % 256, (x * y) % 256)
                 for y in range(16) for x in range(16)])
    out = io.BytesIO()
    img.save(out, "JPEG", progressive=progressive)
    data = bytearray(out.getvalue())
    sof = data.find(b"\xff\xc2" if progressive else b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def tar_every_type(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A tar holding ``files`` (regular), then a directory, a symbolic link and a hard
    link to the first file, a character device (1,3), a block device (8,0) and a FIFO."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        def add(name: str, kind: bytes, **attrs: object) -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mtime = kind, 1_600_000_000
            for k, v in attrs.items():
                setattr(ti, k, v)
            tf.addfile(ti)

        add("dir", tarfile.DIRTYPE, mode=0o755)
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(data), 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))
        first = files[0][0]
        add("dir/link.jpg", tarfile.SYMTYPE, linkname=f"../{first}")
        add("hard.jpg", tarfile.LNKTYPE, linkname=first)
        add("null", tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)
        add("pipe", tarfile.FIFOTYPE)
    return out.getvalue()
