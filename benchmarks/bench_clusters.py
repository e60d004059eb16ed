"""Clustering 1M unknown PDQ hashes (issue 16 acceptance: under a minute).

Builds ``--n`` synthetic 256-bit PDQ values: uniform random ones plus ``--groups`` planted
near groups (a random seed value and ``--group-size - 1`` copies with 4 to ``--max-flip``
bits flipped, so every copy is within the PDQ threshold of its seed), then times the code
path of ``triage leads`` (:mod:`triage.clusters`): the self-join of every value against
the compiled near index (:func:`triage.clusters.near_pairs`, one NearIndex search at the
PDQ threshold) and the union-find over the edges (:func:`triage.clusters.components`).
Checks that every planted group is one cluster and that no cluster mixes two groups.

    PYTHONPATH=$PWD python benchmarks/bench_clusters.py [--n 1000000] [--groups 50000]

``--case-files N`` also times the whole ``triage leads`` run (reading the case, the three
searches, union-find, scoring, recording the rows, the run's data digest) on the synthetic
case of ``benchmarks/bench_export.py`` with N files (half of them pictures with pHash, dHash
and PDQ, no variants; 1% with hits), built in a temporary folder.

Prints one JSON line: the times (index and search, union-find, total), the CPU seconds of
the search (all threads: on a shared machine the wall time depends on the other load; the
CPU time divided by the cores is what an idle machine would take) and the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from triage.clusters import components, near_pairs

PDQ_BITS = 256
PDQ_THRESHOLD = 31


def synthetic(n: int, groups: int, group_size: int, max_flip: int, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(words, group)``: ``(n, 4)`` uint64 values and each value's planted group (-1:
    a random value)."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, np.iinfo(np.uint64).max, size=(n, 4), dtype=np.uint64,
                         endpoint=True)
    group = np.full(n, -1, dtype=np.int64)
    planted = groups * group_size
    if planted > n:
        raise SystemExit("groups * group-size exceeds n")
    slots = rng.permutation(n)[:planted].reshape(groups, group_size)
    for g in range(groups):
        seed_row = slots[g, 0]
        group[slots[g]] = g
        for row in slots[g, 1:]:
            flips = rng.choice(PDQ_BITS, size=int(rng.integers(4, max_flip + 1)),
                               replace=False)
            value = words[seed_row].copy()
            for b in flips:
                value[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
            words[row] = value
    return words, group


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--groups", type=int, default=50_000)
    ap.add_argument("--group-size", type=int, default=5)
    ap.add_argument("--max-flip", type=int, default=PDQ_THRESHOLD // 2)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--case-files", type=int, default=0)
    args = ap.parse_args()
    if args.case_files:
        end_to_end(args.case_files)
        return
    t0 = time.perf_counter()
    words, group = synthetic(args.n, args.groups, args.group_size, args.max_flip, args.seed)
    t1 = time.perf_counter()
    c1 = time.process_time()
    nodes = np.arange(args.n, dtype=np.int64)
    pairs = near_pairs(words, nodes, words, nodes, PDQ_BITS, PDQ_THRESHOLD)
    t2 = time.perf_counter()
    c2 = time.process_time()
    roots = np.array(components(args.n, [pairs]), dtype=np.int64)
    t3 = time.perf_counter()
    # Every planted group is one cluster; no cluster holds two groups.
    planted = group >= 0
    per_group = {}
    for g, r in zip(group[planted].tolist(), roots[planted].tolist(), strict=True):
        per_group.setdefault(g, set()).add(r)
    split = sum(len(v) > 1 for v in per_group.values())
    root_groups: dict[int, set[int]] = {}
    for g, r in zip(group.tolist(), roots.tolist(), strict=True):
        root_groups.setdefault(r, set()).add(g)
    mixed = sum(len(v - {-1}) > 1 for v in root_groups.values())
    sizes = np.bincount(np.unique(roots, return_inverse=True)[1])
    print(json.dumps({
        "n": args.n, "planted_groups": args.groups, "group_size": args.group_size,
        "threshold": PDQ_THRESHOLD, "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "generate_s": round(t1 - t0, 2), "index_and_search_s": round(t2 - t1, 2),
        "index_and_search_cpu_s": round(c2 - c1, 2),
        "union_find_s": round(t3 - t2, 2), "cluster_s": round(t3 - t1, 2),
        "edges": len(pairs), "clusters": len(sizes), "multi_member_clusters":
        int((sizes > 1).sum()), "largest": int(sizes.max()),
        "groups_split": split, "clusters_mixing_groups": mixed}))
    if split or mixed:
        raise SystemExit("planted groups not recovered exactly")


def end_to_end(n: int) -> None:
    import tempfile
    from pathlib import Path

    from benchmarks.bench_export import build_case
    from triage.clusters import leads

    with tempfile.TemporaryDirectory(prefix="bench-clusters-") as tmp:
        case = Path(tmp) / "case"
        built = build_case(case, n)
        t0 = time.perf_counter()
        c0 = time.process_time()
        summary, _ = leads(case, store=Path(tmp) / "no-store.sqlite")
        print(json.dumps({
            "case_files": n, "build": built, "leads_s": round(time.perf_counter() - t0, 2),
            "leads_cpu_s": round(time.process_time() - c0, 2),
            "load_average": os.getloadavg()[0], "media": summary.media,
            "clusters": summary.clusters, "leads": summary.leads,
            "joined_by": summary.joined_by}))


if __name__ == "__main__":
    main()
