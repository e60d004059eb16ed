"""The algorithm registry: every algorithm, crypto and perceptual, one line each.

Names are stable (they are stored in cases and stores); a duplicate name or alias is
refused at registration. Everything that depends on the set of algorithms (CLI threshold
options, set-file columns, exporter columns, the worker's work and preload list, the run's
version record) reads this registry when it runs, never a copy made at import time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from .base import (
    EXAMPLE_PICTURES,
    Algorithm,
    Hasher,
    PictureAlgorithm,
    StreamAlgorithm,
    compute_all,
    example_picture,
)
from .crypto import EMPTY_DIGESTS, MD5, SHA1, SHA256
from .perceptual import PDQ, DHash, PHash
from .photodna import PhotoDNA

ALGORITHMS: dict[str, Algorithm] = {}
_SPELLINGS: dict[str, str] = {}  # spelling key (see spelling_key) -> name


def spelling_key(text: str) -> str:
    """A column header or hash name compared without case and punctuation ("SHA-256")."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm``; refuse a name or alias that is already taken, a name that could
    not be a table or column name, or a width that is not whole bytes."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", algorithm.name):
        raise ValueError(f"algorithm name {algorithm.name!r} is not lower-case letters, "
                         "digits and '_' (it names SQL tables and CSV columns)")
    if algorithm.name in ALGORITHMS:
        raise ValueError(f"algorithm {algorithm.name!r} is already registered")
    if algorithm.bits <= 0 or algorithm.bits % 8:
        raise ValueError(f"algorithm {algorithm.name!r}: {algorithm.bits} bits is not a "
                         "positive whole number of bytes")
    keys = {spelling_key(s) for s in (algorithm.name, *algorithm.aliases)}
    if taken := sorted(k for k in keys if k in _SPELLINGS):
        raise ValueError(f"algorithm {algorithm.name!r}: {', '.join(taken)} already names "
                         f"{_SPELLINGS[taken[0]]!r}")
    ALGORITHMS[algorithm.name] = algorithm
    _SPELLINGS.update(dict.fromkeys(keys, algorithm.name))
    return algorithm


def unregister(name: str) -> None:
    """Remove an algorithm (tests and embedding only; a case that stores its values keeps
    them, they are just no longer matched)."""
    algorithm = ALGORITHMS.pop(name)
    for key in [k for k, v in _SPELLINGS.items() if v == algorithm.name]:
        del _SPELLINGS[key]


@contextmanager
def registered(algorithm: Algorithm) -> Iterator[Algorithm]:
    """``algorithm`` registered for the duration of a ``with`` block."""
    register(algorithm)
    try:
        yield algorithm
    finally:
        unregister(algorithm.name)


for _alg in (MD5(), SHA1(), SHA256(), PHash(), DHash(), PDQ(), PhotoDNA()):
    register(_alg)


def get(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise KeyError(f"unknown hash algorithm {name!r} (known: {known})") from None


def lookup(spelling: str) -> Algorithm | None:
    """The algorithm a set file's column header or hash name means ("SHA-256", "PDQHash"),
    or None."""
    name = _SPELLINGS.get(spelling_key(spelling))
    return None if name is None else ALGORITHMS[name]


def stream_algorithms() -> tuple[StreamAlgorithm, ...]:
    """Algorithms computed from the byte stream, in registration order."""
    return tuple(a for a in ALGORITHMS.values() if isinstance(a, StreamAlgorithm))


def picture_algorithms() -> tuple[PictureAlgorithm, ...]:
    """Algorithms computed from a decoded picture, in registration order."""
    return tuple(a for a in ALGORITHMS.values() if isinstance(a, PictureAlgorithm))


def computed() -> tuple[Algorithm, ...]:
    """Every algorithm a scan computes (stream first, then picture), in registration order."""
    return (*stream_algorithms(), *picture_algorithms())


def near_algorithms() -> tuple[Algorithm, ...]:
    return tuple(a for a in ALGORITHMS.values() if a.match == "near")


def gated() -> tuple[Algorithm, ...]:
    """Algorithms with a quality gate (``min_quality``)."""
    return tuple(a for a in ALGORITHMS.values() if a.min_quality is not None)


__all__ = [
    "ALGORITHMS",
    "EMPTY_DIGESTS",
    "EXAMPLE_PICTURES",
    "Algorithm",
    "Hasher",
    "PictureAlgorithm",
    "StreamAlgorithm",
    "compute_all",
    "computed",
    "example_picture",
    "gated",
    "get",
    "lookup",
    "near_algorithms",
    "picture_algorithms",
    "register",
    "registered",
    "spelling_key",
    "stream_algorithms",
    "unregister",
]
