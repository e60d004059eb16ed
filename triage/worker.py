"""Worker process: reads one file at a time, once, and does everything that touches content.

The chunks of one sequential read feed every stream algorithm of the registry (MD5, SHA-1,
SHA-256); the first chunk feeds libmagic;
an image's bytes (kept in memory only for images) are decoded once, at reduced size where
the format allows (JPEG draft mode), and that one decoded image feeds every perceptual
hash (every picture algorithm of the registry). Decoded pixels never leave this process:
only hex values, sizes and statuses are sent back to the supervisor.

Everything native (libmagic, Pillow's codecs, libtsk via the source) runs here, never in
the supervisor, so a crash or a hang costs one worker, not the scan.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Protocol

from hashsets.algorithms import (
    ALGORITHMS,
    Algorithm,
    PictureAlgorithm,
    StreamAlgorithm,
    compute_all,
    computed,
    get,
    register,
)

from . import faults, membudget
from .carving import BlockCollector, is_carve_locator, is_carved_item_locator
from .identify import MAGIC_HEAD_BYTES, Identifier, extension_of
from .members import container_kind, nested_head_kind
from .model import (
    DONE,
    ERROR,
    INCOMPLETE,
    SKIPPED,
    FileEntry,
    FileResult,
    HashValue,
    InnerItem,
    MediaMetadata,
    PictureFacts,
    Problem,
    VideoFacts,
    pickled_by_fields,
)
from .picturecheck import DamagedPicture, jpeg_shortfall
from .sources import open_spec
from .sources.base import ContentChangedError, Source
from .util import display_bytes

if TYPE_CHECKING:
    from PIL import Image

    from .members import Limits

CHUNK_SIZE = 1 << 20
#: Stage names, shared with the supervisor through one integer per worker.
STAGES = ("idle", "open", "read", "identify", "decode", "hash", "expand", "send")
STAGE_INDEX = {name: i for i, name in enumerate(STAGES)}
#: Pillow formats never decoded: EPS runs Ghostscript as a subprocess (RELIABILITY #15).
NEVER_DECODE = frozenset({"EPS"})
#: Pillow formats it can identify but never rasterise on this platform (vector metafiles).
NO_RASTER_DECODER = frozenset({"WMF"})
#: MIME types libmagic gives from weak heuristics rather than a signature (TGA has no magic
#: number): when such a file does not decode and its name does not claim that format either,
#: it is most likely not that format at all, so the failure is a note, not an error.
WEAK_SIGNATURES = frozenset({"image/x-tga"})
#: Longest error message kept; decoder messages never contain pixels, but stay bounded.
MAX_MESSAGE = 500


def _computed_names() -> tuple[str, ...]:
    return tuple(a.name for a in computed())


class StageCell(Protocol):
    """The shared integer through which a worker tells the supervisor its stage."""

    value: int


@dataclass(frozen=True)
class WorkerOptions:
    perceptual: bool = True
    #: Algorithms to compute, by registry name (default: every registered algorithm that
    #: can be computed; picture algorithms only with ``perceptual``).
    algorithms: tuple[str, ...] = field(default_factory=_computed_names)
    #: JPEG draft-mode target: the decoder scales by 1/2, 1/4 or 1/8 while the result stays
    #: at least this large in both dimensions. 0 decodes at full size.
    draft_size: int = 360
    #: Pixel count above which an image is refused as a decompression bomb.
    max_pixels: int = membudget.DEFAULT_MAX_PIXELS  # Pillow's own hard limit
    #: Larger image files are hashed but not decoded (their bytes would sit in memory).
    max_decode_bytes: int = 512 << 20
    #: Address-space limit per worker in bytes (RLIMIT_AS); None for no limit. The default
    #: lets every picture under the default max_pixels decode (see membudget).
    memory_limit: int | None = membudget.DEFAULT_WORKER_MEMORY
    #: Hash the picture's dihedral variants (rotations, mirror images) and, when it has
    #: uniform dark borders, its unletterboxed form too (issue 14).
    variants: bool = True
    #: Set by the worker for a task with ``full_decode`` (a confirmation pass).
    confirming: bool = False
    #: Look inside archives and documents, and carve pictures embedded in other data.
    containers: bool = True
    #: Larger containers are hashed but not expanded (their bytes would sit in memory).
    max_container_bytes: int = 512 << 20
    #: Larger non-media files are hashed but not searched for embedded pictures.
    max_carve_bytes: int = 64 << 20
    max_depth: int = 5
    max_members: int = 10_000
    max_total_bytes: int = 2 << 30
    max_ratio: float = 200.0
    #: Expansion time per top-level container (``Limits.max_seconds``: decoding and
    #: hashing the members are not counted; the scan lowers it to half ``--timeout``).
    container_seconds: float = 30.0
    # -- video (issue 15, triage.video) --
    #: Decode videos and hash their frames with vPDQ.
    video: bool = True
    #: Seconds of video per hashed frame, as vPDQ's seconds_per_hash (1: Meta's default of
    #: one frame per second; 0: every frame).
    video_seconds_per_hash: float = 1.0
    #: Scale frames to N x N before PDQ (Meta's downsample option; 0: the stream's size).
    video_size: int = 0
    #: Most frames hashed per video.
    video_max_frames: int = 100_000
    #: Most pixels per decoded frame (8K UHD).
    video_max_pixels: int = 7680 * 4320
    #: Decoding time budget: base + duration x factor seconds, at most the ceiling.
    video_base_seconds: float = 60.0
    video_seconds_per_second: float = 1.0
    video_max_seconds: float = 1800.0
    #: Videos up to this size are kept in memory after the single read and decoded from
    #: there; larger ones are read a second time from the evidence for decoding.
    video_memory_bytes: int = 256 << 20
    #: Carving a disk image's unallocated space, slack and unpartitioned space (issue 17):
    #: bounds per carving area (items, carved bytes, bytes per item); the first two are
    #: ``scan --carve-max-items`` and ``--carve-max-bytes``.
    carve_max_items: int = 10_000
    carve_max_bytes: int = 4 << 30
    carve_max_item_bytes: int = 64 << 20
    #: A block-hash set (``hashsets.blocks``) to find fragments of known files in carving
    #: areas with; None: no fragment matching (none imported).
    block_store: str | None = None
    #: Read pictures' EXIF and videos' container tags (issue 16, :mod:`triage.metadata`)
    #: from the picture or container opened for hashing.
    metadata: bool = True

    def stream_algorithms(self) -> list[StreamAlgorithm]:
        return [a for a in map(get, self.algorithms) if isinstance(a, StreamAlgorithm)]

    def picture_algorithms(self) -> list[PictureAlgorithm]:
        return [a for a in map(get, self.algorithms) if isinstance(a, PictureAlgorithm)]

    def container_limits(self) -> Limits:
        from .members import Limits

        return Limits(max_depth=self.max_depth, max_members=self.max_members,
                      max_total_bytes=self.max_total_bytes, max_ratio=self.max_ratio,
                      max_member_bytes=min(self.max_container_bytes, 512 << 20),
                      max_seconds=self.container_seconds, memory_bytes=self.memory_limit)


@dataclass(frozen=True)
class Task:
    file_id: int
    entry: FileEntry
    display_path: str
    extension: str | None
    #: How many times the file has been handed to a worker, this time included.
    attempt: int = 1
    #: Workers that died on this file before (this run or earlier ones): quarantine counts.
    crashes: int = 0
    #: Decode every picture of the file at full size (no JPEG draft mode): the second
    #: pass that confirms draft-decoded near candidates (issue 14, :mod:`triage.confirm`).
    full_decode: bool = False


@dataclass(slots=True)
class _Draft:
    """One file's result while this worker builds it (mutable, never leaves this module):
    :meth:`freeze` gives the :class:`~triage.model.FileResult` that is sent."""

    file_id: int
    status: str = "done"
    stage: str | None = None
    reason: str | None = None
    error_class: str | None = None
    attempts: int = 1
    read_status: str | None = None
    mime: str | None = None
    media_kind: str | None = None
    ext_mismatch: int | None = None
    hashes: list[HashValue] = field(default_factory=list)
    image: PictureFacts | None = None
    warnings: list[Problem] = field(default_factory=list)
    children: list[InnerItem] = field(default_factory=list)
    video: VideoFacts | None = None
    full_decode: bool = False
    metadata: MediaMetadata | None = None

    def freeze(self) -> FileResult:
        return FileResult(
            file_id=self.file_id, status=self.status, stage=self.stage, reason=self.reason,
            error_class=self.error_class, attempts=self.attempts,
            read_status=self.read_status, mime=self.mime,
            media_kind=self.media_kind, ext_mismatch=self.ext_mismatch,
            hashes=tuple(self.hashes), image=self.image, warnings=tuple(self.warnings),
            children=tuple(self.children), video=self.video, full_decode=self.full_decode,
            metadata=self.metadata)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Sent before a task's final result: the result as it stood once the file was read and
    its digests known (see :func:`process_entry`)."""

    result: FileResult


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Progress:
    """Sent while a container is expanded, before an inner item of ``size`` bytes is
    identified, decoded and hashed, and again (``size`` 0) once it is: the supervisor gives
    each inner item the deadline a file of its size gets (``pipeline.file_deadline``), so a
    container of many pictures is never killed for the time its members take, while a
    member that hangs still is."""

    size: int


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class VideoBudget:
    """Sent before a video is decoded (issue 15): the decoding time budget it grows to
    with its duration (``triage.video.VideoLimits.budget``); the supervisor raises the
    file's deadline to it plus the base timeout, so that only a decoder that hangs past its
    own budget is killed."""

    seconds: float


class UnsupportedImage(Exception):
    """Media by signature, but no decoder here (RAW, SVG, WMF, ...)."""


class HeifNotDecoded(UnsupportedImage):
    """A HEIF picture that libheif refuses as not decodable here (a codec or feature this
    build lacks, one of its security limits): a coverage gap, the message says why."""


def _short(e: BaseException) -> str:
    msg = str(e) or e.__class__.__name__
    return msg if len(msg) <= MAX_MESSAGE else msg[:MAX_MESSAGE] + "..."


def _pillow_formats() -> tuple[str, ...]:
    from PIL import Image

    from . import heif

    heif.register()  # pillow-heif's HEIF opener, in this (decoding) process only
    Image.init()
    return tuple(sorted(f for f in Image.OPEN if f not in NEVER_DECODE))


def decode_image(data: bytes, options: WorkerOptions,
                 inspect: Callable[[Image.Image], None] | None = None
                 ) -> tuple[Image.Image, PictureFacts, list[Problem]]:
    """Decode the first frame of an image, reduced where the format allows.

    Returns ``(image, facts, warnings)``. Raises on any decoding problem: truncated data
    (strict; a JPEG whose data is provably shorter than its header says raises
    :class:`~triage.picturecheck.DamagedPicture` before decoding, see there), decompression
    bombs (Pillow's warning is an error here), unknown format, a picture the memory budget
    cannot carry (:class:`~triage.membudget.MemoryBudgetExceeded`; a grant taken for a large
    picture is the caller's to release, see :mod:`membudget`).

    ``inspect`` is called with the picture once opened (headers read, before decoding:
    TIFF decoding drops the orientation tag): the metadata reader, issue 16, which reads
    the picture already open and its bytes in memory, never the file again (and never
    needs the pixels: :func:`triage.metadata.from_picture`).
    """
    from PIL import Image, ImageFile, UnidentifiedImageError

    from . import heif

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    # Pillow warns above MAX_IMAGE_PIXELS (here an error) and refuses above twice that.
    Image.MAX_IMAGE_PIXELS = options.max_pixels
    notes: list[Problem] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        formats = _pillow_formats()
        try:
            im: Image.Image = Image.open(io.BytesIO(data), formats=formats)
        except UnidentifiedImageError:
            _heif_refusal(data)
            raise
        if im.format in NO_RASTER_DECODER:
            raise UnsupportedImage(f"no raster decoder for {im.format}")
        if im.format in ("JPEG", "MPO"):  # libjpeg fills missing data silently
            shortfall = jpeg_shortfall(data)
            if shortfall:
                raise DamagedPicture(f"{shortfall}; not decoded")
        fmt, width, height, mode = im.format, im.width, im.height, im.mode
        if inspect is not None:
            inspect(im)
        frames: int | None
        try:
            frames = int(getattr(im, "n_frames", 1))
        except Exception:  # counting frames of a damaged animation is not worth failing
            frames = None
        if im.format == "JPEG" and options.draft_size:
            im.draft("RGB" if im.mode == "RGB" else None,
                     (options.draft_size, options.draft_size))
        # Size known, nothing decoded yet: wait for memory (or refuse) before decoding.
        membudget.admit(im.width, im.height, im.mode,
                        [a.name for a in options.picture_algorithms()], options.memory_limit)
        try:
            im.load()
            if fmt == "HEIF" and im.width * im.height > width * height:
                # The grant and the pixel limit were for the header's size.
                raise heif.HeifDecodeError(
                    f"HEIF decoder {heif.register()}: decoded to {im.width}x{im.height}, "
                    f"more than the {width}x{height} of its header")
        except BaseException as e:
            membudget.release()
            # libheif's errors name the decoder; a MemoryError stays one (the worker's
            # limit), unless it is libheif's own security limit.
            if fmt == "HEIF" and isinstance(e, Exception) and not isinstance(
                    e, heif.HeifDecodeError) and (not isinstance(e, MemoryError)
                                                  or heif.classify(e, "")[0]):
                raise _heif_failure(e) from None
            raise
    for w in caught:
        notes.append(Problem("decode", w.category.__name__, _short(Exception(str(w.message)))))
    decoded_width, decoded_height = im.size
    if fmt == "HEIF":
        many = f" of {frames} images" if frames and frames > 1 else ""
        steps = [f"HEIF primary image{many}, full decode by {heif.register()}",
                 "HEIF irot/imir/clap (rotation, mirror, crop) applied by libheif"]
    else:
        steps = ["first frame"]
    if im.mode == "LAB":
        # Pillow cannot convert LAB to RGB or L without a colour profile; the L channel is
        # the lightness the grey-based hashes want.
        im = im.getchannel("L")
        steps.append("LAB: lightness channel used as grey")
    if im.format == "JPEG" and options.draft_size and im.size != (width, height):
        steps.append(f"JPEG draft decode to {im.width}x{im.height}")
    steps.append("EXIF orientation not applied")
    facts = PictureFacts(format=fmt, width=width, height=height, mode=mode, frames=frames,
                         decoded_width=decoded_width, decoded_height=decoded_height,
                         preprocessing="; ".join(steps))
    return im, facts, notes


def _heif_failure(e: BaseException) -> Exception:
    """libheif's exception as this worker's: a coverage gap (:class:`HeifNotDecoded`) or
    damage (:class:`~triage.heif.HeifDecodeError`), the reason naming the decoder."""
    from . import heif

    gap, reason = heif.classify(e, heif.register() or "pillow-heif")
    return HeifNotDecoded(reason) if gap else heif.HeifDecodeError(reason)


def _heif_refusal(data: bytes) -> None:
    """For a picture Pillow could not identify: when it is a HEIF by its brand and libheif
    refuses to open it, raise why (Pillow swallows the plugin's message); else return."""
    from . import heif

    if heif.register() is None or not heif.is_heif(data):
        return
    e = heif.open_error(data)
    if e is not None:
        raise _heif_failure(e) from None


def process_entry(source: Source, identifier: Identifier, task: Task,
                  options: WorkerOptions, set_stage: Callable[[str], None],
                  checkpoint: Callable[[FileResult], None] | None = None,
                  progress: Callable[[int], None] | None = None,
                  budget: Callable[[float], None] | None = None) -> FileResult:
    """Read, identify and hash one entry. Never raises for problems with the file itself:
    they become the result's status, stage and reason.

    ``checkpoint`` receives the result as it stands once the file was read in full and its
    digests are known, before decoding and expansion (the stages that hostile content
    targets): if those crash or hang, the supervisor still records the digests.
    ``progress`` is called around each inner item of a container (see :class:`Progress`);
    ``budget`` with a video's decoding time budget (see :class:`VideoBudget`)."""
    entry, path = task.entry, task.display_path
    result = _Draft(file_id=task.file_id, attempts=task.attempt)
    if task.full_decode:
        options = replace(options, draft_size=0, confirming=True)
        result.full_decode = True
    current = ["idle"]

    def stage(name: str) -> None:
        current[0] = name
        set_stage(name)

    def fail(stage: str, e: BaseException, read_status: str | None = None) -> FileResult:
        result.status, result.stage = "error", stage
        result.error_class = e.__class__.__name__
        result.reason = ("memory limit exceeded (MemoryError)" if isinstance(e, MemoryError)
                         else _short(e))
        if read_status:
            result.read_status = read_status
        return result.freeze()

    if is_carve_locator(entry.locator):  # an image's unallocated space, slack (issue 17)
        from .carving_worker import carve_entry

        return carve_entry(source, identifier, task, options, stage, progress)
    if is_carved_item_locator(entry.locator):  # one carved item, read again (confirmation)
        from .carving_worker import carved_item_entry

        return carved_item_entry(source, identifier, task, options, stage)
    stage("open")
    try:
        faults.check("open", path)
        stream = source.open_entry(entry)
    except ContentChangedError as e:
        return fail("open", e, "unstable")
    except (OSError, ValueError, MemoryError, faults.InjectedFault) as e:
        return fail("open", e, "none")

    hashers = [(a.name, a.new()) for a in options.stream_algorithms()]
    blocks = BlockCollector() if options.block_store else None  # issue 17: fragments
    keep: list[bytes] | None = None
    expand = False
    total = 0
    stage("read")
    try:
        faults.check("read", path)
        first = stream.read(CHUNK_SIZE)
        stage("identify")
        faults.check("identify", path)
        ident = identifier.identify(first[:MAGIC_HEAD_BYTES], task.extension)
        result.mime = ident.mime
        result.media_kind, result.ext_mismatch = ident.media_kind, ident.ext_mismatch
        if ident.problem:
            result.warnings.append(Problem("identify", "IdentifyFailed", ident.problem))
        # Decided once from the first chunk: is this a container to expand, or other data
        # to search for embedded pictures? (Pictures, videos and audio are neither: a
        # photo's EXIF thumbnail is part of the photo.)
        kind = container_kind(first, ident.mime)
        container = kind if options.containers else None
        expand = options.containers and (container is not None
                                         or ident.media_kind == "other")
        keep_limit = _keep_limit(ident.media_kind, container, expand, options)
        if keep_limit and (entry.size or 0) <= keep_limit:
            keep = [first]
        stage("read")
        chunk = first
        while chunk:
            for _, hasher in hashers:
                hasher.update(chunk)
            if blocks is not None:
                blocks.update(chunk)
            total += len(chunk)
            chunk = stream.read(CHUNK_SIZE)
            if chunk and keep is not None:
                keep.append(chunk)
                if total > keep_limit:
                    keep = None
    except ContentChangedError as e:
        return fail("read", e, "unstable")
    except (OSError, ValueError, MemoryError, faults.InjectedFault) as e:
        return fail(current[0], e, "none")
    finally:
        try:
            stream.close()
        except ContentChangedError as e:
            fail("read", e, "unstable")
        except OSError:
            pass
    if result.status == "error":
        return result.freeze()
    if getattr(stream, "atime_preserved", True) is False:
        result.warnings.append(Problem("read", "AccessTimeMayChange",
                                "O_NOATIME refused (not the file's owner, no CAP_FOWNER): "
                                "reading may have updated the access time"))

    bad = list(getattr(stream, "bad_ranges", []) or [])
    if bad:
        # A digest over fill bytes is never presented as the file's hash (RELIABILITY #4).
        result.read_status = "partial"
        shown = ", ".join(f"{o}+{n}" for o, n in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        result.status, result.stage, result.error_class = "error", "read", "UnreadableRanges"
        result.reason = f"unreadable ranges (offset+length, zero-filled): {shown}{more}"
        return result.freeze()
    if entry.size is not None and total != entry.size:
        result.read_status = "partial" if total < entry.size else "full"
        result.warnings.append(Problem("read", "SizeMismatch",
                                f"read {total} bytes, metadata says {entry.size}"))
        if total < entry.size:
            result.status, result.stage, result.error_class = "error", "read", "ShortRead"
            result.reason = f"short read: {total} of {entry.size} bytes"
            return result.freeze()
    result.read_status = "full"
    result.hashes = [HashValue(name, hasher.hexdigest()) for name, hasher in hashers]

    data = b"".join(keep) if keep is not None else None
    keep = None
    if checkpoint is not None and data is not None:
        checkpoint(result.freeze())
    if options.perceptual and result.media_kind == "image":
        if data is None:
            result.warnings.append(Problem("decode", "TooLarge",
                                    f"{total} bytes is over the decode limit "
                                    f"({options.max_decode_bytes}); not decoded"))
            _coverage_gap(result, "decode", f"picture not decoded: {total} bytes is over "
                          f"the decode limit ({options.max_decode_bytes} bytes); digests "
                          "kept, no perceptual hash")
        else:
            _perceptual(result, data, options, stage, path)
    elif options.metadata and result.media_kind == "image" and data is not None:
        _metadata_only(result, data, stage)
    if options.video and result.media_kind == "video" and result.status == DONE:
        if data is None and checkpoint is not None:
            checkpoint(result.freeze())
        _video(result, data, lambda: source.open_entry(entry), total, options, stage, path,
               budget)
    if kind == "disk" and not options.containers and result.status == DONE:
        result.warnings.append(Problem("container", "NestedDiskImage",
                                       f"nested disk image ({nested_head_kind(first)}): not "
                                       "opened: looking inside files is off (--no-containers)"))
    elif kind is not None and not options.containers and result.status == DONE:
        # Recognised but not expanded, by the examiner's choice: said, never silent.
        result.warnings.append(Problem("container", "ContainerNotExpanded",
                                       f"{kind} container: not expanded: looking inside files "
                                       "is off (--no-containers)"))
    if container is not None and data is None and result.status == DONE:
        # A container recognised but too large to hold in memory: a bound, not by design.
        why = (f"{total} bytes is over --container-max-mb ({options.max_container_bytes} "
               "bytes)")
        result.status, result.stage, result.error_class = INCOMPLETE, "expand", \
            "NestedDiskImage" if kind == "disk" else "ContainerLimit"
        result.reason = (f"nested disk image ({nested_head_kind(first)}): not opened: {why}; "
                         "scan it as evidence of its own" if kind == "disk"
                         else f"limit: {container} container not expanded: {why}")
    if data is not None and expand and result.status == DONE:
        stage("expand")
        _expand(result, data, entry.path, identifier, options, stage, path, progress)
    if blocks is not None and options.block_store:
        from .carving_worker import file_fragments

        file_fragments(result, blocks, options.block_store, stage)
    return result.freeze()


def _keep_limit(kind: str, container: str | None, expand: bool,
                options: WorkerOptions) -> int:
    """How large a file may be for its bytes to be kept in memory after the single read:
    images (to decode), containers (to expand) and other data (to carve pictures from)."""
    limit = (options.max_decode_bytes if (options.perceptual or options.metadata)
             and kind == "image" else 0)
    if options.video and kind == "video":
        limit = max(limit, options.video_memory_bytes)
    if container is not None:
        limit = max(limit, options.max_container_bytes)
    elif expand:
        limit = max(limit, options.max_carve_bytes)
    return limit


def _video(result: _Draft, data: bytes | None, reopen: Callable[[], Any], size: int,
           options: WorkerOptions, stage: Callable[[str], None], path: str,
           budget: Callable[[float], None] | None, seconds: float | None = None) -> None:
    """Decode a video and hash its frames with vPDQ (:mod:`triage.video`), from ``data``
    when it was kept in memory, else read again through ``reopen``; record the facts and
    frames, or why not (a bound or an undecodable stream is a coverage gap, damage an
    error). ``seconds`` caps the time budget (inner items of containers)."""
    from . import video

    stage("decode")
    limits = video.limits_of(options)
    if seconds is not None:
        limits = replace(limits, max_seconds=min(limits.max_seconds, seconds))

    def opener() -> Any:
        if data is not None:
            return io.BytesIO(data)
        return video.ReopeningReader(reopen, size)

    try:
        faults.check("decode", path)
        facts = video.hash_video(opener, limits, budget, result.mime,
                                 (lambda c: _video_metadata(result, c))
                                 if options.metadata else None)
    except video.VideoProblem as e:
        if e.gap is None:
            result.warnings.append(Problem("decode", "NoVideoStream", _short(e)))
        elif e.gap:
            result.warnings.append(Problem("decode", "VideoNotDecoded", _short(e)))
            _coverage_gap(result, "decode", f"video not decoded: {_short(e)}; digests kept, "
                          "no vPDQ")
        else:
            result.status, result.stage = ERROR, "decode"
            result.error_class, result.reason = "VideoDecodeError", _short(e)
        return
    except MemoryError as e:
        result.status, result.stage, result.error_class = ERROR, "decode", "MemoryError"
        result.reason = f"memory limit exceeded (MemoryError) while decoding the video: {e}"
        return
    except (OSError, ValueError) as e:
        result.status, result.stage = ERROR, "decode"
        result.error_class, result.reason = e.__class__.__name__, _short(e)
        return
    result.video = facts
    if facts.stopped:
        result.warnings.append(Problem("decode", "VideoStopped", _short(Exception(
            facts.stopped))))
        _coverage_gap(result, "decode", f"video decoded in part: {facts.stopped}; "
                      f"{len(facts.frames)} hashed frames kept")


def _picture_metadata(result: _Draft, image: Image.Image, data: bytes) -> None:
    """Read the EXIF (issue 16) of a picture opened from ``data`` into ``result``, without
    decoding it: never raises for the data; a problem is a note (the file's status is not
    affected)."""
    from . import metadata

    try:
        meta, notes = metadata.from_picture(image, data)
    except Exception as e:  # a bug or a hostile case the reader missed: a note, not an error
        meta, notes = None, [metadata.failure(e, "EXIF")]
    result.metadata = meta
    result.warnings.extend(notes)


def _metadata_only(result: _Draft, data: bytes, stage: Callable[[str], None]) -> None:
    """Read a picture's metadata from its bytes in memory without decoding it (perceptual
    hashing off, or the decode failed): Pillow's open reads the headers only. Its
    decompression-bomb check is off here: a bound on decoding, made by ``Image.open`` after
    the format's header reader has run, so it guards nothing here; with it, the metadata of
    a picture over the limit depended on the limit in force (``--max-pixels`` once a picture
    was decoded, Pillow's default with ``--no-perceptual``)."""
    from PIL import Image

    stage("decode")
    bomb_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.MAX_IMAGE_PIXELS = None
            im = Image.open(io.BytesIO(data), formats=_pillow_formats())
    except Exception:
        return  # not a picture Pillow opens: nothing to read (the decode says why)
    finally:
        Image.MAX_IMAGE_PIXELS = bomb_limit
    try:
        if im.format not in NO_RASTER_DECODER:
            _picture_metadata(result, im, data)
    finally:
        im.close()


def _video_metadata(result: _Draft, container: Any) -> None:
    """Read a video's container and stream tags (issue 16) into ``result``."""
    from . import metadata

    try:
        meta, notes = metadata.from_container(container)
    except Exception as e:
        meta, notes = None, [metadata.failure(e, "container tags")]
    result.metadata = meta
    result.warnings.extend(notes)


def _perceptual(result: _Draft, data: bytes, options: WorkerOptions,
                stage: Callable[[str], None], path: str) -> None:
    """Decode once and add every picture algorithm's value to ``result`` (or record why
    not; a failure in one algorithm keeps none of them)."""
    from PIL import UnidentifiedImageError

    def fail(where: str, e: BaseException) -> None:
        result.status, result.stage = "error", where
        result.error_class = e.__class__.__name__
        result.reason = ("memory limit exceeded (MemoryError)" if isinstance(e, MemoryError)
                         else _short(e))

    stage("decode")
    read = [False]

    def inspect(im: Image.Image) -> None:
        read[0] = True
        _picture_metadata(result, im, data)

    try:
        faults.check("decode", path)
        image, facts, notes = decode_image(data, options,
                                           inspect if options.metadata else None)
    except Exception as e:
        if options.metadata and not read[0] and not isinstance(e, faults.InjectedFault):
            # Not decoded (damaged, a bound, no decoder): its metadata is still read, from
            # the bytes already in memory.
            _metadata_only(result, data, stage)
        if isinstance(e, membudget.MemoryBudgetExceeded):
            # A sound picture this machine's memory bound cannot carry: not examined, a
            # coverage gap (digests kept and matched), like every other bound.
            result.warnings.append(Problem("decode", "MemoryBudgetExceeded", _short(e)))
            _coverage_gap(result, "decode", f"{_short(e)}; not decoded, digests kept")
            return
        if isinstance(e, HeifNotDecoded):
            result.warnings.append(Problem("decode", "UnsupportedFormat", _short(e)))
            _coverage_gap(result, "decode", f"not decoded: {_short(e)}; digests kept, no "
                          "perceptual hash")
            return
        weak = result.mime in WEAK_SIGNATURES and result.ext_mismatch != 0
        if isinstance(e, UnsupportedImage | UnidentifiedImageError) and not weak:
            # Media by signature, but no decoder takes it (RAW, SVG, JXL, ...): hashed
            # (digests kept and matched), not decoded: a coverage gap, not an error in the
            # file (issue 12's outcome classes).
            result.warnings.append(Problem("decode", "UnsupportedFormat",
                                    f"no decoder for {result.mime}"))
            _coverage_gap(result, "decode", undecodable_reason(result.mime))
            return
        if weak:
            # Pillow's "cannot identify" message names the buffer's memory address: not
            # kept (output is deterministic).
            why = ("no decoder recognises it" if isinstance(e, UnidentifiedImageError)
                   else _short(e))
            result.warnings.append(Problem("decode", "WeakSignature",
                                    f"identified as {result.mime} by a weak heuristic and "
                                    f"not decodable ({why}); probably not an image"))
            return
        fail("decode", e)
        return
    result.warnings.extend(notes)
    stage("hash")
    computed_before = len(result.hashes)
    try:
        faults.check("hash", path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            facts = _picture_hashes(result, image, facts, options)
        # Each conversion of a picture repeats the library's warning (the variants convert
        # it several times): each distinct warning is recorded once.
        result.warnings.extend(dict.fromkeys(Problem("hash", w.category.__name__, _short(
            Exception(str(w.message)))) for w in caught))
    except Exception as e:
        del result.hashes[computed_before:]
        fail("hash", e)
        return
    finally:
        image.close()
        membudget.release()
    result.image = facts


#: Decoded pictures larger than this are hashed as stored only, without variants: the
#: letterbox check and cut hold grey and cropped copies (up to 6 bytes a pixel) that the
#: decode's memory estimate (membudget, 32-36 bytes a pixel) does not include (rotations of
#: large pictures are hashed from a reduced copy, hashsets.algorithms.variants). Every
#: draft-decoded JPEG is far below it; 64 MP adds at most 384 MiB.
VARIANTS_MAX_PIXELS = 64_000_000


def _picture_hashes(result: _Draft, image: Image.Image, facts: PictureFacts,
                    options: WorkerOptions) -> PictureFacts:
    """Every picture algorithm's value of the decoded picture, and with
    ``options.variants`` of its dihedral variants and, when it has dark borders, of its
    unletterboxed form (issue 14; :mod:`hashsets.algorithms.variants`). The value of the
    picture as stored has ``variant`` None; borders found are added to the facts'
    preprocessing. Returns the facts."""
    from hashsets.algorithms.variants import picture_variants

    algorithms = options.picture_algorithms()
    by_name = {a.name: a for a in algorithms}
    large = image.width * image.height > VARIANTS_MAX_PIXELS
    if options.variants and large:
        result.warnings.append(Problem(
            "hash", "VariantsSkipped",
            f"{image.width}x{image.height} decoded pixels is over {VARIANTS_MAX_PIXELS:,}: "
            "rotations, mirror images and letterbox forms not hashed (their transposed "
            "copies are not in the decode's memory estimate); the picture as stored is"))
    if not options.variants or large:
        for alg, value, quality in compute_all(image, algorithms):
            result.hashes.append(HashValue(alg.name, value, quality,
                                           f"{facts.preprocessing}; {alg.preprocessing}"))
        return facts
    values, box = picture_variants(image, algorithms)
    if box is not None:
        facts = replace(facts, preprocessing=(
            f"{facts.preprocessing}; {box.describe(image.width, image.height)} (hashed as "
            "variant 'unletterboxed' as well as the picture as stored)"))
    for v in values:
        alg = by_name[v.algorithm]
        how = f"{facts.preprocessing}; {alg.preprocessing}"
        if v.preprocessing:
            how = f"{how}; {v.preprocessing}"
        result.hashes.append(HashValue(v.algorithm, v.value, v.quality, how,
                                       None if v.variant == "original" else v.variant))
    return facts


#: libmagic's MIME types of formats that Pillow registers under another one
#: (``PIL.Image.MIME``): Pillow format names.
_MAGIC_MIME_ALIASES = {
    "image/x-ms-bmp": "BMP", "image/vnd.microsoft.icon": "ICO",
    "image/x-jp2-codestream": "JPEG2000", "image/x-portable-pixmap": "PPM",
    "image/x-portable-greymap": "PPM", "image/x-portable-bitmap": "PPM",
    "image/x-xbitmap": "XBM", "image/x-xpixmap": "XPM", "image/x-icns": "ICNS",
    "image/x-xv-thumbnail": "XVTHUMB", "image/heic": "HEIF", "image/heic-sequence": "HEIF",
    "image/heif-sequence": "HEIF",
}


def decoder_for(mime: str | None) -> str | None:
    """The Pillow format that decodes pictures of this MIME type here, or None."""
    from PIL import Image

    available = set(_pillow_formats()) - NO_RASTER_DECODER
    by_mime = {m: f for f, m in Image.MIME.items() if f in available}
    fmt = by_mime.get(mime or "") or _MAGIC_MIME_ALIASES.get(mime or "")
    return fmt if fmt in available else None


def undecodable_reason(mime: str | None) -> str:
    """Why a picture that no decoder opened is a coverage gap: a format without a decoder
    here (``format not decodable yet: BPG (image/bpg)``), or a file of a decodable format
    whose decoder does not recognise it (a variant it does not support, or damage: which of
    the two cannot be told)."""
    fmt = decoder_for(mime)
    if fmt is None:
        return (f"format not decodable yet: {format_label(mime)} ({mime}); digests kept, no "
                "perceptual hash")
    return (f"not decoded: {mime} is decodable ({fmt}), but the decoder does not recognise "
            "this file (a variant it does not support, or damaged); digests kept, no "
            "perceptual hash")


def format_label(mime: str | None) -> str:
    """A picture format's short name from its MIME type: ``image/heic`` -> ``HEIC``,
    ``image/x-canon-cr2`` -> ``CANON-CR2``, ``image/svg+xml`` -> ``SVG``."""
    sub = (mime or "").partition("/")[2].removeprefix("x-").removeprefix("vnd.")
    return sub.partition("+")[0].upper() or "unknown"


def _coverage_gap(result: _Draft, stage: str, reason: str) -> None:
    """Record a coverage gap (status ``incomplete``, issue 12's outcome classes): what could
    be done was done, part of the content was not examined. Never hides an error."""
    if result.status == DONE:
        result.status, result.stage, result.reason = INCOMPLETE, stage, reason


def _member_result(data: bytes, name: bytes, identifier: Identifier,
                   options: WorkerOptions, stage: Callable[[str], None],
                   path: str) -> FileResult:
    """Hash, identify and (for pictures) perceptually hash one inner item held in memory."""
    r = _Draft(file_id=0, read_status="full", full_decode=options.confirming)
    r.hashes = []
    for alg in options.stream_algorithms():
        hasher = alg.new()
        hasher.update(data)
        r.hashes.append(HashValue(alg.name, hasher.hexdigest()))
    ident = identifier.identify(data[:MAGIC_HEAD_BYTES], extension_of(name))
    r.mime, r.media_kind, r.ext_mismatch = ident.mime, ident.media_kind, ident.ext_mismatch
    if ident.problem:
        r.warnings.append(Problem("identify", "IdentifyFailed", ident.problem))
    if options.perceptual and r.media_kind == "image":
        if len(data) <= options.max_decode_bytes:
            _perceptual(r, data, options, stage, path)
        else:
            _coverage_gap(r, "decode", f"picture not decoded: {len(data)} bytes is over the "
                          f"decode limit ({options.max_decode_bytes} bytes); digests kept, "
                          "no perceptual hash")
    elif options.metadata and r.media_kind == "image" and len(data) <= options.max_decode_bytes:
        _metadata_only(r, data, stage)
    if options.video and r.media_kind == "video":
        _video(r, data, lambda: io.BytesIO(data), len(data), options, stage, path, None,
               seconds=options.container_seconds)
    stage("expand")
    return r.freeze()


#: How bad each status is, for an item that more than one outcome applies to.
_STATUS_RANK = {DONE: 0, SKIPPED: 0, INCOMPLETE: 1, ERROR: 2}


def _problem_class(flags: tuple[str, ...], status: str) -> str:
    if "nested-disk" in flags:
        return "NestedDiskImage"
    if any(f.startswith("limit:") for f in flags):
        return "ContainerLimit"
    return "NotExpanded" if status == INCOMPLETE else "ContainerProblem"


def _expand(result: _Draft, data: bytes, own_path: bytes, identifier: Identifier,
            options: WorkerOptions, stage: Callable[[str], None], path: str,
            progress: Callable[[int], None] | None = None) -> None:
    """Find the items inside a file (archive and document members, embedded pictures) and
    give each the same treatment as a file. Nothing is written to disk; member names are
    only data.

    Outcomes (issue 11 defects 5 and 10, issue 12's classes): a container stopped at a bound
    (depth, members, bytes, ratio, dictionary, time, memory) or recognised but not expanded
    (RAR, encrypted) is ``incomplete`` with the reason naming the bound and its value; a
    damaged one is an ``error``; a member without data likewise (``Member.status``), and an
    entry that is not a regular file (a tar link, device, directory) is ``skipped`` with
    its kind. Only expansion work counts against the container's time
    (``walk``): each member is identified, decoded and hashed outside it, and ``progress``
    tells the supervisor before and after, so that its deadline is per item."""
    from .members import Found, Note, walk

    limits = options.container_limits()
    name = own_path.rsplit(b"/", 1)[-1]
    media_members: set[tuple[bytes, ...]] = set()
    #: Problems with an item found after the item itself (its index in result.children).
    by_inner: dict[tuple[bytes, ...], int] = {}

    def note(at: tuple[bytes, ...], problem: Problem) -> None:
        target = by_inner.get(at)
        if target is None:
            result.warnings.append(problem)
            return
        item = result.children[target]
        result.children[target] = replace(item, result=replace(
            item.result, warnings=(*item.result.warnings, problem)))

    def stopped(at: tuple[bytes, ...], status: str, error_class: str, reason: str) -> None:
        """Record that the container at ``at`` was not fully expanded: its status becomes
        ``status`` unless it is already as bad; an outcome that does not win is kept as a
        row of the errors table."""
        target = by_inner.get(at)
        current = result if target is None else result.children[target].result
        if _STATUS_RANK[status] <= _STATUS_RANK.get(current.status, 2):
            note(at, Problem("expand", error_class, reason))
            return
        if current.status != DONE and current.reason:
            note(at, Problem(current.stage or "expand", current.error_class or "Problem",
                             current.reason))
        if target is None:
            result.status, result.stage = status, "expand"
            result.error_class, result.reason = error_class, reason
        else:
            item = result.children[target]
            result.children[target] = replace(item, result=replace(
                item.result, status=status, stage="expand", error_class=error_class,
                reason=reason))

    try:
        faults.check("expand", path)
        for ev in walk(data, limits, name=name, mime=result.mime or ""):
            if isinstance(ev, Note):
                note(ev.path, Problem("container", "NestedDiskImage", ev.text))
                continue
            if not isinstance(ev, Found):
                stopped(ev.path, ev.status, _problem_class(ev.flags, ev.status), ev.reason)
                continue
            m = ev.member
            if m.kind == "embedded" and ev.path[:-1] in media_members:
                continue  # thumbnails inside pictures are part of the picture, not items
            inner_display = "!".join(display_bytes(n) for n in ev.path)
            if m.data is not None:
                if progress is not None:
                    progress(len(m.data))
                child = _member_result(m.data, m.name, identifier, options, stage,
                                       f"{path}!{inner_display}")
                if progress is not None:
                    progress(0)
                if child.media_kind in ("image", "video", "audio"):
                    media_members.add(ev.path)
            else:
                status = m.status or ERROR
                child = FileResult(
                    file_id=0, status=status, stage="container", reason=m.reason or "no data",
                    read_status=None if status == SKIPPED else "none",
                    error_class=None if status == SKIPPED
                    else _problem_class(m.flags, status))
            by_inner[ev.path] = len(result.children)
            result.children.append(InnerItem(inner=ev.path, member_kind=m.kind, size=m.size,
                                             mtime=m.mtime, offset=m.offset,
                                             flags=tuple(m.flags), result=child,
                                             kind=m.entry_kind, link_target=m.link_target))
    except MemoryError:
        from .members.base import memory_limit_error

        stopped((), INCOMPLETE, "ContainerLimit", memory_limit_error(None, limits).reason)
    except faults.InjectedFault:
        raise
    except Exception as e:  # a library bug must cost the expansion, not the file's hashes
        stopped((), ERROR, e.__class__.__name__, f"expansion stopped: {_short(e)}")
    # A container is only as complete as what is inside it: each one above an item that
    # was stopped at a bound or not expanded is a coverage gap too, naming the first such
    # item and its reason (the file itself first of all: it is what a reader lists).
    gaps: dict[tuple[bytes, ...], list[InnerItem]] = {}
    for item in result.children:
        if item.result.status == INCOMPLETE:
            for cut in range(len(item.inner)):
                gaps.setdefault(item.inner[:cut], []).append(item)
    for at, inside in gaps.items():
        target = by_inner.get(at)
        current = result if not at else (
            result.children[target].result if target is not None else None)
        if current is None or current.status != DONE:
            continue  # its own outcome (a bound it hit itself, damage) says more
        first = inside[0]
        where = "!".join(display_bytes(n) for n in first.inner[len(at):])
        count = f"{len(inside)} items" if len(inside) > 1 else "an item"
        stopped(at, INCOMPLETE, "ContainerLimit",
                f"not fully examined: {count} inside stopped at a bound or not expanded, "
                f"first {where}: {first.result.reason}")


def worker_main(conn: Connection, spec: tuple[str, Any], options: WorkerOptions,
                stage: StageCell, algorithms: tuple[Algorithm, ...] = ()) -> None:
    """Entry point of a worker, run by :func:`triage.isolation.spawn` (which has already
    isolated the process: limits, no core dumps, stderr discarded, private TMPDIR). Say
    ("ready", None) once set up (or ("init-error", reason) and stop), then serve tasks until
    told to stop (None) or EOF. Replies are a FileResult per task, preceded by
    :class:`Checkpoint` messages.

    ``algorithms`` are the supervisor's algorithm objects for ``options.algorithms``
    (pickled by reference: unpickling imports their defining module). Those this process's
    registry lacks (one registered in-process by the supervisor, as a test does) are
    registered here, so that both processes agree on what a name computes."""
    try:
        for alg in algorithms:
            if alg.name not in ALGORITHMS:
                register(alg)
        for name in options.algorithms:
            get(name)  # an unknown name stops the worker here, not on every file
        source = open_spec(spec)
        identifier = Identifier()
    except Exception as e:
        conn.send(("init-error", f"{e.__class__.__name__}: {_short(e)}"))
        return
    membudget.install(conn)
    conn.send(("ready", None))

    def set_stage(name: str) -> None:
        stage.value = STAGE_INDEX[name]

    def checkpoint(result: FileResult) -> None:
        conn.send(Checkpoint(result))

    def progress(size: int) -> None:
        conn.send(Progress(size))

    def budget(seconds: float) -> None:
        conn.send(VideoBudget(seconds))

    while True:
        try:
            task = membudget.next_message(conn)  # tasks queue up in the pipe (prefetch)
        except (EOFError, OSError):
            break
        if task is None:
            break
        result = process_entry(source, identifier, task, options, set_stage, checkpoint,
                               progress, budget)
        set_stage("send")
        conn.send(result)
        set_stage("idle")
    source.close()
