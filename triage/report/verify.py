"""``triage verify``: is this case, and are its exports, as they were recorded?

Checks, each named in the result:

1. the case database's ``PRAGMA integrity_check`` (through :meth:`Case.open`);
2. the audit hash chain (:meth:`Case.verify_audit_chain`);
3. every manifest (those given, else every ``*.manifest.json`` under the case directory):
   each listed file's SHA-256; the signature when there is one (against ``--pubkey`` when
   given, else against the key the manifest declares, which is reported as unverified
   trust); the export's audit row (still present with the same row hash); and the case
   database's SHA-256. A database that differs from a manifest is a failure unless audit
   rows were appended after the export's own row (the case legitimately changed since, by
   recorded actions: a later export, match or scan), which is reported as a note.

The case is opened read-only (:meth:`Case.open` with ``readonly``): nothing is written or
created, so verification never changes what it checks, and a case on read-only media
verifies. A case another process is changing (a scan or match holds its lock) is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..case import DB_NAME, Case
from ..errors import CaseError, CaseInUseError
from . import manifest as mf
from . import model as md
from .signing import PublicKey, SigningError, decode_signature, load_public

#: Exit code of ``triage verify`` when anything does not match (document in the README).
EXIT_VERIFY_FAILED = 7


@dataclass(frozen=True)
class Check:
    subject: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "ok": self.ok, "detail": self.detail}


def find_manifests(case_dir: Path) -> list[Path]:
    return sorted(p for p in case_dir.rglob("*" + mf.MANIFEST_SUFFIX) if p.is_file())


def verify(case_dir: Path, manifests: list[Path] | None = None,
           pubkey: Path | None = None) -> list[Check]:
    """Run every check; the case is only read. Raises SigningError for an unreadable key."""
    checks: list[Check] = []
    db = case_dir / DB_NAME
    if not db.is_file():
        raise CaseError(f"{case_dir}: no such case directory" if not case_dir.is_dir()
                        else f"{case_dir}: no case database ({DB_NAME}) here")
    trusted: PublicKey | None = load_public(pubkey) if pubkey else None
    case: Case | None = None
    try:
        # Read-only: nothing is written or created, a copy on read-only media verifies,
        # and a case that a scan or match is changing right now is refused (CaseInUseError)
        # rather than compared with its manifests half-way through.
        case = Case.open(case_dir, readonly=True)
        checks.append(Check("case database integrity", True, f"{db}: integrity_check ok"))
    except CaseInUseError:
        raise
    except CaseError as e:
        checks.append(Check("case database integrity", False, str(e)))
    # Hashed while the shared lock is held; a read-only connection changes neither file.
    current = mf.database_state(db)
    try:
        if case is not None:
            problems = case.verify_audit_chain()
            n = case.conn.execute("SELECT count(*) FROM audit").fetchone()[0]
            checks.append(Check("audit chain", not problems,
                                "; ".join(problems) if problems
                                else f"{n} rows chain correctly"))
        for m in (manifests if manifests is not None else find_manifests(case_dir)):
            checks.extend(_manifest(m, case, current, trusted))
    finally:
        if case is not None:
            case.close()
    return checks


def _manifest(path: Path, case: Case | None, current: dict[str, Any],
              trusted: PublicKey | None) -> list[Check]:
    out: list[Check] = []
    name = f"manifest {path}"
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
        files = doc["files"]
        dbrec = doc["case_database"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [Check(name, False, f"unreadable manifest: {e}")]
    out.append(_signature(path, raw, doc.get("signature"), trusted))
    for entry in files:
        target = path.parent / entry["path"]
        subject = f"export {target}"
        if not target.is_file():
            out.append(Check(subject, False, "missing"))
            continue
        digest, size = mf.sha256_file(target)
        ok = digest == entry["sha256"] and size == entry["size"]
        out.append(Check(subject, ok, f"SHA-256 {digest}" if ok else
                         f"SHA-256 {digest} ({size} bytes) does not match the manifest's "
                         f"{entry['sha256']} ({entry['size']} bytes)"))
    audit = doc.get("audit")
    later: list[tuple[int, str]] = []
    if case is not None and audit:
        seq, row_hash = int(audit["seq"]), str(audit["row_hash"])
        have = md.audit_row_hash(case, seq)
        out.append(Check(f"export audit row {seq} ({path.name})", have == row_hash,
                         "present, same row hash" if have == row_hash else
                         f"row hash is {have}, manifest recorded {row_hash}"))
        later = md.audit_actions_after(case, seq)
    same = (current["sha256"] == dbrec.get("sha256") and
            (current.get("wal") or {}).get("sha256") == (dbrec.get("wal") or {}).get("sha256"))
    subject = f"case database {DB_NAME} vs {path.name}"
    if same:
        out.append(Check(subject, True, f"SHA-256 {current['sha256']} as recorded"))
    elif later:
        acts = ", ".join(f"{s} {a}" for s, a in later[:5]) + (" ..." if len(later) > 5 else "")
        out.append(Check(subject, True, f"changed since this export by {len(later)} audited "
                         f"actions ({acts}); not comparable byte for byte"))
    elif current["sha256"] == dbrec.get("sha256"):
        wal_now = (current.get("wal") or {}).get("sha256") or "none"
        wal_then = (dbrec.get("wal") or {}).get("sha256") or "none"
        out.append(Check(subject, False, f"the database file is as recorded, but its "
                         f"write-ahead log ({DB_NAME}-wal) is not: SHA-256 {wal_now}, the "
                         f"manifest's {wal_then}; no audited action explains the change"))
    else:
        out.append(Check(subject, False, f"SHA-256 {current['sha256']} does not match the "
                         f"manifest's {dbrec.get('sha256')} and no audited action explains "
                         "the change"))
    return out


def _signature(path: Path, raw: bytes, signer: Any, trusted: PublicKey | None) -> Check:
    sig_path = mf.signature_path(path)
    subject = f"signature {sig_path}"
    if not sig_path.exists():
        if signer or trusted:
            return Check(subject, False, "missing (the manifest is declared signed)" if signer
                         else "missing (a public key was given)")
        return Check(f"signature of {path.name}", True, "not signed")
    try:
        sig = decode_signature(sig_path.read_bytes())
    except (OSError, ValueError) as e:
        return Check(subject, False, f"unreadable: {e}")
    if trusted is not None:
        key, trust = trusted, "the given public key"
    elif isinstance(signer, dict) and signer.get("public_key"):
        try:
            key = PublicKey(bytes.fromhex(signer["public_key"]))
        except ValueError:
            return Check(subject, False, "the manifest's public key is not hex")
        trust = "the key the manifest declares (pass --pubkey to check against a trusted key)"
    else:
        return Check(subject, False, "no public key to check against")
    if not key.verify(sig, raw):
        return Check(subject, False, f"does NOT verify with {trust} (fingerprint "
                     f"{key.fingerprint})")
    return Check(subject, True, f"valid, key fingerprint {key.fingerprint}, checked with "
                 f"{trust}")


__all__ = ["EXIT_VERIFY_FAILED", "Check", "SigningError", "find_manifests", "verify"]
