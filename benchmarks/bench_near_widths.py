"""NearIndex at widths that are and are not multiples of 64 bits (not run in CI).

    .venv/bin/python benchmarks/bench_near_widths.py [--known N] [--queries N]

For each (bits, threshold) of (256, 31) PDQ, (64, 10) pHash/dHash, (40, 6) the toy of
tests/toy_algorithm.py and (100, 12): N uniform random known values, queries that are known
values with 2 bits flipped; prints the best of three search times (one thread) and checks
the result on a sample of queries against brute force.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hashsets.matching import NearIndex, brute_force, n_words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--known", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2_000)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    for bits, t in ((256, 31), (64, 10), (40, 6), (100, 12)):
        words = n_words(bits)
        known = rng.integers(0, 2**63, size=(args.known, words), dtype=np.uint64) << \
            np.uint64(1) | rng.integers(0, 2, size=(args.known, words), dtype=np.uint64)
        if bits % 64:
            known[:, 0] &= np.uint64((1 << (bits % 64)) - 1)
        queries = known[:args.queries].copy()
        queries[:, -1] ^= np.uint64(0b101)
        index = NearIndex(known, bits, threads=1)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            found = index.search(queries, t)
            best = min(best, time.perf_counter() - t0)
        sample = queries[:20]
        got = index.search(sample, t)
        want = brute_force(sample, known, t)
        same = all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
        print(f"{bits:4d} bits t={t:3d}: {args.queries:,} queries x {args.known:,} known in "
              f"{best:.3f} s ({args.queries / best:,.0f} queries/s), {len(found[0]):,} pairs, "
              f"sample equals brute force: {same}")


if __name__ == "__main__":
    main()
