"""Project VIC VICS JSON (OData), versions 1.x and 2.0: hash sets (``#Media``) and case
exports (``#Cases``), streamed with ijson so a multi-GB file never sits in memory.

Facts (FORMATS.md): the root object has a ``value`` array and a version marker,
``odata.metadata`` (1.x) or ``@odata.context`` (2.0, with a context Default/US/UK/CUSTOM).
In a ``#Cases`` file each case carries its own ``Media`` array. A Media record holds
``MediaID``, ``Category`` (integer), ``MD5``, ``SHA1``, ``PhotoDNA``, flags
(``VictimIdentified``, ``OffenderIdentified``, ``IsDistributed``: booleans or "true"/"false"
strings), ``Series``, ``MediaFiles`` (each with an ``MD5``) and, in 1.x,
``AlternativeHashes`` (``HashName``/``HashValue``) holding SHA1 or PhotoDNA.

The record number in messages is the Media record's position in the file (1-based).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ijson

from ..algorithms import get, lookup
from ..errors import HashSetFileError
from .base import Format, Item, ParseContext, Record, Rejected, fail, parse_flag, text_head
from .bounds import ImportLimits, clip, open_json

_META_KEYS = ("odata.metadata", "@odata.context")
_VERSION = re.compile(r"/(\d+(?:\.\d+)*)\.xml(?:/(\w+))?")
#: Bytes ijson asks for at a time (each chunk is checked by the guard first).
JSON_READ = 256 * 1024
#: Keys remembered per parse by ``_Names`` (a VICS file repeats a few dozen field names;
#: a hostile one cannot grow the memo past this many short keys).
NAME_MEMO = 4096
NAME_MEMO_KEY = 64


def _hash_name(key: str) -> str | None:
    """Our algorithm for a VICS hash key or ``HashName`` ("MD5", "SHA-256", "PDQ"): any
    registered name or alias; PhotoDNA has its own field (see ``record``)."""
    alg = lookup(key)
    return None if alg is None or alg.name == "photodna" else alg.name


class _Names(dict[str, str | None]):
    """``_hash_name`` remembered for the keys of one parse (the registry does not change
    during a parse): the lookup normalises each key with a regular expression, which was
    a quarter of a VICS import's time. Bounded: short keys only, ``NAME_MEMO`` of them."""

    def __call__(self, key: str) -> str | None:
        try:
            return self[key]
        except KeyError:
            name = _hash_name(key)
            if len(key) <= NAME_MEMO_KEY and len(self) < NAME_MEMO:
                self[key] = name
            return name


def read_header(path: Path, limits: ImportLimits | None = None
                ) -> tuple[str | None, str | None]:
    """Return ``(marker_key, marker_value)`` read from the start of the file (streamed
    through the bounds' guard, stops at the ``value`` array). Raises ijson errors for
    non-JSON and ``HashSetFileError`` for a bound exceeded."""
    with open_json(path, limits or ImportLimits()) as f:
        # use_float: ijson 3.6's C backend (yajl2_c) crashes (SIGSEGV) on an integer of over 4,300
        # digits without it (Python's int() digit limit); with it, such a number is a
        # parse error ("integer overflow"), as in the record parse below.
        for prefix, event, value in ijson.parse(f, buf_size=JSON_READ, use_float=True):
            if prefix == "" and event == "map_key" and value == "value":
                return None, None
            if event == "string" and prefix in _META_KEYS:
                return prefix, str(value)
    return None, None


def parse_context(marker: str | None) -> dict[str, str | None]:
    """Version ("1.3", "2.0"), kind ("Media"/"Cases") and context (US, UK...) of a marker."""
    if not marker:
        return {"vics_version": None, "kind": None, "context": None}
    kind = marker.rsplit("#", 1)[1] if "#" in marker else None
    m = _VERSION.search(marker)
    version = m.group(1) if m else None
    context = m.group(2) if m and m.group(2) and m.group(2) != "$metadata" else None
    return {"vics_version": version, "kind": kind, "context": context}


def _head_marker(head: bytes) -> str | None:
    text = text_head(head)
    m = re.search(r'"(odata\.metadata|@odata\.context)"\s*:\s*"([^"]*)"', text)
    return m.group(2) if m else None


class VICS(Format):
    name = "vics"
    description = "Project VIC VICS JSON 1.x / 2.0 (#Media hash sets and #Cases exports)"
    default_category_map = "dhs"

    def detect(self, path: Path, head: bytes) -> bool:
        marker = _head_marker(head)
        return marker is not None and ("ProjectVic" in marker or "VICS" in marker.upper()
                                       or "#Media" in marker or "#Cases" in marker)

    def parse(self, ctx: ParseContext) -> Iterator[Item]:
        try:
            _key, marker = read_header(ctx.path, ctx.limits)
        except HashSetFileError:
            raise
        except (ijson.JSONError, ValueError) as e:
            raise fail(ctx, None, f"not valid JSON: {e}") from e
        meta = parse_context(marker)
        ctx.info.update({k: v for k, v in meta.items() if v})
        ctx.version = meta["vics_version"]
        kind = meta["kind"]
        if kind not in ("Media", "Cases", None):
            raise fail(ctx, None, f"VICS kind #{clip(kind, 80)} is neither #Media nor #Cases")
        n = 0
        names = _Names()
        # Records are value[i] (depth 3: root, value, record) or value[i].Media[j] (5).
        with open_json(ctx.path, ctx.limits, record_depth=5 if kind == "Cases" else 3) as f:
            try:
                if kind == "Cases":
                    items = ijson.items(f, "value.item.Media.item", use_float=True,
                                        buf_size=JSON_READ)
                else:
                    items = ijson.items(f, "value.item", use_float=True, buf_size=JSON_READ)
                for obj in items:
                    n += 1
                    if not isinstance(obj, dict):
                        yield Rejected(n, "record is not a JSON object")
                        continue
                    if kind is None and "Media" in obj and "MediaID" not in obj:
                        raise fail(ctx, n, "looks like a #Cases export but has no "
                                           "odata.metadata/@odata.context marker")
                    yield self.record(n, obj, names)
            except HashSetFileError:  # a bound, raised by the guard through ijson
                raise
            except (ijson.JSONError, ValueError) as e:
                raise fail(ctx, n + 1, f"truncated or malformed JSON after {n} complete "
                                       f"records ({clip(str(e), 120)}); nothing imported"
                           ) from e
        if n == 0:
            ctx.info["note"] = "no Media records"

    def record(self, n: int, obj: dict[str, Any],
               names: Callable[[str], str | None] = _hash_name) -> Item:
        """One Media object -> Record (or Rejected naming the bad field). ``names`` maps a
        key to its algorithm (a memo of :func:`_hash_name` during a parse)."""
        raw: dict[str, str] = {}
        for key, val in obj.items():
            alg = names(key)
            if alg and isinstance(val, str) and val.strip():
                raw.setdefault(alg, val)
        photodna = obj.get("PhotoDNA") or None
        for alt in obj.get("AlternativeHashes") or []:
            if not isinstance(alt, dict):
                continue
            hname = str(alt.get("HashName") or "").strip().lower()
            hval = alt.get("HashValue")
            if not isinstance(hval, str) or not hval.strip():
                continue
            if hname == "photodna":
                photodna = photodna or hval
            elif alg := names(hname):
                raw.setdefault(alg, hval)
        if "md5" not in raw:
            for mf in obj.get("MediaFiles") or []:
                if isinstance(mf, dict) and isinstance(mf.get("MD5"), str) and mf["MD5"].strip():
                    raw["md5"] = mf["MD5"]
                    break
        hashes: dict[str, str] = {}
        for alg, val in raw.items():
            try:
                hashes[alg] = get(alg).normalize(val)
            except ValueError as e:
                return Rejected(n, str(e))
        pdna: str | None = None
        if isinstance(photodna, str) and photodna.strip():
            try:
                pdna = get("photodna").normalize(photodna)
            except ValueError as e:
                return Rejected(n, str(e))
        if not hashes and pdna is None:
            return Rejected(n, "no MD5, SHA1 or PhotoDNA value")
        cat = obj.get("Category")
        media_id = obj.get("MediaID")
        series = obj.get("Series")
        return Record(
            n, hashes,
            category_raw=None if cat is None or cat == "" else str(cat),
            series=str(series) if series not in (None, "") else None,
            victim_identified=parse_flag(obj.get("VictimIdentified")),
            offender_identified=parse_flag(obj.get("OffenderIdentified")),
            is_distributed=parse_flag(obj.get("IsDistributed")),
            entry_ref=str(media_id) if media_id not in (None, "") else None,
            name=_first_name(obj), photodna=pdna)


def _first_name(obj: dict[str, Any]) -> str | None:
    rel = obj.get("RelativeFilePath")
    if isinstance(rel, str) and rel:
        return rel
    for mf in obj.get("MediaFiles") or []:
        if isinstance(mf, dict) and isinstance(mf.get("FileName"), str):
            return str(mf["FileName"])
    return None


class CAID(VICS):
    """UK CAID: VICS JSON with the UK context (``.../2.0.xml/UK/$metadata#Media``).

    Categories are graded A/B/C; how they are encoded in ``Category`` is UNCONFIRMED, so the
    default ``caid`` mapping (1=A, 2=B, 3=C, letters accepted) can be replaced per import.
    """

    name = "caid"
    description = ("UK CAID (VICS JSON, UK context); A/B/C category mapping UNCONFIRMED, "
                   "override with --category-map")
    default_category_map = "caid"

    def detect(self, path: Path, head: bytes) -> bool:
        marker = _head_marker(head)
        return marker is not None and "/UK/" in marker and super().detect(path, head)
