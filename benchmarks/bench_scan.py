#!/usr/bin/env python3
"""Side-by-side performance benchmarks for ``triage scan`` (issue 2, "Performance").

    .venv/bin/python benchmarks/bench_scan.py --jpegs 300 --nonmedia-mb 500

Parts (``--parts abcd`` by default; see benchmarks/README.md):

a. crypto-only scan (``triage scan --no-perceptual --no-containers --no-match``) vs ``hashdeep -r -c
   md5,sha1,sha256`` on the whole corpus. Goal: triage >= 2.5x faster.
b. full scan of the JPEGs (3 crypto hashes + pHash + dHash + PDQ) vs a naive one-process
   loop (Image.open + full decode + imagehash + pdqhash + three separate hashlib reads).
   Goals: >= 3x faster and >= 200 images/s on 2 cores.
c. peak memory of the full scan on a 1x and a 4x corpus: supervisor, workers, whole tree.
d. reduced-size decoding: Hamming distance of pHash/dHash/PDQ between a full decode and a
   JPEG draft-mode decode at 256 and 512, and the time saved.

Each part keeps going when another fails; a failing ``triage`` command has its exit code
and stderr printed. Only hashes, distances, sizes, counts and times are printed: never any
picture content. Everything is written under one temporary directory (or --workdir),
removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pdqhash
import PIL
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_corpus

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "media"
DRAFT_SIZES = (512, 360, 256)
# Thresholds the scanner matches with (hashsets/algorithms/perceptual.py).
THRESHOLDS = {"phash": 10, "dhash": 10, "pdq": 31}
GOAL_CRYPTO_RATIO = 2.5
GOAL_FULL_RATIO = 3.0
GOAL_IMAGES_PER_SECOND = 200.0
CHUNK = 1024 * 1024
POLL_SECONDS = 0.02


# --------------------------------------------------------------------------- helpers


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _rss(kib: float) -> str:
    return f"{kib / 1024:,.0f} MiB"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _warm(paths: Iterable[Path]) -> int:
    """Read every file once so that both sides of a comparison start with a warm cache."""
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            while block := handle.read(8 * CHUNK):
                total += len(block)
    return total


def _drop_caches() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        print(f"  (could not drop the page cache: {exc}; continuing with a warm cache)")


def _section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 76 - len(title)), flush=True)


@dataclass
class Measured:
    """One external command's exit code, wall time and memory.

    Memory comes from polling the command's process tree every 20 ms (psutil finds the
    processes, ``/proc/PID/status`` gives the figures):

    * ``peak_supervisor_kib`` / ``peak_worker_kib``: the kernel's RSS high-water mark
      (``VmHWM``) of the command's own process and of the largest descendant (workers, the
      forkserver). ``VmHWM`` is exact however briefly the peak lasted; only growth in a
      process's last 20 ms of life can be missed.
    * ``peak_tree_kib``: the largest sum of current RSS (``VmRSS``) over the tree at one
      sampling instant (shared pages are counted in every process that maps them).

    Not ``ru_maxrss`` from ``wait4``/``/usr/bin/time``: Linux charges a child with the RSS
    high-water mark of its parent at fork/exec, and workers started by a forkserver are not
    reaped by the command, so neither figure is right for this tree.
    """

    argv: list[str]
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    peak_supervisor_kib: int = 0
    peak_worker_kib: int = 0
    peak_tree_kib: int = 0
    workers_seen: set[int] = field(default_factory=set)
    cpu_by_pid: dict[int, float] = field(default_factory=dict)

    @property
    def cpu_seconds(self) -> float:
        """User+system CPU of the tree, as last sampled for each process (slightly low)."""
        return sum(self.cpu_by_pid.values())

    def cpu_text(self) -> str:
        cores = os.cpu_count() or 1
        if not self.cpu_by_pid or self.seconds <= 0:
            return ""
        busy = self.cpu_seconds / (self.seconds * cores) * 100
        return f"CPU {self.cpu_seconds:.1f} s = {busy:.0f}% of {cores} cores"

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def report_failure(self) -> None:
        print(f"  FAILED (exit {self.returncode}): {' '.join(self.argv)}")
        tail = self.stderr.strip().splitlines()[-15:]
        for line in tail:
            print(f"    stderr| {line}")


def run_measured(argv: Sequence[str], workdir: Path, *, poll: bool = True) -> Measured:
    """Run ``argv`` with stdout/stderr to files; measure wall time and (if poll) memory."""
    out_path, err_path = workdir / "cmd.stdout", workdir / "cmd.stderr"
    m = Measured(list(argv), -1, 0.0, "", "")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(list(argv), stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL)
        except OSError as exc:
            m.returncode, m.stderr = 127, f"cannot start: {exc}"
            return m
        try:
            root = psutil.Process(proc.pid) if poll else None
        except psutil.Error:
            root = None
        while proc.poll() is None:
            if root is not None:
                _sample(root, m)
            time.sleep(POLL_SECONDS)
        m.seconds = time.perf_counter() - started
    m.returncode = proc.returncode
    m.stdout = out_path.read_text(errors="replace")
    m.stderr = err_path.read_text(errors="replace")
    return m


def _status_kib(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) in KiB from /proc/PID/status; (0, 0) once the process is gone."""
    hwm = rss = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return hwm, rss


def _sample(root: psutil.Process, m: Measured) -> None:
    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    total = 0
    for proc in tree:
        hwm, rss = _status_kib(proc.pid)
        total += rss
        try:
            cpu = proc.cpu_times()
            m.cpu_by_pid[proc.pid] = cpu.user + cpu.system
        except psutil.Error:
            pass
        if proc.pid == root.pid:
            m.peak_supervisor_kib = max(m.peak_supervisor_kib, hwm)
        elif hwm:
            m.workers_seen.add(proc.pid)
            m.peak_worker_kib = max(m.peak_worker_kib, hwm)
    m.peak_tree_kib = max(m.peak_tree_kib, total)


def _triage_argv(args: argparse.Namespace) -> list[str]:
    if args.triage:
        return args.triage.split()
    script = Path(sys.executable).parent / "triage"
    return [str(script)] if script.exists() else [sys.executable, "-m", "triage"]


def triage_scan(args: argparse.Namespace, target: Path, case: Path, workdir: Path,
                *extra: str) -> Measured:
    argv = [*_triage_argv(args), "scan", str(target), "--case", str(case), *extra,
            "--no-match", "--json"]
    if args.jobs:
        argv += ["--jobs", str(args.jobs)]
    return run_measured(argv, workdir)


def _summarise_json(text: str) -> str:
    """Counts from triage's --json summary (scalars only, never content)."""
    try:
        data = json.loads(text)
    except ValueError:
        return "(no JSON summary on stdout)"
    if not isinstance(data, dict):
        return "(JSON summary is not an object)"
    flat = {k: v for k, v in data.items() if isinstance(v, int | float) and
            not isinstance(v, bool)}
    for key in ("counts", "status", "statuses"):
        if isinstance(data.get(key), dict):
            flat.update({f"{key}.{k}": v for k, v in data[key].items()
                         if isinstance(v, int | float)})
    return ", ".join(f"{k}={v}" for k, v in sorted(flat.items())) or "(no counts)"


def _verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "n/a"
    return "PASS" if value >= goal else "FAIL"


# --------------------------------------------------------------------------- part a


def part_a(args: argparse.Namespace, corpus: Path, work: Path, results: dict[str, Any]) -> None:
    _section("a. crypto-only scan vs hashdeep -r -c md5,sha1,sha256")
    files = _files(corpus)
    total = sum(p.stat().st_size for p in files)
    print(f"  corpus: {len(files)} files, {_mb(total)}; cache: "
          f"{'dropped before each run' if args.drop_caches else 'warm (read once first)'}")
    if not args.drop_caches:
        _warm(files)
    res: dict[str, Any] = {"files": len(files), "bytes": total}
    per_core = hashlib_rate()
    cores = os.cpu_count() or 1
    res["hashlib_mb_per_s_per_core"] = per_core / 1e6
    print(f"  hashlib md5+sha1+sha256 from one buffer: {per_core / 1e6:.0f} MB/s per core -> "
          f"ceiling about {cores * per_core / 1e6:.0f} MB/s on {cores} cores")
    hashdeep = shutil.which("hashdeep")
    if hashdeep is None:
        print("  hashdeep: NOT INSTALLED. Install the Debian package: apt-get install hashdeep")
    else:
        # Default threads (one per core) is the comparison; -j1 is shown for reference.
        for label, extra in (("hashdeep", []), ("hashdeep -j1", ["-j", "1"])):
            if args.drop_caches:
                _drop_caches()
            hd = run_measured([hashdeep, *extra, "-r", "-c", "md5,sha1,sha256", str(corpus)],
                              work, poll=False)
            if not hd.ok:
                hd.report_failure()
                continue
            rows = [ln for ln in hd.stdout.splitlines() if ln and ln[0] not in "%#"]
            print(f"  {label + ':':<14}{hd.seconds:7.2f} s  {total / hd.seconds / 1e6:8.1f} MB/s"
                  f"  ({len(rows)} files hashed)")
            res[f"{label.replace(' ', '')}_seconds"] = hd.seconds
    if args.drop_caches:
        _drop_caches()
    # Like hashdeep: digests only (no perceptual hashes, no looking inside containers).
    tr = triage_scan(args, corpus, work / "case-a", work, "--no-perceptual", "--no-containers")
    if tr.ok:
        print(f"  {'triage:':<14}{tr.seconds:7.2f} s  {total / tr.seconds / 1e6:8.1f} MB/s  "
              f"{tr.cpu_text()}")
        print(f"                {_summarise_json(tr.stdout)}")
        res["triage_seconds"] = tr.seconds
    else:
        tr.report_failure()
    ratio = None
    if "hashdeep_seconds" in res and "triage_seconds" in res:
        ratio = res["hashdeep_seconds"] / res["triage_seconds"]
        print(f"  ratio hashdeep/triage = {ratio:.2f}x  (goal >= {GOAL_CRYPTO_RATIO}x: "
              f"{_verdict(ratio, GOAL_CRYPTO_RATIO)})")
        if "hashdeep-j1_seconds" in res:
            print(f"  ratio hashdeep -j1/triage = "
                  f"{res['hashdeep-j1_seconds'] / res['triage_seconds']:.2f}x (reference only)")
    res["ratio"] = ratio
    results["a"] = res


def hashlib_rate(seconds: float = 1.0) -> float:
    """Bytes/s of MD5+SHA-1+SHA-256 fed from one buffer in this process (one core)."""
    block = np.random.default_rng(0).bytes(CHUNK)
    hashers = [hashlib.new(name) for name in ("md5", "sha1", "sha256")]
    done = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(16):
            for hasher in hashers:
                hasher.update(block)
        done += 16 * CHUNK
    return done / elapsed


# --------------------------------------------------------------------------- part b


def naive_one(path: Path) -> None:
    """The naive per-file work: full decode, each hash on its own, three separate reads."""
    with Image.open(path) as image:
        image.load()
        imagehash.phash(image)
        imagehash.dhash(image)
        pdqhash.compute(np.asarray(image.convert("RGB")))
    for name in ("md5", "sha1", "sha256"):
        digest = hashlib.new(name)
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
        digest.hexdigest()


def part_b(args: argparse.Namespace, corpus: Path, work: Path, results: dict[str, Any]) -> None:
    _section("b. full scan of the JPEGs vs a naive one-process loop")
    jpeg_dir = corpus / "jpeg"
    files = _files(jpeg_dir)
    total = sum(p.stat().st_size for p in files)
    print(f"  JPEGs: {len(files)} files, {_mb(total)}; cores: {os.cpu_count()}")
    _warm(files)
    res: dict[str, Any] = {"images": len(files), "bytes": total}
    started = time.perf_counter()
    failures = 0
    for path in files:
        try:
            naive_one(path)
        except Exception as exc:  # one bad file must not stop the benchmark
            failures += 1
            print(f"  naive: {path.name}: {type(exc).__name__}: {exc}")
    naive = time.perf_counter() - started
    res["naive_seconds"] = naive
    print(f"  naive loop: {naive:7.2f} s  {len(files) / naive:7.1f} images/s"
          + (f"  ({failures} failed)" if failures else ""))
    tr = triage_scan(args, jpeg_dir, work / "case-b", work)
    ratio = rate = None
    if tr.ok:
        rate = len(files) / tr.seconds
        ratio = naive / tr.seconds
        res["triage_seconds"] = tr.seconds
        print(f"  triage:     {tr.seconds:7.2f} s  {rate:7.1f} images/s  {tr.cpu_text()}")
        print(f"              {_summarise_json(tr.stdout)}")
        print(f"  ratio naive/triage = {ratio:.2f}x (goal >= {GOAL_FULL_RATIO}x: "
              f"{_verdict(ratio, GOAL_FULL_RATIO)}); rate {rate:.0f} images/s (goal >= "
              f"{GOAL_IMAGES_PER_SECOND:.0f} on 2 cores: {_verdict(rate, GOAL_IMAGES_PER_SECOND)})")
    else:
        tr.report_failure()
    res.update(ratio=ratio, images_per_second=rate)
    results["b"] = res


# --------------------------------------------------------------------------- part c


def part_c(args: argparse.Namespace, corpus: Path, work: Path, results: dict[str, Any]) -> None:
    scale = args.memory_scale
    _section(f"c. peak memory of a full scan: 1x vs {scale}x the JPEG count")
    one = corpus / "jpeg"
    n = len(_files(one))
    big = work / f"corpus-{scale}x"
    print(f"  generating the {scale}x corpus ({n * scale} JPEGs) ...", flush=True)
    gen_corpus.generate(big, jpegs=n * scale, nonmedia_mb=0, seed=args.seed + 1000)
    rows = []
    for label, target in (("1x", one), (f"{scale}x", big / "jpeg")):
        count = len(_files(target))
        _warm(_files(target))
        m = triage_scan(args, target, work / f"case-c-{label}", work)
        if not m.ok:
            m.report_failure()
            continue
        rows.append((label, count, m))
    if not rows:
        results["c"] = {"error": "triage scan failed"}
        return
    print("  method: process tree polled every 20 ms; supervisor and worker = kernel RSS")
    print("          high-water mark (/proc/PID/status VmHWM, exact per process); tree sum")
    print("          = largest sum of current VmRSS at one instant (shared pages counted in each)")
    print(f"  {'corpus':>6} {'files':>6} {'seconds':>8} {'supervisor':>11} "
          f"{'worker max':>11} {'tree sum':>10} {'processes':>10}")
    for label, count, m in rows:
        print(f"  {label:>6} {count:>6} {m.seconds:8.2f} "
              f"{_rss(m.peak_supervisor_kib):>11} {_rss(m.peak_worker_kib):>11} "
              f"{_rss(m.peak_tree_kib):>10} {len(m.workers_seen):>10}")
    res: dict[str, Any] = {label: {"files": count, "seconds": m.seconds,
                                   "supervisor_kib": m.peak_supervisor_kib,
                                   "worker_kib": m.peak_worker_kib,
                                   "tree_kib": m.peak_tree_kib}
                           for label, count, m in rows}
    if len(rows) == 2:
        a, b = rows[0][2], rows[1][2]
        growth = {name: (getattr(b, attr) / getattr(a, attr) if getattr(a, attr) else None)
                  for name, attr in (("supervisor", "peak_supervisor_kib"),
                                     ("worker", "peak_worker_kib"),
                                     ("tree", "peak_tree_kib"))}
        text = ", ".join(f"{k} {v:.2f}x" for k, v in growth.items() if v is not None)
        flat = all(v is None or v < 1.25 for v in growth.values())
        print(f"  growth {rows[1][0]}/1x: {text}  -> {'flat' if flat else 'NOT flat'} "
              "(flat = every peak grows < 1.25x)")
        res["growth"] = growth
        res["flat"] = flat
    results["c"] = res


# --------------------------------------------------------------------------- part d


def _hashes(image: Image.Image) -> tuple[dict[str, str], int]:
    bits, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    pdq = f"{int(''.join('1' if b else '0' for b in bits), 2):064x}"
    return ({"phash": str(imagehash.phash(image)), "dhash": str(imagehash.dhash(image)),
             "pdq": pdq}, int(quality))


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _timed_decode(path: Path, draft: int | None, repeat: int) -> tuple[Image.Image, float]:
    """Decode ``repeat`` times, return the last image and the fastest time (seconds)."""
    best = float("inf")
    image: Image.Image | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        image = Image.open(path)
        if draft is not None:
            image.draft("RGB", (draft, draft))
        image.load()
        best = min(best, time.perf_counter() - started)
    assert image is not None
    return image, best


@dataclass
class DraftRow:
    group: str
    variant: str
    distances: dict[str, int]
    quality_delta: int
    decode: float
    hashing: float
    pixels: int


def draft_sample(corpus: Path | None, per_size: int) -> list[tuple[str, Path]]:
    sample: list[tuple[str, Path]] = []
    if corpus is not None and (corpus / "jpeg").is_dir():
        for folder in sorted((corpus / "jpeg").iterdir(), key=lambda p: int(p.name.split("x")[0])):
            files = _files(folder)
            sample += [(f"corpus {folder.name}", p)
                       for p in (files if per_size <= 0 else files[:per_size])]
    extra = sorted((TESTDATA / "imageio").glob("*.jpg")) + \
        sorted(p for p in (TESTDATA / "pdq").glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    sample += [("testdata jpg", p) for p in extra]
    return sample


def part_d(args: argparse.Namespace, corpus: Path | None, results: dict[str, Any]) -> None:
    _section("d. reduced-size JPEG decoding (draft mode) vs full decode")
    sample = draft_sample(corpus, args.draft_sample)
    sizes = tuple(int(x) for x in args.draft_sizes.split(",")) if args.draft_sizes \
        else DRAFT_SIZES
    print(f"  {len(sample)} JPEGs; draft('RGB', (s, s)) for s in {sizes}; decode time = "
          f"best of {args.repeat}; hash time = pHash + dHash + PDQ on the decoded image")
    rows: list[DraftRow] = []
    for group, path in sample:
        try:
            full, t_full = _timed_decode(path, None, args.repeat)
            started = time.perf_counter()
            ref, ref_q = _hashes(full)
            h_full = time.perf_counter() - started
            rows.append(DraftRow(group, "full", dict.fromkeys(ref, 0), 0, t_full, h_full,
                                 full.width * full.height))
            for size in sizes:
                small, t_small = _timed_decode(path, size, args.repeat)
                started = time.perf_counter()
                got, got_q = _hashes(small)
                h_small = time.perf_counter() - started
                rows.append(DraftRow(group, f"draft {size}",
                                     {k: _distance(ref[k], got[k]) for k in ref},
                                     got_q - ref_q, t_small, h_small,
                                     small.width * small.height))
        except Exception as exc:  # report and go on: one odd JPEG must not end the study
            print(f"  skipped {path.name}: {type(exc).__name__}: {exc}")
    if not rows:
        results["d"] = {"error": "no JPEG could be decoded"}
        return
    groups = ["all", *dict.fromkeys(r.group for r in rows)]
    variants = ["full", *(f"draft {s}" for s in sizes)]
    header = (f"  {'group':<18} {'variant':<9} {'n':>4} {'Mpx':>6} {'pHash mean/max':>15} "
              f"{'dHash mean/max':>15} {'PDQ mean/max':>13} {'PDQq Δ':>7} {'decode ms':>10} "
              f"{'hash ms':>8} {'total ms':>9} {'saved':>6}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    table: dict[str, Any] = {}
    for group in groups:
        base_total = None
        for variant in variants:
            sel = [r for r in rows if r.variant == variant and (group == "all" or r.group == group)]
            if not sel:
                continue
            stats = {k: (statistics.fmean(r.distances[k] for r in sel),
                         max(r.distances[k] for r in sel)) for k in THRESHOLDS}
            decode = statistics.fmean(r.decode for r in sel) * 1e3
            hashing = statistics.fmean(r.hashing for r in sel) * 1e3
            total = decode + hashing
            base_total = total if variant == "full" else base_total
            saved = (1 - total / base_total) * 100 if base_total else 0.0
            qd = statistics.fmean(r.quality_delta for r in sel)
            mpx = statistics.fmean(r.pixels for r in sel) / 1e6
            cells = " ".join(f"{f'{m:.2f}/{x}':>{w}}" for (m, x), w in
                             zip(stats.values(), (15, 15, 13), strict=True))
            print(f"  {group:<18} {variant:<9} {len(sel):>4} {mpx:6.2f} {cells} {qd:7.1f} "
                  f"{decode:10.1f} {hashing:8.1f} {total:9.1f} {saved:5.0f}%")
            table.setdefault(group, {})[variant] = {
                "n": len(sel), "mean_megapixels": mpx,
                **{f"{k}_mean": v[0] for k, v in stats.items()},
                **{f"{k}_max": v[1] for k, v in stats.items()},
                "pdq_quality_delta_mean": qd, "decode_ms": decode, "hash_ms": hashing,
                "total_ms": total, "saved_percent": saved}
        print()
    over = {v: {k: sum(1 for r in rows if r.variant == v and r.distances[k] > t)
                for k, t in THRESHOLDS.items()} for v in variants[1:]}
    print("  images whose draft hash is beyond the match threshold "
          f"(pHash>{THRESHOLDS['phash']}, dHash>{THRESHOLDS['dhash']}, PDQ>{THRESHOLDS['pdq']}):")
    for variant, counts in over.items():
        print(f"    {variant}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    results["d"] = {"table": table, "beyond_threshold": over}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="use this corpus (from gen_corpus.py) "
                        "instead of generating one")
    parser.add_argument("--jpegs", type=int, default=300, help="JPEGs to generate (300)")
    parser.add_argument("--nonmedia-mb", type=int, default=500,
                        help="MiB of non-media files to generate (500)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parts", default="abcd", help="which parts to run, e.g. 'bd'")
    parser.add_argument("--triage", help="triage command (default: the venv's triage script)")
    parser.add_argument("--jobs", type=int, help="pass --jobs N to triage scan")
    parser.add_argument("--drop-caches", action="store_true",
                        help="part a: sync and drop the page cache before each run (root)")
    parser.add_argument("--memory-scale", type=int, default=4, help="part c: larger corpus "
                        "has this many times the JPEGs (4)")
    parser.add_argument("--draft-sizes", default="",
                        help="part d: comma-separated draft targets (default 512,360,256)")
    parser.add_argument("--draft-sample", type=int, default=30, help="part d: corpus JPEGs "
                        "per size (0 = all); the test-data JPEGs are always added")
    parser.add_argument("--repeat", type=int, default=2, help="part d: decodes per timing")
    parser.add_argument("--workdir", type=Path, help="parent of the temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--results", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    parts = set(args.parts.lower())

    work = Path(tempfile.mkdtemp(prefix="triage-bench-", dir=args.workdir))
    results: dict[str, Any] = {}
    try:
        print(f"python {platform.python_version()}, Pillow {PIL.__version__}, "
              f"cores {os.cpu_count()}, machine {platform.machine()}; work dir {work}")
        corpus: Path | None = args.corpus
        if corpus is None and parts & set("abc"):
            corpus = work / "corpus"
            print(f"generating corpus: {args.jpegs} JPEGs + {args.nonmedia_mb} MiB non-media "
                  "...", flush=True)
            info = gen_corpus.generate(corpus, jpegs=args.jpegs, nonmedia_mb=args.nonmedia_mb,
                                       seed=args.seed)
            print(f"  {info['jpegs']} JPEGs ({_mb(info['jpeg_bytes'])}) + "
                  f"{info['nonmedia_files']} non-media files ({_mb(info['nonmedia_bytes'])}) "
                  f"in {info['generation_seconds']} s")
        elif corpus is None and "d" in parts:
            corpus = work / "corpus"
            gen_corpus.generate(corpus, jpegs=max(3, args.draft_sample * 3) if
                                args.draft_sample > 0 else args.jpegs, nonmedia_mb=0,
                                seed=args.seed)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("a", lambda: part_a(args, corpus, work, results)),  # type: ignore[arg-type]
            ("b", lambda: part_b(args, corpus, work, results)),  # type: ignore[arg-type]
            ("c", lambda: part_c(args, corpus, work, results)),  # type: ignore[arg-type]
            ("d", lambda: part_d(args, corpus, results)),
        ]
        for name, step in steps:
            if name in parts:
                try:
                    step()
                except Exception as exc:  # keep going with the other parts
                    print(f"  part {name} failed: {type(exc).__name__}: {exc}")
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        _section("summary")
        a, b, c = results.get("a", {}), results.get("b", {}), results.get("c", {})
        if "a" in parts:
            r = a.get("ratio")
            print(f"  a. crypto-only vs hashdeep: "
                  f"{f'{r:.2f}x' if r else 'n/a'} (goal >= {GOAL_CRYPTO_RATIO}x)")
        if "b" in parts:
            r, ips = b.get("ratio"), b.get("images_per_second")
            print(f"  b. full scan vs naive loop: {f'{r:.2f}x' if r else 'n/a'} (goal >= "
                  f"{GOAL_FULL_RATIO}x); {f'{ips:.0f}' if ips else 'n/a'} images/s (goal >= "
                  f"{GOAL_IMAGES_PER_SECOND:.0f})")
        if "c" in parts:
            print(f"  c. memory flat from 1x to {args.memory_scale}x: {c.get('flat', 'n/a')}")
        if args.results:
            args.results.write_text(json.dumps(results, indent=2, default=str) + "\n")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
