"""The human-readable report as neutral blocks, shared by the HTML and PDF exporters so that
both show exactly the same content (sections, sentences, tables, in the same order).

All values are plain text here; each renderer escapes for its own medium. Nothing here is
markup, and no value is ever trusted (file names, set names, notes come from evidence or
third parties).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .model import File, Hit, ReportModel

TITLE = "Forensic triage report"
GENERATED_LABEL = "Generated (UTC; the only value that differs between exports of the same case)"
NO_IMAGES = ("This report contains no pictures, thumbnails or previews: only paths, "
             "hashes and metadata.")


@dataclass(frozen=True)
class Para:
    text: str
    cls: str = ""


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: Indices of columns holding hashes or identifiers (monospace, break anywhere).
    mono: frozenset[int] = frozenset()
    kv: bool = False  # a two-column field/value table without a header row


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Para | Table, ...] = field(default_factory=tuple)


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return str(v)
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def explain(f: File, h: Hit) -> str:
    """One sentence that explains a hit (used verbatim by every human-readable format)."""
    kind = "KNOWN-file set (known, not 'good')" if h.known else "set"
    cat = ""
    if not h.known:
        label = h.category if h.category is not None else "(none)"
        raw = h.category_raw if h.category_raw is not None else "(none)"
        cat = f"; category {label!r} (raw value {raw!r})"
    if h.match_type == "exact":
        how = f"exact {h.algorithm} match"
    else:
        how = (f"near {h.algorithm} match: Hamming distance {h.distance} <= threshold "
               f"{h.threshold}")
    caution = f"; CAUTION: {f.caution}" if f.caution else ""
    return f"{how} in {kind} {h.set_label}{cat}{caution}"


def build(m: ReportModel) -> tuple[Section, ...]:
    """The report's sections, in order."""
    return (
        _case(m), _evidence(m), _method(m), _sets(m), _summary(m), _hits(m),
        _unprocessed(m), _audit(m),
    )


def _case(m: ReportModel) -> Section:
    c = m.case
    rows = (("Case number", _s(c.get("number"))), ("Examiner", _s(c.get("examiner"))),
            ("Agency", _s(c.get("agency"))), ("Notes", _s(c.get("notes"))),
            ("Case created (UTC)", _s(c.get("created_utc"))),
            ("Report tool", f"triage {m.tool_version}"),
            ("Signing key fingerprint (SHA-256 of the Ed25519 public key)",
             m.signer_fingerprint or "not signed"))
    return Section("case", "Case and examiner", (Table(("field", "value"), rows, kv=True),
                                                 Para(NO_IMAGES, "note")))


def _evidence(m: ReportModel) -> Section:
    blocks: list[Para | Table] = []
    for e in m.evidence:
        rows = (("Evidence id", str(e.id)), ("Path", e.path), ("Path bytes (hex)", e.path_hex),
                ("Source type", e.source_type), ("Size (bytes)", _s(e.size)),
                ("Stored image MD5", _s(e.stored_md5) or "none stored"),
                ("Stored image SHA-1", _s(e.stored_sha1) or "none stored"),
                ("Computed image MD5", _s(e.computed_md5) or "not computed"),
                ("Computed image SHA-1", _s(e.computed_sha1) or "not computed"),
                ("Description", _s(e.description)))
        blocks.append(Table(("field", "value"), rows, mono=frozenset({1}), kv=True))
    if not blocks:
        blocks.append(Para("No evidence recorded."))
    return Section("evidence", "Evidence", tuple(blocks))


def _method(m: ReportModel) -> Section:
    blocks: list[Para | Table] = [
        Para(f"Hits shown are those of match run {m.match_run_id}, the last completed "
             "match over a finished scan." if m.match_run_id
             else "No match run recorded: no hits to show."),
        *([Para(f"Note: {m.match_run_note}.")] if m.match_run_note else []),
        Table(("threshold", "value"), tuple((k, _s(v)) for k, v in sorted(m.thresholds.items())),
              kv=True) if m.thresholds else Para("No thresholds recorded."),
        Table(("algorithm", "preprocessing", "values"),
              tuple((a, p or "(none)", str(n)) for a, p, n in m.preprocessing)),
    ]
    run_rows = []
    for r in m.runs:
        run_rows.append((str(r.id), r.command, r.status, r.started_utc, _s(r.ended_utc),
                         f"{r.user}@{r.host}", r.tool_version, _s(r.arguments),
                         _s(r.options), _s(r.versions)))
    blocks.append(Table(("run", "command", "status", "started (UTC)", "ended (UTC)",
                         "user@host", "tool version", "arguments", "options",
                         "tool and library versions"), tuple(run_rows)))
    return Section("method", "Method: algorithms, thresholds, preprocessing, versions",
                   tuple(blocks))


def _sets(m: ReportModel) -> Section:
    rows = tuple((s.name, _s(s.version), s.set_id, s.format, s.source_sha256,
                  str(s.entry_count), "known" if s.known else "", str(s.hits), str(s.files),
                  _s(s.category_map)) for s in m.hash_sets)
    return Section("hashsets", "Hash sets used", (
        Table(("name", "version", "set id", "format", "source SHA-256", "entries", "kind",
               "hits", "files hit", "category mapping"), rows, mono=frozenset({2, 4})),
    ) if rows else (Para("No hash sets recorded."),))


def _summary(m: ReportModel) -> Section:
    counts = ", ".join(f"{k}: {v}" for k, v in m.status_counts.items())
    blocks: list[Para | Table] = [
        Para(f"Entries by status: {counts or 'none'}."),
        Para(f"Files with hits: {m.files_matched}. Files in known-file sets: {m.files_known} "
             "(NSRL-style: known, not 'good'; shown, never hidden)."),
        Table(("category", "files"), tuple((k, str(v)) for k, v in m.by_category.items())),
        Table(("set", "files", "exact", "near"),
              tuple((s.label, str(s.files), str(s.exact), str(s.near)) for s in m.by_set)),
        Para("Known-file sets (known, not 'good'):"),
        Table(("known set", "files", "exact", "near"),
              tuple((s.label, str(s.files), str(s.exact), str(s.near))
                    for s in m.known_by_set)),
    ]
    return Section("summary", "Summary by category and set", tuple(blocks))


def _hits(m: ReportModel) -> Section:
    rows = []
    for n, (f, h) in enumerate(m.hits(), 1):
        if h.known:
            cat = "known"
        else:
            raw = h.category_raw if h.category_raw is not None else "(none)"
            cat = f"{h.category or '(none)'} (raw: {raw})"
        rows.append((str(n), f.display_path, h.set_label, cat, h.match_type, h.algorithm,
                     str(h.distance), _s(h.threshold), f.caution or "",
                     f"file {h.file_value} / known {h.known_value}", explain(f, h)))
    return Section("hits", "Every hit, explained", (
        Table(("#", "file", "set (version, id)", "category (raw)", "match", "algorithm",
               "distance", "threshold", "deleted / caution", "values", "explanation"),
              tuple(rows), mono=frozenset({9})),
    ) if rows else (Para("No hits."),))


def _unprocessed(m: ReportModel) -> Section:
    blocks: list[Para | Table] = []
    rows = tuple((f.display_path, f.status, _s(f.status_stage), _s(f.status_reason))
                 for f in m.unprocessed())
    blocks.append(Table(("file", "status", "stage", "reason"), rows) if rows
                  else Para("Every entry was processed."))
    if m.skipped_reasons:
        blocks.append(Para("Skipped entries (listed, never opened), by reason:"))
        blocks.append(Table(("reason", "entries"),
                            tuple((r, str(n)) for r, n in m.skipped_reasons)))
    errors = tuple((_s(e.display_path), _s(e.run_id), e.stage, e.error_class, e.message,
                    e.time_utc) for e in m.errors())
    if errors:
        blocks.append(Para("Every recorded error and warning:"))
        blocks.append(Table(("file", "run", "stage", "class", "message", "time (UTC)"),
                            errors))
    return Section("unprocessed", "Files that could not be processed, and why", tuple(blocks))


def _audit(m: ReportModel) -> Section:
    state = ("intact" if not m.audit_problems
             else "BROKEN: " + "; ".join(m.audit_problems))
    blocks: list[Para | Table] = [
        Para(f"Audit chain: {state}. Export events (report.export) are recorded in the chain "
             "after each export and are not listed here, so that repeated exports of the "
             "same case are identical; 'triage verify' checks them."),
        Table(("seq", "time (UTC)", "user@host", "tool", "action", "details", "row hash"),
              tuple((str(a.seq), a.time_utc, f"{a.user}@{a.host}", a.tool_version, a.action,
                     a.details, a.row_hash) for a in m.audit), mono=frozenset({6})),
    ]
    return Section("audit", "Audit trail", tuple(blocks))
