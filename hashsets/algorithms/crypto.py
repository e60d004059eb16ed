"""Cryptographic digests (hashlib), fed by the scanner's single read pass.

Examples are the FIPS 180 / RFC 1321 test vectors ("" and "abc")."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from .base import Hasher, StreamAlgorithm


class MD5(StreamAlgorithm):
    name = "md5"
    label = "MD5"
    bits = 128
    aliases = ("md5hash",)
    examples: ClassVar[dict[str, str]] = {
        "": "d41d8cd98f00b204e9800998ecf8427e",
        "abc": "900150983cd24fb0d6963f7d28e17f72",
    }

    def new(self) -> Hasher:
        return hashlib.md5()


class SHA1(StreamAlgorithm):
    name = "sha1"
    label = "SHA1"
    bits = 160
    aliases = ("sha-1", "sha1hash")
    examples: ClassVar[dict[str, str]] = {
        "": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "abc": "a9993e364706816aba3e25717850c26c9cd0d89d",
    }

    def new(self) -> Hasher:
        return hashlib.sha1()


class SHA256(StreamAlgorithm):
    name = "sha256"
    label = "SHA256"
    bits = 256
    aliases = ("sha-256", "sha2-256", "sha256hash")
    examples: ClassVar[dict[str, str]] = {
        "": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }

    def new(self) -> Hasher:
        return hashlib.sha256()


#: Digests of the empty input. A hash-set entry with one of these says nothing about any
#: file's content, so it is never counted as a match (FORMATS.md, RELIABILITY.md #5).
EMPTY_DIGESTS = frozenset(alg.examples[""] for alg in (MD5, SHA1, SHA256))
