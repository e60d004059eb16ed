"""Benchmark the hash-set store and matching (not run in CI).

    .venv/bin/python benchmarks/bench_hashsets.py [--size N] [--near-size N] [--queries N]

* import rate: a bare md5 list of N lines, and a synthetic NSRL RDSv3 minimal database of
  N/3 rows (3 hashes each), both into a fresh store (hashes/s, index build included);
* exact lookup rate: 100,000 md5 queries (half present) against the store built above;
* ``hashset verify`` of that store: every stored value checked against its content digest;
* near matching: --queries query hashes against --near-size random known PDQ (t=31) and
  pHash (t=10) hashes, uniform random queries and a mix where 10% are near duplicates of
  known hashes; multi-index vs brute force on a sample, recall checked on the sample.

Random uniform hashes are the worst case for multi-index hashing (no clustering help).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hashsets.matching import NearIndex, brute_force, exact_matches
from hashsets.store import HashSetStore


def _hexes(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8).tobytes()
    h = raw.hex()
    step = nbytes * 2
    return [h[i:i + step] for i in range(0, len(h), step)]


def bench_import(tmp: Path, size: int, rows: list[tuple[str, str, str]]) -> None:
    rng = np.random.default_rng(1)
    plain = tmp / "plain.md5"
    md5s = _hexes(rng, size, 16)
    plain.write_text("\n".join(md5s) + "\n")
    store = HashSetStore(tmp / "store.sqlite")
    t0 = time.perf_counter()
    s = store.import_file(plain).set
    dt = time.perf_counter() - t0
    rows.append(("import plain md5 list", f"{size:,} hashes", f"{dt:.2f} s",
                 f"{size / dt:,.0f} hashes/s"))
    assert s.accepted == size
    n3 = max(1, size // 3)
    db = tmp / "rds3.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE FILE (sha256 VARCHAR, sha1 VARCHAR, md5 VARCHAR, crc32 VARCHAR, "
                 "file_name VARCHAR, file_size INTEGER, package_id INTEGER)")
    conn.execute("CREATE VIEW DISTINCT_HASH AS SELECT DISTINCT sha256, sha1, md5, crc32 "
                 "FROM FILE")
    a, b, c = (_hexes(rng, n3, k) for k in (32, 20, 16))
    conn.executemany("INSERT INTO FILE VALUES (?, ?, ?, '00000000', 'f', 1, 1)",
                     ((x.upper(), y.upper(), z.upper()) for x, y, z in zip(a, b, c,
                                                                           strict=True)))
    conn.commit()
    conn.close()
    t0 = time.perf_counter()
    s = store.import_file(db).set
    dt = time.perf_counter() - t0
    rows.append(("import NSRL RDSv3 minimal", f"{n3 * 3:,} hashes ({n3:,} rows)",
                 f"{dt:.2f} s", f"{n3 * 3 / dt:,.0f} hashes/s"))
    # exact lookups: 100k queries, half present.
    q = md5s[: 50_000] + _hexes(rng, 50_000, 16)
    queries = [(i, "md5", v) for i, v in enumerate(q)]
    t0 = time.perf_counter()
    hits = exact_matches(store, queries)
    dt = time.perf_counter() - t0
    rows.append(("exact lookup (md5)", f"{len(q):,} queries vs {size + n3 * 3:,} stored",
                 f"{dt:.2f} s", f"{len(q) / dt:,.0f} lookups/s"))
    assert len({h.query for h in hits}) >= 50_000
    # verify (issue 14): every stored value read back and checked against the content
    # digest recorded at import, plus the source files' SHA-256.
    t0 = time.perf_counter()
    results = store.verify()
    dt = time.perf_counter() - t0
    rows.append(("hashset verify (content digest)", f"{size + n3 * 3:,} stored values",
                 f"{dt:.2f} s", f"{(size + n3 * 3) / dt:,.0f} values/s"))
    assert [r.status for r in results] == ["ok", "ok"]
    store.close()


def bench_near(bits: int, t: int, n_known: int, n_queries: int, sample: int,
               rows: list[tuple[str, str, str, str]]) -> None:
    rng = np.random.default_rng(bits)
    w = bits // 64
    known = rng.integers(0, 2**64, size=(n_known, w), dtype=np.uint64)
    name = {256: "PDQ", 64: "pHash"}[bits]
    index = NearIndex(known, bits)
    bdt = 0.0
    for mix in (0.0, 0.1):
        queries = rng.integers(0, 2**64, size=(n_queries, w), dtype=np.uint64)
        # "realistic": every 10th query is a near duplicate (distance 1..t) of a known hash.
        for i in range(0, n_queries, 10) if mix else ():
            row = known[rng.integers(n_known)].copy()
            for b in rng.choice(bits, size=int(rng.integers(1, t + 1)), replace=False):
                row[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
            queries[i] = row
        label = "10% near-duplicates" if mix else "uniform random"
        t0 = time.perf_counter()
        qi, ki, di = index.search(queries, t)
        dt = time.perf_counter() - t0
        sample_q = queries[:sample]
        t0 = time.perf_counter()
        bq, bk, bd = brute_force(sample_q, known, t)
        bdt = time.perf_counter() - t0
        mask = qi < sample
        recall_ok = (np.array_equal(qi[mask], bq) and np.array_equal(ki[mask], bk)
                     and np.array_equal(di[mask], bd))
        rows.append((f"near {name} multi-index (t={t}), {label}",
                     f"{n_queries:,} queries vs {n_known:,}", f"{dt:.2f} s",
                     f"{n_queries / dt:,.0f} queries/s ({len(qi):,} hits); "
                     f"{(n_queries / dt) / (sample / bdt):,.0f}x brute force; recall on "
                     f"{sample} vs brute force: "
                     f"{'exact (identical)' if recall_ok else 'MISMATCH'}"))
    rows.append((f"near {name} brute force (t={t})", f"{sample:,} queries (sample)",
                 f"{bdt:.2f} s", f"{sample / bdt:,.0f} queries/s"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000,
                    help="hashes in the plain list (and 3 x rows of RDSv3)")
    ap.add_argument("--near-size", type=int, default=10_000_000, help="known perceptual hashes")
    ap.add_argument("--queries", type=int, default=10_000, help="near-match query hashes")
    ap.add_argument("--sample", type=int, default=50, help="brute-force sample size")
    args = ap.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    try:
        import scipy
        extra = f"scipy {scipy.__version__} (CSR grouping)"
    except ImportError:
        extra = "no scipy (argsort grouping)"
    print(f"cpus: {os.cpu_count()}; numpy {np.__version__}; sqlite {sqlite3.sqlite_version}; "
          f"{extra}")
    with tempfile.TemporaryDirectory(prefix="bench-hashsets-") as d:
        bench_import(Path(d), args.size, rows)
    bench_near(256, 31, args.near_size, args.queries, args.sample, rows)
    bench_near(64, 10, args.near_size, args.queries, args.sample, rows)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("step", "size", "time", "rate")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
