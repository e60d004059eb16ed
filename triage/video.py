"""Video frame hashing with vPDQ in the worker (issue 15). Decoded frames never leave this
process and are never written anywhere: only PDQ values, qualities, frame numbers and
timestamps come out.

Frames are prepared exactly as Meta's vPDQ does it (ThreatExchange ``vpdq/cpp``:
``ffmpegwrapper.cpp``, ``filehasher.cpp``, ``pdqbufferhasher.cpp``):

* the first video stream of the container; its frame rate is ``avg_frame_rate``, else
  ``r_frame_rate``;
* every decoded frame is counted (``frame_number`` from 0, in output order); with a
  sampling of ``s`` seconds per hash a frame is hashed when ``frame_number % int(s * fps)
  == 0`` (every frame when that is 0, and for ``s`` = 0); its timestamp is ``frame_number
  / fps``;
* a hashed frame is converted by swscale to RGB24 at the stream's width and height (or at
  the ``size`` x ``size`` Meta's downsample option gives, 128 for its ``-128x128`` files)
  with ``SWS_AREA``, then PDQ is computed from that RGB buffer at that size
  (``pdqhash.compute``: PDQ's luma conversion and Jarosz filters, the same C++ code).

Checked against Meta's reference output (``testdata/video/vpdq``, every frame hashed):
docs/video.md gives the distance distribution.

Bounds (each names itself when hit; what was hashed before is kept):

* a time budget growing with the container's duration: ``base + duration x factor``
  seconds, at most ``max_seconds`` (the supervisor's deadline for the file is raised to it,
  plus a margin, through the ``budget`` callback: a native decoder that hangs is killed);
* at most ``max_frames`` hashed frames;
* at most ``max_pixels`` pixels per decoded frame (checked before decoding, from the
  stream's parameters, and on every frame: a stream can change size);
* the worker's address-space limit (``--memory-limit``) covers the decoder.

A decoding error before any frame was hashed is an error; after some were, decoding stops
and the video is a coverage gap (``incomplete``) with the frames hashed so far.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from .model import VideoFacts, VideoFrame
from .textsafe import visible

#: Container tags kept as the video's own facts (DESIGN.md: metadata tags are facts about a
#: file, kept apart): the creation time and what names the recording device and place.
#: Free text (title, comment, description) is never kept.
DEVICE_TAGS = ("make", "model", "com.apple.quicktime.make", "com.apple.quicktime.model",
               "com.apple.quicktime.software", "com.apple.quicktime.creationdate",
               "com.apple.quicktime.location.ISO6709", "com.android.manufacturer",
               "com.android.model", "com.android.version", "location", "location-eng",
               "encoder", "handler_name")
#: Longest tag value kept.
MAX_TAG = 200
#: swscale's area averaging, as Meta's ``DOWNSAMPLE_METHOD = SWS_AREA``.
INTERPOLATION = "AREA"
#: Meta's PDQ frame hasher refuses frames smaller than this on either side
#: (``pdqbufferhasher.cpp`` ``MIN_HASHABLE_DIM``).
MIN_HASHABLE_DIM = 5


class VideoProblem(Exception):
    """The video cannot be hashed at all (no decodable video stream, over a bound before
    any frame): ``gap`` True for a coverage gap (a bound, a stream not decodable here),
    False for damage, None when there is nothing to hash (no video stream: an audio-only
    MP4 is all examined)."""

    def __init__(self, message: str, *, gap: bool | None) -> None:
        super().__init__(message)
        self.gap = gap


@dataclass(frozen=True)
class VideoLimits:
    """The per-video bounds and sampling (from :class:`triage.worker.WorkerOptions`)."""

    seconds_per_hash: float = 1.0
    size: int = 0
    max_frames: int = 100_000
    max_pixels: int = 7680 * 4320
    base_seconds: float = 60.0
    seconds_per_second: float = 1.0
    max_seconds: float = 1800.0

    def budget(self, duration: float | None) -> float:
        """The decode time budget of a video of ``duration`` seconds (unknown: the base)."""
        grow = max(0.0, duration or 0.0) * self.seconds_per_second
        return min(self.max_seconds, self.base_seconds + grow)


def _rate(stream: Any) -> float | None:
    for r in (stream.average_rate, stream.base_rate, getattr(stream, "guessed_rate", None)):
        if r is not None and r.numerator and r.denominator:
            return float(r)
    return None


def _duration(container: Any, stream: Any) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return None


def _tags(container: Any, stream: Any) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    meta: dict[str, str] = {}
    for source in (stream.metadata or {}, container.metadata or {}):  # container wins
        for k, v in source.items():
            meta[str(k)] = str(v)
    created = meta.get("creation_time") or meta.get("com.apple.quicktime.creationdate")
    lowered = {k.lower(): v for k, v in meta.items()}
    kept = tuple(sorted((k, visible(lowered[k.lower()])[:MAX_TAG]) for k in DEVICE_TAGS
                        if k.lower() in lowered))
    return (visible(created)[:MAX_TAG] if created else None), kept


#: MIME types libmagic calls video that FFmpeg has no demuxer for: not opened is a coverage
#: gap (a format not decodable here), not damage.
NO_DEMUXER = frozenset({"video/x-mng"})


def hash_video(opener: Callable[[], IO[bytes]], limits: VideoLimits,
               budget: Callable[[float], None] | None = None,
               mime: str | None = None,
               on_open: Callable[[Any], None] | None = None) -> VideoFacts:
    """Decode the first video stream from ``opener()`` (a seekable binary file object,
    closed here) and hash its frames with vPDQ (see the module doc). ``budget(seconds)`` is
    told the time budget once the duration is known, before decoding starts.

    Raises :class:`VideoProblem` when nothing can be hashed; returns the facts (with
    ``stopped`` set when a bound or a decoding error ended it early) otherwise.
    ``on_open`` is called with the container once opened, before decoding (the metadata
    reader, issue 16), whatever happens to decoding after."""
    import av
    import numpy as np
    import pdqhash

    av.logging.set_level(None)  # FFmpeg's messages can quote container text: never logged
    f = opener()
    try:
        try:
            container = av.open(f, mode="r", metadata_errors="ignore")
        except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError) as e:
            if mime in NO_DEMUXER:
                raise VideoProblem(f"format not decodable here: {mime} (FFmpeg has no "
                                   "demuxer for it)", gap=True) from e
            raise VideoProblem(f"container not readable: {_why(e)}", gap=False) from e
        with container:
            if on_open is not None:
                on_open(container)
            return _decode(container, limits, budget, av, np, pdqhash)
    finally:
        f.close()


def _why(e: BaseException) -> str:
    strerror = getattr(e, "strerror", None)
    if strerror and hasattr(e, "log"):  # av.FFmpegError: its text without the errno
        return str(strerror)[:300]
    text = str(e) or e.__class__.__name__
    # PyAV's messages name the file object's repr (a memory address): not deterministic.
    return text.split(": '<", 1)[0][:300]


def _decode(container: Any, limits: VideoLimits, budget: Callable[[float], None] | None,
            av: Any, np: Any, pdqhash: Any) -> VideoFacts:
    streams = list(container.streams)
    video = [s for s in streams if s.type == "video"]
    audio = [s for s in streams if s.type == "audio"]
    if not video:
        raise VideoProblem("no video stream (nothing to hash)", gap=None)
    stream = video[0]
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    fps = _rate(stream)
    duration = _duration(container, stream)
    created, tags = _tags(container, stream)
    codec = ctx.name if ctx is not None else None
    facts: dict[str, Any] = dict(
        container=container.format.name if container.format else None, codec=codec,
        width=width, height=height, frame_rate=round(fps, 6) if fps else None,
        duration=round(duration, 6) if duration is not None else None,
        streams=len(streams), video_streams=len(video), audio_streams=len(audio),
        creation_time=created, tags=tags, seconds_per_hash=limits.seconds_per_hash)
    if width < MIN_HASHABLE_DIM or height < MIN_HASHABLE_DIM:
        raise VideoProblem(f"video stream {width}x{height}: smaller than "
                           f"{MIN_HASHABLE_DIM} pixels on a side, not hashable", gap=True)
    if width * height > limits.max_pixels:
        raise VideoProblem(f"limit: video frames of {width}x{height} are over "
                           f"--video-max-pixels ({limits.max_pixels}); not decoded", gap=True)
    if not fps:
        raise VideoProblem("frame rate unknown: frame timestamps cannot be given as vPDQ "
                           "does; not hashed", gap=True)
    out_w, out_h = (limits.size, limits.size) if limits.size else (width, height)
    steps = [f"PyAV {av.__version__} (FFmpeg {getattr(av, 'ffmpeg_version_info', '?')})",
             f"first video stream ({codec})",
             "every frame" if limits.seconds_per_hash == 0 else
             f"every {max(1, int(limits.seconds_per_hash * fps))}th decoded frame "
             f"({limits.seconds_per_hash:g} s at {fps:.3f} fps)",
             f"swscale to RGB24 at {out_w}x{out_h}, SWS_AREA",
             "pdqhash.compute (Meta's vPDQ frame hashing)",
             "timestamp = frame number / frame rate",
             "consecutive identical hashes collapsed"]
    seconds = limits.budget(duration)
    if budget is not None:
        budget(seconds)
    frame_mod = max(1, int(limits.seconds_per_hash * fps))
    ctx.thread_type = "AUTO"
    frames: list[VideoFrame] = []
    decoded = hashed = 0
    stopped: str | None = None
    started = time.monotonic()
    try:
        for frame in container.decode(stream):
            n = decoded
            decoded += 1
            if frame.width * frame.height > limits.max_pixels:
                stopped = (f"limit: frame {n} is {frame.width}x{frame.height}, over "
                           f"--video-max-pixels ({limits.max_pixels})")
                break
            if n % frame_mod == 0:
                if hashed >= limits.max_frames:
                    stopped = (f"limit: {limits.max_frames} frames hashed "
                               "(--video-max-frames)")
                    break
                rgb = frame.reformat(width=out_w, height=out_h, format="rgb24",
                                     interpolation=INTERPOLATION).to_ndarray()
                bits, quality = pdqhash.compute(rgb)
                del rgb
                value = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()
                hashed += 1
                if frames and frames[-1].pdq == value:
                    last = frames[-1]
                    frames[-1] = VideoFrame(last.frame_number, last.timestamp, last.pdq,
                                            last.quality, last.repeats + 1)
                else:
                    frames.append(VideoFrame(n, round(n / fps, 6), value, int(quality)))
            if time.monotonic() - started > seconds:
                stopped = (f"limit: time budget of {seconds:.0f} s for a "
                           f"{_seconds(duration)} video used up at frame {n} "
                           f"({n / fps:.3f} s)")
                break
    except (av.FFmpegError, ValueError, OSError, EOFError) as e:
        if not frames:
            raise VideoProblem(f"decoding failed at frame {decoded}: {_why(e)}",
                               gap=False) from e
        stopped = f"decoding failed at frame {decoded} ({decoded / fps:.3f} s): {_why(e)}"
    if not frames and stopped is None:
        # FFmpeg read the container but gave no frame and no error (Debian's ffmpeg agrees
        # on such files: Pillow's FLI samples, stripped exiftool samples): not shown to be
        # damage, not examined: a coverage gap.
        raise VideoProblem(f"FFmpeg decoded no frame of the {codec} stream", gap=True)
    return VideoFacts(**facts, frames_decoded=decoded, frames_hashed=hashed,
                      hashed_width=out_w, hashed_height=out_h,
                      preprocessing="; ".join(steps), frames=tuple(frames), stopped=stopped)


def _seconds(duration: float | None) -> str:
    return "duration-unknown" if duration is None else f"{duration:.1f} s"


class ReopeningReader(io.RawIOBase):
    """A seekable reader over a sequential stream that ``open()`` gives afresh: forward
    seeks read ahead, backward seeks reopen (a video larger than what is kept in memory is
    read a second time, for decoding; MP4 files with their index at the end seek back
    once)."""

    def __init__(self, open_stream: Callable[[], Any], size: int) -> None:
        super().__init__()
        self._open = open_stream
        self._size = size
        self._stream = open_stream()
        self._pos = 0
        self._want = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._want

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._want, io.SEEK_END: self._size}[whence]
        self._want = max(0, base + offset)
        return self._want

    def readinto(self, buffer: Any) -> int:
        if self._want < self._pos:
            self._reopen()
        while self._pos < self._want:
            skip = self._stream.read(min(1 << 20, self._want - self._pos))
            if not skip:
                return 0
            self._pos += len(skip)
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._pos += n
        self._want = self._pos
        return n

    def _reopen(self) -> None:
        self._close_stream()
        self._stream = self._open()
        self._pos = 0

    def _close_stream(self) -> None:
        """Close the current stream; a file that changed while it was read is never
        ignored (:class:`~triage.sources.base.ContentChangedError` propagates: the frames
        might not be of the content the digests are of)."""
        from .sources.base import ContentChangedError

        try:
            self._stream.close()
        except ContentChangedError:
            raise
        except OSError:
            pass

    def close(self) -> None:
        if not self.closed:
            try:
                self._close_stream()
            finally:
                super().close()


def limits_of(options: Any) -> VideoLimits:
    """The :class:`VideoLimits` of a :class:`~triage.worker.WorkerOptions`."""
    return VideoLimits(seconds_per_hash=options.video_seconds_per_hash,
                       size=options.video_size, max_frames=options.video_max_frames,
                       max_pixels=options.video_max_pixels,
                       base_seconds=options.video_base_seconds,
                       seconds_per_second=options.video_seconds_per_second,
                       max_seconds=options.video_max_seconds)
