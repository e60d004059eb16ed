"""``triage report``: read the case once, render, write atomically, record the export in the
audit chain, write the manifest (and its signature).

Order matters for the chain of custody: the case's data rows are checked against the digests
its audit trail recorded (rows changed outside triage are refused, exit 7, and never
exported), the export is written and hashed, then the audit row ``report.export`` (format,
output path, SHA-256, size, options, arguments, the data digest the export was made from)
is appended, then the WAL is checkpointed into the database and the database is hashed, so
the manifest's database hash covers the export's own audit row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__, datadigest
from ..case import DB_NAME, Case
from ..errors import TriageError
from ..placement import refuse_export_target
from . import Exporter, get
from . import manifest as mf
from . import model as md
from .redact import MetadataPolicy, RedactError
from .signing import PrivateKey, encode_signature, load_private

EXPORTS_DIR = "exports"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ReportError(TriageError, ValueError):
    """Bad report options (unknown format, bad time)."""

    exit_code = 2


class ReportWriteError(TriageError, OSError):
    """An export or its manifest cannot be written (disk full, permissions); nothing
    half-written is left behind (exit code 5, like an unwritable case)."""

    exit_code = 5


@dataclass(frozen=True)
class _Streamed:
    sha256: str
    size: int
    hits: int
    files: int
    case_number: str | None


def _stream(case: Case, exporter: Exporter, opts: dict[str, Any], target: Path, gen: str,
            fingerprint: str | None, policy: MetadataPolicy) -> _Streamed:
    """Write one export from a read snapshot of ``case``, streamed into a temp file beside
    ``target`` and hashed while written, then renamed into place (nothing half-written on
    any failure). ``policy``: what of the metadata the export shows (applied by the read
    layer, so every format leaves out the same)."""
    with md.reading(case, gen, __version__, fingerprint, policy) as model:
        try:
            with mf.atomic_writer(target) as out:
                exporter.write(model, opts, out)
        except ValueError as e:
            raise ReportError(str(e)) from e
        except OSError as e:
            raise ReportWriteError(f"{target}: cannot write: {e.strerror or e}") from e
        return _Streamed(out.sha256, out.size, model.hit_count, model.file_count,
                         model.case.get("number"))


def _write(path: Path, data: bytes) -> None:
    try:
        mf.write_atomic(path, data)
    except OSError as e:
        raise ReportWriteError(f"{path}: cannot write: {e.strerror or e}") from e


@dataclass
class ExportResult:
    format: str
    output: Path
    sha256: str
    size: int
    manifest: Path
    signature: Path | None
    fingerprint: str | None
    generated_utc: str
    hits: int
    files: int
    #: What of the picture and video metadata the export holds (redaction, free text).
    metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "output": str(self.output), "sha256": self.sha256,
                "size": self.size, "manifest": str(self.manifest),
                "signature": str(self.signature) if self.signature else None,
                "fingerprint": self.fingerprint, "generated_utc": self.generated_utc,
                "hits": self.hits, "files": self.files, "metadata": self.metadata}


def generation_time(explicit: str | None = None, env: dict[str, str] | None = None) -> str:
    """The report's generation time: ``explicit`` (ISO-8601), else ``SOURCE_DATE_EPOCH``
    (reproducible builds convention), else now. Always UTC, to the second."""
    environ = os.environ if env is None else env
    if explicit:
        try:
            t = datetime.fromisoformat(explicit.replace("Z", "+00:00"))
        except ValueError as e:
            raise ReportError(f"--generated-at {explicit!r} is not an ISO-8601 time") from e
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return t.astimezone(UTC).strftime(TIME_FORMAT)
    sde = environ.get("SOURCE_DATE_EPOCH")
    if sde:
        try:
            return datetime.fromtimestamp(int(sde), UTC).strftime(TIME_FORMAT)
        except (ValueError, OverflowError, OSError) as e:
            raise ReportError(f"SOURCE_DATE_EPOCH={sde!r} is not a POSIX time") from e
    return datetime.now(UTC).strftime(TIME_FORMAT)


def _writable(case_dir: Path) -> bool:
    """Can this process record anything in the case (``access(2)`` says EROFS for a
    read-only mount even to root, which ignores file modes)?"""
    return os.access(case_dir, os.W_OK) and os.access(case_dir / DB_NAME, os.W_OK)


def _taken(path: Path) -> bool:
    """An export, or the manifest or signature of one, is at this name."""
    m = mf.manifest_path(path)
    return any(os.path.lexists(p) for p in (path, m, mf.signature_path(m)))


def default_output(case_dir: Path, fmt: str, options: dict[str, Any]) -> Path:
    """``CASE_DIR/exports/<stem>.<ext>``, or ``<stem>-2.<ext>``, ``-3`` ... when that name
    (or its manifest) is taken: a default name never overwrites an earlier export."""
    ext = get(fmt).extension
    stem = "report-hits" if fmt == "csv" and options.get("rows") == "hits" else "report"
    if fmt == "csv" and options.get("rows") == "duplicates":
        stem = "report-duplicates"
    if fmt == "vics":
        stem = "vics-unknown" if options.get("media") == "unknown" else "vics-case"
    if fmt.startswith("leads-"):
        stem = "lead-package"
    folder = case_dir / EXPORTS_DIR
    path, n = folder / f"{stem}.{ext}", 1
    while _taken(path):
        n += 1
        path = folder / f"{stem}-{n}.{ext}"
    return path


def _check_out(out: Path, force: bool) -> None:
    """An explicit ``--out`` never replaces an earlier export unless ``force``, and even
    then only an export: a file with a triage manifest beside it (never a manifest or a
    signature itself, never any other file)."""
    if out.name.endswith((mf.MANIFEST_SUFFIX, mf.SIGNATURE_SUFFIX)):
        raise ReportError(f"{out}: that name is for an export's manifest or signature; "
                          "choose another --out")
    if not _taken(out):
        return
    if not force:
        raise ReportError(f"{out}: an export (or its manifest) already exists there; give "
                          "--force to replace it and its manifest, or choose another --out "
                          "(the default name is always new)")
    if os.path.lexists(out) and not os.path.lexists(mf.manifest_path(out)):
        raise ReportError(f"{out}: a file that is not a triage export (no manifest beside "
                          "it) is there; --force only replaces an earlier export. Choose "
                          "another --out")


def _evidence_paths(case: Case) -> list[str]:
    """Every path of the case's evidence: as given, and the resolved target of a link."""
    paths: list[str] = []
    for path_bytes, description in case.conn.execute(
            "SELECT path_bytes, description FROM evidence"):
        paths.append(os.fsdecode(bytes(path_bytes)))
        try:
            resolved = json.loads(description or "{}").get("resolved_path")
        except (ValueError, AttributeError):
            resolved = None
        if isinstance(resolved, str):
            paths.append(resolved)
    return paths


def export(case_dir: Path, fmt: str, out: Path | None = None, *,
           options: dict[str, Any] | None = None, generated_at: str | None = None,
           sign_key: Path | None = None, argv: list[str] | None = None,
           force: bool = False) -> ExportResult:
    """Export one case in one format (see module doc). Raises TriageError subclasses.

    Without ``out`` the export gets a new name under ``CASE_DIR/exports`` (never an
    earlier export's); an ``out`` where an export or its manifest exists is refused
    (:class:`ReportError`, exit 2) unless ``force``: then the export, its manifest and its
    signature are replaced (an old signature is removed when the new export is unsigned)."""
    try:
        exporter = get(fmt)
    except KeyError as e:
        raise ReportError(str(e.args[0])) from None
    opts = dict(options or {})
    try:
        policy = MetadataPolicy.from_options(opts)
    except RedactError as e:
        raise ReportError(str(e)) from None
    # The options as recorded (audit row, manifest): what of the picture and video
    # metadata this export holds, exactly (redacted fields and tag rules, free text).
    opts.pop("redact", None)
    opts.pop("include_free_text", None)
    opts["metadata"] = policy.to_record()
    gen = generation_time(generated_at)
    key: PrivateKey | None = load_private(sign_key) if sign_key else None
    fingerprint = key.public.fingerprint if key else None
    if not (case_dir / DB_NAME).is_file():
        Case.open(case_dir, create=False, readonly=True)  # names what is missing (exit 5)
    readonly = not _writable(case_dir)
    if readonly and out is None:
        raise ReportWriteError(f"{case_dir}: the case is on a read-only location; give "
                               "--out to write the export elsewhere")
    if out is not None:
        _check_out(out, force)
    # A writable case is opened locked (a running scan or match is refused: a report must
    # never show half a run); a read-only one (a copy on a DVD) is only read.
    with Case.open(case_dir, create=False, readonly=readonly) as case:
        # Rows changed outside triage are never exported as the case's (exit 7): the
        # export's audit row would otherwise vouch for them.
        data = case.require_data_intact()
        # Named under the lock: two exports of the case never pick the same new name.
        target = out if out is not None else default_output(case_dir, fmt, opts)
        refuse_export_target(target, case_dir, _evidence_paths(case))
        source = case.upgraded_copy() if case.needs_migration else case
        try:
            done = _stream(source, exporter, opts, target, gen, fingerprint, policy)
        finally:
            if source is not case:
                source.close()
        digest, size = done.sha256, done.size
        if not readonly:
            case.audit(md.EXPORT_ACTION, {
                "format": fmt, "output": str(target.resolve()), "sha256": digest,
                "size": size, "options": opts, "generated_utc": gen,
                "signed_by": fingerprint, "arguments": list(argv or []),
                "result": "written",
                # The data the export was made from (checked above; the case is locked).
                datadigest.DIGEST_KEY: datadigest.record(data.current)})
        head = md.audit_head(case)
        if not readonly:
            md.checkpoint(case)
        number = done.case_number
        # Hashed while the case is still locked (no run can slip in before the manifest);
        # the WAL was just folded in, so closing changes nothing in the database file.
        database = mf.database_state(case.db_path)
    mpath = mf.manifest_path(target)
    signer = None if key is None else {
        "algorithm": "ed25519", "public_key": key.public.raw.hex(),
        "fingerprint": key.public.fingerprint}
    mbytes = mf.build(tool_version=__version__, generated_utc=gen, case_dir=case_dir,
                      case_number=number, export_format=fmt, options=opts,
                      files=[(target, digest, size)], database=database, audit=head,
                      signer=signer, manifest_dir=mpath.parent, recorded=not readonly,
                      case_data=datadigest.summary(data.current))
    _write(mpath, mbytes)
    sig_path = None
    if key is not None:
        sig_path = mf.signature_path(mpath)
        _write(sig_path, encode_signature(key.sign(mbytes)))
    else:
        try:  # --force over a signed export: its signature is of the old manifest
            mf.signature_path(mpath).unlink(missing_ok=True)
        except OSError as e:
            raise ReportWriteError(f"{mf.signature_path(mpath)}: cannot remove the "
                                   f"replaced export's signature: {e.strerror or e}") from e
    return ExportResult(fmt, target, digest, size, mpath, sig_path, fingerprint, gen,
                        hits=done.hits, files=done.files, metadata=policy.to_record())
