"""``triage verify``: is this case, and are its exports, as they were recorded?

Checks, each named in the result:

1. the case database's ``PRAGMA integrity_check`` (through :meth:`Case.open`);
2. the audit hash chain (:meth:`Case.verify_audit_chain`), its append-only triggers;
3. the case's data rows against the digests the chain recorded
   (:func:`triage.datadigest.compare`): a row changed outside triage fails, named by table
   and run; so does a run the runs table calls ended whose end row is missing;
4. every manifest (those given, else every ``*.manifest.json`` under the case directory;
   one that is a symbolic link is not followed): each listed file's SHA-256, the file
   resolved inside the manifest's own folder (an entry with ``..``, an absolute path or a
   symbolic link on the way is a bad manifest and is never read); the signature when there
   is one (against ``--pubkey`` when given, else against the key the manifest declares,
   which is reported as unverified trust); the export's audit row, the chain's head when
   the export was made (still present with the same row hash: rows cut off the end of the
   chain are caught here); and the case database's SHA-256. A database that differs from a
   manifest passes, with a note, only when audit rows were appended after the export's
   own row (the case changed since by recorded actions: a later export, match or scan)
   AND the data rows agree with the digests the chain recorded AND those actions may have
   made the change (:func:`_since_export`: rows of runs ended before the export are
   frozen; a table first digested after the export must start from the exported file);
   the tables whose data changed since the export are named.

The case is opened read-only (:meth:`Case.open` with ``readonly``): nothing is written or
created, so verification never changes what it checks, and a case on read-only media
verifies. A case another process is changing (a scan or match holds its lock) is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import datadigest
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
    """Every ``*.manifest.json`` under the case directory (a manifest that is a symbolic
    link included, so that it is reported, never followed). Folders reached through a
    symbolic link are not searched (``rglob`` does not follow them; a folder that resolves
    outside the case directory is left out in any case)."""
    root = case_dir.resolve()
    return sorted(p for p in case_dir.rglob("*" + mf.MANIFEST_SUFFIX)
                  if (p.is_symlink() or p.is_file()) and p.parent.resolve().is_relative_to(root))


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
    data: datadigest.DataCheck | None = None
    try:
        if case is not None:
            problems = case.verify_audit_chain()
            n = case.conn.execute("SELECT count(*) FROM audit").fetchone()[0]
            checks.append(Check("audit chain", not problems,
                                "; ".join(problems) if problems
                                else f"{n} rows chain correctly"))
            data = case.check_data()
            checks.extend(_data(data))
        for m in (manifests if manifests is not None else find_manifests(case_dir)):
            checks.extend(_manifest(m, case, current, trusted, data))
    finally:
        if case is not None:
            case.close()
    return checks


def _data(data: datadigest.DataCheck) -> list[Check]:
    """The data rows against the chain's digests: one failed check per table (naming the
    runs), else one passed check saying what could not be covered."""
    if not data.ok:
        return [Check(f"case data: {subject}", False, detail)
                for subject, detail in data.failures()]
    notes = []
    if data.unverifiable:
        tables = sorted({d.table for d in data.unverifiable})
        runs = ", ".join(str(r) for r in data.dead_runs)
        notes.append(f"NOT verifiable: {', '.join(tables)} changed by run {runs}, which never "
                     "ended (the process died); recorded as found when the case is next "
                     "opened for writing")
    if data.uncovered:
        why = ("its first run never ended" if data.dead_runs else
               "a case made by a triage without data digests")
        notes.append(f"no digest recorded for {', '.join(data.uncovered)} ({why}): NOT "
                     "verifiable until the end of its next run")
    covered = len(datadigest.TABLE_NAMES) - len(data.uncovered)
    return [Check("case data", True, f"{covered} tables as the audit trail recorded them"
                  + ("; " + "; ".join(notes) if notes else ""))]


def _read_manifest(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The manifest's bytes and document: a regular file, not a link, not huge, JSON with
    the fields verification reads, of the right types (ValueError naming what is wrong)."""
    if path.is_symlink():
        raise ValueError(f"a symbolic link (to {path.resolve()}); not followed")
    with path.open("rb") as f:
        raw = f.read(mf.MAX_MANIFEST_BYTES + 1)
    if len(raw) > mf.MAX_MANIFEST_BYTES:
        raise ValueError(f"larger than {mf.MAX_MANIFEST_BYTES} bytes; not a triage manifest")
    doc = json.loads(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list) or \
            not isinstance(doc.get("case_database"), dict):
        raise ValueError("not a triage manifest (no 'files' list or 'case_database')")
    for entry in doc["files"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("size"), int)):
            raise ValueError(f"file entry {entry!r} lacks a sha256 or size")
    audit = doc.get("audit")
    if audit is not None and not (isinstance(audit, dict) and isinstance(audit.get("seq"), int)
                                  and isinstance(audit.get("row_hash"), str)):
        raise ValueError("its 'audit' anchor is not a seq and row hash")
    return raw, doc


def _manifest(path: Path, case: Case | None, current: dict[str, Any],
              trusted: PublicKey | None, data: datadigest.DataCheck | None) -> list[Check]:
    out: list[Check] = []
    name = f"manifest {path}"
    try:
        raw, doc = _read_manifest(path)
        targets = [mf.entry_target(path, e.get("path")) for e in doc["files"]]
    except mf.BadEntry as e:
        return [Check(name, False, f"bad manifest, not used: {e}")]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [Check(name, False, f"unreadable manifest: {e}")]
    files, dbrec = doc["files"], doc["case_database"]
    out.append(_signature(path, raw, doc.get("signature"), trusted))
    for entry, target in zip(files, targets, strict=True):
        subject = f"export {target}"
        if target.is_symlink() or not target.is_file():
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
        seq, row_hash = audit["seq"], audit["row_hash"]
        have = md.audit_row_hash(case, seq)
        head = md.audit_head(case)
        if have == row_hash:
            detail = "present, same row hash: the chain still reaches this export's head"
        elif have is None:
            detail = (f"missing: the audit trail ends at row {head[0] if head else 0}, "
                      f"this export was recorded as row {seq}: rows were removed from the "
                      "end of the audit trail")
        else:
            detail = f"row hash is {have}, manifest recorded {row_hash}"
        out.append(Check(f"export audit row {seq} ({path.name})", have == row_hash, detail))
        later = md.audit_actions_after(case, seq)
    same = (current["sha256"] == dbrec.get("sha256") and
            (current.get("wal") or {}).get("sha256") == (dbrec.get("wal") or {}).get("sha256"))
    subject = f"case database {DB_NAME} vs {path.name}"
    changed = _changed_tables(doc.get("case_data"), data)
    unexplained: list[str] = []
    notes: list[str] = []
    if case is not None and data is not None and audit and later and not same:
        unexplained, notes = _since_export(case, audit["seq"], dbrec, later, data.current)
    if same:
        out.append(Check(subject, True, f"SHA-256 {current['sha256']} as recorded"))
    elif data is not None and not data.ok:
        out.append(Check(subject, False, f"SHA-256 {current['sha256']} does not match the "
                         f"manifest's {dbrec.get('sha256')} and no audited action explains "
                         "the change: the data rows do not match the digests the audit trail "
                         f"recorded (see 'case data': "
                         f"{', '.join(s for s, _ in data.failures())})"))
    elif later and unexplained:
        out.append(Check(subject, False, f"SHA-256 {current['sha256']} does not match the "
                         f"manifest's {dbrec.get('sha256')}, and the audited actions since "
                         f"the export do not explain the change: {'; '.join(unexplained)}"))
    elif later:
        acts = ", ".join(f"{s} {a}" for s, a in later[:5]) + (" ..." if len(later) > 5 else "")
        since = ("" if changed is None else
                 f"; data changed since the export: {', '.join(changed)}" if changed else
                 "; the data rows are as at the export")
        out.append(Check(subject, True, f"changed since this export by {len(later)} audited "
                         f"actions ({acts}), and its data rows agree with the digests the "
                         f"audit trail recorded{since}"
                         + "".join(f"; {n}" for n in notes)))
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


def _since_export(case: Case, seq: int, dbrec: Any, later: list[tuple[int, str]],
                  now: datadigest.Tables) -> tuple[list[str], list[str]]:
    """What the audited actions after the export (audit row ``seq``) cannot explain, and
    notes on what cannot be verified:

    * rows of runs that had ended before the export are frozen: each table's partitions of
      those runs must be as the export's own audit row recorded them, unless a later action
      may change them (:func:`datadigest.tables_of_ended_runs_changed_by`: a migration, a
      scan's resume or retry, an image verification);
    * a table with no digest at the export (a case made by a triage without data digests)
      is first digested by a later row; that row's opening recorded the database file it
      found (:data:`datadigest.BASELINE_KEY`): when nothing was audited between the export
      and that opening, the file must be the one the manifest recorded.
    """
    failures: list[str] = []
    notes: list[str] = []
    row = case.conn.execute("SELECT details FROM audit WHERE seq=? AND json_valid(details)",
                            (seq,)).fetchone()
    at_export = json.loads(row[0]).get(datadigest.DIGEST_KEY) if row else None
    tables = at_export.get("tables") if isinstance(at_export, dict) and \
        at_export.get("version") == datadigest.DIGEST_VERSION else None
    if isinstance(tables, dict):
        ended = {int(r) for (r,) in case.conn.execute(
            "SELECT json_extract(details, '$.run') FROM audit WHERE seq<=? AND "
            "json_valid(details) AND json_type(details, '$.run') = 'integer' AND "
            "(action LIKE '%.end' OR action = 'run.interrupted')", (seq,))}
        allowed: set[str] = set()
        for _, action in later:
            allowed |= datadigest.tables_of_ended_runs_changed_by(action)
        for table in datadigest.TABLE_NAMES:
            if table in allowed or not isinstance(tables.get(table), dict):
                continue
            then = datadigest.run_partitions(table, tables[table], ended)
            cur = datadigest.run_partitions(table, now.get(table, {}), ended)
            runs = sorted((k for k in then if then[k] != cur[k]), key=int)
            if runs:
                failures.append(f"table {table} (run {', '.join(runs)}): rows of runs that "
                                "had ended before the export differ from the digest the "
                                f"export's audit row {seq} recorded, and no action since "
                                "may change them")
    firsts = datadigest.baselines(case.conn)
    want_wal = (dbrec.get("wal") or {}).get("sha256") if isinstance(dbrec, dict) else None
    late = sorted(t for t, (first, _, _) in firsts.items() if first > seq)
    by_row: dict[int, list[str]] = {}
    for t in late:
        by_row.setdefault(firsts[t][0], []).append(t)
    for first, names in sorted(by_row.items()):
        action, base = firsts[names[0]][1], firsts[names[0]][2]
        what = f"{', '.join(names)} had no data digest at this export; the first (audit row " \
               f"{first}, {action})"
        if base is None or base.get("audit_head") != seq:
            notes.append(f"NOT verifiable: {what} was recorded after other audited actions, "
                         "so the rows as exported cannot be told from later ones")
        elif base.get("sha256") != (dbrec.get("sha256") if isinstance(dbrec, dict) else None) \
                or (base.get("wal") or {}).get("sha256") != want_wal:
            failures.append(f"{what} was recorded of a database file (SHA-256 "
                            f"{base.get('sha256')}) that is not the one this export "
                            "recorded, with nothing audited in between: the rows were "
                            "changed outside triage before that digest")
    return failures, notes


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


def _changed_tables(recorded: Any, data: datadigest.DataCheck | None) -> list[str] | None:
    """Tables whose data differ from the manifest's ``case_data`` (None: not comparable, an
    older manifest or no readable case)."""
    if data is None or not isinstance(recorded, dict) or \
            recorded.get("version") != datadigest.DIGEST_VERSION or \
            not isinstance(recorded.get("tables"), dict):
        return None
    now = datadigest.summary(data.current)["tables"]
    return [t for t in datadigest.TABLE_NAMES if recorded["tables"].get(t) != now.get(t)]


__all__ = ["EXIT_VERIFY_FAILED", "Check", "SigningError", "find_manifests", "verify"]
