#!/usr/bin/env python3
"""Identification of base vs head on real corpora: same MIME types and extension-mismatch
flags, and the libmagic time of each (issue 13, "Identification must stay by content").

    .venv/bin/python benchmarks/check_identify.py --base main \\
        ../shared/testdata/media ../shared/testdata/video /tmp/tree

Every regular file under the given folders (symbolic links not followed) is identified by
the base's ``triage.identify.Identifier`` and the head's, each in its own process (the two
versions' modules are not mixed), from the same head of the file as the worker reads it
(``MAGIC_HEAD_BYTES`` of each version). Prints the number of files, each difference (path
relative to its folder, base and head values) and the process CPU time of each side's
identification. Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sidebyside import WORKTREE, checkout, load

_CHILD = r"""
import json, os, sys, time
from triage.identify import MAGIC_HEAD_BYTES, Identifier, extension_of
paths = json.load(sys.stdin)
ident = Identifier()
heads = []
for p in paths:
    with open(p, "rb") as f:
        heads.append(f.read(MAGIC_HEAD_BYTES))
t = time.process_time()
out = [ident.identify(h, extension_of(os.fsencode(p))) for p, h in zip(paths, heads)]
cpu = time.process_time() - t
json.dump({"cpu": cpu, "rows": [[i.mime, i.media_kind, i.ext_mismatch] for i in out]},
          sys.stdout)
"""


def files_under(roots: list[Path]) -> list[str]:
    out: list[str] = []
    for root in roots:
        for d, _dirs, names in os.walk(root):
            for n in sorted(names):
                p = os.path.join(d, n)
                if os.path.isfile(p) and not os.path.islink(p):
                    out.append(p)
    return sorted(out)


def identify_with(checkout_dir: Path, paths: list[str]) -> dict[str, object]:
    p = subprocess.run([sys.executable, "-P", "-c", _CHILD], input=json.dumps(paths),
                       capture_output=True, text=True, check=True,
                       env=dict(os.environ, PYTHONPATH=str(checkout_dir)))
    result: dict[str, object] = json.loads(p.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--base", default="main")
    ap.add_argument("--head", default=WORKTREE)
    args = ap.parse_args(argv)
    paths = files_under(args.folders)
    with tempfile.TemporaryDirectory(prefix="check-identify-") as work:
        base = identify_with(checkout(args.base, Path(work)), paths)
        head = identify_with(checkout(args.head, Path(work)), paths)
    diffs = 0
    for p, a, b in zip(paths, base["rows"], head["rows"], strict=True):  # type: ignore[call-overload]
        if a != b:
            diffs += 1
            print(f"DIFF {p}: base {a} head {b}")
    print(f"{len(paths)} files; {diffs} differences in (mime, media_kind, ext_mismatch); "
          f"libmagic CPU base {base['cpu']:.3f} s, head {head['cpu']:.3f} s ({load()})")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
