#!/usr/bin/env python3
"""``triage scan --cluster`` (issue 19) against the local pool, on this one machine.

    .venv/bin/python benchmarks/bench_cluster.py --files 10000 --jpegs 150

Corpora: a many-small-files tree (``gen_systree.py``) and the picture corpus
(``gen_corpus.py``, JPEGs only), generated into a temporary folder (``--tree``/``--corpus``
reuse existing ones). Configurations, each scanning into a fresh case with ``--no-match``,
one after the other, in this process (so that the supervisor's own CPU time and the bytes it
exchanges with the Dask client can be measured):

* ``local``: the local worker pool, ``--jobs 2``;
* ``dask-1``: one Dask worker (1 thread) whose node runs 2 triage workers;
* ``dask-2``: two Dask workers (1 thread each), each node 1 triage worker (the same two
  worker processes on the same two cores: what the cluster machinery costs).

Printed per corpus and configuration: wall seconds, files/s, the supervisor's CPU seconds
(its process: listing, dispatch, writing the case; the Dask client is a child, counted
apart), batches, and the bytes per file sent to Dask (entries) and received (results): the
figures of the cost model in docs/cluster.md. Every cluster scan's rows are compared with the
local scan's (``scripts/compare_scans.py``: equal apart from ``files.processed_by`` and the
run's options) and the script says so. One machine cannot show scaling across machines; the
model in docs/cluster.md states what N machines would give from these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster_support import Cluster  # noqa: E402
from tests.support import compare_scans  # noqa: E402


def _generate(script: str, out: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), str(out), *args],
                   check=True, stdout=subprocess.DEVNULL)


def _scan(evidence: Path, case: Path, **cluster: Any) -> dict[str, Any]:
    from triage import scan as scan_module
    from triage_dask import frames

    counts = {"out": 0, "in": 0}
    real_write, real_read = frames.write, frames.read

    def payload(message: dict[str, Any]) -> int:
        return sum(len(v) for v in message.values() if isinstance(v, bytes))

    def write(stream: Any, message: dict[str, Any]) -> None:
        if message.get("op") == "batch":
            counts["out"] += payload(message)
        real_write(stream, message)

    def read(stream: Any) -> dict[str, Any]:
        message = real_read(stream)
        if message.get("op") == "result":
            counts["in"] += payload(message)
        return message

    frames.write, frames.read = write, read  # type: ignore[assignment]
    try:
        options = scan_module.ScanOptions(jobs=2, match=False, **cluster)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        summary = scan_module.scan(str(evidence), case, options)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        frames.write, frames.read = real_write, real_read  # type: ignore[assignment]
    files = summary.counts.entries
    return {"wall_s": round(wall, 2), "entries": files,
            "files_per_s": round(files / wall, 1),
            "supervisor_cpu_s": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime,
                                      2),
            "children_cpu_s": round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 2),
            "bytes_out_per_file": round(counts["out"] / max(1, files), 1),
            "bytes_in_per_file": round(counts["in"] / max(1, files), 1),
            "load_1min": round(os.getloadavg()[0], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10_000, help="entries of the tree")
    ap.add_argument("--jpegs", type=int, default=150)
    ap.add_argument("--tree", type=Path, help="an existing gen_systree.py tree")
    ap.add_argument("--corpus", type=Path, help="an existing gen_corpus.py corpus")
    ap.add_argument("--batch", type=int, default=256, help="--cluster-batch")
    ap.add_argument("--results", type=Path, help="write all figures as JSON here")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    cs = compare_scans()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    out: dict[str, Any] = {}
    try:
        tree = args.tree or work / "tree"
        if args.tree is None:
            _generate("gen_systree.py", tree, "--files", str(args.files))
        corpus = args.corpus or work / "corpus"
        if args.corpus is None:
            _generate("gen_corpus.py", corpus, "--jpegs", str(args.jpegs), "--nonmedia-mb",
                      "0")
        one = Cluster(work / "dask-1")
        one.add_worker("solo")
        two = Cluster(work / "dask-2")
        two.add_worker("a")
        two.add_worker("b")
        try:
            one.wait_for_workers(1)
            two.wait_for_workers(2)
            configs: dict[str, Callable[[], dict[str, Any]]] = {
                "local": dict,
                "dask-1": lambda: {"cluster": one.address, "cluster_jobs": 2,
                                   "cluster_batch": args.batch},
                "dask-2": lambda: {"cluster": two.address, "cluster_jobs": 1,
                                   "cluster_batch": args.batch},
            }
            for label, evidence in (("small files", tree), ("pictures", corpus / "jpeg")):
                out[label] = {}
                for name, make in configs.items():
                    case = work / f"case-{label.replace(' ', '-')}-{name}"
                    figures = _scan(evidence, case, **make())
                    if name != "local":
                        rules = cs.parse_intended("files.processed_by: changed\n"
                                                  "runs.options: changed\n")
                        report = cs.Report("local", name)
                        cs.compare_cases(label, work / f"case-{label.replace(' ', '-')}-local"
                                         / "case.sqlite", case / "case.sqlite", rules, report)
                        figures["rows_equal_local"] = report.equal
                    out[label][name] = figures
                    print(f"{label:12} {name:7} " + json.dumps(figures), flush=True)
        finally:
            one.stop()
            two.stop()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.results:
        args.results.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
