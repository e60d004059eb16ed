"""Benchmark the data digests of the audit chain (issue 12, item 5; not run in CI).

    .venv/bin/python benchmarks/bench_digest.py [--sizes 100000] [--repeat 3]
        [--workdir DIR] [--keep] [--results FILE.json]

For each size N, the synthetic case of ``benchmarks/bench_export.py`` (N file entries with
MD5, SHA-1 and SHA-256, every second one with pHash, dHash, PDQ and an image row; 2% of the
files hit; built through the real ``Case`` API, so its scan and match runs end with real
digests) is built once, then timed, each the best of ``--repeat`` runs:

* ``digest``: :func:`triage.datadigest.compute`, all tables (what every run's end, every
  export and every opening for writing computes), and each table alone;
* ``compare``: :func:`triage.datadigest.compare` (the digest plus reading the chain's
  recorded digests and the runs table);
* ``open``: ``Case.open`` for writing and close (integrity check, data check), against
  ``integrity``: ``PRAGMA integrity_check`` alone, which every opening did already;
* ``verify``: :func:`triage.report.verify.verify` of the whole case (integrity, chain, data,
  one manifest: the export's SHA-256 and the database's SHA-256);
* ``tampered``: the same verify after ``UPDATE matches SET category='non-pertinent'`` on a
  copy, which must fail naming the table (checked, not only timed).

Wall and CPU (user + system) seconds are printed; the machine is shared, so CPU time is
the steadier figure. Nothing here is content: the values are made up from counters.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def timed(fn: Callable[[], Any], repeat: int) -> tuple[dict[str, float], Any]:
    """Best wall and CPU seconds of ``repeat`` calls, and the last result."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), _cpu()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, _cpu() - c0)
    return {"wall_s": round(best_wall, 3), "cpu_s": round(best_cpu, 3)}, result


def measure(work: Path, n: int, repeat: int) -> dict[str, Any]:
    from bench_export import GENERATED_AT, build_case

    from triage import datadigest
    from triage.case import Case
    from triage.report.export import export
    from triage.report.verify import verify

    case_dir = work / f"case-{n}"
    built = build_case(case_dir, n)
    export(case_dir, "csv", case_dir / "exports" / "hits.csv", options={"rows": "hits"},
           generated_at=GENERATED_AT)
    out: dict[str, Any] = {"case": built}
    conn = sqlite3.connect(f"{(case_dir / 'case.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        out["rows"] = {s.name: conn.execute(f'SELECT count(*) FROM "{s.name}"').fetchone()[0]
                       for s in datadigest.TABLES}
        out["digest"], tables = timed(lambda: datadigest.compute(conn), repeat)
        out["digest_by_table"] = {s.name: timed(lambda s=s: datadigest.table_digest(conn, s),
                                                repeat)[0] for s in datadigest.TABLES}
        out["compare"], check = timed(lambda: datadigest.compare(conn, None), repeat)
        assert check.ok, check.message()
        out["integrity"], _ = timed(
            lambda: conn.execute("PRAGMA integrity_check").fetchall(), repeat)
    finally:
        conn.close()

    def open_close() -> None:
        Case.open(case_dir, create=False).close()

    out["open"], _ = timed(open_close, repeat)
    out["verify"], checks = timed(lambda: verify(case_dir), repeat)
    bad = [c.subject for c in checks if not c.ok]
    assert not bad, bad

    tampered = work / f"tampered-{n}"
    shutil.copytree(case_dir, tampered)
    t = sqlite3.connect(tampered / "case.sqlite")
    with t:
        t.execute("UPDATE matches SET category='non-pertinent' WHERE category IS NOT NULL")
    t.close()
    out["tampered"], checks = timed(lambda: verify(tampered), repeat)
    failed = [c.subject for c in checks if not c.ok]
    assert any("table matches" in s for s in failed), failed
    out["tampered"]["failed"] = failed
    shutil.rmtree(tampered)
    out["digest_tables"] = {t: len(p) for t, p in tables.items()}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000", help="comma-separated file counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--results", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-digest-", dir=args.workdir))
    results: dict[str, Any] = {}
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            res = measure(work, n, args.repeat)
            results[str(n)] = res
            print(f"== {n} files: {json.dumps(res['rows'])}")
            for key in ("digest", "compare", "integrity", "open", "verify", "tampered"):
                print(f"  {key:<10} wall {res[key]['wall_s']:>7.3f} s  cpu "
                      f"{res[key]['cpu_s']:>7.3f} s")
            for table, t in res["digest_by_table"].items():
                print(f"    digest {table:<15} wall {t['wall_s']:>7.3f} s  cpu "
                      f"{t['cpu_s']:>7.3f} s")
            print(f"  tampered copy failed: {res['tampered']['failed']}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.results:
        args.results.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
