"""HashKeeper (the former US NDIC format, read by Autopsy and hashdeep).

A HashKeeper set is a pair (FORMATS.md "HashKeeper bundles"):

* ``NAME.hsh``: a quoted CSV whose header is ``"file_id","hashset_id","file_name",
  "directory","hash","file_size","date_modified",...``; ``hash`` is an MD5;
* ``NAME.hke``: the set's metadata, a header and one row: ``hashset_id, name, vendor,
  package, version, authenicated_flag`` (sic), ``notable_flag, initials, num_of_files,
  description, date_loaded``. ``notable_flag`` 0 means known (ignorable) files, 1
  notable/alert files: it decides whether the set is a known-file set.

Both are often shipped in one ``.zip`` (which may start with the old spanning marker
``PK00``; Python's zipfile reads it). This format imports a ``.hsh`` (with the ``.hke``
beside it, same stem, any case) or such a zip (one ``.hsh`` member, and its ``.hke``).
The ``.hke`` gives the set's name, version and known flag unless the examiner chose
them; without one, the set imports as an alert set and a note says so.

Per record: ``file_id`` is the entry's id (not unique in every published set, so the line
number is kept with every match too), ``file_name`` its name, and every other non-empty
column (``directory``, ``file_size``, ``hashset_id``...) one of its fields.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

from ..algorithms import get
from .base import (
    HEAD_SIZE,
    Format,
    Item,
    ParseContext,
    Record,
    Rejected,
    fail,
    open_text,
    text_head,
    zip_text,
)
from .bounds import open_lines

#: The spanning marker an old PKZIP/WinZip zip may start with (PKWARE APPNOTE section 8.5:
#: "temporary spanning marker", 0x30304b50, written before the first local header of a
#: split archive that fitted on one segment).
ZIP_PK00 = b"PK00"
ZIP_LOCAL = b"PK\x03\x04"
#: The .hke columns kept in the set's info (FORMATS.md; "authenicated_flag" is the
#: format's own spelling).
HKE_COLUMNS = ("hashset_id", "name", "vendor", "package", "version", "authenicated_flag",
               "authenticated_flag", "notable_flag", "initials", "num_of_files",
               "description", "date_loaded")
#: Records of a .hke read at most (a header and one row; more are ignored and noted).
HKE_ROWS = 2


def _cols(line: str) -> list[str]:
    return [c.strip().strip('"').lower() for c in line.split(",")]


def _is_hsh_header(line: str) -> bool:
    cols = _cols(line)
    return "hash" in cols and "file_id" in cols and "hashset_id" in cols


def _members(zf: zipfile.ZipFile, suffix: str) -> list[str]:
    return sorted(i.filename for i in zf.infolist()
                  if not i.is_dir() and i.filename.lower().endswith(suffix))


def _zip_head(zf: zipfile.ZipFile, member: str) -> bytes:
    """The first bytes of a member (a bounded read: never more than HEAD_SIZE)."""
    with zf.open(member) as f:
        return f.read(HEAD_SIZE)


def _hsh_members(zf: zipfile.ZipFile) -> list[str]:
    out = []
    for m in _members(zf, ".hsh"):
        try:
            lines = text_head(_zip_head(zf, m)).lstrip().splitlines()
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
            continue
        if lines and _is_hsh_header(lines[0]):
            out.append(m)
    return out


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0].lower()


class HashKeeper(Format):
    name = "hashkeeper"
    description = ("HashKeeper .hsh CSV (header \"file_id\",\"hashset_id\",...,\"hash\",...; "
                   "MD5) with its .hke metadata, or the .zip holding both")

    def detect(self, path: Path, head: bytes) -> bool:
        if head.startswith((ZIP_LOCAL, ZIP_PK00)):
            try:
                with zipfile.ZipFile(path) as zf:
                    return bool(_hsh_members(zf))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError):
                return False
        lines = text_head(head).lstrip().splitlines()
        return bool(lines) and _is_hsh_header(lines[0])

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        with ExitStack() as stack:
            if zipfile.is_zipfile(ctx.path):
                zf = stack.enter_context(zipfile.ZipFile(ctx.path))
                found = _hsh_members(zf)
                if len(found) != 1:
                    raise fail(ctx, None, "zip holds no HashKeeper .hsh member" if not found
                               else f"zip holds {len(found)} HashKeeper .hsh members "
                               f"({', '.join(found)}); extract them and import each")
                member = found[0]
                ctx.info["member"] = member
                hke = _members(zf, ".hke")
                pick = [m for m in hke if _stem(m) == _stem(member)] or \
                    (hke if len(hke) == 1 else [])
                if pick:
                    ctx.info["hke_member"] = pick[0]
                    with zip_text(zf, pick[0], ctx, records=True) as f:
                        _apply_hke(ctx, f, pick[0])
                else:
                    _no_hke(ctx, f"the zip holds no .hke for {member}")
                f = stack.enter_context(zip_text(zf, member, ctx, records=True))
            else:
                hke_path = _sibling_hke(ctx.path)
                if hke_path is not None:
                    ctx.info["hke_file"] = str(hke_path)
                    with open_lines(hke_path, ctx.limits, records=True) as h:
                        _apply_hke(ctx, h, str(hke_path))
                else:
                    _no_hke(ctx, f"no {ctx.path.stem}.hke beside it")
                f = stack.enter_context(open_text(ctx, records=True))
            yield from _rows(ctx, f)
        _check_count(ctx)


def _sibling_hke(path: Path) -> Path | None:
    """``NAME.hke`` beside ``NAME.hsh`` (extension in any case); None when there is none."""
    try:
        for p in sorted(path.parent.iterdir()):
            if p.is_file() and p.suffix.lower() == ".hke" and p.stem == path.stem and \
                    p.name != path.name:
                return p
    except OSError:
        return None
    return None


def _no_hke(ctx: ParseContext, why: str) -> None:
    ctx.info["hke"] = None
    ctx.notes.append(f"HashKeeper metadata (.hke) not found ({why}): the set's known flag "
                     "is unknown; imported as an alert set unless --known was given")


def _apply_hke(ctx: ParseContext, lines: Iterable[str], where: str) -> None:
    """Read a .hke (header and one row) into the set's info, name, version and known flag."""
    reader = csv.reader(lines)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append(row)
            if len(rows) >= HKE_ROWS:
                break
    except csv.Error as e:
        raise fail(ctx, None, f"{where}: malformed .hke CSV: {e}") from e
    if len(rows) < 2:
        raise fail(ctx, None, f"{where}: a .hke needs a header row and a data row")
    header = [c.strip().lower() for c in rows[0]]
    meta = {k: v.strip() for k, v in zip(header, rows[1], strict=False)
            if k in HKE_COLUMNS}
    if "notable_flag" not in header:
        raise fail(ctx, None, f"{where}: .hke header has no notable_flag column")
    ctx.info["hke"] = meta
    flag = meta.get("notable_flag", "")
    if flag == "0":
        ctx.known = True
    elif flag == "1":
        ctx.known = False
    else:
        ctx.notes.append(f".hke notable_flag {flag!r} is neither 0 (known) nor 1 (notable): "
                         "imported as an alert set unless --known was given")
    if meta.get("name"):
        ctx.name = meta["name"]
    if meta.get("version"):
        ctx.version = meta["version"]


def _check_count(ctx: ParseContext) -> None:
    meta = ctx.info.get("hke")
    rows = ctx.info.get("records")
    if isinstance(meta, dict) and meta.get("num_of_files", "").isdigit() and \
            rows is not None and int(meta["num_of_files"]) != rows:
        ctx.notes.append(f".hke says {meta['num_of_files']} files, the .hsh has {rows} "
                         "records")
    ids = ctx.info.get("hsh_hashset_ids")
    if isinstance(meta, dict) and meta.get("hashset_id") and isinstance(ids, list) and \
            ids != [meta["hashset_id"]]:
        ctx.notes.append(f".hke describes hashset_id {meta['hashset_id']}, the .hsh rows "
                         f"carry {', '.join(ids[:5])}")


#: Distinct hashset_id values noted (a .hsh normally holds one).
MAX_IDS = 10


def _rows(ctx: ParseContext, f: Iterator[str]) -> Iterator[Item]:
    md5 = get("md5")
    reader = csv.reader(f)
    try:
        header = [c.strip().lower() for c in next(reader)]
    except StopIteration:
        raise fail(ctx, 1, "empty file") from None
    except csv.Error as e:
        raise fail(ctx, 1, f"malformed CSV: {e}") from e
    mark = getattr(f, "mark", None)
    if mark:
        mark()
    if "hash" not in header:
        raise fail(ctx, 1, "HashKeeper header has no 'hash' column")
    i_hash = header.index("hash")
    i_name = header.index("file_name") if "file_name" in header else None
    i_id = header.index("file_id") if "file_id" in header else None
    i_set = header.index("hashset_id") if "hashset_id" in header else None
    others = [(i, c) for i, c in enumerate(header) if i not in (i_hash, i_name, i_id) and c]
    records = 0
    ids: list[str] = []
    try:
        for row in reader:
            lineno = reader.line_num
            if mark:
                mark()
            if not row or not any(c.strip() for c in row):
                continue
            records += 1
            if i_hash >= len(row):
                yield Rejected(lineno, f"{len(row)} fields, no hash column")
                continue
            try:
                value = md5.normalize(row[i_hash])
            except ValueError as e:
                yield Rejected(lineno, str(e))
                continue
            if i_set is not None and i_set < len(row) and row[i_set] not in ids and \
                    len(ids) < MAX_IDS:
                ids.append(row[i_set])
            fields = {c: row[i].strip() for i, c in others if i < len(row) and row[i].strip()}
            yield Record(
                lineno, {"md5": value},
                name=row[i_name] or None if i_name is not None and i_name < len(row) else None,
                entry_ref=row[i_id] or None if i_id is not None and i_id < len(row) else None,
                fields=fields or None)
    except csv.Error as e:
        raise fail(ctx, reader.line_num, f"malformed CSV: {e}") from e
    ctx.info["records"] = records
    ctx.info["hsh_hashset_ids"] = ids
