"""Hostile hash-set imports (issue 11, defect 3): peak memory and time of each, at the sizes
of the issue, and the cost of the bounds on ordinary imports. Not run in CI.

    .venv/bin/python benchmarks/hostile_imports.py [--only NAME,...] [--against DIR]
        [--cap-gib 4] [--timeout 120] [--legit-records 200000] [--keep DIR]

Each import is a real ``triage hashset import`` process into a fresh store, started under
``RLIMIT_AS`` (``--cap-gib``, a safety net for the machine, not the measured bound) and a
wall-clock ``--timeout``. ``peak MiB`` is the process's peak resident memory (``ru_maxrss``
from ``wait4``); the goal is under 2 GB for every hostile import, each ending with exit
code 6 and a short message. ``--against DIR`` runs the same files with another checkout
(``PYTHONPATH=DIR``, e.g. the main branch before the fix) beside this one.

The files (built here, streaming; tests/hashsets/hostile.py):

* ``vics-deep``: a VICS record nested 200,000 deep (1.2 MB);
* ``vics-100mb-value``: an ``odata.metadata`` of 100 MB (``--format vics``);
* ``vics-100mb-value-raised``: the same with the value and record bounds raised to 200 MB,
  so that the value reaches the error message (which must cut it);
* ``rds2-zip-2gb-zeros``: a 2 MB zip posing as NSRL RDS 2.x, 2 GiB of zeros, no newline;
* ``line-300mb``: a bare MD5 list whose second line is 300 MB;
* ``rds3-recursive-view``: ``DISTINCT_HASH`` a recursive view that never yields a row;
* ``rds3-slow-view``: a sorted 4-way cross join (no recursion), stall bound 5 s;
* ``rds3-zeroblob``: an 8 KB RDSv3 whose ``DISTINCT_HASH`` returns ``zeroblob(900 MB)``.

Ordinary imports (``legit-*``, exit 0): a VICS #Media set of ``--legit-records`` records,
a bare MD5 list and an RDS 2.x ``NSRLFile.txt`` of 10x as many lines: records/s.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hashsets import hostile  # noqa: E402


def _legit_vics(path: Path, n: int) -> Path:
    with open(path, "w") as f:
        f.write('{"odata.metadata": "' + hostile.VICS_MEDIA + '", "value": [')
        for i in range(n):
            rec = {"MediaID": i, "Category": i % 4, "MD5": f"{i:032X}", "SHA1": f"{i:040x}",
                   "VictimIdentified": "false", "OffenderIdentified": i % 2 == 0,
                   "IsDistributed": True, "Series": f"s{i % 97}", "Tags": None,
                   "RelativeFilePath": f"media\\\\{i}.jpg", "MimeType": "image/jpeg",
                   "MediaFiles": [{"MD5": f"{i:032x}", "FileName": f"{i}.jpg",
                                   "FilePath": "C:\\\\x", "Deleted": False}],
                   "Exifs": [{"PropertyName": "Make", "PropertyValue": "Cam \"1\""}]}
            f.write(("," if i else "") + json.dumps(rec))
        f.write("]}")
    return path


def _legit_plain(path: Path, n: int) -> Path:
    with open(path, "w") as f:
        f.writelines(f"{i:032x}\n" for i in range(1, n + 1))
    return path


def _legit_rds2(path: Path, n: int) -> Path:
    with open(path, "w") as f:
        f.write('"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode",'
                '"SpecialCode"\r\n')
        f.writelines(f'"{i:040X}","{i:032X}","00000000","file{i}.dll",{i},1,"358",""\r\n'
                     for i in range(1, n + 1))
    return path


Case = tuple[str, Callable[[Path], Path], list[str], int]  # name, build, args, exit


def cases(legit: int) -> list[Case]:
    return [
        ("vics-deep", lambda d: hostile.vics_deep(d / "deep.json", 200_000), [], 6),
        ("vics-100mb-value", lambda d: hostile.vics_long_marker(d / "marker.json", 100 << 20),
         ["--format", "vics"], 6),
        ("vics-100mb-value-raised", lambda d: d / "marker.json",
         ["--format", "vics", "--limit", "value-bytes=200000000", "--limit",
          "record-bytes=200000000"], 6),
        ("rds2-zip-2gb-zeros", lambda d: hostile.rds2_zip_of_zeros(d / "RDS.zip", 2 << 30),
         [], 6),
        ("line-300mb", lambda d: hostile.long_line(d / "long.txt", 300 << 20), [], 6),
        ("rds3-recursive-view", lambda d: hostile.rds3_recursive_view(d / "rec.db"), [], 6),
        ("rds3-slow-view", lambda d: hostile.rds3_slow_view(d / "slow.db"),
         ["--limit", "sqlite-stall-seconds=5"], 6),
        ("rds3-zeroblob", lambda d: hostile.rds3_zeroblob(d / "zb.db"), [], 6),
        ("legit-vics", lambda d: _legit_vics(d / "legit.json", legit), [], 0),
        ("legit-plain", lambda d: _legit_plain(d / "legit.txt", legit * 10), [], 0),
        ("legit-rds2", lambda d: _legit_rds2(d / "NSRLFile.txt", legit * 10), [], 0),
    ]


def run(code: Path, src: Path, store: Path, args: list[str], cap: int, timeout: float
        ) -> tuple[int | str, float, float, str]:
    """(exit code or 'timeout'/'signal N', seconds, peak MiB, last stderr lines). The peak
    is ``RUSAGE_CHILDREN``'s ``ru_maxrss``: call it in a process whose only child is this
    import (``main`` does, through ``_ONE``)."""
    env = {**os.environ, "PYTHONPATH": str(code), "OPENBLAS_NUM_THREADS": "1"}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    if store.exists():
        store.unlink()
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "triage", "hashset", "import", str(src),
                          "--store", str(store), *args], env=env, cwd=code,
                         preexec_fn=limit, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    assert p.stderr is not None
    status: int | str
    try:
        err = p.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        err = p.communicate()[1]
    elapsed = time.monotonic() - t0
    rc = p.returncode
    status = rc if rc is not None and rc >= 0 else f"signal {-rc}" if rc else "?"
    if elapsed >= timeout:
        status = "timeout"
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = err.decode("utf-8", "replace").strip().splitlines()
    last = " ".join(" ".join(lines[-3:]).split()) if lines else ""
    return status, elapsed, peak, last


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--against", type=Path, help="another checkout to run beside this one")
    ap.add_argument("--cap-gib", type=float, default=4.0, help="RLIMIT_AS of each import")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--legit-records", type=int, default=200_000)
    ap.add_argument("--keep", type=Path, help="build the files here and keep them")
    a = ap.parse_args()
    wanted = set(a.only.split(",")) if a.only else None
    work = a.keep or Path(tempfile.mkdtemp(prefix="hostile-imports-"))
    work.mkdir(parents=True, exist_ok=True)
    codes = [("this", ROOT)] + ([("against", a.against.resolve())] if a.against else [])
    cap = int(a.cap_gib * (1 << 30))
    print(f"{'case':26} {'code':8} {'file MB':>8} {'exit':>9} {'s':>7} {'peak MiB':>9}  message")
    try:
        for name, build, args, expected in cases(a.legit_records):
            if wanted and name not in wanted:
                continue
            src = build(work)
            size = src.stat().st_size / 1e6
            for label, code in codes:
                # Each run in its own child process: RUSAGE_CHILDREN of that child is its
                # own peak (a fresh interpreter per run).
                out = subprocess.run(
                    [sys.executable, "-c", _ONE, str(code), str(src), str(work / "s.sqlite"),
                     json.dumps(args), str(cap), str(a.timeout)],
                    capture_output=True, text=True, check=True)
                status, elapsed, peak, last = json.loads(out.stdout)
                mark = "" if status == expected else f"  <- expected exit {expected}"
                print(f"{name:26} {label:8} {size:8.1f} {status!s:>9} {elapsed:7.1f} "
                      f"{peak:9.0f}  {last[:150]}{mark}", flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


#: Runs one import in a fresh process whose only child is the import (so that its
#: RUSAGE_CHILDREN peak is the import's own).
_ONE = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from benchmarks.hostile_imports import run
from pathlib import Path
code, src, store, args, cap, timeout = sys.argv[1:]
print(json.dumps(run(Path(code), Path(src), Path(store), json.loads(args), int(cap),
                     float(timeout))))
"""


if __name__ == "__main__":
    raise SystemExit(main())
