"""``triage hashset ...`` and ``triage match``: parse, call :mod:`hashsets` /
:mod:`triage.matching`, print. Library errors become a clear message and exit code 6.

Registered in :mod:`triage.cli` with::

    app.add_typer(hashset_app, name="hashset")
    app.command("match")(match_command)
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hashsets.errors import HashSetFileError
from hashsets.formats import FORMATS
from hashsets.formats.bounds import ImportLimits
from hashsets.store import STORE_ENV, HashSetStore, default_store_path

from .cli_errors import exit_codes
from .cli_thresholds import (
    DhashOpt,
    MinQualityOpt,
    PdqOpt,
    PdqQualityOpt,
    PhashOpt,
    ThresholdOpt,
    thresholds_from,
)
from .errors import HashSetError
from .model import MatchSummary, to_json
from .textsafe import for_terminal, terminal_line

app = typer.Typer(
    name="hashset",
    help="Import, list, show, remove and verify known-hash sets in the local store "
         f"(default: per-user data directory; --store or ${STORE_ENV} to choose).",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: option names are never cut at 80 columns
)

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", envvar=STORE_ENV, help=f"Hash-set store file (default: per-user data "
    f"directory; also ${STORE_ENV}).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of "
                                       "tables.")]
_errors = exit_codes


def _limit_help() -> str:
    d = ImportLimits()
    bounds = ", ".join(d.setting(f.name) for f in dataclasses.fields(d))
    return (f"Change one import bound, NAME=N; repeatable. Defaults: {bounds} (bytes, "
            "levels, records, ratio, seconds; see docs/hashsets.md).")


def _store(path: Path | None, readonly: bool = False) -> HashSetStore:
    return HashSetStore(path if path is not None else default_store_path(), readonly=readonly)


def _dump(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="Hash-set files to import (each becomes "
                                                "one set).")],
    name: Annotated[str | None, typer.Option(help="Set name (default: the file name; with "
                                             "several files, used as a prefix).")] = None,
    format: Annotated[str, typer.Option(
        "--format", "-f", help="File format: auto (detect from the content), "
        f"{', '.join(FORMATS)} (md5deep: the same as md5sum).")] = "auto",
    category_map: Annotated[str | None, typer.Option(
        help="Category mapping: a preset (dhs, projectvic, caid, icse, known), a JSON file, "
             "or raw=label pairs ('1=A,2=B,3=C'). CAID's A/B/C encoding is UNCONFIRMED: "
             "check it against your release. Default: the format's own preset.")] = None,
    known: Annotated[bool, typer.Option("--known", help="Mark as a set of KNOWN files (like "
                                        "NSRL: known, not 'good'; hits are shown apart, "
                                        "never hidden).")] = False,
    algorithm: Annotated[str | None, typer.Option(
        help="Algorithm of bare lists and sum files or perceptual lists (any registered "
             "algorithm: md5, sha1, sha256, pdq, phash, dhash...); default: guessed from the "
             "hash length.")] = None,
    limit: Annotated[list[str] | None, typer.Option(
        "--limit", metavar="NAME=N", help=_limit_help())] = None,
    category: Annotated[str | None, typer.Option(
        help="Category of every video of a vPDQ video set (a folder or zip of NAME.vpdq.txt "
             "files; a categories.csv inside wins), mapped like any category.")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import hash-set files into the store (one transaction each; the same file twice is a
    no-op). Rejected records are counted and the first ones shown. A file over one of the
    import bounds (see --limit) is not imported (exit code 6)."""
    try:
        limits = ImportLimits().with_items(limit or ())
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--limit") from None
    results = []
    failed = False
    with _errors():
        st = _store(store)
        for f in files:
            set_name = name if name and len(files) == 1 else \
                (f"{name}-{f.name}" if name else None)
            try:
                r = st.import_file(f, name=set_name, format=format, category_map=category_map,
                                   known=True if known else None,
                                   options=({"algorithm": algorithm} if algorithm else {})
                                   | ({"category": category} if category else {}) or None,
                                   limits=limits)
            except HashSetFileError as e:
                failed = True
                err.print(terminal_line(("error:", "red"), " ", str(e)))
                results.append({"file": str(f), "error": str(e)})
                continue
            results.append({"file": str(f), **r.to_dict()})
            if not json_out:
                for m in r.messages:
                    out.print(for_terminal(m))
    if json_out:
        _dump(results)
    if failed:
        raise typer.Exit(HashSetError.exit_code)


@app.command("import-blocks")
def import_blocks(
    folder: Annotated[Path, typer.Argument(help="Folder of known files (read recursively; "
                                           "symbolic links not followed).",
                                           exists=True, file_okay=False)],
    name: Annotated[str | None, typer.Option(help="Block-set name (default: the folder's "
                                             "name); importing a name again replaces it.")
                    ] = None,
    max_files: Annotated[int, typer.Option(min=1, help="Drop blocks found in more than this "
                                           "many known files (common blocks).")] = 4,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Build a block-hash set from a folder of known files (issue 17): the MD5 of every
    4 KiB block at 512-byte-aligned offsets, without constant and very common blocks. Scans
    of disk images then report fragments of these files found in unallocated space, slack
    and unpartitioned space, with the share found. Kept beside the store
    (<store>.blocks.sqlite)."""
    from hashsets.blocks import block_store_path
    from hashsets.blocks import import_blocks as run_import

    path = block_store_path(store if store is not None else default_store_path())
    with _errors():
        stats = run_import(folder, path, name=name, max_files=max_files)
    result = {"block_store": str(path), "files": stats.files, "blocks_kept": stats.blocks_kept,
              "blocks_dropped_common": stats.blocks_dropped_common,
              "files_without_blocks": list(stats.files_without_blocks)}
    if json_out:
        _dump(result)
        return
    out.print(for_terminal(
        f"{stats.files} files, {stats.blocks_kept} blocks kept, "
        f"{stats.blocks_dropped_common} dropped as common, into {path}"))
    if stats.files_without_blocks:
        out.print(for_terminal(f"{len(stats.files_without_blocks)} files have no block "
                               "kept (smaller than 4 KiB, constant or common)"))


@app.command("list")
def list_(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """List the imported sets."""
    with _errors():
        path = store if store is not None else default_store_path()
        sets = [] if not path.exists() else _store(path, readonly=True).sets()
    if json_out:
        _dump([s.to_dict() for s in sets])
        return
    if not sets:
        out.print(terminal_line("no hash sets in ", str(path)))
        return
    t = Table(title=terminal_line("hash sets in ", str(path)))
    for col in ("set id", "name", "format", "version", "records", "rejected", "empty",
                "known", "imported (UTC)"):
        t.add_column(col)
    for s in sets:
        t.add_row(*(for_terminal(v) for v in (
            s.set_id, s.name, s.format, s.version or "", s.accepted, s.rejected,
            s.empty_digests, "known" if s.known else "", s.imported_utc)))
    out.print(t)


@app.command()
def show(
    set_ref: Annotated[str, typer.Argument(metavar="SET", help="Set id (or a unique prefix) "
                                           "or unique name.")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one set: provenance, counts, category mapping, rejected examples."""
    with _errors():
        s = _store(store, readonly=True).get_set(set_ref)
    if json_out:
        _dump(s.to_dict())
        return
    t = Table(show_header=False, title=terminal_line("hash set ", s.set_id))
    t.add_column("field")
    t.add_column("value")
    for k, v in s.to_dict().items():
        t.add_row(for_terminal(k),
                  for_terminal(v if isinstance(v, str) else json.dumps(v, sort_keys=True)))
    out.print(t)


@app.command()
def remove(
    set_ref: Annotated[str, typer.Argument(metavar="SET", help="Set id (or a unique prefix) "
                                           "or unique name.")],
    store: StoreOpt = None,
) -> None:
    """Remove a set from the store. Cases keep their recorded matches."""
    with _errors():
        s = _store(store).remove(set_ref)
    out.print(terminal_line("removed set ", s.set_id, " (", s.name, ")"))


@app.command()
def verify(
    set_ref: Annotated[str | None, typer.Argument(metavar="[SET]", help="One set (default: "
                                                  "all).")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
    record_digest: Annotated[bool, typer.Option(
        "--record-digest", help="For sets imported before content digests were recorded: "
        "record one of the store as it is now (after checking counts and the source file), "
        "so later checks cover every stored value. Re-importing from the source is the "
        "stronger check.")] = False,
) -> None:
    """Check every stored value and field of each set against the digest recorded at import,
    the row counts, and that the set's source file is unchanged (SHA-256). Statuses: ok,
    altered (naming the values or fields that differ), damaged, changed, missing,
    unverified (no digest: imported before digests were recorded). Exit code 6 when
    anything is not ok."""
    with _errors():
        if record_digest:
            results = _store(store).record_digest(set_ref)
        else:
            results = _store(store, readonly=True).verify(set_ref)
    if json_out:
        _dump([r.to_dict() for r in results])
    else:
        t = Table(title="hash-set verification")
        for col in ("set id", "name", "status", "detail"):
            t.add_column(col)
        for r in results:
            colour = "green" if r.status in ("ok", "recorded") else "red"
            t.add_row(for_terminal(r.set_id), for_terminal(r.name),
                      for_terminal(r.status, style=colour), for_terminal(r.detail))
        out.print(t)
    if any(r.status not in ("ok", "recorded") for r in results):
        raise typer.Exit(HashSetError.exit_code)


def thresholds_table(thresholds: dict[str, int]) -> Table:
    """The near-match thresholds as a table: per algorithm the largest Hamming distance
    that matches and the quality gate (``<algo>_min_quality`` keys), if any."""
    from .matching import MIN_QUALITY

    t = Table(title="near-match thresholds")
    for col in ("algorithm", "max distance", "min quality"):
        t.add_column(col, justify="left" if col == "algorithm" else "right")
    for name in sorted(k for k in thresholds if not k.endswith(MIN_QUALITY)):
        quality = thresholds.get(name + MIN_QUALITY)
        t.add_row(name, str(thresholds[name]), "-" if quality is None else str(quality))
    return t


def print_match_summary(summary: MatchSummary) -> None:
    """Tables with nothing to show (no hits, no known-file sets) are left out; a line says
    there were no hits."""
    out.print(terminal_line("store: ", summary.store, f"; sets: {len(summary.sets)}"))
    if summary.thresholds:
        out.print(thresholds_table(summary.thresholds))
    if summary.by_category:
        t = Table(title="hits by category (files)")
        t.add_column("category")
        t.add_column("files", justify="right")
        for cat, n in summary.by_category.items():
            t.add_row(for_terminal(cat), str(n))
        out.print(t)
    elif summary.sets:
        out.print(f"no hits in {len(summary.sets)} set(s)")
    for title, data in (("hits by set", summary.by_set),
                        ("KNOWN-file sets (known, not 'good'; nothing hidden)",
                         summary.known.by_set)):
        if not data:
            continue
        t = Table(title=title)
        for col in ("set", "files", "exact", "near"):
            t.add_column(col)
        for label, st in data.items():
            t.add_row(for_terminal(label), str(st.files), str(st.exact), str(st.near))
        out.print(t)
    for note in summary.notes:
        out.print(terminal_line("note: ", note))


def match_command(
    case_dir: Annotated[Path, typer.Argument(help="An existing case directory.")],
    store: StoreOpt = None,
    threshold: ThresholdOpt = None,
    min_quality: MinQualityOpt = None,
    phash: PhashOpt = None,
    dhash: DhashOpt = None,
    pdq: PdqOpt = None,
    pdq_min_quality: PdqQualityOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-run matching for an existing case against the current hash-set store, without
    rescanning. Recorded as a new run ('match') in the case's audit trail."""
    from .runs import match

    thresholds = thresholds_from(threshold, min_quality, phash, dhash, pdq, pdq_min_quality)
    with _errors():
        summary = match(case_dir, store=store, thresholds=thresholds or None,
                        argv=sys.argv[1:])
    if json_out:
        typer.echo(to_json(summary))
    else:
        print_match_summary(summary)
    if summary.damaged_sets:  # the other sets' hits are recorded and shown above
        for d in summary.damaged_sets:
            err.print(terminal_line(("error:", "red"), " ", d.error))
        raise typer.Exit(HashSetError.exit_code)
