"""vPDQ video sets: Meta's per-video text output, one video per file (issue 15).

Each ``NAME.vpdq.txt`` holds one video, one line per hashed frame:
``frame_number,quality,pdq_hex,timestamp_seconds`` (Meta's ``vpdq-hash-video`` output and
the ThreatExchange sample hashes; ``testdata/video/vpdq``). A set is a folder or a zip
archive of such files, or one file (a set of one video); the video's name is the file name
without ``.vpdq.txt``. A category comes from the command line (``--category``, option
``category``) or from a side file ``categories.csv`` in the folder or archive (``NAME,
category`` per line, NAME with or without ``.vpdq.txt``); a side-file category wins.

One record per video (:class:`VideoRecord`, ``ref`` = its 1-based position in name order).
A video file with a line that is not a frame is rejected as a whole, naming the file and
line: a video half-read would match with the wrong percentages.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import HashSetFileError
from ..video import SUFFIX, parse_lines
from .base import (
    Format,
    Item,
    ParseContext,
    Rejected,
    VideoRecord,
    content_lines,
    fail,
    open_text,
    zip_text,
)
from .bounds import LineReader, open_lines

#: The side file naming each video's category.
CATEGORIES = "categories.csv"
#: Most video files in one set (bounds the listing read before any file is parsed).
MAX_VIDEOS = 1_000_000


def video_name(member: str) -> str | None:
    """The video's name from a member or file name, or None when it is no vPDQ file."""
    base = member.replace("\\", "/").rsplit("/", 1)[-1]
    if base.lower().endswith(SUFFIX) and len(base) > len(SUFFIX):
        return base[: -len(SUFFIX)]
    return None


def is_vpdq_head(head: bytes) -> bool:
    """The first complete lines of a file are all vPDQ frame lines."""
    from ..video import parse_line
    from .base import first_lines

    lines = first_lines(head)
    if not lines:
        return False
    try:
        for ln in lines:
            parse_line(ln)
    except ValueError:
        return False
    return True


def _members(path: Path) -> list[tuple[str, str]]:
    """``(video name, member)`` of a folder or zip, sorted by name; refuses duplicates."""
    found: dict[str, str] = {}
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir() if p.is_file() and not p.is_symlink())
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = sorted(i.filename for i in zf.infolist() if not i.is_dir())
    else:
        name = video_name(path.name) or path.name.rsplit(".", 1)[0]
        return [(name, "")]
    for member in names:
        vname = video_name(member)
        if vname is None:
            continue
        if vname in found:
            raise HashSetFileError(f"{path}: two files for video {vname!r} ({found[vname]}, "
                                   f"{member})")
        found[vname] = member
        if len(found) > MAX_VIDEOS:
            raise HashSetFileError(f"{path}: more than {MAX_VIDEOS} video files")
    return sorted(found.items())


def _side_categories(path: Path, ctx: ParseContext) -> dict[str, str]:
    reader: LineReader | None = None
    zf: zipfile.ZipFile | None = None
    try:
        if path.is_dir():
            side = path / CATEGORIES
            if not side.is_file() or side.is_symlink():
                return {}
            reader = open_lines(side, ctx.limits)
        elif zipfile.is_zipfile(path):
            zf = zipfile.ZipFile(path)
            member = next((i.filename for i in zf.infolist()
                           if i.filename.rsplit("/", 1)[-1].lower() == CATEGORIES), None)
            if member is None:
                return {}
            reader = zip_text(zf, member, ctx)
        else:
            return {}
        out: dict[str, str] = {}
        with reader as f:
            for lineno, text in content_lines(f):
                name, sep, category = text.partition(",")
                if not sep or not name.strip():
                    raise fail(ctx, None, f"{CATEGORIES} line {lineno}: not 'NAME,category'")
                if name.strip().lower() in ("name", "video") and lineno == 1:
                    continue  # a header row
                key = video_name(name.strip()) or name.strip()
                out[key] = category.strip()
        return out
    finally:
        if zf is not None:
            zf.close()


class VPDQSet(Format):
    name = "vpdq"
    description = ("vPDQ video set: a folder or zip of Meta's NAME.vpdq.txt files (one video "
                   "each: frame_number,quality,pdq_hex,timestamp per line), or one such file")

    def detect(self, path: Path, head: bytes) -> bool:
        if path.is_dir():
            return any(video_name(p.name) for p in path.iterdir())
        if zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as zf:
                    names = [i.filename for i in zf.infolist()[:1000]]
            except (zipfile.BadZipFile, OSError):
                return False
            return bool(names) and any(video_name(n) for n in names) and all(
                video_name(n) or n.endswith("/") or
                n.rsplit("/", 1)[-1].lower() == CATEGORIES for n in names)
        return is_vpdq_head(head)

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        path = ctx.path
        members = _members(path)
        if not members:
            raise fail(ctx, None, f"no {SUFFIX} files")
        given = ctx.options.get("category")
        side = _side_categories(path, ctx)
        ctx.info["videos_listed"] = len(members)
        zf = zipfile.ZipFile(path) if not path.is_dir() and members[0][1] else None
        try:
            for ref, (vname, member) in enumerate(members, 1):
                if path.is_dir():
                    reader = open_lines(path / member, ctx.limits)
                elif zf is not None:
                    reader = zip_text(zf, member, ctx)
                else:
                    reader = open_text(ctx)
                with reader as f:
                    parsed = parse_lines(content_lines(f))
                where = member or path.name
                if parsed.rejected:
                    lineno, why = parsed.rejected[0]
                    more = len(parsed.rejected) - 1
                    yield Rejected(ref, f"{where}: line {lineno}: {why}" +
                                   (f" (and {more} more lines)" if more else "") +
                                   "; video not imported")
                    continue
                if not parsed.frames:
                    yield Rejected(ref, f"{where}: no frames; video not imported")
                    continue
                category = side.get(vname, given)
                yield VideoRecord(ref, vname, parsed.frames,
                                  category_raw=str(category) if category else None,
                                  source=where)
        finally:
            if zf is not None:
                zf.close()
