"""The human-readable report as neutral blocks, shared by the HTML and PDF exporters so that
both show exactly the same content (sections, sentences, tables, in the same order).

All values are plain text here; each renderer escapes for its own medium. Nothing here is
markup, and no value is ever trusted (file names, set names, notes come from evidence or
third parties).

Layout contract (issue 12, "reports designed for the reader"): the report opens with an
executive summary, then the hits, then coverage (what was not processed and why), then the
appendices (method, hash sets, evidence details, full hash values, chain of custody,
duplicate groups).
Structured values (evidence descriptions, run arguments, audit details) are shown as
key/value rows, never as JSON. Every table declares its columns' widths (percent of the
table) so that it fits an A4 portrait page (:data:`PORTRAIT_MAX_COLUMNS` columns at most)
or asks for a landscape page; hashes in narrow columns are shortened (:class:`Short`: the
full value is the HTML ``title`` and is printed in full in an appendix and in the CSV).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hashsets.algorithms import error_rates
from hashsets.formats.categories import CAID, DHS, ICSE, PROJECTVIC

from ..model import (
    OUTCOME_CLASSES,
    OUTCOME_COVERAGE_GAP,
    OUTCOME_DONE,
    OUTCOME_ERROR,
    OUTCOME_NOT_APPLICABLE,
    OUTCOME_OF_STATUS,
    OUTCOME_PENDING,
    outcome_counts,
)
from .model import NO_CATEGORY, Evidence, File, Hit, ReportModel
from .rows import Metadata

TITLE = "Forensic triage report"
GENERATED_LABEL = "Generated (UTC; the only value that differs between exports of the same case)"
NO_IMAGES = ("This report contains no pictures, thumbnails or previews: only paths, "
             "hashes and metadata.")
#: A portrait A4 table holds at most this many columns (wider tables go landscape).
PORTRAIT_MAX_COLUMNS = 8
#: Characters of a hash shown where it is shortened (the full value is in an appendix).
SHORT_HASH = 12
#: What a hit from a set without categories shows instead of a category.
NO_CATEGORY_TEXT = "no category (the set has none)"

#: Category labels that denote illegal material, most severe scheme first, listed before all
#: other categories (FORMATS.md "Categories": DHS/Project VIC 1 "child exploitation
#: (illegal)"; UK CAID grades A, B and C (indecent images); INTERPOL ICSE "baseline", the
#: list of the most severe material). Labels come from hashsets/formats/categories.py.
ILLEGAL_CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(
    (DHS["1"], CAID["A"], CAID["B"], CAID["C"], ICSE["baseline"])))

#: Outcome classes as a reader sees them (triage.model.OUTCOME_CLASSES).
OUTCOME_LABELS: Mapping[str, str] = {
    OUTCOME_DONE: "processed",
    OUTCOME_NOT_APPLICABLE: "not applicable by design (listed, never read)",
    OUTCOME_COVERAGE_GAP: "coverage gap (hashed, not fully examined)",
    OUTCOME_ERROR: "error (read or decode failure, quarantine)",
    OUTCOME_PENDING: "not reached (scan stopped before it)",
}


@dataclass(frozen=True)
class Para:
    text: str
    cls: str = ""


@dataclass(frozen=True)
class Short:
    """A value shown shortened (``text``) whose ``full`` value the HTML puts in a
    ``title`` (hover) and an appendix prints in full."""

    text: str
    full: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Lines:
    """A cell of several lines (each line one value; a newline inside a value is data and
    is shown escaped, never as a line break)."""

    parts: tuple[str, ...]

    def __str__(self) -> str:
        return "\n".join(self.parts)


def lines(*parts: str) -> Lines:
    return Lines(tuple(p for p in parts if p))


Cell = str | Short | Lines

#: Column kinds: ``text`` wraps at spaces (long words break only when they must), ``path``
#: may break anywhere, ``mono`` is a hash or identifier (monospace, breaks anywhere),
#: ``nowrap`` is a date or short token kept on one line, ``num`` a right-aligned number.
KINDS = ("text", "path", "mono", "nowrap", "num")


@dataclass(frozen=True)
class Col:
    header: str
    width: int  # percent of the table's width
    kind: str = "text"


@dataclass(frozen=True)
class Table:
    cols: tuple[Col, ...]
    rows: tuple[tuple[Cell, ...], ...]
    kv: bool = False  # a two-column field/value table without a header row
    landscape: bool = False  # needs a landscape page
    caption: str = ""
    name: str = ""  # a stable identifier (HTML ``id``), for tables readers and tests find

    def __post_init__(self) -> None:
        if sum(c.width for c in self.cols) != 100:
            raise ValueError(f"column widths must add up to 100: {self.cols}")
        if any(c.kind not in KINDS for c in self.cols):
            raise ValueError(f"unknown column kind in {self.cols}")
        if len(self.cols) > PORTRAIT_MAX_COLUMNS and not self.landscape:
            raise ValueError(f"{len(self.cols)} columns do not fit A4 portrait")

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(c.header for c in self.cols)


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Para | Table, ...] = field(default_factory=tuple)
    appendix: bool = False  # starts on a new page
    landscape: bool = False  # an appendix whose page is landscape


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return str(v)
    return "; ".join(f"{k}: {x}" if k else x for k, x in flatten(v))


def flatten(v: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A structured value (JSON-like) as ``(key path, text)`` rows: nested keys joined with
    " / ", list items numbered from 1, lists of plain values joined with ", ". Never JSON."""
    if isinstance(v, Mapping):
        if not v:
            return [(prefix, "(empty)")] if prefix else []
        out: list[tuple[str, str]] = []
        for k in sorted(v, key=str):
            out.extend(flatten(v[k], f"{prefix} / {k}" if prefix else str(k)))
        return out
    if isinstance(v, list | tuple):
        if not v:
            return [(prefix, "(none)")]
        if all(not isinstance(x, Mapping | list | tuple) for x in v):
            return [(prefix, ", ".join(_s(x) for x in v))]
        out = []
        for i, x in enumerate(v, 1):
            out.extend(flatten(x, f"{prefix} {i}" if prefix else str(i)))
        return out
    return [(prefix, _s(v) if v is not None else "(null)")]


def kv_table(rows: Iterable[tuple[str, Cell]], key_width: int = 30,
             mono: bool = False) -> Table:
    return Table((Col("field", key_width), Col("value", 100 - key_width,
                                                "mono" if mono else "text")),
                 tuple(rows), kv=True)


def short(value: str | None, n: int = SHORT_HASH) -> Cell:
    """A hash shortened to ``n`` characters and an ellipsis (full value kept for hover)."""
    if not value:
        return ""
    return Short(value[:n] + "\u2026", value) if len(value) > n + 1 else value


def category_text(h: Hit) -> str:
    """The category a reader sees: the label, with the source's raw value when it differs;
    a set without categories says so (never "(none)")."""
    if h.known:
        return "known file (known, not 'good')"
    if h.category_raw is None and h.category in (None, "", NO_CATEGORY):
        return NO_CATEGORY_TEXT
    label = h.category or NO_CATEGORY_TEXT
    if h.category_raw is not None and h.category_raw != label:
        return f"{label} (raw value {h.category_raw})"
    return label


def explain(f: File, h: Hit) -> str:
    """One sentence that explains a hit (used verbatim by every human-readable format)."""
    kind = "KNOWN-file set (known, not 'good')" if h.known else "set"
    cat = ""
    if not h.known:
        if h.category_raw is None and h.category in (None, "", NO_CATEGORY):
            cat = "; the set has no categories"
        else:
            label = h.category if h.category is not None else NO_CATEGORY_TEXT
            raw = f" (raw value {h.category_raw!r})" if h.category_raw is not None else ""
            cat = f"; category {label!r}{raw}"
    if h.match_type == "exact":
        how = f"exact {h.algorithm} match"
    else:
        how = f"near {h.algorithm} match"
        if h.variant and h.variant != "original":
            from hashsets.algorithms.variants import describe

            how += f" of {describe(h.variant)} (variant {h.variant})"
        relation = "<=" if h.threshold is None or h.distance <= h.threshold else ">"
        how += f": Hamming distance {h.distance} {relation} threshold {h.threshold}"
        if h.quality is not None:
            how += f", quality {h.quality}"
        if h.decode == "confirmed":
            how += ", on the full decode (the draft decode was a candidate)"
        elif h.decode == "draft":
            how += (", on a reduced (draft) decode that could not be checked at full size "
                    "(up to 16 bits off)")
    grade = f"; grade: {h.grade_label}" if not h.known else ""
    same = (f"; {h.files_same_value} files of the case match this value"
            if (h.files_same_value or 0) > 1 else "")
    caution = f"; CAUTION: {f.caution}" if f.caution else ""
    # Video hits (issue 15): their text holds the percentages, time ranges and timestamps.
    video = f"; {h.entry_ref}" if h.algorithm == "vpdq" and h.entry_ref else ""
    return f"{how} in {kind} {h.set_label}{cat}{grade}{same}{video}{caution}"


#: Known labels after the illegal ones, most relevant first (DHS/Project VIC 2, 3, ICSE
#: non-baseline); labels not listed here (custom mappings, ``unmapped:...``) come next, then
#: :data:`LEAST_RELEVANT`, then hits without a category.
RELEVANT_CATEGORIES: tuple[str, ...] = (DHS["2"], DHS["3"], ICSE["non-baseline"])
#: Exemplar, uncategorized and non-pertinent labels (FORMATS.md "Categories").
LEAST_RELEVANT: tuple[str, ...] = tuple(dict.fromkeys(
    (DHS["4"], DHS["0"], PROJECTVIC["0"], DHS["5"])))


def category_rank(label: str) -> tuple[int, int, str]:
    """Sort key: illegal categories first (in :data:`ILLEGAL_CATEGORIES` order), then
    :data:`RELEVANT_CATEGORIES`, other labels by name, :data:`LEAST_RELEVANT`, and last the
    hits without a category."""
    for tier, labels in enumerate((ILLEGAL_CATEGORIES, RELEVANT_CATEGORIES)):
        if label in labels:
            return (tier, labels.index(label), label)
    if label in LEAST_RELEVANT:
        return (3, LEAST_RELEVANT.index(label), label)
    if label == NO_CATEGORY:
        return (4, 0, label)
    return (2, 0, label)


def illegal_files(m: ReportModel) -> int:
    """Files counted under illegal categories (a file in two such categories counts in
    each; the per-category table shows the split)."""
    return sum(n for k, n in m.by_category.items() if k in ILLEGAL_CATEGORIES)


# -- evidence integrity ---------------------------------------------------------------
@dataclass(frozen=True)
class Integrity:
    stored: dict[str, str]  # algorithm -> value stored in the image (E01 acquisition)
    computed: dict[str, str]  # algorithm -> value triage computed over the media
    verdict: str
    ok: bool | None  # True verified, False mismatch, None nothing to compare


def integrity(e: Evidence) -> Integrity:
    """The acquisition hashes stored in the evidence (the evidence row's columns, else the
    description's ``stored_hashes``), the hashes computed over the media, and the verdict."""
    desc = e.description if isinstance(e.description, Mapping) else {}
    found = desc.get("stored_hashes")
    fallback: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    stored = {a: str(v).lower() for a, v in (("md5", e.stored_md5 or fallback.get("md5")),
                                            ("sha1", e.stored_sha1 or fallback.get("sha1")))
              if v}
    computed = {a: str(v).lower() for a, v in (("md5", e.computed_md5),
                                              ("sha1", e.computed_sha1)) if v}
    both = sorted(set(stored) & set(computed))
    names = {"md5": "MD5", "sha1": "SHA-1"}
    if both:
        bad = [names[a] for a in both if stored[a] != computed[a]]
        if bad:
            return Integrity(stored, computed, "MISMATCH: computed " + " and ".join(bad)
                             + " not equal to the hash stored at acquisition", False)
        return Integrity(stored, computed, "verified: the computed "
                         + " and ".join(names[a] for a in both)
                         + " equal the hash stored at acquisition", True)
    if stored:
        return Integrity(stored, computed, "not verified: acquisition hash stored in the "
                         "image, not yet compared (triage verify-image --case)", None)
    if computed:
        return Integrity(stored, computed, "no acquisition hash stored in the evidence; "
                         "computed hash recorded", None)
    return Integrity(stored, computed, "no acquisition hash stored in the evidence "
                     "(raw image or folder): nothing to verify against", None)


def _time(v: str | None) -> Cell:
    """A UTC timestamp as two unbreakable lines, date and time (full precision kept)."""
    if not v:
        return ""
    date, sep, rest = v.partition("T")
    return Lines((date, rest)) if sep else v


def _set(h: Hit) -> Cell:
    """A hit's set for a narrow column: name and version, then the set id shortened (the
    full id is in appendix B and in the hit's explanation)."""
    name = f"{h.set_name} {h.set_version}" if h.set_version else h.set_name
    return lines(name, f"id {h.set_id[:8]}\u2026" if len(h.set_id) > 9 else f"id {h.set_id}")


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


# -- the document -----------------------------------------------------------------------
def build(m: ReportModel) -> tuple[Section, ...]:
    """The report's sections, in order."""
    from .leads import section as leads_section  # issue 16 (its own module)

    carved = (_carved(m),) if m.carved_count or m.fragment_count else ()
    leads = tuple(s for s in (leads_section(m),) if s is not None)
    return (
        _summary(m), _hits(m), _coverage(m), *carved, *leads,
        _method(m), _sets(m), _evidence(m), _hit_values(m), _audit(m), _duplicates(m),
        _metadata(m),
    )


def _carved(m: ReportModel) -> Section:
    """Carved items and fragments of known files (issue 17), with the caution that carved
    content may be incomplete."""
    from ..carved import CAUTION

    blocks: list[Para | Table] = [Para(CAUTION)]
    rows = []
    for r in m.carved():
        where = f"{r['area']}" + (f" of {r['slack_of']}" if r["slack_of"] else "")
        where += f", image bytes {r['image_offset']}+{r['length']}"
        if r["first_block"] is not None:
            where += f", blocks {r['first_block']}-{r['last_block']}"
        state = "partial carve" if r["partial"] else r["status"]
        same = "-"
        if r["same_as"]:
            same = _s(r["same_as"]) + (" (its own data: found again)" if r["same_location"]
                                       else " (another copy, elsewhere)")
        rows.append((r["display_path"], where, r["format"], state, short(r["md5"]), same))
    if rows:
        blocks.append(Table(
            (Col("item", 22, "path"), Col("where", 30), Col("format", 8),
             Col("outcome", 12), Col("MD5", 12, "mono"), Col("same content as", 16, "path")),
            tuple(rows), caption="Carved items (\"same content as\": a listed file holds exactly "
            "these bytes; \"its own data\": carved where that file's data lies, found "
            "again, not a second discovery; \"another copy\": the same content at "
            "another place)", name="carved"))
    frows = []
    for r in m.fragments():
        share = r["found_bytes"] / r["indexed_bytes"] if r["indexed_bytes"] else 0.0
        frows.append((f"fragment of {r['known_path']}", r["set_name"],
                      f"{share:.1%} ({r['found_bytes']} of {r['indexed_bytes']} bytes)",
                      f"{r['found_in']}, from image byte {r['first_offset']}"))
    if frows:
        blocks.append(Table(
            (Col("known file", 28, "path"), Col("block set", 16), Col("share found", 22),
             Col("where", 34, "path")), tuple(frows),
            caption="Fragments of known files found by their 4 KiB block hashes",
            name="fragments"))
    return Section("carved", "Carved items and fragments of known files", tuple(blocks))


def _summary(m: ReportModel) -> Section:
    c = m.case
    blocks: list[Para | Table] = [kv_table((
        ("Case number", _s(c.get("number"))), ("Examiner", _s(c.get("examiner"))),
        ("Agency", _s(c.get("agency"))), ("Notes", _s(c.get("notes"))),
        ("Case created (UTC)", _s(c.get("created_utc"))),
        ("Report tool", f"triage {m.tool_version}"),
        ("Signing key (SHA-256 of the Ed25519 public key)",
         m.signer_fingerprint or "not signed"),
    ), key_width=32)]

    ev_rows = []
    for e in m.evidence:
        it = integrity(e)
        names = {"md5": "MD5", "sha1": "SHA-1"}
        ev_rows.append((str(e.id), e.path, ", ".join(x for x in (e.source_type, _size(e.size))
                                                     if x),
                        lines(it.verdict,
                              *(f"stored {names[a]} {it.stored[a]}" for a in sorted(it.stored)),
                              *(f"computed {names[a]} {it.computed[a]}"
                                for a in sorted(it.computed)))))
    if ev_rows:
        blocks.append(Table((Col("#", 4, "num"), Col("evidence", 30, "path"),
                             Col("type, size", 18), Col("integrity", 48, "path")),
                            tuple(ev_rows), caption="Evidence and its integrity"))
    else:
        blocks.append(Para("No evidence recorded."))

    outcomes = outcome_counts(m.status_counts)
    blocks.append(Table(
        (Col("outcome", 70), Col("entries", 30, "num")),
        (*((OUTCOME_LABELS[k], str(outcomes[k])) for k in OUTCOME_CLASSES
           if outcomes[k] or k != OUTCOME_PENDING), ("total", str(m.file_count))),
        caption="Entries by outcome"))

    illegal = illegal_files(m)
    blocks.append(Para(
        f"Files in illegal categories: {illegal}. Files with hits in case sets: "
        f"{m.files_matched} ({m.hit_count} hits in all, known-file sets included). Files in "
        f"known-file sets: {m.files_known} (known, not 'good'; shown, never hidden).",
        "key"))
    if m.by_category:
        cats = sorted(m.by_category.items(), key=lambda kv: category_rank(kv[0]))
        blocks.append(Table(
            (Col("category", 62), Col("illegal", 14), Col("files", 24, "num")),
            tuple((NO_CATEGORY_TEXT if k == NO_CATEGORY else k,
                   "ILLEGAL" if k in ILLEGAL_CATEGORIES else "", str(n)) for k, n in cats),
            caption="Files with hits by category (illegal categories first)"))
    deleted = (f"Hits on deleted or unallocated files: {m.hits_deleted} file(s)"
               + (f", of which {m.hits_overwritten} may have overwritten content (not a "
                  "confident identification)" if m.hits_overwritten else "") + ".")
    blocks.append(Para(deleted))
    blocks.append(Para(_duplicates_sentence(m)))
    blocks.append(Para(_coverage_sentence(outcomes)))
    blocks.append(Para(NO_IMAGES, "note"))
    return Section("summary", "Executive summary", tuple(blocks))


def _coverage_sentence(outcomes: Mapping[str, int], where: str = "the Coverage section") -> str:
    gaps = outcomes[OUTCOME_COVERAGE_GAP]
    errors = outcomes[OUTCOME_ERROR]
    pending = outcomes[OUTCOME_PENDING]
    if gaps or errors or pending:
        parts = [f"{n} {what}" for n, what in ((gaps, "coverage gap(s)"),
                                               (errors, "error(s)"),
                                               (pending, "not reached")) if n]
        return ("Coverage: NOT every entry was examined: " + ", ".join(parts)
                + f". {where[0].upper()}{where[1:]} lists each by reason.")
    if outcomes[OUTCOME_NOT_APPLICABLE]:
        return (f"Coverage: no gaps and no errors. {outcomes[OUTCOME_DONE]} entries were "
                f"processed; {outcomes[OUTCOME_NOT_APPLICABLE]} are not applicable by design "
                f"(listed by reason in {where}).")
    return "Coverage: every entry was processed."


def _hits(m: ReportModel) -> Section:
    blocks: list[Para | Table] = []
    if m.match_run_note:
        blocks.append(Para(f"Note: {m.match_run_note}."))
    set_rows = tuple((s.label, "case set", str(s.files), str(s.exact), str(s.near))
                     for s in m.by_set) + tuple(
        (s.label, "known-file set", str(s.files), str(s.exact), str(s.near))
        for s in m.known_by_set)
    if set_rows:
        blocks.append(Table((Col("set (version, id)", 52, "path"), Col("kind", 18),
                             Col("files", 10, "num"), Col("exact", 10, "num"),
                             Col("near", 10, "num")), set_rows, caption="Hits by set"))
    rows = []
    for n, (f, h) in enumerate(m.hits(), 1):
        how = h.match_type if h.match_type == "exact" else \
            f"near, distance {h.distance} (threshold {_s(h.threshold)})"
        extra = [h.grade_label] if not h.known else []
        if h.variant and h.variant != "original":
            extra.append(f"variant {h.variant}")
        row: tuple[Cell, ...] = (str(n), f.display_path, category_text(h), _set(h),
                                 lines(h.algorithm, how, *extra), short(h.file_value),
                                 _caution(f))
        rows.append(row + ((_meta_cell(f),) if m.metadata_count else ()))
    if rows:
        blocks.append(Para("Hits are listed by grade: exact (cryptographic) matches first, "
                           "then near matches confirmed by PDQ with pHash or dHash on the "
                           "same set entry and the same form of the picture, then other "
                           "near matches (for review), then "
                           "unconfirmed candidates (values from a reduced decode that could "
                           "not be checked at full size); known-file hits last. A near "
                           "match is evidence of similarity, not identity. 'Variant' names "
                           "the rotation, mirror image or border cut of the file's picture "
                           "that matched."))
        blocks.append(Para("Full hash values and a one-sentence explanation of every hit: "
                           "appendix D. The CSV export (--rows hits) holds them too. 'May be "
                           "overwritten': a deleted file whose blocks may have been "
                           "reallocated; its hit is not a confident identification."))
        cols: tuple[Col, ...] = (
            Col("#", 4, "num"), Col("file", 28, "path"), Col("category", 15),
            Col("set (version, id)", 16, "path"), Col("algorithm, match", 11),
            Col("value (file)", 13, "mono"), Col("caution", 13))
        if m.metadata_count:  # issue 16: camera, capture time, GPS yes/no (appendix G)
            cols = (Col("#", 4, "num"), Col("file", 22, "path"),
                    Col("category", 13), Col("set (version, id)", 14, "path"),
                    Col("algorithm, match", 11), Col("value (file)", 12, "mono"),
                    Col("caution", 10), Col("camera, taken, GPS", 14, "path"))
        blocks.append(Table(cols, tuple(rows), caption="Every hit", name="hit-table"))
    else:
        blocks.append(Para("No hits." if m.match_run_id else
                           "No match run recorded: no hits to show."))
    return Section("hits", "Hits", tuple(blocks))


def _meta_cell(f: File) -> Cell:
    """A hit file's camera, capture time and whether it holds a GPS position (the full
    metadata is in appendix G)."""
    md = f.metadata
    if md is None:
        return "no metadata"
    return lines(md.camera or "camera unknown", f"taken {md.taken}" if md.taken else "",
                 f"GPS: {md.gps}")


def _caution(f: File) -> Cell:
    """The caution of a hit's file, one short line per fact (the full sentence is in the
    hit's explanation)."""
    return lines("deleted" if f.deleted else "", "unallocated" if not f.allocated else "",
                 "may be overwritten" if f.overwritten else "")


def _coverage(m: ReportModel) -> Section:
    outcomes = outcome_counts(m.status_counts)
    blocks: list[Para | Table] = [Para(_coverage_sentence(outcomes, "the table below"))]
    order = {k: i for i, k in enumerate(OUTCOME_CLASSES)}
    groups = sorted(m.coverage, key=lambda g: (
        order[OUTCOME_OF_STATUS.get(g.status, OUTCOME_ERROR)] if g.status != "skipped"
        else len(order), g.status, g.stage, g.reason))
    if groups:
        blocks.append(Table(
            (Col("outcome (status)", 18), Col("stage", 12), Col("reason", 32),
             Col("entries", 8, "num"), Col("examples", 30, "path")),
            tuple((f"{OUTCOME_LABELS[OUTCOME_OF_STATUS.get(g.status, OUTCOME_ERROR)]}"
                   f" ({g.status})", g.stage, g.reason or "(no reason recorded)",
                   str(g.count), lines(*g.examples, "\u2026" if g.count > len(g.examples)
                                       else "")) for g in groups),
            caption="What was not processed (or not fully), and why: by reason"))
    rows = tuple((f.display_path, f.status, _s(f.status_stage), _s(f.status_reason))
                 for f in m.unprocessed())
    if rows:
        blocks.append(Table((Col("file", 38, "path"), Col("status", 12),
                             Col("stage", 12), Col("reason", 38)), rows,
                            caption="Every entry not fully processed (coverage gaps, errors, "
                                    "not reached)"))
    errors = tuple((_s(e.display_path) or "(no file)", e.stage, e.error_class, e.message,
                    _s(e.run_id), _time(e.time_utc)) for e in m.errors())
    if errors:
        blocks.append(Table((Col("file", 20, "path"), Col("stage", 11), Col("class", 16, "path"),
                             Col("message", 31), Col("run", 5, "num"),
                             Col("time (UTC)", 17, "nowrap")), errors,
                            caption="Every recorded error and warning"))
    return Section("coverage", "Coverage: what was not processed, and why", tuple(blocks))


def _method(m: ReportModel) -> Section:
    blocks: list[Para | Table] = [
        Para(f"Hits shown are those of match run {m.match_run_id}, the last completed "
             "match over a finished scan." if m.match_run_id
             else "No match run recorded: no hits to show."),
        *([Para(f"Note: {m.match_run_note}.")] if m.match_run_note else []),
    ]
    if m.thresholds:
        blocks.append(Table((Col("near-match threshold", 60), Col("value", 40, "num")),
                            tuple((k, _s(v)) for k, v in sorted(m.thresholds.items())),
                            caption="Thresholds"))
    else:
        blocks.append(Para("No thresholds recorded."))
    # Measured error rates of the thresholds used (issue 14; hashsets/algorithms/error_rates).
    blocks.extend(Para(text) for text in error_rates.method_statements(m.thresholds))
    if m.preprocessing:
        blocks.append(Table((Col("algorithm", 20), Col("preprocessing", 60, "path"),
                             Col("values", 20, "num")),
                            tuple((a, p or "(none)", str(n)) for a, p, n in m.preprocessing),
                            caption="Algorithms and preprocessing"))
    if m.runs:
        blocks.append(Table(
            (Col("run", 6, "num"), Col("command", 12), Col("status", 14),
             Col("started (UTC)", 17, "nowrap"), Col("ended (UTC)", 17, "nowrap"),
             Col("user@host", 22, "path"), Col("tool", 12, "nowrap")),
            tuple((str(r.id), r.command, r.status, _time(r.started_utc),
                   _time(r.ended_utc) or "-",
                   f"{r.user}@{r.host}", r.tool_version) for r in m.runs), caption="Runs"))
    for r in m.runs:
        args = (("command line", shlex.join(r.arguments)),) if isinstance(
            r.arguments, list) and all(isinstance(a, str) for a in r.arguments) else tuple(
            ("argument " + k, v) for k, v in flatten(r.arguments))
        rows = [*args,
                *(("option " + k, v) for k, v in flatten(r.options)),
                *(("version " + k, v) for k, v in flatten(r.versions))]
        if rows:
            blocks.append(Para(f"Run {r.id} ({r.command}): arguments, options, tool and "
                               "library versions"))
            blocks.append(kv_table(rows, key_width=34))
    # Picture and video metadata (issue 16): free text included or not, what was redacted.
    blocks.extend(Para(text, "key" if text.startswith("REDACTED") else "")
                  for text in m.policy.statements())
    return Section("method", "Appendix A. Method: algorithms, thresholds, runs, versions",
                   tuple(blocks), appendix=True)


def _sets(m: ReportModel) -> Section:
    if not m.hash_sets:
        return Section("hashsets", "Appendix B. Hash sets used",
                       (Para("No hash sets recorded."),), appendix=True)
    blocks: list[Para | Table] = [Table(
        (Col("name", 26, "path"), Col("version", 10), Col("set id", 18, "mono"),
         Col("format", 12), Col("entries", 10, "num"), Col("kind", 8), Col("hits", 8, "num"),
         Col("files hit", 8, "num")),
        tuple((s.name, _s(s.version), s.set_id, s.format, str(s.entry_count),
               "known" if s.known else "case", str(s.hits), str(s.files))
              for s in m.hash_sets))]
    for s in m.hash_sets:
        cmap = s.category_map
        mapping = ("; ".join(f"{k} = {v}" for k, v in sorted(cmap.items()))
                   if isinstance(cmap, Mapping) else (_s(cmap) or "none (no categories)"))
        blocks.append(kv_table((("Set", f"{s.name} ({s.set_id})"),
                                ("Source file SHA-256", s.source_sha256),
                                ("Category mapping used at import", mapping)), key_width=30))
    return Section("hashsets", "Appendix B. Hash sets used", tuple(blocks), appendix=True)


def _evidence(m: ReportModel) -> Section:
    blocks: list[Para | Table] = []
    for e in m.evidence:
        it = integrity(e)
        rows: list[tuple[str, Cell]] = [
            ("Evidence id", str(e.id)), ("Path", e.path), ("Path bytes (hex)", e.path_hex),
            ("Source type", e.source_type), ("Size", _size(e.size)),
            ("Integrity verdict", it.verdict)]
        for a, name in (("md5", "MD5"), ("sha1", "SHA-1")):
            rows.append((f"Stored image {name} (acquisition)",
                         it.stored.get(a, "none stored")))
            rows.append((f"Computed image {name}", it.computed.get(a, "not computed")))
        desc = e.description if isinstance(e.description, Mapping) else {}
        tables = {k: v for k, v in desc.items() if _records(v)}
        rows.extend((f"Description: {k}", v) for k, v in flatten(
            {k: v for k, v in desc.items() if k not in tables and k != "stored_hashes"}))
        if not isinstance(e.description, Mapping) and e.description is not None:
            rows.append(("Description", _s(e.description)))
        blocks.append(kv_table(rows, key_width=34))
        for k, v in sorted(tables.items()):
            blocks.append(_records_table(v, f"Evidence {e.id}: {k}"))
    if not blocks:
        blocks.append(Para("No evidence recorded."))
    return Section("evidence", "Appendix C. Evidence details", tuple(blocks), appendix=True)


def _records(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v) and \
        all(not isinstance(y, Mapping | list) for x in v for y in x.values())


def _records_table(v: list[Mapping[str, Any]], caption: str) -> Table:
    """Records (partitions, volumes) as a grid; a column empty in every record is left out."""
    keys = sorted({k for x in v for k in x if any(y.get(k) is not None for y in v)}, key=str)
    if len(keys) > 12:
        return kv_table([(k, t) for k, t in flatten(v)], key_width=30)
    landscape = len(keys) > PORTRAIT_MAX_COLUMNS
    each = 100 // len(keys)
    widths = [each] * len(keys)
    widths[keys.index("description") if "description" in keys else 0] += 100 - sum(widths)
    return Table(tuple(Col(k.replace("_", " "), w, "path") for k, w in zip(keys, widths,
                                                                          strict=True)),
                 tuple(tuple(_s(x.get(k)) for k in keys) for x in v), landscape=landscape,
                 caption=caption)


def _hit_values(m: ReportModel) -> Section:
    rows = []
    for n, (f, h) in enumerate(m.hits(), 1):
        rows.append((str(n), lines(h.algorithm, f"file  {h.file_value}",
                                   f"known {h.known_value}"),
                     lines(explain(f, h), *_entry_lines(h))))
    blocks: tuple[Para | Table, ...] = (Table(
        (Col("#", 5, "num"), Col("algorithm, full values (file, known)", 55, "mono"),
         Col("explanation", 40)), tuple(rows)),) if rows else (Para("No hits."),)
    return Section("hitvalues", "Appendix D. Hit details: full hash values and explanation",
                   blocks, appendix=True)


def _duplicates_sentence(m: ReportModel) -> str:
    d = m.duplicates
    if not (d.file_groups or d.inner_groups):
        return "Duplicates (same SHA-256): none."
    return (f"Duplicates (same SHA-256): {d.file_groups} group(s) of files ({d.files} files) "
            f"and {d.inner_groups} group(s) of items inside files ({d.inner_items} items), "
            "listed in appendix F.")


#: The scopes of appendix F, as a reader sees them.
DUPLICATE_SCOPE_TITLES = {"files": "Files with the same content (the evidence's own files)",
                          "inner": "Items inside files with the same content (archive and "
                                   "document members, carved pictures)"}
_OTHER_SCOPE = {"files": "also as {n} item(s) inside files",
                "inner": "also as {n} file(s) of the evidence"}


def _duplicates(m: ReportModel) -> Section:
    """Appendix F (issue 14 #8): every group of entries with the same SHA-256, the
    evidence's files and the items found inside files listed apart."""
    d = m.duplicates
    blocks: list[Para | Table] = [Para(
        "Entries with the same SHA-256 have the same content. Files of the evidence and "
        "items found inside files are grouped apart; a group says when the same content "
        f"occurs in the other list too. Empty entries are left out ({d.empty_left_out}: "
        "every empty file has the same SHA-256, which says nothing about content).")]
    for scope in ("files", "inner"):
        rows: list[tuple[Cell, ...]] = []
        for g in m.duplicate_groups(scope):
            other = _OTHER_SCOPE[scope].format(n=g.other_scope) if g.other_scope else ""
            for i, member in enumerate(g.members):
                first = i == 0
                rows.append((str(g.number) if first else "",
                             lines(g.sha256, other) if first else "",
                             lines(_size(g.size), f"{len(g.members)} entries") if first
                             else "", member.path))
        if rows:
            blocks.append(Table((Col("group", 8, "num"), Col("SHA-256", 30, "mono"),
                                 Col("size", 16), Col("entry", 46, "path")), tuple(rows),
                                caption=DUPLICATE_SCOPE_TITLES[scope],
                                name=f"duplicates-{scope}"))
        else:
            blocks.append(Para(f"{DUPLICATE_SCOPE_TITLES[scope]}: none."))
    return Section("duplicates", "Appendix F. Duplicate groups (same SHA-256)", tuple(blocks),
                   appendix=True)


def _entry_lines(h: Hit) -> tuple[str, ...]:
    """The matched set entry as a reader needs it (issue 14): its id and name, then each of
    its fields (the source's own columns, its line or record number) as ``key: value``."""
    head = "set entry " + (h.entry_ref or "") + (f": {h.entry_name}" if h.entry_name else "")
    fields = h.entry_fields if isinstance(h.entry_fields, Mapping) else {}
    return (head, *(f"{k}: {v}" for k, v in flatten(dict(fields))))


def _audit(m: ReportModel) -> Section:
    state = ("intact" if not m.audit_problems
             else "BROKEN: " + "; ".join(m.audit_problems))
    blocks: list[Para | Table] = [
        Para(f"Audit chain: {state}. Export events (report.export) are recorded in the chain "
             "after each export and are not listed here, so that repeated exports of the "
             "same case are identical; 'triage verify' checks them."),
        Table((Col("seq", 6, "num"), Col("time (UTC)", 11, "nowrap"),
               Col("user@host", 12, "path"), Col("tool", 6), Col("action", 11, "path"),
               Col("details", 34, "path"), Col("row hash (SHA-256)", 20, "mono")),
              tuple(_audit_rows(m)), landscape=True, caption="Audit trail"),
    ]
    return Section("audit", "Appendix E. Chain of custody: audit trail", tuple(blocks),
                   appendix=True, landscape=True)


#: Lines of an audit row's details per table row (a printed row cannot span pages; longer
#: details continue in rows marked "(cont.)").
AUDIT_LINES_PER_ROW = 24


def _audit_rows(m: ReportModel) -> Iterable[tuple[Cell, ...]]:
    for a in m.audit:
        details = _details(a.details)
        parts = details.parts if isinstance(details, Lines) else (str(details),)
        for i in range(0, max(len(parts), 1), AUDIT_LINES_PER_ROW):
            chunk = Lines(tuple(parts[i:i + AUDIT_LINES_PER_ROW]))
            if i == 0:
                yield (str(a.seq), _time(a.time_utc), f"{a.user}@{a.host}", a.tool_version,
                       a.action, chunk, a.row_hash)
            else:
                yield (f"{a.seq} (cont.)", "", "", "", "", chunk, "")


def _details(text: str) -> Cell:
    """An audit row's JSON details as ``key: value`` lines (never JSON)."""
    try:
        v = json.loads(text)
    except ValueError:
        return text
    if not isinstance(v, Mapping | list):
        return _s(v)
    if isinstance(v, Mapping) and isinstance(v.get("data_digest"), Mapping):
        v = {**v, "data_digest": _digest_summary(v["data_digest"])}
    return Lines(tuple(f"{k}: {x}" if k else x for k, x in flatten(v)))


def _digest_summary(digest: Mapping[str, Any]) -> str:
    """A data digest (:mod:`triage.datadigest`) as a reader needs it: which tables it covers
    and how many rows; the SHA-256 values stay in the case database, where ``triage
    verify`` recomputes them (a page of hexadecimal helps no reader)."""
    tables = digest.get("tables")
    if not isinstance(tables, Mapping):
        return "recorded"
    counts = []
    for table, parts in sorted(tables.items()):
        rows = 0
        if isinstance(parts, Mapping):
            for value in parts.values():
                if isinstance(value, list | tuple) and value and isinstance(value[0], int):
                    rows += value[0]
        counts.append(f"{table} {rows}")
    return ("rows of " + ", ".join(counts) + " (SHA-256 per table and run, checked by "
            "triage verify)")


def _degrees(v: Any) -> str:
    return f"{v:.6f}" if isinstance(v, float) else _s(v)


def _offset(t: Any, off: Any) -> str:
    return " ".join(_s(x) for x in (t, off) if x is not None and x != "")


def _metadata_rows(md: Metadata) -> tuple[Cell, ...]:
    """The typed metadata of one file as five cells (camera, lens and software, times,
    GPS, other facts); a redacted field reads ``redacted``."""
    g = md.get
    serial = g("serial")
    camera = lines(_s(g("make")), _s(g("model")), f"serial {_s(serial)}" if serial else "")
    lens = " ".join(x for x in (_s(g("lens_make")), _s(g("lens_model"))) if x)
    gear = lines(f"lens {lens}" if lens else "",
                 f"software {_s(g('software'))}" if g("software") else "")
    times = lines(*(f"{label} {_offset(g(t), g(o))}" for label, t, o in (
        ("original", "datetime_original", "offset_original"),
        ("digitized", "datetime_digitized", "offset_digitized")) if g(t)))
    if md.gps == "redacted" or any(f.startswith("gps_") for f in md.redacted):
        gps: Cell = "redacted"
    else:  # degrees to 6 decimals (about 0.1 m) here; full precision in CSV and JSONL
        when = " ".join(_s(g(k)) for k in ("gps_date", "gps_time") if g(k) is not None)
        gps = lines(*(f"{label} {_degrees(g(k))}" for label, k in (
            ("lat", "gps_latitude"), ("lon", "gps_longitude")) if g(k) is not None),
            f"alt {_s(g('gps_altitude'))} m" if g("gps_altitude") is not None else "",
            f"{when} UTC" if when else "")
    uid = g("image_unique_id")
    other = lines(f"orientation {g('orientation')}" if g("orientation") is not None else "",
                  f"unique id {_s(uid)}" if uid else "",
                  "embedded thumbnail (not extracted)" if g("thumbnail") else "",
                  f"{md.tags} tags" + (f" ({md.tags_dropped} over the bound)"
                                       if md.tags_dropped else ""))
    return (camera, gear, times, gps or "none", other)


def _metadata(m: ReportModel) -> Section:
    """Appendix G (issue 16): the typed picture and video metadata of every file with a
    hit, and its free-text tags when the export includes them; what this export leaves out
    (free text, redaction) first."""
    title = "Appendix G. Picture and video metadata of files with hits"
    blocks: list[Para | Table] = [
        Para(text, "key" if text.startswith("REDACTED") else "")
        for text in m.policy.statements()]
    if not m.metadata_count:
        blocks.append(Para("No file of the case has picture or video metadata."))
        return Section("metadata", title, tuple(blocks), appendix=True)
    blocks.append(Para("Every tag (free text only when included) is in the JSONL export; "
                       "the CSV export has the fields below as columns (meta_...)."))
    rows: list[tuple[Cell, ...]] = []
    free: list[tuple[Cell, ...]] = []
    for f in m.files_with_hits():
        if f.metadata is None:
            continue
        rows.append((f.display_path, *_metadata_rows(f.metadata)))
        if m.policy.include_free_text and f.metadata.tags:
            for t in m.metadata_tags(f.id, free_text_only=True).tags:
                free.append((f.display_path, f"{t['source']} {t['name']}", t["value"]))
    if rows:
        blocks.append(Table(
            (Col("file", 20, "path"), Col("camera", 16, "path"),
             Col("lens, software", 14, "path"), Col("taken", 16), Col("GPS", 16, "path"),
             Col("other", 18, "path")), tuple(rows),
            caption="Metadata of files with hits", name="metadata"))
    else:
        blocks.append(Para("No file with a hit has picture or video metadata."))
    if free:
        blocks.append(Table((Col("file", 28, "path"), Col("tag", 20, "path"),
                             Col("free text (as written, escaped)", 52, "path")),
                            tuple(free), caption="Free-text tags of files with hits",
                            name="metadata-free-text"))
    return Section("metadata", title, tuple(blocks), appendix=True)
