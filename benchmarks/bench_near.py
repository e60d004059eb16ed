"""Near matching at 10 million known values (issue 13; not run in CI).

    .venv/bin/python benchmarks/bench_near.py [--known 10000000] [--queries 10000]
        [--before REV] [--algorithms pdq,phash] [--data uniform,clustered] [--threads N]

For PDQ (256 bits, t=31) and pHash (64 bits, t=10), on two kinds of data:

* ``uniform``: uniform random known values; every 10th query is a known value with 3 bits
  flipped, the rest uniform random (the worst case for multi-index hashing's probes);
* ``clustered``: values shaped like perceptual hashes of real pictures (which are not
  uniform): per-bit probabilities drawn from 0.38-0.62 (the range measured on the 530
  pictures of shared/testdata; pHash's first bit, the DCT's DC term, is 1 in every one of
  them and here too); ``known/2000`` "archetypes" (pictures of one kind); ``known/8``
  centres, each an archetype with 20% of its bits flipped; each known value a centre with
  up to ``t`` bits flipped on average (near-duplicate copies), a fifth of them in the 1%
  hottest clusters. Queries: half a known value with up to ``t/2`` bits flipped on average,
  half a new centre of a random archetype (a picture of the same kind, not known).

Each (algorithm, data, implementation) runs in its own process, so that the process's peak
resident memory (``VmHWM``) is the index's. Reported: index build time (the first search
of a threshold builds its tables), the first search (numba compiles or loads its cache),
the best of two searches of all ``--queries`` queries in one batch (queries/s), pairs
found, the check against brute force on ``--sample`` queries (exact: identical pairs and
distances), the index's own memory and the process's peak. ``--before REV`` also runs
``hashsets/matching.py`` and ``hashsets/_mih.py`` as they were at git revision REV on the
same data, in the same run. Also printed: the CPU seconds of the timed search (the
process's, all threads) and the load average, which a shared machine makes necessary.
Goal (issue 13): 10,000 queries/s for both, exact, peak under 2 GB.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hashsets.matching import brute_force, n_words  # noqa: E402

ALGORITHMS = {"pdq": (256, 31), "phash": (64, 10)}
BLOCK = 1_000_000


def _pack(bits_u8: np.ndarray, nbits: int) -> np.ndarray:
    """(n, nbits) 0/1 -> (n, words) uint64, most significant first (nbits % 64 == 0)."""
    return np.packbits(bits_u8, axis=1).view(">u8").astype(np.uint64).reshape(len(bits_u8),
                                                                            nbits // 64)


def _bernoulli(rng: np.random.Generator, n: int, p: np.ndarray | float, bits: int
               ) -> np.ndarray:
    return (rng.random((n, bits), dtype=np.float32) < p).astype(np.uint8)


def uniform(n: int, n_queries: int, bits: int, t: int, seed: int
            ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = n_words(bits)
    known = rng.integers(0, 2**64, size=(n, w), dtype=np.uint64)
    queries = rng.integers(0, 2**64, size=(n_queries, w), dtype=np.uint64)
    queries[::10] = known[rng.integers(0, n, size=len(queries[::10]))]
    queries[::10, -1] ^= np.uint64(0b1011)
    return known, queries


def clustered(n: int, n_queries: int, bits: int, t: int, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.38, 0.62, bits).astype(np.float32)
    if bits == 64:
        p[0] = 1.0  # pHash: the DC coefficient is above the median in every picture
    n_arch = max(1, n // 2000)
    arch = _bernoulli(rng, n_arch, p, bits)
    n_centres = max(1, n // 8)
    centre_arch = rng.integers(0, n_arch, size=n_centres)
    centres = np.empty((n_centres, n_words(bits)), dtype=np.uint64)
    for a in range(0, n_centres, BLOCK):
        b = min(n_centres, a + BLOCK)
        centres[a:b] = _pack(arch[centre_arch[a:b]] ^ _bernoulli(rng, b - a, 0.2, bits), bits)
    hot = max(1, n_centres // 100)
    which = np.where(rng.random(n) < 0.2, rng.integers(0, hot, size=n),
                     rng.integers(0, n_centres, size=n))
    known = np.empty((n, n_words(bits)), dtype=np.uint64)
    for a in range(0, n, BLOCK):
        b = min(n, a + BLOCK)
        f = rng.uniform(0, t / bits, size=(b - a, 1)).astype(np.float32)
        known[a:b] = centres[which[a:b]] ^ _pack(_bernoulli(rng, b - a, f, bits), bits)
    half = n_queries // 2
    f = rng.uniform(0, t / 2 / bits, size=(half, 1)).astype(np.float32)
    near = known[rng.integers(0, n, size=half)] ^ _pack(_bernoulli(rng, half, f, bits), bits)
    other = _pack(arch[rng.integers(0, n_arch, size=n_queries - half)]
                  ^ _bernoulli(rng, n_queries - half, 0.2, bits), bits)
    queries = np.concatenate([near, other])
    return known, queries[rng.permutation(len(queries))]


def _before(rev: str) -> ModuleType:
    """hashsets/matching.py and its compiled loops (hashsets/_mih.py, when the revision has
    it) as at git revision ``rev``, importable beside today's."""
    def show(path: str) -> str | None:
        run = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"],
                             capture_output=True, text=True)
        return run.stdout if run.returncode == 0 else None

    folder = Path(tempfile.mkdtemp(prefix="bench-near-"))
    text = show("hashsets/matching.py")
    assert text is not None, f"{rev} has no hashsets/matching.py"
    if (mih := show("hashsets/_mih.py")) is not None:
        _load(folder, "_mih_before", mih)
        text = text.replace("from . import _mih\n", "from . import _mih_before as _mih\n")
    return _load(folder, "matching_before", text)


def _load(folder: Path, name: str, text: str) -> ModuleType:
    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"hashsets.{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "hashsets"
    sys.modules[spec.name] = module
    setattr(sys.modules["hashsets"], name, module)
    spec.loader.exec_module(module)
    return module


def _peak_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def one(alg: str, data: str, impl: str, args: argparse.Namespace) -> dict[str, Any]:
    bits, t = ALGORITHMS[alg]
    make = uniform if data == "uniform" else clustered
    known, queries = make(args.known, args.queries, bits, t, seed=bits * 7 + len(data))
    base_mib = _peak_mib()
    if impl == "before":
        cls = _before(args.before).NearIndex
    else:
        from hashsets.matching import NearIndex as cls
    index = cls(known, bits, threads=args.threads)
    out: dict[str, Any] = {"algorithm": alg, "data": data, "impl": impl}
    t0 = time.perf_counter()
    if hasattr(index, "prepare"):
        index.prepare(t)
    out["build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.search(queries[:100], t)
    out["first_s"] = time.perf_counter() - t0
    best = cpu = float("inf")
    for _ in range(2):
        t0, c0 = time.perf_counter(), time.process_time()
        found = index.search(queries, t)
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    out["qps"] = len(queries) / best
    out["cpu_s"] = cpu
    out["load"] = os.getloadavg()[0]
    out["pairs"] = len(found[0])
    sample = args.sample
    want = brute_force(queries[:sample], known, t)
    mask = found[0] < sample
    out["exact"] = all(np.array_equal(a[mask], b) for a, b in zip(found, want, strict=True))
    out["sample_pairs"] = len(want[0])
    out["index_mb"] = getattr(index, "nbytes", known.nbytes) / 1e6
    out["peak_mib"] = _peak_mib()
    out["data_mib"] = base_mib
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--known", type=int, default=10_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--sample", type=int, default=40, help="queries checked by brute force")
    ap.add_argument("--algorithms", default="pdq,phash")
    ap.add_argument("--data", default="uniform,clustered")
    ap.add_argument("--before", default=None, help="git revision to compare with")
    ap.add_argument("--threads", type=int, default=None, help="search threads (default: "
                    "the index's own choice)")
    ap.add_argument("--one", nargs=3, metavar=("ALG", "DATA", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args)))
        return
    print(f"cpus: {os.cpu_count()}; load: {os.getloadavg()[0]:.1f}; numpy {np.__version__}; "
          f"{args.known:,} known, {args.queries:,} queries in one batch")
    head = (f"{'alg':6} {'data':9} {'impl':6} {'build s':>8} {'first s':>8} {'queries/s':>10} "
            f"{'pairs':>9} {'exact':>14} {'index MB':>9} {'peak MiB':>9} {'CPU s':>6} "
            f"{'load':>5}")
    print(head)
    impls = ["after"] + (["before"] if args.before else [])
    for alg in args.algorithms.split(","):
        for data in args.data.split(","):
            for impl in impls:
                cmd = [sys.executable, __file__, "--one", alg, data, impl,
                       "--known", str(args.known), "--queries", str(args.queries),
                       "--sample", str(args.sample)]
                cmd += ["--before", args.before] if args.before else []
                cmd += ["--threads", str(args.threads)] if args.threads else []
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode:
                    print(f"{alg:6} {data:9} {impl:6} FAILED: {run.stderr.strip()[-300:]}")
                    continue
                r = json.loads(run.stdout.strip().splitlines()[-1])
                exact = f"{'yes' if r['exact'] else 'NO'} ({r['sample_pairs']})"
                print(f"{alg:6} {data:9} {impl:6} {r['build_s']:8.1f} {r['first_s']:8.2f} "
                      f"{r['qps']:10,.0f} {r['pairs']:9,} {exact:>14} {r['index_mb']:9,.0f} "
                      f"{r['peak_mib']:9,.0f} {r['cpu_s']:6.2f} {r['load']:5.1f}", flush=True)


if __name__ == "__main__":
    main()
