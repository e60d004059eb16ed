"""Identification by content (libmagic), never by name.

libmagic is not thread-safe and a shared python-magic handle serialises on a lock, so each
process opens its own handles lazily (RELIABILITY #13); workers are processes, not threads.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

#: libmagic reads at most this much of a file (its default bytes_max in file 5.4x).
MAGIC_HEAD_BYTES = 1 << 20
#: The EBML header signature (RFC 8794 section 8.1; libmagic's Magdir/matroska rule).
EBML_MAGIC = b"\x1a\x45\xdf\xa3"

# Extensions each media type is legitimately stored under, beyond what Python's mimetypes
# table knows. Keys are libmagic's MIME types.
_EXTRA_EXTENSIONS: dict[str, set[str]] = {
    "image/jpeg": {"jpg", "jpeg", "jpe", "jfif", "jfi", "jif", "thm"},
    "image/png": {"png", "apng"},
    "image/apng": {"png", "apng"},
    "image/gif": {"gif"},
    "image/webp": {"webp"},
    "image/bmp": {"bmp", "dib"},
    "image/x-ms-bmp": {"bmp", "dib"},
    "image/tiff": {"tif", "tiff", "dng", "nef", "cr2", "arw", "orf", "pef", "srw", "rw2"},
    "image/heic": {"heic", "heif", "hif"},
    "image/heif": {"heic", "heif", "hif"},
    "image/avif": {"avif"},
    "image/jxl": {"jxl"},
    "image/jp2": {"jp2", "j2k", "jpf", "jpx"},
    "image/x-icon": {"ico", "cur"},
    "image/vnd.microsoft.icon": {"ico", "cur"},
    "image/x-portable-pixmap": {"ppm", "pnm"},
    "image/x-portable-greymap": {"pgm", "pnm"},
    "image/x-portable-bitmap": {"pbm", "pnm"},
    "image/x-tga": {"tga", "icb", "vda", "vst"},
    "image/svg+xml": {"svg", "svgz"},
    "image/x-canon-cr2": {"cr2"},
    "image/x-canon-cr3": {"cr3"},
    "image/x-nikon-nef": {"nef"},
    "image/x-olympus-orf": {"orf"},
    "image/x-xcf": {"xcf"},
    "video/mp4": {"mp4", "m4v", "m4a", "f4v", "mp4v", "3gp"},
    "video/quicktime": {"mov", "qt", "mp4", "m4v"},
    "video/x-matroska": {"mkv", "mka", "mk3d"},
    "video/webm": {"webm", "mkv"},
    "video/x-msvideo": {"avi"},
    "video/x-ms-asf": {"wmv", "asf", "wma"},
    "video/x-flv": {"flv"},
    "video/mpeg": {"mpg", "mpeg", "m2v", "vob", "mpe"},
    "video/mp2t": {"mts", "m2ts", "ts"},
    "video/3gpp": {"3gp", "3gpp"},
    "audio/mpeg": {"mp3", "mpga", "mp2"},
    "audio/x-wav": {"wav"},
    "audio/x-flac": {"flac"},
    "audio/flac": {"flac"},
    "audio/ogg": {"ogg", "oga", "opus"},
    "audio/x-m4a": {"m4a", "mp4", "aac"},
    "audio/aac": {"aac"},
    "audio/x-hx-aac-adts": {"aac"},
}

# Python's built-in table only: mimetypes.init() would also read /etc/mime.types and the
# like, so the flag would depend on the machine (same evidence, different rows).
_MIME_TABLE = mimetypes.MimeTypes(filenames=())

# Extensions that also name common non-media files (.ts: TypeScript and Qt translations):
# never evidence of a renamed file on their own.
_AMBIGUOUS_EXTENSIONS = frozenset({"ts"})
_ALL_MEDIA_EXTENSIONS = frozenset(
    ext for mime, exts in _EXTRA_EXTENSIONS.items()
    if mime.split("/")[0] in ("image", "video", "audio") for ext in exts
) - _AMBIGUOUS_EXTENSIONS

# libmagic MIME types that are media although their top-level type is not.
_MEDIA_BY_MIME = {
    "application/ogg": "video",
    "application/vnd.rn-realmedia": "video",
    "application/x-shockwave-flash": "other",
}


@dataclass(frozen=True)
class Identification:
    mime: str
    media_kind: str  # image | video | audio | other
    extension: str | None
    ext_mismatch: int | None  # 1 mismatch, 0 consistent, None unknown
    #: Set when libmagic itself failed on this content (the file is still hashed).
    problem: str | None = None


class Identifier:
    """One pair of libmagic handles for this process."""

    def __init__(self) -> None:
        import magic

        self._mime = magic.Magic(mime=True)
        self._desc = magic.Magic()

    def identify(self, head: bytes, extension: str | None) -> Identification:
        if not head:
            return Identification("application/x-empty", "other", extension, None)
        try:
            mime = self._mime.from_buffer(head)
            if mime == "application/octet-stream" and head.startswith(EBML_MAGIC):
                # libmagic 5.44 names WebM/Matroska only in its description. The description
                # is asked for only here (one libmagic call per file otherwise) and never
                # kept: it can quote text from inside the file. Its "EBML file" comes from
                # the rule at offset 0 (Magdir/matroska: ``0 belong 0x1a45dfa3 EBML file``),
                # so no other head can give it: other octet-streams cost one call, not two.
                raw_desc = self._desc.from_buffer(head)
                if raw_desc.startswith("EBML file"):
                    mime = "video/webm" if "webm" in raw_desc.lower() else "video/x-matroska"
        except Exception as e:  # magic.MagicException and friends: one file, not the worker
            return Identification("application/octet-stream", "other", extension, None,
                                  problem=f"libmagic failed: {e.__class__.__name__}: {e}"[:300])
        kind = media_kind(mime)
        return Identification(mime, kind, extension, extension_mismatch(mime, kind, extension))

    @staticmethod
    def libmagic_version() -> str:
        import magic

        try:
            v = magic.version()
            return f"{v // 100}.{v % 100:02d}"
        except Exception:  # older libmagic without magic_version()
            return "unknown"


def media_kind(mime: str) -> str:
    if mime in _MEDIA_BY_MIME:
        return _MEDIA_BY_MIME[mime]
    top = mime.split("/", 1)[0]
    return top if top in ("image", "video", "audio") else "other"


def allowed_extensions(mime: str) -> set[str]:
    exts = {e.lstrip(".").lower() for e in _MIME_TABLE.guess_all_extensions(mime,
                                                                            strict=False)}
    return exts | _EXTRA_EXTENSIONS.get(mime, set())


def extension_of(name: bytes) -> str | None:
    base = name.rsplit(b"/", 1)[-1]
    if b"." not in base.lstrip(b"."):
        return None
    ext = base.rsplit(b".", 1)[1]
    if not ext or len(ext) > 16:
        return None
    return ext.decode("utf-8", "backslashreplace").lower()


def extension_mismatch(mime: str, kind: str, extension: str | None) -> int | None:
    """1 when the name hides what the content is; 0 when consistent; None when unknown.

    Media content under a non-media (or no) extension is a mismatch, and so is a media
    extension on content that is not media (e.g. ``photo.jpg`` that is a ZIP).
    """
    allowed = allowed_extensions(mime)
    if kind in ("image", "video", "audio"):
        if extension in allowed:
            return 0
        if not allowed and extension is not None:
            # A media type nobody lists extensions for (image/bpg): judge by the subtype,
            # and by whether the extension is known to mean something else.
            subtype = mime.split("/", 1)[1].split("+")[0].removeprefix("x-")
            if extension == subtype:
                return 0
            other, _ = _MIME_TABLE.guess_type("x." + extension, strict=False)
            return 1 if other and media_kind(other) != kind else None
        return 1
    if extension in _ALL_MEDIA_EXTENSIONS:
        return 1
    if extension is None or not allowed:
        return None
    return 0 if extension in allowed else None
