"""The algorithm registry: one line per algorithm, stable names, duplicates refused."""

from __future__ import annotations

from .base import Algorithm, PerceptualAlgorithm
from .crypto import EMPTY_DIGESTS, MD5, SHA1, SHA256
from .perceptual import PDQ, DHash, PHash
from .photodna import PhotoDNA

ALGORITHMS: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    if algorithm.name in ALGORITHMS:
        raise ValueError(f"algorithm {algorithm.name!r} is already registered")
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


for _alg in (MD5(), SHA1(), SHA256(), PHash(), DHash(), PDQ(), PhotoDNA()):
    register(_alg)


def get(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise KeyError(f"unknown hash algorithm {name!r} (known: {known})") from None


CRYPTOGRAPHIC = tuple(a for a in ALGORITHMS.values() if a.kind == "cryptographic")
PERCEPTUAL: tuple[PerceptualAlgorithm, ...] = tuple(
    a for a in ALGORITHMS.values() if isinstance(a, PerceptualAlgorithm)
)

__all__ = [
    "ALGORITHMS",
    "CRYPTOGRAPHIC",
    "EMPTY_DIGESTS",
    "PERCEPTUAL",
    "Algorithm",
    "PerceptualAlgorithm",
    "get",
    "register",
]
