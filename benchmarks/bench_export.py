"""Benchmark streaming exports of a huge case (issue 10, item 7; not run in CI).

    .venv/bin/python benchmarks/bench_export.py [--sizes 100000,1000000] [--formats csv,jsonl]
        [--compare-tree DIR] [--write-rates N] [--workdir DIR] [--keep] [--results FILE.json]

For each size N, a synthetic case of N file entries is built: created by
``triage.case.Case.open`` (so the schema, run rows and audit chain are the real ones), then
filled with plain SQL in large transactions (``executemany``): every file has MD5, SHA-1 and
SHA-256, every second one an image row with pHash, dHash and PDQ; 1% of the files hit a case
set (exact MD5 or near PDQ) and 1% a known-file set, recorded as a completed match run.
Display paths are in a different order from the ids, so the export really sorts.

Each export (``triage.report.export.export``, what ``triage report`` calls) runs in its own
subprocess, which prints its wall time and the kernel's RSS high-water mark ``VmHWM`` from
``/proc/self/status`` after the export (exact however short the peak was), its CPU time
(user + system; steadier than wall time on a shared machine), and ``VmHWM`` just after the
imports, for reference. "Flat" means the peak grows by less than 1.25x from
the smallest to the largest size, while the case grows 10x.

``--compare-tree DIR`` also runs the exports with another checkout of triage first on the
path (for example the code before streaming), at the smallest size only.

``--write-rates N`` measures bulk-insert rates into a STRICT table shaped like ``files``:
sqlite-utils' ``insert_all`` with its defaults, against ``sqlite3.executemany`` with WAL in one
transaction and in 10k-row transactions (how the case is written), for the README's
dependency table. Rows are made before the clock starts.

Nothing here is content: paths, sizes and hash values are made up from counters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Rows per executemany call while building (memory stays small; one transaction per table).
CHUNK = 50_000
GENERATED_AT = "2026-01-01T00:00:00Z"


def _hex(i: int, salt: bytes, n: int) -> str:
    """A deterministic, hash-like hex value of ``n`` hex digits (not a hash of anything)."""
    return hashlib.blake2b(salt + i.to_bytes(8, "little"), digest_size=n // 2).hexdigest()


def _chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build_case(case_dir: Path, n: int) -> dict[str, Any]:
    """The synthetic case of ``n`` files (see module doc). Returns counts and build time."""
    from triage.case import Case

    t0 = time.perf_counter()
    with Case.open(case_dir) as case:
        case.set_case_info(number="BENCH-1", examiner="bench", agency="bench", notes=None)
        scan = case.start_run("scan", ["bench"], {"files": n}, {"bench": True})
        ev = case.add_evidence(path="/bench", path_bytes=b"/bench", source_type="directory",
                               size=None, description={"bench": True}, run_id=scan)
        c = case.conn
        c.execute("PRAGMA synchronous=OFF")  # a throw-away case: durability is not measured

        def files() -> Iterator[tuple[Any, ...]]:
            for i in range(1, n + 1):
                d = _hex(i, b"d", 4)
                name = f"{d[:2]}/{d[2:]}/IMG_{i:08d}.jpg".encode()
                yield (i, ev, f"ino:{i}", name, name.decode(), "file", 10_000 + i % 5_000,
                       "2024-05-01T10:00:00Z", "2024-05-02T10:00:00Z",
                       "2024-05-01T10:00:00Z", None, "image/jpeg", "image", "jpg", 0,
                       "full", "done", scan)

        def hashes() -> Iterator[tuple[Any, ...]]:
            for i in range(1, n + 1):
                yield (i, "md5", _hex(i, b"m", 32), None, None)
                yield (i, "sha1", _hex(i, b"s", 40), None, None)
                yield (i, "sha256", _hex(i, b"S", 64), None, None)
                if i % 2 == 0:
                    yield (i, "dhash", _hex(i, b"h", 16), None, "gray 9x8")
                    yield (i, "pdq", _hex(i, b"q", 64), 90, "rgb 512")
                    yield (i, "phash", _hex(i, b"p", 16), None, "gray 32x32")

        def images() -> Iterator[tuple[Any, ...]]:
            for i in range(2, n + 1, 2):
                yield (i, "JPEG", 4000, 3000, "RGB", 1, 500, 375, "draft 1/8")

        steps = (
            ("INSERT INTO files(id, evidence_id, identity, path, display_path, kind, size, "
             "mtime_utc, atime_utc, ctime_utc, crtime_utc, mime, media_kind, extension, "
             "ext_mismatch, read_status, status, run_id) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", files()),
            ("INSERT INTO hashes(file_id, algorithm, value, quality, preprocessing) "
             "VALUES (?, ?, ?, ?, ?)", hashes()),
            ("INSERT INTO images(file_id, format, width, height, mode, frames, decoded_width, "
             "decoded_height, preprocessing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", images()),
        )
        for sql, rows in steps:
            with case.transaction() as tx:
                for chunk in _chunks(rows):
                    tx.executemany(sql, chunk)
        case.end_run(scan, "completed", {"files": n})

        match = case.start_run("match", ["bench"], {}, {"bench": True})
        sets = (("case0001", "bench case set", "1.0", 0), ("known001", "bench NSRL", None, 1))
        with case.transaction() as tx:
            tx.executemany(
                "INSERT INTO hash_sets_used(run_id, set_id, name, version, format, "
                "source_sha256, entry_count, category_map, known) "
                "VALUES (?, ?, ?, ?, 'bench', ?, ?, NULL, ?)",
                [(match, sid, name, ver, _hex(k, b"x", 64), n // 100, known)
                 for k, (sid, name, ver, known) in enumerate(sets)])

        def matches() -> Iterator[tuple[Any, ...]]:
            for i in range(1, n + 1):
                if i % 100 == 7:  # case set: exact MD5 on odd files, near PDQ on even ones
                    if i % 2:
                        v = _hex(i, b"m", 32)
                        yield (match, i, *sets[0][:3], "md5", "exact", v, v, 0, None,
                               "CAT1", "1", None, 1, 0, 0, str(i))
                    else:
                        v = _hex(i, b"q", 64)
                        yield (match, i, *sets[0][:3], "pdq", "near", v, v[:-1] + "0", 2, 31,
                               "CAT2", "2", "series", None, None, 0, str(i))
                if i % 100 == 42:
                    v = _hex(i, b"m", 32)
                    yield (match, i, *sets[1][:3], "md5", "exact", v, v, 0, None, None, None,
                           None, None, None, 1, str(i))

        with case.transaction() as tx:
            for chunk in _chunks(matches()):
                tx.executemany(
                    "INSERT INTO matches(run_id, file_id, set_id, set_name, set_version, "
                    "algorithm, match_type, file_value, known_value, distance, threshold, "
                    "category, category_raw, series, victim_identified, offender_identified, "
                    "known, entry_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?)", chunk)
        case.audit("match", {"run": match, "thresholds": {"pdq": 31, "phash": 10}})
        case.end_run(match, "completed", {})
        hits = c.execute("SELECT count(*) FROM matches").fetchone()[0]
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = (case_dir / "case.sqlite").stat().st_size
    return {"files": n, "hits": int(hits), "build_s": round(time.perf_counter() - t0, 1),
            "db_mb": round(size / 2**20, 1)}


def _vmhwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(case_dir: str, fmt: str, out: str, rows: str) -> None:
    """Run one export in this (fresh) process and print its figures as JSON."""
    sys.path.insert(0, os.environ.get("BENCH_TREE", str(ROOT)))
    from triage.report.export import export

    import_kb = _vmhwm_kb()
    t0 = time.perf_counter()
    opts = {"rows": rows} if fmt == "csv" else {}
    r = export(Path(case_dir), fmt, Path(out), options=opts, generated_at=GENERATED_AT)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                      "vmhwm_mb": round(_vmhwm_kb() / 1024, 1),
                      "after_import_mb": round(import_kb / 1024, 1), "size_mb":
                      round(r.size / 2**20, 1), "files": r.files, "hits": r.hits}))


def run_export(case_dir: Path, fmt: str, rows: str, tree: Path) -> dict[str, Any]:
    out = case_dir.parent / f"export-{fmt}-{rows}.{fmt}"
    env = dict(os.environ, PYTHONPATH=str(tree), BENCH_TREE=str(tree))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(case_dir), fmt, str(out),
                           rows], env=env, capture_output=True, text=True, check=False)
    outer = time.perf_counter() - t0
    if proc.returncode:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"}
    res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = round(outer, 2)
    out.unlink(missing_ok=True)
    return res


def write_rates(tmp: Path, n: int) -> list[dict[str, Any]]:
    """Bulk-insert rates of ``n`` file-like rows (see module doc)."""
    import sqlite3

    import sqlite_utils

    ddl = ("CREATE TABLE files (id INTEGER PRIMARY KEY, identity TEXT NOT NULL UNIQUE, "
           "path BLOB NOT NULL, display_path TEXT NOT NULL, size INTEGER, mtime_utc TEXT, "
           "status TEXT NOT NULL) STRICT")

    rows = [{"id": i, "identity": f"ino:{i}", "path": f"dir/{i:08d}.jpg".encode(),
             "display_path": f"dir/{i:08d}.jpg", "size": i,
             "mtime_utc": "2024-05-01T10:00:00Z", "status": "done"} for i in range(1, n + 1)]
    cols = ("id", "identity", "path", "display_path", "size", "mtime_utc", "status")
    tuples = [tuple(r[c] for c in cols) for r in rows]  # made before timing, like the dicts
    out = []
    db = sqlite_utils.Database(tmp / "w-utils.sqlite")
    db.execute(ddl)
    t0 = time.perf_counter()
    db["files"].insert_all(rows)  # defaults: batches of 100, rollback journal, FULL sync
    dt = time.perf_counter() - t0
    db.close()
    out.append({"method": "sqlite-utils insert_all, defaults", "rows": n,
                "rows_per_s": round(n / dt)})
    for label, batch in (("one transaction", n), ("10k-row transactions", 10_000)):
        conn = sqlite3.connect(tmp / f"w-sqlite3-{batch}.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(ddl)
        sql = f"INSERT INTO files VALUES ({', '.join('?' * len(cols))})"
        t0 = time.perf_counter()
        for k in range(0, n, batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, tuples[k:k + batch])
            conn.execute("COMMIT")
        dt = time.perf_counter() - t0
        conn.close()
        out.append({"method": f"sqlite3 executemany, WAL, {label}", "rows": n,
                    "rows_per_s": round(n / dt)})
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated; "
                    "empty: no export runs")
    ap.add_argument("--formats", default="csv,jsonl", help="csv (files rows), csv-hits, jsonl, "
                    "html, pdf, vics")
    ap.add_argument("--compare-tree", type=Path, help="another triage checkout to compare")
    ap.add_argument("--write-rates", type=int, default=0, metavar="N")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--results", type=Path)
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-export-", dir=args.workdir))
    results: dict[str, Any] = {"sizes": {}, "compare": {}, "write_rates": []}
    try:
        if args.write_rates:
            results["write_rates"] = write_rates(work, args.write_rates)
            for r in results["write_rates"]:
                print(f"write rate: {r['method']}: {r['rows_per_s']:,} rows/s "
                      f"({r['rows']:,} rows)", flush=True)
        for n in sizes:
            case_dir = work / f"case-{n}" / "case"
            info = build_case(case_dir, n)
            print(f"built {n:,} files ({info['hits']:,} hits, {info['db_mb']} MB) in "
                  f"{info['build_s']} s", flush=True)
            runs = {}
            trees = [("this", ROOT)]
            if args.compare_tree and n == sizes[0]:
                trees.append(("compare", args.compare_tree.resolve()))
            for label, tree in trees:
                for f in formats:
                    fmt, rows = ("csv", "hits") if f == "csv-hits" else (f, "files")
                    r = run_export(case_dir, fmt, rows, tree)
                    runs[f"{label}:{f}"] = r
                    print(f"  {label:7} {f:8} {n:>9,} files: " + (
                        r["error"] if "error" in r else
                        f"{r['wall_s']:7.1f} s (CPU {r['cpu_s']:.1f} s), peak RSS (VmHWM) "
                        f"{r['vmhwm_mb']:7.1f} MB "
                        f"(after imports {r['after_import_mb']} MB), output "
                        f"{r['size_mb']} MB"), flush=True)
            results["sizes"][n] = {"case": info, "exports": runs}
            if not args.keep:
                shutil.rmtree(case_dir.parent, ignore_errors=True)
        if len(sizes) > 1:
            lo, hi = results["sizes"][sizes[0]], results["sizes"][sizes[-1]]
            for key, r in hi["exports"].items():
                base = lo["exports"].get(key, {})
                if key.startswith("this:") and "vmhwm_mb" in r and "vmhwm_mb" in base:
                    ratio = r["vmhwm_mb"] / base["vmhwm_mb"]
                    verdict = "flat" if ratio < 1.25 else "NOT flat"
                    print(f"{key[5:]}: peak {base['vmhwm_mb']} MB at {sizes[0]:,} files, "
                          f"{r['vmhwm_mb']} MB at {sizes[-1]:,}: x{ratio:.2f} ({verdict})")
    finally:
        if args.results:
            args.results.write_text(json.dumps(results, indent=2) + "\n")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
