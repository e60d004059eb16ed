"""Perceptual hash lists: one hex value per line of any picture algorithm of the registry
(PDQ, pHash, dHash...), optionally followed by a label/category (separated by a comma, tab
or spaces). ``#`` lines are comments.

The algorithm is the ``algorithm`` option; without it a first comment line naming one
(``# pdq``, ``# algorithm: phash``) decides, else 16 hex digits mean phash. A 64-digit list
without either is ambiguous with SHA-256 and is refused by detection (give
``--format perceptual --algorithm pdq``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..algorithms import get, lookup, picture_algorithms
from .base import (
    Format,
    Item,
    ParseContext,
    Record,
    Rejected,
    content_lines,
    fail,
    open_text,
    text_head,
)

_LINE = re.compile(r"^(?P<hex>[0-9A-Fa-f]+)(?:\s*[,\t ]\s*(?P<label>.*))?$")
_DECLARED = re.compile(r"^#\s*(?:algorithm\s*[:=]\s*)?([\w-]+)", re.IGNORECASE)
#: A list of bare 16-digit values is taken as pHash (the common 64-bit perceptual list).
DEFAULT_64 = "phash"


def _picture(name: str) -> str | None:
    alg = lookup(name)
    return alg.name if alg is not None and alg in picture_algorithms() else None


def _declared(text: str) -> str | None:
    for line in text.splitlines()[:5]:
        m = _DECLARED.match(line.strip())
        if m and (name := _picture(m.group(1))):
            return name
    return None


def _head_text(path: Path) -> str:
    """The first 4 KiB of the file as text (where a declaration comment is looked for)."""
    with open(path, "rb") as f:
        return text_head(f.read(4096))


class PerceptualList(Format):
    name = "perceptual"
    description = "perceptual hex list (PDQ, pHash, dHash...), optional label per line"

    def detect(self, path: Path, head: bytes) -> bool:
        text = text_head(head)
        if _declared(text):
            return True
        data = [ln.strip() for ln in text.splitlines()[:20]
                if ln.strip() and not ln.startswith("#")]
        return bool(data) and all((m := _LINE.match(ln)) and len(m.group("hex")) == 16
                                  for ln in data)

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        algorithm: str | None = ctx.options.get("algorithm")
        with open_text(ctx) as f:
            algorithm = algorithm or _declared(_head_text(ctx.path))
            for lineno, line in content_lines(f):
                text = line.strip()
                m = _LINE.match(text)
                if not m:
                    yield Rejected(lineno, "not a 'hex [label]' line")
                    continue
                hex_text = m.group("hex")
                names = "|".join(a.name for a in picture_algorithms())
                if algorithm is None:
                    if len(hex_text) != 16:
                        raise fail(ctx, lineno, "cannot tell the perceptual algorithm; give "
                                                f"--algorithm {names}")
                    algorithm = DEFAULT_64
                alg = _picture(algorithm)
                if alg is None:
                    raise fail(ctx, None, f"{algorithm!r} is not a perceptual algorithm "
                                          f"({names})")
                algorithm = alg
                ctx.info["algorithm"] = algorithm
                try:
                    value = get(algorithm).normalize(hex_text)
                except ValueError as e:
                    yield Rejected(lineno, str(e))
                    continue
                label = (m.group("label") or "").strip() or None
                yield Record(lineno, {algorithm: value}, category_raw=label)
