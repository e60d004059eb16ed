#!/usr/bin/env python3
"""Record the self-test disk image's full scan listing in ``reference.json``.

    PYTHONPATH=$PWD .venv/bin/python scripts/selftest_reference.py [DATA_DIR]
        (default DATA_DIR: triage/selftest/data)

scans ``DATA_DIR/disk.img.gz`` exactly as ``triage selftest`` does
(:func:`triage.selftest.scan_disk`: the same hash sets, store and scan options) and writes
every entry the scan recorded (:func:`triage.selftest.scan_entries`: files, folders, the
file systems' own entries, the ``$Unallocated``, ``$Slack`` and ``$Unpartitioned`` areas
and any items carved from them) as ``disk.scan_entries`` in ``DATA_DIR/reference.json``,
sorted, one a line. Every other value of the file is kept as it is; the file is written in
its fixed layout, so running it again on the same image and the same triage changes
nothing. The ``disk.entries`` check then compares a scan's listing with this one, both
ways. The listing is triage's own (a regression baseline); tests/test_selftest.py checks
its file-system part against The Sleuth Kit's ``fls``.

Run it after a change that adds, removes or renames entries of a disk image scan (a new
carved format finding data in the image, say), review the diff, and commit it.
``scripts/build_selftest_image.sh`` runs it after rebuilding the image in a folder that
holds a ``reference.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def dump(value: Any, indent: int = 0) -> str:
    """``reference.json``'s layout: objects one key a line (indented by 2), lists one item
    a line, each item (an object or a string) on one line."""
    pad = " " * (indent + 2)
    if isinstance(value, dict) and value:
        body = ",\n".join(f"{pad}{json.dumps(k)}: {dump(v, indent + 2)}"
                          for k, v in value.items())
        return "{\n" + body + "\n" + " " * indent + "}"
    if isinstance(value, list) and value:
        body = ",\n".join(pad + json.dumps(v) for v in value)
        return "[\n" + body + "\n" + " " * indent + "]"
    return json.dumps(value)


def main(argv: list[str]) -> int:
    from triage import selftest

    folder = Path(argv[0]) if argv else selftest.DATA
    path = folder / selftest.REFERENCE
    ref = json.loads(path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="triage-selftest-ref-") as tmp:
        done = selftest.scan_disk(selftest.load_reference(folder), folder, Path(tmp))
        entries = selftest.scan_entries(done.case_dir)
    bad = {s: n for s, n in done.summary.by_status.items() if n and s not in ("done", "skipped")}
    if bad:  # a reference is recorded from a clean scan only
        print(f"selftest_reference.py: the scan ended with {bad}; nothing written",
              file=sys.stderr)
        return 1
    ref["disk"]["scan_entries"] = entries
    path.write_text(dump(ref) + "\n", encoding="utf-8")
    print(f"selftest_reference.py: {len(entries)} entries written to {path} "
          "(disk.scan_entries)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
