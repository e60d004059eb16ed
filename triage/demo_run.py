"""``triage demo``: the README's first command, end to end on benign synthetic evidence.

Builds the demo (:func:`triage.demo.build_demo`), imports its three demo hash sets into a
store inside the demo directory (the examiner's own store is never touched), scans the
demo evidence into a case inside the demo directory, and returns the scan summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from hashsets.errors import HashSetFileError
from hashsets.store import HashSetStore

from .errors import HashSetError
from .model import RunSummary
from .scan import ScanOptions, scan

#: (file in demo/hashsets, set name, known-files set?, algorithm). A 64-digit hex list is
#: ambiguous (SHA-256 or PDQ), so the PDQ list names its algorithm, as an examiner would
#: with ``triage hashset import --algorithm pdq``.
DEMO_SETS = (
    ("demo-known.md5", "demo known material (MD5)", False, None),
    ("demo-pdq.txt", "demo known material (PDQ)", False, "pdq"),
    ("demo-nsrl.md5", "demo known files (NSRL-like)", True, None),
)


def run_demo(directory: Path, *, jobs: int | None = None,
             argv: Sequence[str] = ()) -> RunSummary:
    from .demo import build_demo

    directory = Path(directory)
    build_demo(directory, overwrite=True)
    store_path = directory / "hashsets.sqlite"
    case_dir = directory / "case"
    for stale in (store_path, case_dir):  # a demo run always starts from scratch
        if stale.is_dir():
            import shutil

            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
        for suffix in ("-wal", "-shm"):
            Path(str(stale) + suffix).unlink(missing_ok=True)
    store = HashSetStore(store_path)
    try:
        for filename, name, known, algorithm in DEMO_SETS:
            store.import_file(directory / "hashsets" / filename, name=name,
                              known=True if known else None,
                              options={"algorithm": algorithm} if algorithm else None)
    except HashSetFileError as e:
        raise HashSetError(str(e)) from e
    finally:
        store.close()
    options = ScanOptions(store=str(store_path), case_number="DEMO-0001",
                          examiner="demo", agency="triage demo",
                          notes="benign synthetic demo evidence built by 'triage demo'")
    if jobs:
        options.jobs = jobs
    summary = scan(str(directory / "evidence"), case_dir, options, argv=argv)
    return replace(summary, demo_directory=str(directory))
