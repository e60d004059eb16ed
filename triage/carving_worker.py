"""The worker side of carving (issue 17): one carving entry (an area of a disk image) in,
one result with an inner item per carved candidate out (see :mod:`triage.carving`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from hashsets.blocks import BlockIndex

from .carving import (
    BlockCollector,
    Bounds,
    Carved,
    CarveState,
    block_hits,
    carve_range,
    item_name,
    runs_of,
)
from .identify import Identifier
from .model import (
    DONE,
    ERROR,
    INCOMPLETE,
    CarveFacts,
    FileResult,
    FragmentFacts,
    InnerItem,
    Problem,
)
from .sources.base import Source
from .worker import Task, WorkerOptions, _Draft, _member_result

AREA_LABEL = {"unallocated": "unallocated space", "slack": "slack",
              "unpartitioned": "unpartitioned space"}
#: Said on every carved item (and in reports): what carving can and cannot promise.
CAUTION = ("carved without file-system metadata: no name or times; the content may be "
           "incomplete or mixed with other data")


def _facts(area: str, vol_offset: int | None, block_size: int | None, c: Carved
           ) -> CarveFacts:
    first = last = None
    if vol_offset is not None and block_size:
        first = (c.offset - vol_offset) // block_size
        last = (c.offset + max(c.length, 1) - 1 - vol_offset) // block_size
    return CarveFacts(area, vol_offset, c.offset, c.length, block_size, first, last,
                      c.owner, c.ext, c.partial is not None)


def _where(area: str, prefix: str, f: CarveFacts) -> str:
    where = (f"carved from the slack of {f.slack_of}" if area == "slack" and f.slack_of
             else f"carved from {AREA_LABEL.get(area, area)}")
    if prefix:
        where += f" of {prefix}"
    where += f": image bytes {f.image_offset}-{f.image_offset + f.length - 1}"
    if f.first_block is not None:
        where += f", blocks {f.first_block}-{f.last_block} of {f.block_size} bytes"
    return where


def carve_entry(source: Source, identifier: Identifier, task: Task, options: WorkerOptions,
                stage: Callable[[str], None],
                progress: Callable[[int], None] | None = None) -> FileResult:
    """Carve one area. Never raises for the evidence's problems: an unreadable part is
    the area's error (its items found before it are kept), a bound hit its coverage gap."""
    _, area, vol_offset, block_size, align, ranges = task.entry.locator
    result = _Draft(file_id=task.file_id, attempts=task.attempt, read_status="full")
    read = getattr(source, "read_image", None)
    if read is None:
        result.status, result.stage, result.error_class = ERROR, "open", "NotAnImage"
        result.reason = "carving needs a disk image source"
        return result.freeze()
    prefix = task.display_path.rsplit("/", 1)[0] if "/" in task.display_path else ""
    bounds = Bounds(options.carve_max_items, options.carve_max_bytes,
                    options.carve_max_item_bytes)
    state = CarveState()
    align_base = vol_offset if vol_offset is not None else 0
    stage("read")
    for off, length, owner in ranges:
        for c in carve_range(read, int(off), int(length), owner, align_base, int(align),
                             bounds, state):
            facts = _facts(area, vol_offset, block_size, c)
            if c.data is None:
                child = FileResult(file_id=0, status=INCOMPLETE, stage="carve",
                                   reason=c.partial, error_class="PartialCarve",
                                   read_status="none")
            else:
                if progress is not None:
                    progress(len(c.data))
                child = _member_result(c.data, item_name(c), identifier, options, stage,
                                       f"{task.display_path}!{item_name(c).decode()}")
                if progress is not None:
                    progress(0)
                if child.status == ERROR and child.stage == "decode":
                    # Strict decoding failed: the carve is partial (fragmented, cut short
                    # or mixed), not an error of the evidence; digests are kept.
                    child = _partial(child, f"partial carve: does not decode strictly "
                                     f"({child.reason}): truncated, fragmented or mixed "
                                     "with other data; digests kept")
                    facts = replace(facts, partial=True)
            stage("read")
            result.children.append(InnerItem(
                inner=(item_name(c),), member_kind="carved", size=c.length, mtime=None,
                offset=c.offset, flags=(_where(area, prefix, facts), CAUTION),
                result=child, carve=facts))
        if state.stopped is not None or state.unreadable:
            break
    if options.block_store and state.unreadable is None:
        _fragments(result, read, ranges, align_base, options.block_store, stage, task)
    if state.unreadable:
        shown = ", ".join(f"{o}+{n}" for o, n in state.unreadable[:10])
        result.status, result.stage, result.error_class = ERROR, "read", "UnreadableRanges"
        result.reason = (f"unreadable image ranges (offset+length), not carved: {shown}; "
                         "items found before them are kept")
        result.read_status = "partial"
    elif state.stopped is not None:
        result.status, result.stage, result.error_class = INCOMPLETE, "carve", "CarveLimit"
        result.reason = f"{state.stopped[1]}; the rest of the area was not carved"
    else:
        result.status = DONE
    return result.freeze()


def carved_item_entry(source: Source, identifier: Identifier, task: Task,
                      options: WorkerOptions, stage: Callable[[str], None]) -> FileResult:
    """Read one carved item again, exactly its recorded image bytes (locator
    :func:`~triage.carving.carved_item_locator`), and give it the treatment it had as an
    inner item of its area (the full-decode confirmation, :mod:`triage.confirm`): the area
    is not carved again. An image range that cannot be read in full is a read error."""
    _, offset, length, ext = task.entry.locator
    read = getattr(source, "read_image", None)
    fail = _Draft(file_id=task.file_id, attempts=task.attempt, read_status="none",
                  full_decode=options.confirming)
    if read is None:
        fail.status, fail.stage, fail.error_class = ERROR, "open", "NotAnImage"
        fail.reason = "a carved item needs a disk image source"
        return fail.freeze()
    stage("read")
    try:
        data = read(int(offset), int(length))
    except OSError as e:
        data, why = b"", str(e)
    else:
        why = f"read {len(data)} bytes"
    if len(data) != int(length):
        fail.status, fail.stage, fail.error_class = ERROR, "read", "UnreadableRanges"
        fail.reason = (f"carved item at image bytes {offset}+{length} not read again in "
                       f"full ({why})")
        return fail.freeze()
    name = item_name(Carved(int(offset), int(length), str(ext), None))
    child = _member_result(data, name, identifier, options, stage, task.display_path)
    if child.status == ERROR and child.stage == "decode":  # as in carve_entry
        child = _partial(child, f"partial carve: does not decode strictly ({child.reason}): "
                         "truncated, fragmented or mixed with other data; digests kept")
    # Alone, as every confirmed item is (confirm._reread_items): the items inside it (a
    # picture's embedded thumbnail, say) are already recorded from the scan.
    return replace(child, file_id=task.file_id, attempts=task.attempt, children=())


def _partial(r: FileResult, reason: str) -> FileResult:
    return replace(r, status=INCOMPLETE, stage="carve", error_class="PartialCarve",
                   reason=reason)


def _fragments(result: _Draft, read: Callable[[int, int], bytes],
               ranges: list[list[object]], align_base: int, store: str,
               stage: Callable[[str], None], task: Task) -> None:
    """Block-hash fragment matching of the area (issue 17): one inner item per known file
    whose blocks are found, ``fragment of <known file>`` with the share found and where."""
    from pathlib import Path

    stage("read")
    try:
        index = BlockIndex(Path(store))
    except Exception as e:  # a damaged block set costs the matching, not the carving
        result.warnings.append(Problem("fragments", "BlockSetUnreadable",
                                       f"block-hash set {store}: {e}"))
        return
    try:
        hits = block_hits(read, [(int(o), int(n)) for o, n, _ in ranges],  # type: ignore[call-overload]
                          align_base, index.lookup)
        _add_fragments(result, index, hits, None, "image bytes")
    except Exception as e:
        result.warnings.append(Problem("fragments", type(e).__name__,
                                       f"block-hash matching stopped: {e}"))
    finally:
        index.close()


def file_fragments(result: _Draft, blocks: BlockCollector, store: str,
                   stage: Callable[[str], None]) -> None:
    """Fragments of known files inside a file that was read (issue 17): one inner item per
    known file some of whose blocks it holds, except a known file with the file's own
    SHA-256 (that is an exact match, found by the hash sets)."""
    from pathlib import Path

    from hashsets.blocks import BlockIndex

    if not blocks.md5s:
        return
    own = next((h.value for h in result.hashes if h.algorithm == "sha256"), None)
    try:
        index = BlockIndex(Path(store))
    except Exception as e:
        result.warnings.append(Problem("fragments", "BlockSetUnreadable",
                                       f"block-hash set {store}: {e}"))
        return
    try:
        found = index.lookup(blocks.md5s)
        hits: dict[int, list[tuple[int, int]]] = {}
        for md5, at in zip(blocks.md5s, blocks.offsets, strict=True):
            for kid, koff in found.get(md5, ()):
                hits.setdefault(kid, []).append((at, koff))
        _add_fragments(result, index, hits, own, "file bytes")
        if blocks.capped:
            result.warnings.append(Problem("fragments", "FragmentLimit", (
                f"only the first {len(blocks.md5s)} blocks searched for fragments")))
    except Exception as e:
        result.warnings.append(Problem("fragments", type(e).__name__,
                                       f"block-hash matching stopped: {e}"))
    finally:
        index.close()


def _add_fragments(result: _Draft, index: BlockIndex, hits: dict[int, list[tuple[int, int]]],
                   own_sha256: str | None, unit: str) -> None:
    from hashsets.blocks import covered_bytes

    for kid in sorted(hits):
        known = index.known(kid)
        if own_sha256 is not None and known.sha256 == own_sha256:
            continue
        runs = runs_of(hits[kid])
        found = covered_bytes(k for _, k in hits[kid])
        share = found / known.indexed_bytes if known.indexed_bytes else 0.0
        first = runs[0][0]
        facts = FragmentFacts(known.set_name, known.path, known.sha256, known.size,
                              known.indexed_bytes, found, len(hits[kid]), tuple(runs))
        where = ", ".join(f"{unit} {a}-{a + n - 1} = known bytes {k}-{k + n - 1}"
                          for a, k, n in runs[:5])
        more = f" and {len(runs) - 5} more runs" if len(runs) > 5 else ""
        note = (f"fragment of {known.path} (block-hash set {known.set_name}, SHA-256 "
                f"{known.sha256}): {found} of its {known.indexed_bytes} indexed bytes "
                f"({share:.1%}) found in {len(runs)} run(s): {where}{more}")
        child = FileResult(file_id=0, status=DONE, stage="fragments", reason=note)
        result.children.append(InnerItem(
            inner=(f"@{first}.fragment-{kid}".encode(),), member_kind="fragment",
            size=sum(n for _, _, n in runs), mtime=None, offset=first,
            flags=(note,), result=child, fragment=facts))
