"""The member-kind registry: which archive/document formats are opened, chosen by content.

Each kind has a stable ``name`` (recorded in cases and notes), a ``detect(head, mime)``
that only looks at the first bytes it is given (``mime``, libmagic's answer, is a
tie-breaker for PDF and tar), and an ``expand(stream, limits, budget, name)`` yielding
:class:`~.base.Member` values (see :func:`triage.members.expand`). Kinds are tried in
registration order; ``tar``, the weakest test (a header checksum, or libmagic's word), is
marked ``last``: nothing may be registered after it.
Data no kind accepts is not a container (the worker searches it for embedded pictures).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from . import detect as d
from .archives import expand_7z, expand_compressed, expand_tar, expand_zip, refuse_rar
from .base import Budget, Limits, Member
from .disk import expand_disk, nested_head_kind
from .ole2 import expand_ole2
from .pdf import expand_pdf

Expander = Callable[[BinaryIO, Limits, Budget, bytes], Iterator[Member]]


@dataclass(frozen=True)
class MemberKind:
    name: str
    detect: Callable[[bytes, str], bool]
    expand: Expander
    last: bool = False


MEMBER_KINDS: dict[str, MemberKind] = {}


def register(kind: MemberKind) -> MemberKind:
    """Add a kind; duplicates and kinds after the one marked ``last`` are refused."""
    if kind.name in MEMBER_KINDS:
        raise ValueError(f"member kind {kind.name!r} is already registered")
    if any(k.last for k in MEMBER_KINDS.values()):
        raise ValueError(f"member kind {kind.name!r} registered after the last kind")
    MEMBER_KINDS[kind.name] = kind
    return kind


register(MemberKind("zip", d.is_zip, lambda s, lim, b, n: expand_zip(s, lim, b)))
register(MemberKind("gzip", lambda h, m: h.startswith(d.GZIP),
                    lambda s, lim, b, n: expand_compressed("gzip", s, lim, b, n)))
register(MemberKind("bzip2", d.is_bzip2,
                    lambda s, lim, b, n: expand_compressed("bzip2", s, lim, b, n)))
register(MemberKind("xz", lambda h, m: h.startswith(d.XZ),
                    lambda s, lim, b, n: expand_compressed("xz", s, lim, b, n)))
register(MemberKind("7z", lambda h, m: h.startswith(d.SEVEN_ZIP),
                    lambda s, lim, b, n: expand_7z(s, lim, b)))
register(MemberKind("ole2", lambda h, m: h.startswith(d.OLE2),
                    lambda s, lim, b, n: expand_ole2(s, lim, b)))
register(MemberKind("rar", lambda h, m: h.startswith(d.RAR),  # recognised, refused
                    lambda s, lim, b, n: refuse_rar(lim, b)))
register(MemberKind("pdf", d.is_pdf, lambda s, lim, b, n: expand_pdf(s, lim, b)))
register(MemberKind("disk", lambda h, m: nested_head_kind(h) is not None, expand_disk))
register(MemberKind("tar", d.is_tar, lambda s, lim, b, n: expand_tar(s, lim, b),
                    last=True))

#: The names, in the order they are tried.
KINDS = tuple(MEMBER_KINDS)


def container_kind(head: bytes, mime: str = "") -> str | None:
    """The kind of a file from its first bytes (a name in :data:`MEMBER_KINDS`), or None.

    ``head`` should hold at least the first 64 KiB when the file is that long (a raw disk
    image may be recognised by an ISO 9660 descriptor at 32 KiB; PDF headers may sit
    anywhere in the first 1,024 bytes; tar needs 512). OOXML/ODF documents and zips with any
    extension are ``"zip"``; ``"rar"`` is recognised so that it can be reported as
    unsupported; ``"disk"`` is a disk image found inside the evidence.
    """
    return next((k.name for k in MEMBER_KINDS.values() if k.detect(head, mime)), None)
