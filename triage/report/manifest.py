"""Export manifests: ``<out>.manifest.json`` beside each export, optionally signed.

The manifest records the SHA-256 and size of the exported file (by name, relative to the
manifest's directory), of the case database (after a WAL checkpoint; the ``-wal`` file too
when it is not empty), the audit row that recorded the export (seq + row hash: the head of
the audit chain at the export, anchored outside the database), the digest of the case's
data rows the export was made from (``case_data``, :func:`triage.datadigest.summary`), the
tool version and the report's generation time. ``<out>.manifest.json.sig`` holds the base64
Ed25519 signature of the manifest's exact bytes; the manifest names the public key and its
fingerprint (self-declared: verify against a key you trust with ``--pubkey``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from hashsets.store import sha256_file

MANIFEST_SUFFIX = ".manifest.json"
SIGNATURE_SUFFIX = ".sig"
#: 2: adds ``case_data`` (the data digest); version 1 manifests still verify.
MANIFEST_VERSION = 2
#: A manifest larger than this is not read (a real one is a few kB; a planted file could be
#: anything): 1 MiB, a choice.
MAX_MANIFEST_BYTES = 1 << 20
WAL_SUFFIX = "-wal"
#: Write buffer of a streamed export: large writes, few system calls (1 MiB, a choice).
WRITE_BUFFER = 1 << 20


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + MANIFEST_SUFFIX)


def signature_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + SIGNATURE_SUFFIX)


class BadEntry(ValueError):
    """A manifest entry that names a file outside the manifest's own folder."""


def entry_target(manifest: Path, rel: object) -> Path:
    """The file a manifest entry names, which must lie inside the manifest's own folder:
    a relative POSIX path, no ``..`` or empty component, no NUL, and no symbolic link on
    the way (the resolved path must be the folder's resolved path joined with the entry).
    Raises :class:`BadEntry` naming the reason; the file is never opened before this."""
    if not isinstance(rel, str) or not rel:
        raise BadEntry(f"entry path {rel!r} is not a file name")
    if "\x00" in rel:
        raise BadEntry(f"entry path {rel!r} holds a NUL")
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BadEntry(f"entry path {rel!r} is absolute or leaves the manifest's folder "
                       "(only names inside that folder are accepted)")
    base = manifest.parent.resolve()
    target = base.joinpath(*parts)
    if target.resolve() != target:
        raise BadEntry(f"entry path {rel!r} goes through a symbolic link (to "
                       f"{target.resolve()}); not followed")
    return target


def database_state(db: Path) -> dict[str, Any]:
    """SHA-256 and size of the case database and of its WAL when that holds anything."""
    digest, size = sha256_file(db)
    state: dict[str, Any] = {"path": db.name, "sha256": digest, "size": size, "wal": None}
    wal = db.with_name(db.name + WAL_SUFFIX)
    if wal.exists() and wal.stat().st_size > 0:
        wd, ws = sha256_file(wal)
        state["wal"] = {"path": wal.name, "sha256": wd, "size": ws}
    return state


class HashingWriter:
    """A binary sink that hashes (SHA-256) and counts every byte on its way to the file."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._f.write(data)
        self._sha.update(data)
        self.size += len(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


@contextmanager
def atomic_writer(path: Path, mode: int = 0o600) -> Iterator[HashingWriter]:
    """Stream a file into place: the bytes go to a temp file in the same directory while they
    are hashed; on a clean exit the temp file is fsynced and renamed over ``path`` and the
    directory fsynced (RELIABILITY #23). On any exception (a full disk, an exporter error,
    Ctrl-C) the temp file is removed and ``path`` is left as it was: a crash or a full disk
    never leaves a half-written export. The writer's ``sha256`` and ``size`` describe exactly
    the bytes written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb", buffering=WRITE_BUFFER) as f:
            os.fchmod(f.fileno(), mode)
            yield HashingWriter(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` through :func:`atomic_writer` (temp file, fsync, rename)."""
    with atomic_writer(path, mode) as out:
        out.write(data)


def build(*, tool_version: str, generated_utc: str, case_dir: Path, case_number: str | None,
          export_format: str, options: dict[str, Any], files: list[tuple[Path, str, int]],
          database: dict[str, Any], audit: tuple[int, str] | None,
          signer: dict[str, str] | None, manifest_dir: Path,
          recorded: bool = True, case_data: dict[str, Any] | None = None) -> bytes:
    """The manifest's bytes (sorted keys, stable layout). ``recorded`` False: the case was
    read-only (for example on a DVD), so the export is not in its audit trail, and the
    manifest says so. ``case_data``: the data digest the export was made from."""
    doc: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "tool": "triage", "tool_version": tool_version,
        "generated_utc": generated_utc,
        "case": {"directory": str(case_dir.resolve()), "number": case_number},
        "export": {"format": export_format, "options": options},
        "files": [{"path": os.path.relpath(p.resolve(), manifest_dir.resolve()),
                   "sha256": d, "size": s} for p, d, s in files],
        "case_database": database,
        "case_data": case_data,
        "audit": None if audit is None else {"seq": audit[0], "row_hash": audit[1]},
        "signature": signer,
    }
    if not recorded:
        doc["export_recorded_in_case"] = False
        doc["note"] = ("the case was read-only when this export was made: the export could "
                       "not be recorded in the case's audit trail")
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")
