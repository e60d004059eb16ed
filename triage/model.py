"""The typed result model: the records that cross module boundaries.

Every record here is a frozen, slotted dataclass. Workers build a :class:`FileResult` and
send it to the supervisor (pickled through a pipe), the case writes it, the scan returns a
:class:`RunSummary`, the console and the CLI read it. Nothing of this travels as a
positional tuple or a free-form dict; a record that must change is rebuilt with
:func:`dataclasses.replace`.

JSON comes from one place, :func:`to_json` (and :func:`to_dict` for callers that embed a
record in a larger JSON document, such as the run row and the audit trail); :func:`from_dict`
reads it back. Keys are the field names, sorted; optional fields whose absence means
something (``matches`` of a scan run without matching, for instance) are left out when
they are ``None``, exactly as the command-line ``--json`` output has always done.

This module imports nothing from the rest of triage, so every other module can use it.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar, Union

#: What :func:`to_dict` gives: a value :func:`json.dumps` writes as it is.
JSONValue: TypeAlias = (
    "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None")
#: Field metadata: leave the key out of the JSON form when the value is None.
OMIT_NONE: Mapping[str, bool] = {"omit_none": True}
#: JSON has no bytes: bytes values (inner names) are written as this one-key object.
BYTES_KEY = "hex"

# Entry kinds. Only FILE entries (and ADS/attribute streams, also "file") are read.
FILE = "file"
DIRECTORY = "directory"
SYMLINK = "symlink"
FIFO = "fifo"
SOCKET = "socket"
CHAR_DEVICE = "char_device"
BLOCK_DEVICE = "block_device"
OTHER = "other"

# File statuses (``files.status``) and the outcome class each belongs to (issue 12: the
# exit code and every report count by class). ``pending`` is not an outcome: the file has
# not been handed out yet (a scan that was stopped).
DONE = "done"
#: Not applicable by design: recorded, never read (directories, links, devices, sparse-by-
#: design streams such as NTFS ``$BadClus:$Bad``, deleted names without metadata).
SKIPPED = "skipped"
#: A coverage gap: what could be done was done (digests kept and matched), but part of the
#: content was not examined (a format not decodable yet, an archive recognised but not
#: expanded, a container or member stopped at a bound). The reason says which.
INCOMPLETE = "incomplete"
ERROR = "error"
QUARANTINED = "quarantined"
PENDING = "pending"
STATUSES = (PENDING, DONE, SKIPPED, INCOMPLETE, ERROR, QUARANTINED)

#: Outcome classes, in the order reports list them.
OUTCOME_DONE = "done"
OUTCOME_NOT_APPLICABLE = "not_applicable"
OUTCOME_COVERAGE_GAP = "coverage_gap"
OUTCOME_ERROR = "error"
OUTCOME_PENDING = "pending"
OUTCOME_CLASSES = (OUTCOME_DONE, OUTCOME_NOT_APPLICABLE, OUTCOME_COVERAGE_GAP, OUTCOME_ERROR,
                   OUTCOME_PENDING)
#: The outcome class of each status.
OUTCOME_OF_STATUS: Mapping[str, str] = {
    DONE: OUTCOME_DONE,
    SKIPPED: OUTCOME_NOT_APPLICABLE,
    INCOMPLETE: OUTCOME_COVERAGE_GAP,
    ERROR: OUTCOME_ERROR,
    QUARANTINED: OUTCOME_ERROR,
    PENDING: OUTCOME_PENDING,
}


def outcome_counts(by_status: Mapping[str, int]) -> dict[str, int]:
    """Counts by outcome class (every class present, zero when none) from counts by
    status."""
    out = dict.fromkeys(OUTCOME_CLASSES, 0)
    for status, n in by_status.items():
        out[OUTCOME_OF_STATUS[status]] += n
    return out


T = TypeVar("T")


def pickled_by_fields(cls: type[T]) -> type[T]:
    """Class decorator for a frozen slotted dataclass: pickle it as its constructor and
    field values. Records cross the worker pipe once per file, and this is about twice as
    fast as the generic state protocol of slotted dataclasses
    (benchmarks/bench_result_wire.py)."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    getter = operator.attrgetter(*names)

    def __reduce__(self: T) -> tuple[type[T], tuple[Any, ...]]:
        values = getter(self)
        return cls, (values if len(names) > 1 else (values,))

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


# -- entries -------------------------------------------------------------------------
@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FileEntry:
    """One entry the walk saw. Frozen: identity and metadata never change after enumeration.

    ``identity`` is stable across runs of the same evidence (resume depends on it); for a
    directory source it is built from (device, inode, path bytes), for an image from
    (partition offset, metadata address, attribute, path bytes).
    ``path`` is the exact name bytes relative to the evidence root, ``/``-separated.
    Times are POSIX seconds (float) or None; ``times_raw`` keeps the source's own values.
    ``locator`` is whatever ``open_entry`` needs to find the content again in a worker:
    small and JSON-serialisable (it is stored in the case database so that a resumed scan
    can rebuild the entry; tuples come back as lists).
    """

    identity: str
    path: bytes
    kind: str
    size: int | None = None
    mtime: float | None = None
    atime: float | None = None
    ctime: float | None = None
    crtime: float | None = None
    times_raw: dict[str, Any] = field(default_factory=dict)
    allocated: bool = True
    deleted: bool = False
    inode: int | None = None
    link_target: bytes | None = None
    locator: Any = None
    #: When set, the entry is recorded with this final status without being read
    #: (e.g. ("skipped", "enumerate", "not a regular file: fifo")) or ("error", ...).
    preset_status: tuple[str, str, str] | None = None  # (status, stage, reason)
    #: Notes to record against the entry (e.g. "content may be overwritten").
    notes: tuple[str, ...] = ()

    @property
    def readable(self) -> bool:
        return self.kind == FILE and self.preset_status is None


Entry = FileEntry


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """Where the case put an enumerated entry: its id, and whether it already has a final
    status (recorded by an earlier run of the same evidence)."""

    file_id: int
    already_final: bool


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An entry still to be read, as the case hands it to the worker queue: ``attempts``
    counts the times it was handed to a worker."""

    file_id: int
    entry: FileEntry
    display_path: str
    extension: str | None
    attempts: int
    #: Worker crashes counted against it so far (quarantined at the limit).
    worker_crashes: int = 0


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Problem:
    """A problem that did not stop the file (or the entry): a row of the errors table."""

    stage: str
    error_class: str
    message: str


# -- per-file results ----------------------------------------------------------------
@pickled_by_fields
@dataclass(frozen=True, slots=True)
class HashValue:
    """One hash of a file. ``quality`` is the algorithm's own confidence (PDQ); for
    perceptual hashes ``preprocessing`` says how the picture was prepared; ``variant``
    names a transformed form of the picture (for example a rotation) when one was hashed,
    None for the picture as stored."""

    algorithm: str
    value: str
    quality: int | None = None
    preprocessing: str | None = None
    variant: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PictureFacts:
    """What decoding a picture showed (never any pixel): the stored size and mode, the
    frame count (None when it could not be counted), the size actually decoded (smaller
    with JPEG draft decoding) and the preprocessing steps before hashing."""

    format: str | None
    width: int
    height: int
    mode: str
    frames: int | None
    decoded_width: int
    decoded_height: int
    preprocessing: str = ""


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One hashed video frame (vPDQ, issue 15): Meta's frame number (decoded frames counted
    from 0) and timestamp (frame number / frame rate), PDQ and quality. ``repeats``: how
    many consecutive hashed frames had this same PDQ value (collapsed into this one)."""

    frame_number: int
    timestamp: float
    pdq: str
    quality: int
    repeats: int = 1


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class VideoFacts:
    """What decoding a video showed (never any pixel, issue 15): the container's and first
    video stream's facts, the container-level creation time and device tags when present
    (``tags``: sorted ``(key, value)`` pairs of a fixed list of keys), how many frames were
    decoded and hashed at which sampling (``seconds_per_hash`` 0: every frame), the size
    frames were scaled to for PDQ, the preprocessing, and the hashed frames (consecutive
    identical values collapsed). ``stopped`` names the bound or problem that ended decoding
    early (None: decoded to the end)."""

    container: str | None
    codec: str | None
    width: int
    height: int
    frame_rate: float | None
    duration: float | None
    streams: int
    video_streams: int
    audio_streams: int
    creation_time: str | None
    tags: tuple[tuple[str, str], ...]
    frames_decoded: int
    frames_hashed: int
    seconds_per_hash: float
    hashed_width: int
    hashed_height: int
    preprocessing: str
    frames: tuple[VideoFrame, ...] = ()
    stopped: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class MetaTag:
    """One metadata tag of a picture or video (issue 16): where it was read (``source``:
    ``ifd0``, ``exif``, ``gps``, ``interop``, ``ifd1`` for EXIF; ``container`` or
    ``stream<N>`` for a video's tags), its name, its value as text (escaped like every
    evidence-derived value; bytes as hex), whether the value was cut at the bound, and
    whether it is free text (a comment, a description: stored, left out of exports unless
    asked for)."""

    source: str
    name: str
    value: str
    truncated: bool = False
    free_text: bool = False


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class MediaMetadata:
    """The metadata of one picture or video (issue 16, :mod:`triage.metadata`): the fields
    an examiner looks for, typed, and every tag read as name/value rows (``tags``, at most
    a bound; ``tags_dropped`` counts those over it). Dates are as the file writes them
    (EXIF ``YYYY:MM:DD HH:MM:SS``), their offsets as ``+HH:MM``; GPS coordinates in signed
    decimal degrees (south and west negative), altitude in signed metres (below sea level
    negative), GPS date and time in UTC. ``thumbnail``: the picture holds an embedded
    thumbnail (never extracted)."""

    make: str | None = None
    model: str | None = None
    serial: str | None = None
    lens_make: str | None = None
    lens_model: str | None = None
    software: str | None = None
    datetime_original: str | None = None
    offset_original: str | None = None
    datetime_digitized: str | None = None
    offset_digitized: str | None = None
    gps_latitude: float | None = None
    gps_longitude: float | None = None
    gps_altitude: float | None = None
    gps_date: str | None = None
    gps_time: str | None = None
    orientation: int | None = None
    image_unique_id: str | None = None
    thumbnail: bool = False
    tags: tuple[MetaTag, ...] = ()
    tags_dropped: int = 0


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FileResult:
    """What a worker (or the supervisor) learned about one file."""

    file_id: int
    status: str  # done | skipped | incomplete | error | quarantined
    stage: str | None = None
    reason: str | None = None
    error_class: str | None = None
    attempts: int = 1
    read_status: str | None = None
    mime: str | None = None
    media_kind: str | None = None
    ext_mismatch: int | None = None
    hashes: tuple[HashValue, ...] = ()
    image: PictureFacts | None = None
    #: Problems that did not stop the file (extra rows of the errors table).
    warnings: tuple[Problem, ...] = ()
    #: Items found inside this file (archive members, embedded pictures), depth first.
    children: tuple[InnerItem, ...] = ()
    #: A video's facts and hashed frames (issue 15), None for everything else.
    video: VideoFacts | None = None
    #: Pictures decoded at full size to confirm draft-decoded near candidates (issue 14):
    #: the draft values this result replaces are kept as variant "draft".
    full_decode: bool = False
    #: A picture's or video's metadata (issue 16), None when it has none or was not read.
    metadata: MediaMetadata | None = None
    #: The Dask worker that processed the file (issue 19, ``scan --cluster``); None: this
    #: machine's own workers. Set by the supervisor, never by a worker.
    processed_by: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class InnerItem:
    """An item inside a file: its names from the top-level file down (``inner``), what the
    container says about it, and the same kind of result as any file (``result.file_id``
    is 0 until the case creates the item's row when the parent's result is written)."""

    inner: tuple[bytes, ...]
    member_kind: str  # "member" | "embedded"
    size: int | None
    mtime: float | None
    offset: int | None
    flags: tuple[str, ...]
    result: FileResult
    #: The entry kind, as for a file-system entry (a tar symlink is ``symlink``).
    kind: str = FILE
    #: A link's stored target (symbolic link, or the member a tar hard link names).
    link_target: bytes | None = None
    #: Where a carved item was found on the disk (issue 17); None for any other item.
    carve: CarveFacts | None = None
    #: A fragment of a known file found by its block hashes (issue 17); None otherwise.
    fragment: FragmentFacts | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FragmentFacts:
    """Blocks of one known file (a block-hash set's) found in the data searched: one row
    of the ``fragments`` table. ``found_bytes`` of the known file's ``indexed_bytes``
    (the bytes its kept blocks cover) matched; ``runs`` are ``(image or file offset where
    found, offset in the known file, length)`` of each run of consecutive matching
    blocks."""

    set_name: str
    known_path: str
    known_sha256: str
    known_size: int
    indexed_bytes: int
    found_bytes: int
    blocks: int
    runs: tuple[tuple[int, int, int], ...]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class CarveFacts:
    """Where a carved item lies in a disk image (issue 17): one row of the ``carved``
    table. ``area`` is ``unallocated``, ``slack`` or ``unpartitioned``; blocks are the
    volume's file-system blocks of ``block_size`` bytes (None outside a volume);
    ``slack_of`` is the display path of the file whose slack held it; ``partial`` says
    the item is known to be incomplete (its end not found, or it does not decode)."""

    area: str
    volume_offset: int | None
    image_offset: int
    length: int
    block_size: int | None
    first_block: int | None
    last_block: int | None
    slack_of: str | None
    format: str
    partial: bool = False


# -- matching ------------------------------------------------------------------------
#: Grades of a hit, best first (issue 14 item 4): a cryptographic match; a PDQ near match
#: with a pHash or dHash near match on the same set entry and the same form of the picture,
#: neither draft-decoded (:data:`triage.matching.CONFIRM_ANCHOR`); any other near match,
#: for review; a near candidate whose value comes from a draft (reduced) decode that could
#: not be confirmed at full size.
GRADES = ("exact", "confirmed", "review", "unconfirmed")
GRADE_LABELS = {
    "exact": "exact match (cryptographic hash)",
    "confirmed": "near match confirmed by PDQ with pHash or dHash",
    "review": "near match, one algorithm: for review",
    "unconfirmed": "unconfirmed candidate (draft decode only)",
}
#: The label of a hit recorded before hits were graded (a match run of an older triage).
UNGRADED_LABEL = "not graded (matched by an older triage)"


def grade_label(grade: str | None, match_type: str) -> str:
    """How a report names a hit's grade."""
    if grade is None:
        return GRADE_LABELS["exact"] if match_type == "exact" else UNGRADED_LABEL
    return GRADE_LABELS.get(grade, grade)


@dataclass(frozen=True, slots=True)
class MatchHit:
    """One hit of a file's hash in a hash set, with the set's and the entry's metadata:
    one row of the case's ``matches`` table."""

    file_id: int
    set_id: str
    set_name: str
    set_version: str | None
    algorithm: str
    match_type: str  # exact | near
    file_value: str
    known_value: str
    distance: int
    threshold: int | None
    category: str | None
    category_raw: str | None
    series: str | None
    victim_identified: bool | None
    offender_identified: bool | None
    known: bool
    entry_ref: str
    #: Issue 14: the form of the picture that matched (``original``, ``rot90``,
    #: ``unletterboxed`` ... see :mod:`hashsets.algorithms.variants`; None for an exact
    #: match), the file value's quality, the hit's grade (``exact``, ``confirmed``,
    #: ``review``, ``unconfirmed``: :data:`triage.matching.GRADES`), how the picture was
    #: decoded for the value (``full``; ``confirmed``: a draft-decoded candidate re-decoded
    #: at full size; ``draft``: not confirmed) and how many files of the case matched the
    #: same set value in this run.
    variant: str | None = None
    quality: int | None = None
    grade: str | None = None
    decode: str | None = None
    files_same_value: int | None = None
    #: The matched set entry's name (a file name, when the set gives one) and its other
    #: fields (the source's own columns, the entry's flags, ``record``: its line or record
    #: number in the source), copied from the store (issue 14; None in older cases).
    entry_name: str | None = None
    entry_fields: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SetUsed:
    """A hash set a match run used."""

    set_id: str
    name: str
    version: str | None
    format: str
    source_sha256: str
    entries: int
    known: bool


@dataclass(frozen=True, slots=True)
class SetHits:
    """Hits in one set: by kind, and how many distinct files."""

    exact: int = 0
    near: int = 0
    files: int = 0


@dataclass(frozen=True, slots=True)
class KnownHits:
    """Hits in known-file (NSRL-style) sets, kept apart from the others."""

    files: int = 0
    hits: int = 0
    by_set: dict[str, SetHits] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DamagedSet:
    """A hash set that could not be read while matching: named, not matched, the other sets'
    hits stand (``triage match``/``scan`` exit 6)."""

    set_id: str
    name: str
    error: str


@dataclass(frozen=True, slots=True)
class MatchSummary:
    """The outcome of one match run (:func:`triage.matching.match_case`). ``by_set`` and
    ``known.by_set`` are keyed by ``"name (set id)"``; ``by_category`` counts files."""

    store: str
    thresholds: dict[str, int]
    sets: tuple[SetUsed, ...] = ()
    hits: int = 0
    exact: int = 0
    near: int = 0
    files_matched: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_set: dict[str, SetHits] = field(default_factory=dict)
    known: KnownHits = field(default_factory=KnownHits)
    #: Hashes not matched, and why: ``empty_file_digests`` and ``<algorithm>_low_quality``
    #: for each algorithm with a quality gate (keys from the algorithm registry).
    skipped: dict[str, int] = field(default_factory=dict)
    damaged_sets: tuple[DamagedSet, ...] = ()
    notes: tuple[str, ...] = ()
    #: Hits per grade (issue 14; every grade listed, 0 included).
    by_grade: dict[str, int] = field(default_factory=dict)
    #: Draft-decoded pictures re-decoded at full size to confirm near candidates, and those
    #: that could not be (evidence not reachable, decode failed): their hits stay
    #: "unconfirmed candidate".
    confirmation: dict[str, int] = field(default_factory=dict)
    #: ``triage match`` only: entries of the case still pending (an unfinished scan).
    pending_entries: int | None = field(default=None, metadata=OMIT_NONE)


# -- runs ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PoolSummary:
    """What the worker pool went through."""

    workers_started: int = 0
    worker_crashes: int = 0
    timeouts: int = 0
    quarantined: int = 0
    slowest_giveup_seconds: float = 0.0
    #: The scan's total memory budget (None: none) and what of it large picture decodes may
    #: hold at once; the most they held at once; decodes that waited for memory, and those
    #: refused because they could never fit (triage.membudget).
    memory_budget_bytes: int | None = None
    decode_grant_capacity_bytes: int | None = None
    decode_grant_peak_bytes: int = 0
    decodes_waited: int = 0
    decodes_refused: int = 0


@dataclass(frozen=True, slots=True)
class ClusterUse:
    """What a ``scan --cluster`` run sent to the Dask cluster (issue 19)."""

    address: str
    #: The workers at the start, as ``files.processed_by`` names them.
    workers: tuple[str, ...] = ()
    #: Files (top level) each worker processed in this run.
    files_by_worker: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    #: Batches Dask gave up on (a worker lost too often, a node died): their files were
    #: sent again one by one.
    batches_lost: int = 0


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file that could not be fully processed, as the summary shows it."""

    path: str
    status: str
    stage: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class VideoCoverage:
    """How far the files identified as video were examined (issue 15): decoded to the end,
    decoded in part (a bound or damage stopped it; its frames kept), not decoded; frames
    stored; and why not, by short reason class (with counts)."""

    videos: int = 0
    decoded: int = 0
    decoded_in_part: int = 0
    not_decoded: int = 0
    frames: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaseCounts:
    """Counts over the files of a case (or of one evidence in it)."""

    entries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    #: ``by_status`` summed by outcome class (:data:`OUTCOME_OF_STATUS`), every class.
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    extension_mismatches: int = 0
    hashed_bytes: int = 0
    duplicate_groups: int = 0
    files_in_duplicate_groups: int = 0
    images_with_perceptual_hashes: int = 0
    #: The first 20 files that ended as error or quarantined.
    problems_shown: tuple[FileProblem, ...] = ()
    #: The first 20 files that ended as coverage gaps (status incomplete), with the reason.
    gaps_shown: tuple[FileProblem, ...] = ()
    #: Videos (issue 15): None when the case holds none (so the JSON of scans without
    #: videos is unchanged).
    videos: VideoCoverage | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One case detail changed by a scan (``scan --update-case``, or a detail recorded for
    the first time); also in the audit row ``case.update``."""

    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class EvidenceStart:
    """What a scan found before reading any file: the evidence's place in the case and how
    much of it earlier runs had done."""

    evidence_id: int
    #: The path as given, made absolute (a symbolic link stays the link).
    path: str
    #: The path read, when ``path`` is or passes through a symbolic link (else None).
    resolved_path: str | None = None
    #: The evidence is new to the case (this run added it).
    added: bool = True
    #: Other evidence the case held before this run.
    other_evidence: int = 0
    #: When resuming: the run that listed the evidence (this run did not list it again).
    resumed_run: int | None = None
    #: Entries this run listed for the first time.
    new_entries: int = 0
    #: Entries that already had a final status from earlier runs.
    earlier_entries: int = 0
    #: Entries handed to workers by this run.
    pending_entries: int = 0


@dataclass(frozen=True, slots=True)
class ImageCheck:
    """``scan --verify-image``: the image's media data hashed and compared with the hashes
    stored at acquisition (E01). ``result``: ``match``, ``mismatch``, ``no stored hash``, or
    ``not an image`` (a folder: nothing to verify)."""

    result: str
    computed_md5: str | None = None
    computed_sha1: str | None = None
    stored_md5: str | None = None
    stored_sha1: str | None = None


@dataclass(frozen=True, slots=True)
class CarvingSummary:
    """Carved items and fragment hits of one evidence (issue 17). ``found_again``: carved
    items that are a listed file's own data (same content where that file's data starts:
    found again, not a new discovery); ``copies``: carved items with a listed file's
    content at another place (another copy); ``partial``: known incomplete; ``items``:
    every carved item and partial candidate (up to ``shown`` of them are listed in
    ``carved``)."""

    items: int
    intact: int
    partial: int
    found_again: int
    fragments: int
    caution: str
    copies: int = 0
    carved: tuple[dict[str, Any], ...] = ()
    fragment_hits: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a scan (or the demo) reports to a person and a batch script.

    ``counts`` is flattened into the JSON form (its keys sit at the top level, as they always
    have); ``pool``, ``matches``, ``match_error`` and ``demo_directory`` are left out of it
    when they are None (no workers ran, matching was not asked for, it did not fail, not
    the demo)."""

    run_id: int
    case_database: str
    counts: CaseCounts | None = None
    resumed: bool = False
    elapsed_seconds: float = 0.0
    pool: PoolSummary | None = field(default=None, metadata=OMIT_NONE)
    matches: MatchSummary | None = field(default=None, metadata=OMIT_NONE)
    match_error: str | None = field(default=None, metadata=OMIT_NONE)
    demo_directory: str | None = field(default=None, metadata=OMIT_NONE)
    #: The scanned evidence (absent from the demo's and older runs' summaries).
    evidence: EvidenceStart | None = field(default=None, metadata=OMIT_NONE)
    #: Case details this run changed (``--update-case``, or recorded for the first time).
    case_changes: tuple[FieldChange, ...] | None = field(default=None, metadata=OMIT_NONE)
    #: ``--verify-image`` only.
    image_verification: ImageCheck | None = field(default=None, metadata=OMIT_NONE)
    #: Disk images carved (issue 17): what carving and fragment matching found.
    carving: CarvingSummary | None = field(default=None, metadata=OMIT_NONE)
    #: ``scan --cluster`` (issue 19): the Dask cluster and what each worker processed.
    cluster: ClusterUse | None = field(default=None, metadata=OMIT_NONE)

    @property
    def by_status(self) -> dict[str, int]:
        return self.counts.by_status if self.counts is not None else {}

    @property
    def unfinished(self) -> int:
        """Files that ended as error or quarantined (exit code 3 when not zero)."""
        return self.by_status.get("error", 0) + self.by_status.get("quarantined", 0)

    @property
    def coverage_gaps(self) -> int:
        """Files that ended as ``incomplete`` (exit code 8 when not zero and nothing
        worse)."""
        return self.by_status.get(INCOMPLETE, 0)


#: Fields whose record is flattened into the enclosing JSON object.
_FLATTEN = {(RunSummary, "counts")}


# -- JSON ----------------------------------------------------------------------------
def to_dict(obj: object) -> JSONValue:
    """The JSON-ready form of a record (or of a list, dict or plain value holding records):
    dicts keyed by field name, tuples as lists, bytes as ``{"hex": ...}``. Key order is
    left to the serialiser (:func:`to_json` sorts)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, JSONValue] = {}
        cls = type(obj)
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            if (cls, f.name) in _FLATTEN:
                flat = to_dict(value)
                if isinstance(flat, dict):
                    out.update(flat)
                continue
            out[f.name] = to_dict(value)
        return out
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, bytes):
        return {BYTES_KEY: obj.hex()}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"no JSON form for {type(obj).__name__}")


def record_dict(record: object) -> dict[str, JSONValue]:
    """The JSON object of one record (:func:`to_dict` of a dataclass instance), for callers
    that add it to a larger document (the run row, the audit trail)."""
    out = to_dict(record)
    if not isinstance(out, dict):
        raise TypeError(f"{type(record).__name__} is not a record")
    return out


def to_json(obj: object, *, indent: int | None = 2) -> str:
    """The one JSON form of a record: keys sorted, so the same record always gives the
    same text."""
    return json.dumps(to_dict(obj), indent=indent, sort_keys=True)


def from_dict(cls: type[T], data: object) -> T:
    """Rebuild a record of type ``cls`` from its :func:`to_dict` form (the inverse: for
    every record ``r``, ``from_dict(type(r), to_dict(r)) == r``). Raises ``ValueError``
    when ``data`` does not have the record's shape."""
    return typing.cast(T, _decode(cls, data))


def from_json(cls: type[T], text: str) -> T:
    return from_dict(cls, json.loads(text))


_HINTS: dict[type, dict[str, object]] = {}


def _hints(cls: type) -> dict[str, object]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _decode(tp: Any, data: Any) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(data, dict):
            raise ValueError(f"{tp.__name__}: expected an object, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(tp):
            if (tp, f.name) in _FLATTEN:
                sub = hints[f.name]
                inner = next(a for a in typing.get_args(sub) if a is not type(None))
                names = {g.name for g in dataclasses.fields(inner)}
                if names & data.keys():
                    kwargs[f.name] = _decode(inner, {k: data[k] for k in names if k in data})
                continue
            if f.name in data:
                kwargs[f.name] = _decode(hints[f.name], data[f.name])
        return tp(**kwargs)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return _decode(option, data)
            except (ValueError, TypeError):
                continue
        raise ValueError(f"{data!r} matches none of {tp}")
    if origin is tuple:
        if not isinstance(data, list):
            raise ValueError(f"expected a list for {tp}, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in data)
        return tuple(_decode(a, v) for a, v in zip(args, data, strict=True))
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {tp}, got {type(data).__name__}")
        return {k: _decode(args[1], v) for k, v in data.items()}
    if origin is list:
        return [_decode(args[0], v) for v in data]
    if tp is bytes:
        if not (isinstance(data, dict) and set(data) == {BYTES_KEY}):
            raise ValueError(f"expected {{{BYTES_KEY!r}: ...}} for bytes, got {data!r}")
        return bytes.fromhex(data[BYTES_KEY])
    if tp is Any:
        return data
    if tp is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if isinstance(tp, type) and not isinstance(data, tp):
        raise ValueError(f"expected {tp.__name__}, got {type(data).__name__}")
    if tp is int and isinstance(data, bool):
        raise ValueError("expected int, got bool")
    return data
