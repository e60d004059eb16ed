"""PDF: image XObjects as the encoded files they are stored as, and attached files.

Uses pikepdf (qpdf bindings, maintained, repairs damaged cross-reference tables), because
``Stream.read_raw_bytes()`` is public API for the stored bytes without any decoding. A
DCTDecode image's stream IS a JPEG file and a JPXDecode one a JPEG 2000 file, so their
hashes equal those of the original picture. General filters in front of them
(``[/FlateDecode /DCTDecode]``) are undone here with a byte cap. Other image encodings
(raw pixels under Flate, JBIG2, CCITT) are not picture files: they are yielded as their raw
stream, flagged ``pdf-image-<filters>``. Inline images in content streams are not found.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from .base import (
    STREAM_CHUNK,
    Budget,
    ContainerError,
    Limits,
    Member,
    ZlibStream,
    limit_reason,
    member_caps,
    name_flags,
    short,
)

#: Image filters whose encoded stream is a picture file of its own.
PICTURE_FILTERS = {"/DCTDecode": "jpg", "/JPXDecode": "jp2"}


class _OverCap(Exception):
    pass


def _inflate(raw: bytes, cap: int, budget: Budget) -> bytes:
    """zlib-inflate ``raw`` keeping at most ``cap`` bytes (raises ``_OverCap``)."""
    d = ZlibStream(zlib.MAX_WBITS)
    out: list[bytes] = []
    got = 0
    pending = raw
    while not d.eof and (pending or not d.needs_input):  # a cut-off stream keeps its output
        budget.check_time()
        chunk = d.decompress(pending, STREAM_CHUNK)
        pending = b""
        got += len(chunk)
        if got > cap:
            raise _OverCap
        out.append(chunk)
    return b"".join(out)


def _filters(obj: Any) -> list[str]:
    import pikepdf

    f = obj.get("/Filter")
    if f is None:
        return []
    if isinstance(f, pikepdf.Array):
        return [str(x) for x in f]
    return [str(f)]


def _has_parms(obj: Any) -> bool:
    """True when any /DecodeParms dictionary is non-empty (a predictor we do not undo)."""
    import pikepdf

    p = obj.get("/DecodeParms")
    if p is None:
        return False
    items = list(p) if isinstance(p, pikepdf.Array) else [p]
    return any(isinstance(x, pikepdf.Dictionary) and len(x.keys()) > 0 for x in items)


def expand_pdf(stream: BinaryIO, limits: Limits, budget: Budget) -> Iterator[Member]:
    """Image XObjects in object-number order (named ``obj<num>-<gen>.<ext>``), then
    attached files in name order (``attachments/<name>``)."""
    import pikepdf

    try:
        pdf = pikepdf.open(stream)
    except pikepdf.PasswordError as e:
        raise ContainerError("encrypted: PDF needs a password (none tried)",
                             ("encrypted",)) from e
    except Exception as e:
        raise ContainerError(f"corrupt PDF: {short(e)}", ("corrupt",)) from e
    with pdf:
        try:
            objects = [o for o in pdf.objects if isinstance(o, pikepdf.Stream)
                       and o.get("/Subtype") == pikepdf.Name.Image]
            attachments = sorted(pdf.attachments.items())
        except Exception as e:
            raise ContainerError(f"corrupt PDF: {short(e)}", ("corrupt",)) from e
        count = 0
        for obj in objects:
            count += 1
            if count > limits.max_members:
                raise ContainerError(f"limit: more than {limits.max_members} members "
                                     f"(max_members)", ("limit:members",))
            budget.check_time()
            yield _image(obj, limits, budget)
        for name, spec in attachments:
            count += 1
            if count > limits.max_members:
                raise ContainerError(f"limit: more than {limits.max_members} members "
                                     f"(max_members)", ("limit:members",))
            budget.check_time()
            yield _attachment(name, spec, limits, budget)


def _decode(obj: Any, filters: list[str], name: bytes, flags: tuple[str, ...],
            limits: Limits, budget: Budget, mtime: float | None = None) -> Member:
    """Undo leading FlateDecode filters (no predictor) with a cap; keep the rest encoded."""
    try:
        raw = bytes(obj.read_raw_bytes())
    except Exception as e:
        return Member(name, "member", None, mtime, None, None, (*flags, "corrupt"),
                      f"corrupt: {short(e)}")
    caps = member_caps(limits, budget, len(raw))
    if len(raw) > caps.cap:
        reason, flag = limit_reason(limits, budget, caps, len(raw), len(raw), declared=True)
        return Member(name, "member", len(raw), mtime, None, None, (*flags, flag), reason)
    data = raw
    try:
        for _ in filters:
            budget.check_time()
            data = _inflate(data, caps.cap, budget)
    except _OverCap:
        reason, flag = limit_reason(limits, budget, caps, caps.cap + 1, len(raw),
                                    declared=False)
        return Member(name, "member", None, mtime, None, None, (*flags, flag), reason)
    except zlib.error as e:
        return Member(name, "member", None, mtime, None, None, (*flags, "corrupt"),
                      f"corrupt: FlateDecode: {short(e)}")
    budget.charge(len(data))
    return Member(name, "member", len(data), mtime, None, data, flags)


def _image(obj: Any, limits: Limits, budget: Budget) -> Member:
    num, gen = obj.objgen
    filters = _filters(obj)
    last = filters[-1] if filters else None
    before = filters[:-1]
    if last in PICTURE_FILTERS and all(f == "/FlateDecode" for f in before) \
            and not (before and _has_parms(obj)):
        name = f"obj{num}-{gen}.{PICTURE_FILTERS[last]}".encode()
        return _decode(obj, before, name, (), limits, budget)
    label = "+".join(f.lstrip("/").lower() for f in filters) or "none"
    name = f"obj{num}-{gen}.{label}".encode()
    return _decode(obj, [], name, (f"pdf-image-{label}",), limits, budget)


def _attachment(key: str, spec: Any, limits: Limits, budget: Budget) -> Member:
    raw_name = str(getattr(spec, "filename", "") or key)
    name = b"attachments/" + raw_name.encode("utf-8", "surrogateescape")
    flags = name_flags(raw_name.encode("utf-8", "surrogateescape"))
    try:
        f = spec.get_file()
        obj = f.obj
        filters = _filters(obj)
        mtime = f.mod_date.timestamp() if f.mod_date is not None else None
    except Exception as e:
        return Member(name, "member", None, None, None, None, (*flags, "corrupt"),
                      f"corrupt: {short(e)}")
    if any(x != "/FlateDecode" for x in filters) or (filters and _has_parms(obj)):
        label = "+".join(x.lstrip("/").lower() for x in filters)
        return Member(name, "member", None, mtime, None, None, (*flags, "unsupported"),
                      f"unsupported: attachment filter {label}")
    return _decode(obj, filters, name, flags, limits, budget, mtime)
