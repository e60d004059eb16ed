"""Ed25519 keys and signatures for export manifests (the ``cryptography`` package).

A key file is the private key in PKCS#8 PEM (unencrypted, written 0600: protect it like any
signing key); ``KEYFILE.pub`` beside it holds the public key (SubjectPublicKeyInfo PEM) to
hand to whoever verifies. The fingerprint of a key is the SHA-256 (hex) of its 32 raw public
key bytes; it is printed in the report and in the manifest.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import TriageError


class SigningError(TriageError):
    """A key cannot be created, read or used."""

    exit_code = 2


@dataclass(frozen=True)
class PublicKey:
    raw: bytes

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def verify(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class PrivateKey:
    pem: bytes
    public: PublicKey

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(self.pem, password=None)
        return key.sign(data)  # type: ignore[call-arg,union-attr]


def _raw_public(key: object) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[attr-defined]


def generate(out: Path, *, force: bool = False) -> PrivateKey:
    """Write a new private key to ``out`` (0600) and its public key to ``out.pub``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    pub_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(out, flags, 0o600)
    except FileExistsError:
        raise SigningError(f"{out}: exists; refusing to overwrite a key (use --force)") from None
    except OSError as e:
        raise SigningError(f"{out}: cannot create key file: {e.strerror}") from e
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    Path(f"{out}.pub").write_bytes(pub_pem)
    return PrivateKey(pem, PublicKey(_raw_public(key.public_key())))


def load_private(path: Path) -> PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        pem = path.read_bytes()
        key = load_pem_private_key(pem, password=None)
    except OSError as e:
        raise SigningError(f"{path}: cannot read key: {e.strerror}") from e
    except (ValueError, TypeError) as e:
        raise SigningError(f"{path}: not an unencrypted PEM private key ({e})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 key")
    return PrivateKey(pem, PublicKey(_raw_public(key.public_key())))


def load_public(path: Path) -> PublicKey:
    """A public key from a PEM public key, a PEM private key, or 64 hex digits."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    try:
        data = path.read_bytes()
    except OSError as e:
        raise SigningError(f"{path}: cannot read public key: {e.strerror}") from e
    text = data.strip()
    if len(text) == 64:
        try:
            return PublicKey(bytes.fromhex(text.decode("ascii")))
        except ValueError:
            pass
    try:
        if b"PRIVATE KEY" in data:
            priv = load_pem_private_key(data, password=None)
            if isinstance(priv, Ed25519PrivateKey):
                return PublicKey(_raw_public(priv.public_key()))
        else:
            pub = load_pem_public_key(data)
            if isinstance(pub, Ed25519PublicKey):
                return PublicKey(_raw_public(pub))
    except (ValueError, TypeError) as e:
        raise SigningError(f"{path}: not a PEM Ed25519 key ({e})") from e
    raise SigningError(f"{path}: not an Ed25519 key")


def encode_signature(sig: bytes) -> bytes:
    return base64.b64encode(sig) + b"\n"


def decode_signature(data: bytes) -> bytes:
    return base64.b64decode(data.strip(), validate=True)
