"""Cryptographic digests. Computed by the scanner with :mod:`hashlib` in one read pass."""

from __future__ import annotations

from typing import ClassVar

from .base import Algorithm


class MD5(Algorithm):
    name = "md5"
    kind = "cryptographic"
    bits = 128
    examples: ClassVar[dict[str, str]] = {
        "": "d41d8cd98f00b204e9800998ecf8427e",
        "abc": "900150983cd24fb0d6963f7d28e17f72",
    }


class SHA1(Algorithm):
    name = "sha1"
    kind = "cryptographic"
    bits = 160
    examples: ClassVar[dict[str, str]] = {
        "": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "abc": "a9993e364706816aba3e25717850c26c9cd0d89d",
    }


class SHA256(Algorithm):
    name = "sha256"
    kind = "cryptographic"
    bits = 256
    examples: ClassVar[dict[str, str]] = {
        "": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }


#: Digests of the empty input. A hash-set entry with one of these says nothing about any
#: file's content, so it is never counted as a match (FORMATS.md, RELIABILITY.md #5).
EMPTY_DIGESTS = frozenset(alg.examples[""] for alg in (MD5, SHA1, SHA256))
