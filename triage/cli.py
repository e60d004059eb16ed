"""The command line: parse, call the library, turn library errors into exit codes.

No SQL, no hashing, no TSK here (STYLE.md).

Exit codes (also in the README and ``triage --help``; constants in :mod:`.cli_errors`):
  0  success: every entry ended done or not applicable by design (skipped)
  1  internal error (a bug: please report it), or worker processes cannot start
  2  usage error (bad option or argument; a case inside the evidence or evidence inside the
     case; case details that differ from the case's without --update-case)
  3  scan completed, but some entries ended as errors (error or quarantined)
  4  the evidence cannot be opened or read
  5  the case directory or database cannot be used (corrupt, locked, not writable)
  6  hash-set problem (bad file, store error, a set damaged during matching)
  7  verification failed (triage verify names the export, row or signature; an image that
     does not match its stored hash)
  8  coverage gap: some entries were processed only in part (status incomplete, e.g. a
     picture format not decodable yet), nothing worse; verify-image: no stored hash
  9  scan --cluster: the Dask cluster cannot be used (not reachable, no worker, or a worker
     refused: other versions, evidence not readable there)
  130 interrupted (Ctrl-C); the case keeps every finished entry, run the scan again to resume
When several apply, the first of 130, 1, 2, 5, 4, 9, 6, 7, 3, 8, 0 is used.
"""

from __future__ import annotations

import json
import signal
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

if sys.argv[1:2] == ["scan"]:
    # Start the workers' forkserver before the command line's own imports (~0.3 s): its
    # imports then overlap them (start-up time, issue 13). Imports nothing heavy.
    from .isolation import start_early

    start_early()

import typer
from typer import _click
from typer.core import TyperGroup

from . import __version__, membudget
from .cli_errors import (
    EXIT_CASE,
    EXIT_CLUSTER,
    EXIT_COVERAGE_GAP,
    EXIT_EVIDENCE,
    EXIT_FILE_ERRORS,
    EXIT_HASH_SETS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PRECEDENCE,
    EXIT_USAGE,
    EXIT_VERIFICATION,
    exit_codes,
    exit_codes_help,
    worst_exit,
)
from .cli_thresholds import (
    DhashOpt,
    MinQualityOpt,
    PdqOpt,
    PdqQualityOpt,
    PhashOpt,
    ThresholdOpt,
    thresholds_from,
)
from .errors import TriageError, UsageError
from .model import RunSummary, to_json

#: The full table (``triage --help``); each command's help lists only its own codes.
EXIT_CODES_HELP = exit_codes_help(
    *EXIT_PRECEDENCE,
    c3="scan finished but some entries ended as error or quarantined",
    c7="verification failed (verify; verify-image and scan --verify-image: the image does "
       "not match its stored hash)",
    c8="coverage gap: some entries ended incomplete, nothing worse (verify-image: no "
       "stored hash to compare with)",
    c130="interrupted (a scan: run it again to resume)")
SCAN_EXITS = exit_codes_help(
    EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_FILE_ERRORS, EXIT_EVIDENCE, EXIT_CASE,
    EXIT_HASH_SETS, EXIT_VERIFICATION, EXIT_COVERAGE_GAP, EXIT_CLUSTER, EXIT_INTERRUPTED,
    c2="usage error (also: case inside the evidence or evidence inside the case; case "
       "details differ without --update-case)",
    c6="hash-set problem (matching failed; the scan's results are kept)",
    c7="--verify-image: the image does not match its stored hash; or the case's data rows "
       "were changed outside triage (nothing written)",
    c8="coverage gap: some entries ended incomplete, nothing worse; or --verify-image "
       "found no stored hash to compare with",
    c130="interrupted (run the same scan again to resume)")
DEMO_EXITS = exit_codes_help(
    EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_FILE_ERRORS, EXIT_EVIDENCE, EXIT_CASE,
    EXIT_HASH_SETS, EXIT_COVERAGE_GAP, EXIT_INTERRUPTED)
MATCH_EXITS = exit_codes_help(
    EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_CASE, EXIT_HASH_SETS, EXIT_VERIFICATION,
    EXIT_INTERRUPTED,
    c7="the case's data rows were changed outside triage (nothing written)")
REPORT_EXITS = exit_codes_help(
    EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_CASE, EXIT_VERIFICATION, EXIT_INTERRUPTED,
    c2="usage error (also: --out names an existing export and --force is not given, or "
       "a file that is not an export, the case's own files or the evidence)",
    c7="the case's data rows were changed outside triage (nothing exported)",
    c5="case cannot be used, or the export cannot be written")
VERIFY_EXITS = exit_codes_help(
    EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_CASE, EXIT_VERIFICATION, EXIT_INTERRUPTED,
    c7="verification failed (the output names the export, row or signature)")
VERIFY_IMAGE_EXITS = exit_codes_help(
    EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_EVIDENCE, EXIT_CASE, EXIT_VERIFICATION,
    EXIT_COVERAGE_GAP, EXIT_INTERRUPTED,
    c0="verified: the computed hash matches the stored hash",
    c5="the case given with --case cannot be used",
    c7="mismatch: the computed hash differs from the stored hash",
    c8="not verified: the image stores no hash to compare with")


class _LazyCommands(TyperGroup):
    """The root command group: ``scan`` and ``demo`` are defined here; the other commands
    (hash sets, match, leads, report, verify, verify-image, key, selftest) are added from their
    modules when the command line names one of them or help lists them (:func:`_register`),
    so that ``triage scan`` and ``triage --version`` do not import the hash-set store, the
    report model or their libraries (numpy, sqlite-utils, fpdf: start-up time, issue 13)."""

    _loaded = False

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name not in self.commands:
            self._load()
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            for param in command.get_params(ctx):  # the help option too
                _defer_coercion(param)
        return command

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        for param in self.get_params(ctx):
            _defer_coercion(param)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: _click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        more = typer.Typer(pretty_exceptions_show_locals=False,
                           pretty_exceptions_enable=False, add_completion=False,
                           rich_markup_mode=None)
        _register(more)
        for name, command in typer.main.get_group(more).commands.items():
            self.commands.setdefault(name, command)


class _DeferredCoercion:
    """Typer's coercion of one parameter, built only when a value needs it.

    Typer 0.29 coerces every parameter's value, defaults included, through a pydantic
    ``TypeAdapter`` built on first use: importing pydantic and building ~30 adapters cost
    ~0.15 s of every ``triage scan`` (start-up time, issue 13). Values whose coercion is the
    identity are returned here as typer would return them, without an adapter: None (typer's
    ``RuntimeParam.coerce`` answers None, or ``()`` for a multi-value parameter, before
    looking at the adapter); a ``str`` for a plain ``str`` parameter (typer's ``str(value)``,
    then pydantic's lax ``str``, both the identity on a ``str``); an ``int`` or ``float``
    default of a parameter of exactly that type within its ``min``/``max`` (pydantic returns
    it unchanged); a ``str`` for a plain :class:`~pathlib.Path` parameter, which goes
    through typer's own path checks after the conversion pydantic would make
    (``Path(value)``), and likewise each ``str`` of a ``list[Path]`` parameter (into a
    list); and :func:`parse_size`'s values (typer calls the parser and keeps its answer).
    Anything else (bounds, other parsers, choices, path types, files, values to convert)
    is handed to typer's real coercion, built then and kept."""

    def __init__(self, param: Any) -> None:
        self.param = param

    def coerce(self, value: Any, param: Any, ctx: _click.Context) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        desc = param.type_descriptor
        info = desc.parameter_info
        plain = (info.parser is None and not param.multiple and param.nargs == 1
                 and desc.file_annotation is None and not desc.is_choice)
        if plain and desc.annotation is str and type(value) is str and not desc.is_path:
            return value
        if plain and desc.annotation in (int, float) and type(value) is desc.annotation \
                and not info.clamp and (info.min is None or value >= info.min) \
                and (info.max is None or value <= info.max):
            return value
        if info.parser is parse_size and not param.multiple and param.nargs == 1:
            # typer's adapter for a parser: ``parser(value)`` validated as Any; parse_size
            # raises only typer.BadParameter, which pydantic passes through unchanged
            return parse_size(value)
        if plain and desc.annotation is Path and info.path_type is None \
                and type(value) is str:
            return _coerce_path(value, param, ctx)
        multi = param.multiple or param.nargs == -1
        if multi and info.parser is None and desc.file_annotation is None \
                and not desc.is_choice and typing.get_origin(desc.annotation) is list \
                and typing.get_args(desc.annotation) == (Path,) and info.path_type is None \
                and type(value) in (tuple, list) and all(type(v) is str for v in value):
            # typer's list adapter: each item through the item's adapter, into a list
            return [_coerce_path(v, param, ctx) for v in value]
        from typer._coercion import build_runtime_param

        real = build_runtime_param(desc)
        param._runtime_param = real
        return real.coerce(value, param=param, ctx=ctx)


def _coerce_path(value: str, param: Any, ctx: _click.Context) -> Any:
    """Typer's coercion of one ``str`` to a plain :class:`~pathlib.Path` parameter: the
    pydantic adapter converts it (``Path(value)``: the same for every ``str``, including
    empty, surrogate-escaped and NUL-holding ones) and hands it to typer's path checks."""
    from typer._param_types import coerce_cli_path

    return coerce_cli_path(Path(value), param.type_descriptor.parameter_info, path_type=Path,
                           param=param, ctx=ctx)


def _defer_coercion(param: _click.Parameter) -> None:
    """Give a typer parameter :class:`_DeferredCoercion` (typer builds its own on the first
    value otherwise); parameters of another kind, or already coerced once, are left as
    they are."""
    if getattr(param, "_runtime_param", False) is None and \
            hasattr(param, "type_descriptor"):
        param._runtime_param = _DeferredCoercion(param)  # type: ignore[attr-defined]


app = typer.Typer(
    name="triage",
    cls=_LazyCommands,
    help="Offline forensic triage of media files: identify by content, hash, match against "
         "known-hash sets. Never displays content. " + EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,  # locals can hold evidence
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: option names are never cut at 80 columns
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"triage {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """triage: offline forensic triage of media files."""


#: The carving bounds' defaults (``WorkerOptions``; the worker module is imported only
#: when a scan runs: start-up time).
_CARVE_MAX_ITEMS = 10_000
_CARVE_MAX_BYTES = 4 << 30
_CARVE_MAX_BYTES_SHOWN = "4G"
_SIZE_UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}


def parse_size(text: str | int) -> int:
    """A size in bytes: digits, optionally followed by K, M, G or T (1024-based; ``KiB``,
    ``MB`` and lower case are read the same). Raises :class:`typer.BadParameter`."""
    if isinstance(text, int):
        return text
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _SIZE_UNITS else ""
    number = raw[:len(raw) - len(unit)].strip()
    if not number.isdigit() or not number.isascii():
        raise typer.BadParameter(f"{text!r} is not a size (bytes, or a number with K, M, "
                                 "G or T)")
    value = int(number) << _SIZE_UNITS[unit]
    if value < 1:
        raise typer.BadParameter("must be at least 1 byte")
    return value


@app.command(epilog=SCAN_EXITS)
def scan(
    case: Annotated[Path, typer.Option("--case", "-c", help="Case directory (created private "
                                       "if missing; an existing case is resumed/extended). "
                                       "Never inside the evidence, nor the evidence inside "
                                       "it.")],
    evidence: Annotated[list[Path] | None, typer.Argument(
        help="Evidence: a folder (a mounted file system) or a disk image (E01, raw/dd, "
        "split raw, VMDK, VHD, QCOW2). A symbolic link is read through its target; both are "
        "recorded. Several exhibits are scanned into the case one after the other, each "
        "its own run.", show_default=False)] = None,
    case_number: Annotated[str | None, typer.Option(help="Case number.")] = None,
    examiner: Annotated[str | None, typer.Option(help="Examiner's name.")] = None,
    agency: Annotated[str | None, typer.Option(help="Agency or lab.")] = None,
    notes: Annotated[str | None, typer.Option(help="Free-text case notes.")] = None,
    update_case: Annotated[bool, typer.Option(
        "--update-case", help="Change case details (--case-number, --examiner, --agency, "
        "--notes) that differ from the existing case's; without it such a scan is refused. "
        "Old and new values are shown and audited.")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1,
                                             help="Worker processes (default: CPU count).")
                    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds allowed per file, plus 1 s "
                                           "per 20 MiB of its size.")] = 60.0,
    memory_limit: Annotated[int | None, typer.Option(
        min=0, help="Address-space limit per worker in MiB (0: none; default: enough for "
        "the largest picture --max-pixels lets through: "
        f"{membudget.DEFAULT_WORKER_MEMORY >> 20} MiB for the default).")] = None,
    memory_budget: Annotated[int | None, typer.Option(
        min=0, help="Total memory of all workers in MiB: large picture decodes wait for "
        "room and --jobs is lowered to fit (0: none; default: 75% of the memory available "
        "to the scan, MemAvailable or the control group's limit).")] = None,
    perceptual: Annotated[bool, typer.Option(help="Compute perceptual hashes (every "
                                             "picture algorithm: pHash, dHash, PDQ) of "
                                             "images.")] = True,
    variants: Annotated[bool, typer.Option(help="Also hash every picture's rotations and "
                                           "mirror images (8 forms) and, with dark borders, "
                                           "its unletterboxed form, so rotated, flipped "
                                           "and letterboxed copies match.")] = True,
    draft_size: Annotated[int, typer.Option(min=0, help="JPEG reduced-size decoding target "
                                            "in pixels (0: full decode).")] = 360,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images with more pixels "
                                            "(decompression bombs).")
                            ] = membudget.DEFAULT_MAX_PIXELS,
    metadata: Annotated[bool, typer.Option(help="Read pictures' EXIF and videos' container "
                                           "tags into the case (never shown on the "
                                           "terminal; docs/metadata.md).")] = True,
    containers: Annotated[bool, typer.Option(help="Look inside archives and documents (zip, "
                                             "tar, gz, bz2, xz, 7z, OLE2, PDF) and carve "
                                             "pictures embedded in other data.")] = True,
    container_max_mb: Annotated[int, typer.Option(min=1, help="Larger containers are hashed "
                                                  "but not expanded (MiB).")] = 512,
    max_depth: Annotated[int, typer.Option(min=1, help="Nesting depth of containers inside "
                                           "containers.")] = 5,
    video: Annotated[bool, typer.Option(help="Decode videos and hash their frames with "
                                        "vPDQ (docs/video.md).")] = True,
    video_seconds_per_hash: Annotated[float, typer.Option(
        min=0, help="Seconds of video per hashed frame (vPDQ's seconds_per_hash; 0: every "
        "frame).")] = 1.0,
    video_size: Annotated[int, typer.Option(
        min=0, help="Scale frames to N x N before PDQ (vPDQ's downsample; 0: the video's "
        "own size).")] = 0,
    video_max_frames: Annotated[int, typer.Option(
        min=1, help="Most frames hashed per video.")] = 100_000,
    video_max_pixels: Annotated[int, typer.Option(
        min=1, help="Videos with larger frames are not decoded.")] = 7680 * 4320,
    video_max_seconds: Annotated[float, typer.Option(
        min=1, help="Most seconds of decoding per video (the budget is 60 s plus the "
        "video's duration, up to this).")] = 1800.0,
    carve: Annotated[bool, typer.Option(help="Disk images: carve pictures and videos from "
                                        "each volume's unallocated space, its files' "
                                        "slack and unpartitioned space (issue 17).")] = True,
    carve_max_items: Annotated[int, typer.Option(
        min=1, help="Most items carved per area ($Unallocated, $Slack, ...); the rest of the "
        "area is then a recorded coverage gap.")] = _CARVE_MAX_ITEMS,
    carve_max_bytes: Annotated[int, typer.Option(
        metavar="SIZE", parser=parse_size, show_default=False,
        help="Most bytes carved per area: bytes, or with K, M, G, T (1024-based); the "
        "rest of the area is then a recorded coverage gap.  [default: "
        f"{_CARVE_MAX_BYTES_SHOWN}]")] = _CARVE_MAX_BYTES,
    match: Annotated[bool, typer.Option(help="Match against the hash-set store after the "
                                        "scan.")] = True,
    store: Annotated[Path | None, typer.Option(envvar="TRIAGE_HASHSET_STORE",
                                               help="Hash-set store (default: per-user data "
                                               "directory, or $TRIAGE_HASHSET_STORE).")
                     ] = None,
    threshold: ThresholdOpt = None,
    min_quality: MinQualityOpt = None,
    phash: PhashOpt = None,
    dhash: DhashOpt = None,
    pdq: PdqOpt = None,
    pdq_min_quality: PdqQualityOpt = None,
    device_make: Annotated[str | None, typer.Option(
        "--device-make", help="Make of the seized device this evidence comes from (as a "
        "camera writes it in EXIF, e.g. Apple); recorded with the run: 'triage leads' "
        "ranks pictures made by such a camera higher.")] = None,
    device_model: Annotated[str | None, typer.Option(
        "--device-model", help="Model of the seized device (e.g. iPhone 12); see "
        "--device-make.")] = None,
    retry_quarantined: Annotated[bool, typer.Option(
        "--retry-quarantined", help="Try the evidence's quarantined files again (new "
        "attempts; recorded in the audit trail).")] = False,
    verify_image: Annotated[bool, typer.Option(
        "--verify-image", help="Also hash the whole disk image (MD5, SHA-1) and compare with "
        "the hashes stored at acquisition (E01); recorded in the evidence row. Exit 7 on a "
        "mismatch, 8 when no hash is stored.")] = False,
    queue: Annotated[Path | None, typer.Option(
        "--queue", help="A text file of evidence paths, one per line (blank lines and lines "
        "starting with # are ignored), scanned after those given as arguments.")] = None,
    cluster: Annotated[str | None, typer.Option(
        "--cluster", metavar="tcp://HOST:PORT", help="Process the files on this Dask "
        "cluster's workers (the scheduler's address; tls:// with Dask's TLS settings). This "
        "machine still lists the evidence and writes the case. docs/cluster.md.")] = None,
    path_map: Annotated[list[str] | None, typer.Option(
        "--path-map", metavar="LOCAL=REMOTE", help="With --cluster: the evidence (or the "
        "block-hash set) at LOCAL on this machine is at REMOTE on the workers. Repeatable.")
                        ] = None,
    cluster_batch: Annotated[int, typer.Option(
        min=1, help="With --cluster: files per batch sent to a worker.")] = 256,
    cluster_wait: Annotated[float, typer.Option(
        min=1, help="With --cluster: seconds without any worker (or scheduler) before the "
        "scan stops (exit 9; finished files are kept, run it again to resume).")] = 120.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary "
                                           "on stdout instead of tables.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Scan evidence: identify every file by content, hash it (MD5, SHA-1, SHA-256; pHash,
    dHash and PDQ for images) and record everything in the case database."""
    from .isolation import start_early
    from .versions import prefetch

    start_early()  # the workers' imports overlap with the supervisor's (start-up time)
    prefetch()  # the versions the run records, collected while the scan modules load
    from .console import RichProgress, print_summary
    from .scan import ScanOptions
    from .scan import scan as run_scan
    from .worker import WorkerOptions

    if memory_limit is None:  # the largest picture --max-pixels lets through must fit
        worker_limit: int | None = membudget.worker_memory_limit(max_pixels)
    else:
        worker_limit = memory_limit << 20 if memory_limit else None
    opts = ScanOptions(
        timeout=timeout,
        worker=WorkerOptions(perceptual=perceptual, draft_size=draft_size,
                             max_pixels=max_pixels, containers=containers,
                             max_container_bytes=container_max_mb << 20, max_depth=max_depth,
                             memory_limit=worker_limit, video=video,
                             video_seconds_per_hash=video_seconds_per_hash,
                             video_size=video_size, video_max_frames=video_max_frames,
                             video_max_pixels=video_max_pixels,
                             video_max_seconds=video_max_seconds, variants=variants,
                             carve_max_items=carve_max_items,
                             carve_max_bytes=carve_max_bytes, metadata=metadata),
        memory_budget=None if memory_budget is None else memory_budget << 20,
        match=match, store=str(store) if store else None,
        thresholds=thresholds_from(threshold, min_quality, phash, dhash, pdq, pdq_min_quality),
        case_number=case_number,
        examiner=examiner, agency=agency, notes=notes, retry_quarantined=retry_quarantined,
        update_case=update_case, verify_image=verify_image, carve=carve,
        device_make=device_make, device_model=device_model)
    if jobs:
        opts.jobs = jobs
    exhibits = [str(e) for e in evidence or []]
    with exit_codes():
        if queue is not None:
            exhibits += read_queue(queue)
        if not exhibits:
            raise UsageError("no evidence given: name a folder or disk image, or --queue "
                             "FILE")
        if cluster:
            from .cluster import parse_path_map

            opts.cluster, opts.cluster_jobs, opts.cluster_batch = cluster, jobs, cluster_batch
            opts.cluster_wait = cluster_wait
            opts.path_map = tuple(parse_path_map(path_map or []))
        elif path_map:
            raise UsageError("--path-map is for --cluster scans")
    progress = RichProgress(enabled=None if not quiet else False)
    signal.signal(signal.SIGTERM, _terminate)  # a batch system's stop: same as Ctrl-C
    codes: list[int] = []
    listed: list[str] = []  # --json with several exhibits: one object per exhibit, in order
    for i, exhibit in enumerate(exhibits):
        if len(exhibits) > 1:
            progress.note(f"exhibit {i + 1} of {len(exhibits)}: {exhibit}")
        try:
            with exit_codes(interrupted="interrupted: finished entries are saved; run the "
                            "same scan again to resume"):
                try:
                    summary = run_scan(exhibit, case, opts, argv=sys.argv[1:],
                                       progress=progress)
                except TriageError as e:
                    listed.append(json.dumps({"evidence": {"path": exhibit},
                                              "error": str(e), "exit_code": e.exit_code}))
                    raise
        except typer.Exit as e:
            codes.append(e.exit_code)
            if e.exit_code != EXIT_EVIDENCE or i == len(exhibits) - 1:
                # Only an exhibit that cannot be opened lets the others go on: any other
                # problem (the case, the cluster, an interruption) would stop them all.
                rest = exhibits[i + 1:]
                if rest:
                    progress.warn(f"stopped before the remaining {len(rest)} exhibit(s)")
                listed += [json.dumps({"evidence": {"path": r}, "error": "not scanned: the "
                                       "command stopped at an earlier exhibit",
                                       "exit_code": None})
                           for r in rest]
                break
            continue
        listed.append(to_json(summary))
        codes.append(scan_exit_code(summary))
        if len(exhibits) == 1:
            _emit(summary, json_out, print_summary)
        elif not json_out:
            print_summary(summary)
    if len(exhibits) > 1 and json_out:
        typer.echo("[" + ",\n".join(listed) + "]")
    raise typer.Exit(worst_exit(*codes))


def read_queue(path: Path) -> list[str]:
    """``--queue FILE``: evidence paths, one per line, taken as written (UTF-8; blank lines
    and lines starting with ``#`` skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--queue {path}: cannot read it: {e}") from e
    return [line for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@app.command(epilog=DEMO_EXITS)
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to build the demo (evidence, "
                                            "demo hash sets, demo store, case).")
                         ] = Path("demo"),
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1,
                                             help="Worker processes (default: CPU count).")
                    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")
                        ] = False,
) -> None:
    """Build the bundled, benign, synthetic demo evidence and its demo hash sets, import them
    into a demo store (never your own store), scan, and print the summary."""
    from .console import print_summary
    from .demo_run import run_demo

    with exit_codes():
        summary = run_demo(directory, jobs=jobs, argv=sys.argv[1:])
    _emit(summary, json_out, print_summary)
    raise typer.Exit(scan_exit_code(summary))  # the demo's scan's own code


def scan_exit_code(summary: RunSummary) -> int:
    """A finished scan's exit code (:func:`~.cli_errors.worst_exit` of what applies): 6 when
    matching failed or a hash set was damaged, 7 when ``--verify-image`` found a mismatch,
    3 when entries ended as errors, 8 when entries ended as coverage gaps or
    ``--verify-image`` had no stored hash to compare with (as ``verify-image``), else 0."""
    from .cli_image import EXIT_OF_RESULT

    codes = [EXIT_OK]
    if summary.match_error is not None or (
            summary.matches is not None and summary.matches.damaged_sets):
        codes.append(EXIT_HASH_SETS)
    if summary.image_verification is not None:
        codes.append(EXIT_OF_RESULT.get(summary.image_verification.result, EXIT_OK))
    if summary.unfinished:
        codes.append(EXIT_FILE_ERRORS)
    if summary.coverage_gaps:
        codes.append(EXIT_COVERAGE_GAP)
    return worst_exit(*codes)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _emit(summary: RunSummary, json_out: bool,
          printer: Callable[[RunSummary], None]) -> None:
    if json_out:
        typer.echo(to_json(summary))
    else:
        printer(summary)


def _register(target: typer.Typer) -> None:
    """Add the commands defined in other modules to ``target`` (see :class:`_LazyCommands`).
    """
    from .cli_hashset import app as hashset_app
    from .cli_hashset import match_command
    from .cli_image import verify_image_command
    from .cli_leads import LEADS_EXITS, leads_command
    from .cli_report import key_app, report_command, verify_command
    from .cli_selftest import SELFTEST_EXITS, selftest_command

    target.add_typer(hashset_app, name="hashset")
    target.command("match", epilog=MATCH_EXITS)(match_command)
    target.command("leads", epilog=LEADS_EXITS)(leads_command)
    target.command("verify-image", epilog=VERIFY_IMAGE_EXITS)(verify_image_command)
    target.command("report", epilog=REPORT_EXITS)(report_command)
    target.command("verify", epilog=VERIFY_EXITS)(verify_command)
    target.add_typer(key_app, name="key")
    target.command("selftest", epilog=SELFTEST_EXITS)(selftest_command)


def main() -> None:
    try:
        app()
    except SystemExit as e:
        if sys.argv[1:2] == ["scan"] and isinstance(e.code, int | None):
            _end_scan_process(e.code or 0)
        raise


def _end_scan_process(code: int) -> None:
    """End the process of a finished ``triage scan`` (its case closed, its summary printed)
    at once: the workers' forkserver is stopped with SIGTERM instead of tearing down its
    preloaded libraries after the supervisor is gone (~0.06 s, and a caller reading the
    scan's output through a pipe waits for it, as the forkserver inherits stdout and
    stderr), and the supervisor runs its exit handlers (multiprocessing's finalizers remove
    its temporary folder), flushes stdout and stderr and exits without the interpreter's
    teardown of ~900 modules (~0.08 s: start-up time, issue 13). Nothing of the case is
    open by then. Left to the normal exit when another non-daemon thread is alive."""
    import atexit
    import os
    import threading

    if any(t.is_alive() and not t.daemon and t is not threading.main_thread()
           for t in threading.enumerate()):
        return
    try:
        from multiprocessing import forkserver

        pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        if pid:
            os.kill(pid, signal.SIGTERM)
    except Exception:  # noqa: S110 - the forkserver then ends by itself, a little later
        pass
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
