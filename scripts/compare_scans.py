#!/usr/bin/env python3
"""Scan the shared test corpora with two versions of triage and compare the case rows.

    .venv/bin/python scripts/compare_scans.py                      # merge-base(main) vs tree
    .venv/bin/python scripts/compare_scans.py --base main --head HEAD --corpus media,disk
    .venv/bin/python scripts/compare_scans.py --intended changes.txt --json
    .venv/bin/python scripts/compare_scans.py --cases CASE_A CASE_B   # two existing cases

Each version is a git revision (``git archive REV`` into a temporary directory, so the
repository and its worktrees are never touched) or ``WORKTREE`` (the working tree this
script lives in). Each version runs ``python -m triage scan EVIDENCE --case CASE --jobs 2
--no-match -q --json`` with ``PYTHONPATH`` pointing at its own checkout (the same Python
and libraries for both), one case per corpus target. The ``demo`` target builds the
benign demo evidence once, imports its three demo hash sets into a store per version (with
that version's ``triage hashset import``), with the shared md5deep and NSRL samples, and
scans with matching, so the ``matches`` and ``hash_sets_used`` tables are compared too.

Rows are compared table by table, keyed by a stable key (evidence path and source type;
file identity within the evidence; hash algorithm; match set, algorithm and known value;
...), never by row id. Columns that legitimately vary between two runs are ignored (ids,
run ids, times of the run, tool version, host atime); absolute temporary paths are
replaced by placeholders (``<TMP>``, ``<CASE>``, ``<STORE>``, ``<TESTDATA>``). A column,
table or JSON key present only in the head version is reported as *new*, not as a
difference. An ``--intended`` file lists accepted changes; they are reported apart.

Intended-changes file, text form (one rule a line, ``#`` comments)::

    files.mime: changed
    files.display_path: changed for rows matching ^<TESTDATA>/media::pillow/
    errors: added for rows matching \\.jp2
    hashes: removed

``TABLE[.COLUMN|.*]: changed|added|removed|any [for rows matching REGEX]``. ``REGEX`` is
searched in the row's label, as the text report prints it (``EVIDENCE::DISPLAY_PATH``
followed by the other key parts). The JSON form is a list of objects with the keys
``table``, ``column`` (optional), ``change``, ``rows`` (optional regex), ``reason``
(optional). The pseudo-table ``scan`` with the column ``exit_code`` compares the scans'
exit codes.

Exit status: 0 when the rows are equal apart from intended changes and new columns, 1 when
they differ, 2 on a usage error or when a version cannot be checked out or built.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
WORKTREE = "WORKTREE"

# --------------------------------------------------------------------------- comparison core

#: Tables not compared at all: the audit chain holds times and hashes of times by design.
SKIP_TABLES = frozenset({"audit", "sqlite_sequence", "sqlite_stat1"})

#: Columns ignored in every table: row ids and run ids (allocation order), times of the run.
VOLATILE_ANY = frozenset({"id", "run_id", "added_run_id", "time_utc", "started_utc",
                          "ended_utc", "created_utc", "tool_version"})

#: Further columns ignored per table, each with its reason.
VOLATILE: dict[str, frozenset[str]] = {
    # host atime of directory evidence moves when the first version reads a file (relatime)
    "files": frozenset({"atime_utc"}),
    # who/where/which libraries ran it, and the summary (elapsed, pool counters; its counts
    # are the rows compared in the other tables)
    "runs": frozenset({"arguments", "versions", "host", "user", "summary"}),
}

#: JSON keys ignored inside JSON-valued columns (same reason as ``atime_utc``).
VOLATILE_JSON_KEYS: dict[tuple[str, str], frozenset[str]] = {
    ("files", "times_raw"): frozenset({"atime_ns", "atime"}),
}

#: ``meta`` rows whose value names the tool version that wrote the case.
VOLATILE_META_KEYS = frozenset({"created_by"})

#: Stable key columns of each known table, after ``evidence_id``/``file_id``/``parent_id``
#: were replaced by the referenced row's label. Unknown tables are compared as row sets.
KEYS: dict[str, tuple[str, ...]] = {
    "meta": ("key",),
    "case": (),
    "runs": ("command", "#"),  # '#': the run's ordinal among runs of that command
    "evidence": ("path", "source_type"),
    "files": ("evidence_id", "identity"),
    "images": ("file_id",),
    "hashes": ("file_id", "algorithm"),
    "errors": ("file_id", "stage", "error_class"),
    "hash_sets_used": ("set_id",),
    "matches": ("file_id", "set_id", "algorithm", "match_type", "known_value"),
}

#: How rows reference evidence and files (column -> table).
REFERENCES = {"evidence_id": "evidence", "file_id": "files", "parent_id": "files"}

CHANGE_KINDS = ("changed", "added", "removed", "any")


@dataclass
class Table:
    """One table of a case, normalised: rows grouped by their stable key label."""

    columns: list[str]
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # key -> readable row label

    def count(self) -> int:
        return sum(len(v) for v in self.rows.values())


@dataclass(frozen=True)
class Difference:
    """One difference: ``kind`` is ``changed`` (a column value), ``added`` (a row only in
    head), ``removed`` (a row only in base), ``removed column`` or ``removed table``."""

    target: str
    table: str
    kind: str
    row: str = ""
    column: str = ""
    base: Any = None
    head: Any = None


@dataclass(frozen=True)
class Rule:
    """An intended change (see the module docstring)."""

    table: str
    column: str
    change: str
    rows: str = ""
    reason: str = ""

    def accepts(self, d: Difference) -> bool:
        if self.table not in ("*", d.table):
            return False
        kind = "removed" if d.kind.startswith("removed") else d.kind
        if self.change != "any" and self.change != kind:
            return False
        if d.kind == "changed" and self.column not in ("", "*", d.column):
            return False
        if d.kind != "changed" and self.column not in ("", "*", d.column):
            return False
        return not self.rows or re.search(self.rows, d.row) is not None

    def text(self) -> str:
        out = f"{self.table}{'.' + self.column if self.column else ''}: {self.change}"
        return out + (f" for rows matching {self.rows}" if self.rows else "")


_RULE = re.compile(r"^(?P<table>[\w*]+)(?:\.(?P<column>[\w*]+))?\s*:\s*(?P<change>\w+)"
                   r"(?:\s+for rows matching\s+(?P<rows>.+?))?\s*$")


def parse_intended(text: str) -> list[Rule]:
    """Rules from the text or JSON form (see the module docstring). Raises ValueError."""
    stripped = text.strip()
    rules: list[Rule] = []
    if stripped.startswith("["):
        for i, obj in enumerate(json.loads(stripped)):
            if not isinstance(obj, dict) or "table" not in obj or "change" not in obj:
                raise ValueError(f"intended rule {i + 1}: needs 'table' and 'change'")
            rules.append(Rule(str(obj["table"]), str(obj.get("column") or ""),
                              str(obj["change"]), str(obj.get("rows") or ""),
                              str(obj.get("reason") or "")))
    else:
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if not line:
                continue
            m = _RULE.match(line)
            if not m:
                raise ValueError(f"intended rule line {n}: cannot parse {line!r} (expected "
                                 "'TABLE[.COLUMN]: changed|added|removed|any [for rows "
                                 "matching REGEX]')")
            rules.append(Rule(m["table"], m["column"] or "", m["change"], m["rows"] or ""))
    for r in rules:
        if r.change not in CHANGE_KINDS:
            raise ValueError(f"intended rule {r.text()!r}: change must be one of "
                             f"{', '.join(CHANGE_KINDS)}")
        if r.rows:
            try:
                re.compile(r.rows)
            except re.error as e:
                raise ValueError(f"intended rule {r.text()!r}: bad regex: {e}") from e
    return rules


def _substitute(value: Any, subs: Sequence[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in subs:
            value = value.replace(old, new)
        return value
    if isinstance(value, bytes):
        for old, new in subs:
            value = value.replace(old.encode(), new.encode())
        return value
    return value


def _json_or_none(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return None


def _drop_keys(obj: Any, keys: frozenset[str]) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_keys(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [_drop_keys(v, keys) for v in obj]
    return obj


def _display(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + value.hex()
    return value


def load_case(db: Path, subs: Sequence[tuple[str, str]] = ()) -> dict[str, Table]:
    """Every compared table of the case database ``db``, normalised: volatile columns
    dropped, text with ``subs`` (old, new) replaced, JSON columns parsed (volatile keys
    dropped), references replaced by the referenced row's label, rows grouped by key label.

    Opens the database read-only; raises sqlite3.Error when it cannot be read.
    """
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        raw: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
        for name in names:
            if name in SKIP_TABLES:
                continue
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
            order = "id" if "id" in cols else "rowid"
            rows = [dict(r) for r in conn.execute(f'SELECT * FROM "{name}" ORDER BY {order}')]
            raw[name] = (cols, rows)
    finally:
        conn.close()

    # Stable keys of referenced rows (evidence path; evidence path::file identity) and a
    # readable label for each file key (evidence path::display path).
    keys: dict[str, dict[Any, str]] = {"evidence": {}, "files": {}}
    shown: dict[str, str] = {}
    for r in raw.get("evidence", ([], []))[1]:
        keys["evidence"][r["id"]] = str(_display(_substitute(r["path"], subs)))
    for r in raw.get("files", ([], []))[1]:
        ev = keys["evidence"].get(r.get("evidence_id"), str(r.get("evidence_id")))
        key = f"{ev}::{_display(_substitute(r['identity'], subs))}"
        keys["files"][r["id"]] = key
        shown[key] = f"{ev}::{_display(_substitute(r.get('display_path', ''), subs))}"

    out: dict[str, Table] = {}
    for name, (cols, rows) in raw.items():
        ignored = VOLATILE_ANY | VOLATILE.get(name, frozenset())
        keep = [c for c in cols if c not in ignored]
        table = Table(keep)
        ordinals: dict[Any, int] = {}
        for r in rows:
            if name == "meta" and r.get("key") in VOLATILE_META_KEYS:
                continue
            norm: dict[str, Any] = {}
            for c in keep:
                v = _substitute(r[c], subs)
                if c in REFERENCES and v is not None:
                    v = keys[REFERENCES[c]].get(v, f"<missing {REFERENCES[c]} {v}>")
                parsed = _json_or_none(v)
                if parsed is not None:
                    v = _drop_keys(parsed, VOLATILE_JSON_KEYS.get((name, c), frozenset()))
                norm[c] = _display(v)
            if name in KEYS:
                parts = []
                for k in KEYS[name]:
                    if k == "#":
                        cmd = r.get("command")
                        ordinals[cmd] = ordinals.get(cmd, 0) + 1
                        parts.append(f"#{ordinals[cmd]}")
                    elif name == "files" and k == "identity":
                        parts[-1] = f"{parts[-1]}::{norm.get(k)}"
                    else:
                        parts.append(str(norm.get(k)))
                key = " | ".join(parts) if parts else "(the row)"
                label = " | ".join(shown.get(p, p) for p in parts) if parts else key
            else:
                key = label = json.dumps(norm, sort_keys=True, default=str)
            table.rows.setdefault(key, []).append(norm)
            table.labels.setdefault(key, label)
        out[name] = table
    return out


def _value_diff(base: Any, head: Any, path: str, new: set[str]) -> tuple[Any, Any] | None:
    """None when equal apart from keys only in ``head`` (added to ``new``), else the pair."""
    if isinstance(base, dict) and isinstance(head, dict):
        differs = False
        for k in head:
            if k not in base:
                new.add(f"{path}.{k}")
        for k in base:
            if k not in head or _value_diff(base[k], head[k], f"{path}.{k}", new) is not None:
                differs = True
        if differs:
            return base, {k: v for k, v in head.items() if k in base}
        return None
    return None if base == head else (base, head)


def _row_sort_key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def compare_tables(target: str, base: dict[str, Table], head: dict[str, Table],
                   new: set[str]) -> tuple[list[Difference], dict[str, int]]:
    """Differences between two normalised cases (from :func:`load_case`), and the number
    of head rows compared per table. Names of columns, tables and JSON keys present only
    in head go to ``new`` (``table.column``; ``table`` for a new table)."""
    diffs: list[Difference] = []
    counts: dict[str, int] = {}
    for name in sorted(set(base) | set(head)):
        if name not in head:
            diffs.append(Difference(target, name, "removed table"))
            continue
        if name not in base:
            new.add(name)
            continue
        b, h = base[name], head[name]
        counts[name] = h.count()
        common = [c for c in b.columns if c in h.columns]
        for c in h.columns:
            if c not in b.columns:
                new.add(f"{name}.{c}")
        for c in b.columns:
            if c not in h.columns:
                diffs.append(Difference(target, name, "removed column", column=c))
        for key in sorted(set(b.rows) | set(h.rows)):
            label = h.labels.get(key) or b.labels.get(key) or key
            brows = [{c: r.get(c) for c in common} for r in b.rows.get(key, [])]
            hrows = [{c: r.get(c) for c in common} for r in h.rows.get(key, [])]
            if len(brows) == 1 and len(hrows) == 1:
                for c in common:
                    pair = _value_diff(brows[0][c], hrows[0][c], f"{name}.{c}", new)
                    if pair is not None:
                        diffs.append(Difference(target, name, "changed", label, c, *pair))
                continue
            # Several rows under one key (or none on one side): compare as multisets.
            bs = sorted(brows, key=_row_sort_key)
            hs = sorted(hrows, key=_row_sort_key)
            hleft = list(hs)
            for r in bs:
                if r in hleft:
                    hleft.remove(r)
                else:
                    diffs.append(Difference(target, name, "removed", label, base=r))
            for r in hleft:
                diffs.append(Difference(target, name, "added", label, head=r))
    return diffs, counts


@dataclass
class Report:
    """The outcome of a comparison: differences split by the intended-changes rules."""

    base: str
    head: str
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    intended: list[tuple[Difference, Rule]] = field(default_factory=list)
    new: dict[str, list[str]] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        rule_counts: dict[str, int] = {}
        for _, r in self.intended:
            rule_counts[r.text()] = rule_counts.get(r.text(), 0) + 1
        return {
            "base": self.base, "head": self.head, "equal": self.equal,
            "targets": self.targets,
            "differences": [asdict(d) for d in self.differences],
            "intended": [{**asdict(d), "rule": r.text()} for d, r in self.intended],
            "intended_counts": rule_counts,
            "new": self.new,
        }


def compare_cases(target: str, base_db: Path, head_db: Path, rules: Sequence[Rule],
                  report: Report, base_subs: Sequence[tuple[str, str]] = (),
                  head_subs: Sequence[tuple[str, str]] = ()) -> None:
    """Compare two case databases into ``report`` (differences, intended, new, counts)."""
    new: set[str] = set()
    diffs, counts = compare_tables(target, load_case(base_db, base_subs),
                                   load_case(head_db, head_subs), new)
    add_differences(report, diffs, rules)
    report.new[target] = sorted(new)
    report.targets.setdefault(target, {})["rows"] = counts


def add_differences(report: Report, diffs: Iterable[Difference], rules: Sequence[Rule]) -> None:
    for d in diffs:
        rule = next((r for r in rules if r.accepts(d)), None)
        if rule is None:
            report.differences.append(d)
        else:
            report.intended.append((d, rule))


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def format_text(report: Report, limit: int = 10) -> str:
    """The readable summary: per target the rows compared, then differences grouped by
    table and column (the first ``limit`` of each group), intended changes, new columns."""
    lines = [f"base: {report.base}", f"head: {report.head}", ""]
    for target, info in report.targets.items():
        rows = info.get("rows", {})
        total = sum(rows.values())
        exits = info.get("exit_codes")
        extra = f"; exit codes {exits['base']}/{exits['head']}" if exits else ""
        secs = info.get("seconds")
        timing = f"; {secs['base']:.0f} s / {secs['head']:.0f} s" if secs else ""
        lines.append(f"{target}: {total} rows compared "
                     f"({', '.join(f'{t} {n}' for t, n in rows.items() if n)}){extra}{timing}")
    groups: dict[tuple[str, str, str, str], list[Difference]] = {}
    for d in report.differences:
        groups.setdefault((d.target, d.table, d.kind, d.column), []).append(d)
    lines.append("")
    if groups:
        lines.append(f"DIFFERENCES ({len(report.differences)}):")
        for (target, table, kind, column), ds in groups.items():
            col = f".{column}" if column else ""
            lines.append(f"  [{target}] {table}{col}: {kind} in {len(ds)} row(s)")
            for d in ds[:limit]:
                if d.kind == "changed":
                    lines.append(f"    {d.row}: {_short(d.base)} -> {_short(d.head)}")
                elif d.kind == "added":
                    lines.append(f"    + {d.row}: {_short(d.head)}")
                elif d.kind == "removed":
                    lines.append(f"    - {d.row}: {_short(d.base)}")
            if len(ds) > limit:
                lines.append(f"    ... and {len(ds) - limit} more")
    if report.intended:
        counts: dict[str, int] = {}
        for _, r in report.intended:
            counts[r.text()] = counts.get(r.text(), 0) + 1
        lines.append(f"INTENDED changes ({len(report.intended)}), accepted:")
        for text, n in counts.items():
            lines.append(f"  {text}: {n}")
    new = sorted({n for names in report.new.values() for n in names})
    if new:
        lines.append(f"NEW in head (not compared): {', '.join(new)}")
    lines.append("")
    lines.append("EQUAL apart from intended changes and new columns" if report.equal else
                 f"DIFFERENT: {len(report.differences)} difference(s)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- corpora

EXT2_CONTAINERS = ("ext2.raw.gz", "ext2.E01", "ext2.split.E01", "ext2.splitraw.000",
                   "ext2.vmdk", "ext2.vhd", "ext2.qcow2")
#: DFTT zips (MANIFEST.md) and the image member each holds.
DFTT_IMAGES = (("5-fat-daylight.zip", "daylight.dd"), ("6-undel-fat.zip", "6-fat-undel.dd"),
               ("7-undel-ntfs.zip", "7-ntfs-undel.dd"), ("9-fat-label.zip", "9-fat-label.dd"))
#: The demo hash sets, as ``triage demo`` imports them (triage/demo_run.py DEMO_SETS):
#: (file in demo/hashsets, set name, known-files set, algorithm).
DEMO_SETS = (("demo-known.md5", "demo known material (MD5)", False, None),
             ("demo-pdq.txt", "demo known material (PDQ)", False, "pdq"),
             ("demo-nsrl.md5", "demo known files (NSRL-like)", True, None))
#: The shared hash-set samples, imported into the same store (their parsing shows in
#: ``hash_sets_used.entry_count``): (path below testdata/hashsets, set name, known).
SHARED_SETS = (("md5deep/md5deep.txt", "md5deep sample", False),
               ("md5deep/md5deep-size.txt", "md5deep-size sample", False),
               ("nsrl-rds2-mini/RDS-000001-15.zip", "NSRL RDS 2 mini", True))
CORPORA = ("media", "video", "hashsets", "ext2", "dftt", "demo")
ALIASES = {"disk": ("ext2", "dftt"), "all": CORPORA}


@dataclass(frozen=True)
class Target:
    """One scan: evidence path, and whether to match against the demo store."""

    name: str
    evidence: Path
    match: bool = False
    hashsets: Path | None = None  # the shared hash-set samples, for a matching target


def _unpack_gz(src: Path, dest: Path) -> Path:
    out = dest / src.stem
    if not out.exists():
        with gzip.open(src, "rb") as fin, open(out, "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return out


def _unpack_zip(src: Path, member: str, dest: Path) -> Path:
    out = dest / member
    if not out.exists():
        with zipfile.ZipFile(src) as z:
            name = next(n for n in z.namelist() if n.rsplit("/", 1)[-1] == member)
            with z.open(name) as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    return out


def build_targets(corpora: Sequence[str], work: Path, testdata: Path,
                  demo_builder: Path) -> list[Target]:
    """The scans for ``corpora``; compressed images are unpacked once into ``work``
    (shared by both versions, so both scan the same path)."""
    ev = work / "evidence"
    ev.mkdir(parents=True, exist_ok=True)
    targets: list[Target] = []
    for corpus in corpora:
        if corpus in ("media", "video", "hashsets"):
            targets.append(Target(corpus, testdata / corpus))
        elif corpus == "ext2":
            for name in EXT2_CONTAINERS:
                src = testdata / "disk" / "dfvfs" / name
                path = _unpack_gz(src, ev) if name.endswith(".gz") else src
                targets.append(Target(f"ext2:{name}", path))
        elif corpus == "dftt":
            for zname, member in DFTT_IMAGES:
                path = _unpack_zip(testdata / "disk" / "dftt" / zname, member, ev)
                targets.append(Target(f"dftt:{member}", path))
        elif corpus == "demo":
            demo = work / "demo"
            if not (demo / "evidence").is_dir():
                _run([sys.executable, "-c", "import sys; from pathlib import Path; "
                      "from triage.demo import build_demo; build_demo(Path(sys.argv[1]))",
                      str(demo)], demo_builder, work)
            targets.append(Target("demo", demo / "evidence", match=True,
                                  hashsets=testdata / "hashsets"))
    return targets


# --------------------------------------------------------------------------- running


class SetupError(Exception):
    """A version cannot be checked out or run at all (exit 2)."""


def _env(checkout: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TRIAGE_INJECT_FAULT", "TRIAGE_HASHSET_STORE", "PYTHONPATH")}
    env["PYTHONPATH"] = str(checkout)
    return env


def _run(cmd: list[str], checkout: Path, cwd: Path,
         timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(checkout), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode not in (0, 3):
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        if cmd[1] == "-c" or "hashset" in cmd:
            raise SetupError(f"{' '.join(cmd[:6])} ... exited {proc.returncode}:\n{tail}")
    return proc


def checkout(rev: str, dest: Path) -> Path:
    """The source tree of ``rev``: this working tree for ``WORKTREE``, else a
    ``git archive`` of the revision unpacked into ``dest`` (no worktree, no .git change)."""
    if rev == WORKTREE:
        return ROOT
    dest.mkdir(parents=True)
    proc = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f"git archive {rev}: {proc.stderr.decode(errors='replace').strip()}")
    tar_path = dest.with_suffix(".tar")
    tar_path.write_bytes(proc.stdout)
    with tarfile.open(tar_path) as t:
        t.extractall(dest, filter="data")
    tar_path.unlink()
    return dest


def resolve(rev: str) -> str:
    """``rev`` as a commit id (``WORKTREE`` stays), for the report."""
    if rev == WORKTREE:
        return WORKTREE
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", rev + "^{commit}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f"unknown revision {rev!r}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def default_base() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "merge-base", "main", "HEAD"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "HEAD"


def run_side(label: str, src: Path, targets: Sequence[Target], work: Path,
             jobs: int) -> dict[str, tuple[Path, int, float]]:
    """Scan every target with the triage in ``src``; {target: (case db, exit, seconds)}."""
    side = work / label
    side.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, int, float]] = {}
    store = side / "store.sqlite"
    for t in targets:
        case = side / ("case-" + re.sub(r"[^\w.-]", "_", t.name))
        cmd = [sys.executable, "-m", "triage", "scan", str(t.evidence), "--case", str(case),
               "--jobs", str(jobs), "-q", "--json"]
        if t.match:
            if not store.exists():
                hs = t.evidence.parent / "hashsets"
                for filename, name, known, algorithm in DEMO_SETS:
                    imp = [sys.executable, "-m", "triage", "hashset", "import",
                           str(hs / filename), "--name", name, "--store", str(store)]
                    imp += ["--known"] if known else []
                    imp += ["--algorithm", algorithm] if algorithm else []
                    _run(imp, src, side)
                shared = [(t.hashsets / rel, name, known) for rel, name, known in SHARED_SETS
                          if t.hashsets is not None]
                for path, name, known in shared:
                    imp = [sys.executable, "-m", "triage", "hashset", "import", str(path),
                           "--name", name, "--store", str(store)]
                    _run([*imp, "--known"] if known else imp, src, side)
            cmd += ["--store", str(store)]
        else:
            cmd.append("--no-match")
        start = time.monotonic()
        proc = _run(cmd, src, side)
        secs = time.monotonic() - start
        db = case / "case.sqlite"
        if not db.exists():
            raise SetupError(f"{label}: scan of {t.name} made no case (exit "
                             f"{proc.returncode}): {proc.stderr.strip()[-500:]}")
        out[t.name] = (db, proc.returncode, secs)
        print(f"  {label} {t.name}: exit {proc.returncode}, {secs:.1f} s", file=sys.stderr)
    return out


def _subs(work: Path, side_dir: Path, testdata: Path) -> list[tuple[str, str]]:
    """Placeholders for the absolute paths that differ between versions or runs."""
    return [(str(side_dir / "store.sqlite"), "<STORE>"), (str(side_dir), "<SIDE>"),
            (str(work), "<TMP>"), (str(testdata), "<TESTDATA>"), (str(ROOT), "<CHECKOUT>")]


def parse_corpora(text: str) -> list[str]:
    out: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        for name in ALIASES.get(part, (part,)):
            if name not in CORPORA:
                raise ValueError(f"unknown corpus {part!r} (known: "
                                 f"{', '.join((*CORPORA, *ALIASES))})")
            if name not in out:
                out.append(name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="base revision (default: merge-base of main and HEAD)")
    ap.add_argument("--head", default=WORKTREE,
                    help=f"head revision (default: {WORKTREE}, this working tree)")
    ap.add_argument("--corpus", default="all",
                    help=f"comma-separated: {', '.join(CORPORA)}; disk = ext2,dftt; all")
    ap.add_argument("--intended", type=Path, help="intended changes (text or JSON)")
    ap.add_argument("--jobs", type=int, default=2, help="triage scan --jobs (default 2)")
    ap.add_argument("--cases", nargs=2, type=Path, metavar=("BASE_CASE", "HEAD_CASE"),
                    help="compare two existing case directories (or .sqlite files) only")
    ap.add_argument("--testdata", type=Path, default=TESTDATA, help="shared test corpora")
    ap.add_argument("--workdir", type=Path, help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--limit", type=int, default=10, help="rows shown per difference group")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)

    try:
        rules = parse_intended(args.intended.read_text("utf-8")) if args.intended else []
        corpora = parse_corpora(args.corpus)
    except (OSError, ValueError) as e:
        print(f"compare_scans: {e}", file=sys.stderr)
        return 2

    if args.cases:
        dbs = [p / "case.sqlite" if p.is_dir() else p for p in args.cases]
        report = Report(str(args.cases[0]), str(args.cases[1]))
        try:
            # Each case's folder and the folder holding it (a store beside it, as the
            # scans of this script leave them) become placeholders.
            subs = [[(str(c.resolve()), "<CASE>"), (str(c.resolve().parent), "<SIDE>")]
                    for c in args.cases]
            compare_cases("cases", dbs[0], dbs[1], rules, report, subs[0], subs[1])
        except sqlite3.Error as e:
            print(f"compare_scans: cannot read a case: {e}", file=sys.stderr)
            return 2
        print(json.dumps(report.to_json(), indent=2, default=str) if args.json
              else format_text(report, args.limit))
        return 0 if report.equal else 1

    work = args.workdir or Path(tempfile.mkdtemp(prefix="compare-scans-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        base_rev = args.base or default_base()
        report = Report(f"{base_rev} ({resolve(base_rev)})",
                        f"{args.head} ({resolve(args.head)})")
        base_src = checkout(base_rev, work / "src-base")
        head_src = checkout(args.head, work / "src-head")
        targets = build_targets(corpora, work, args.testdata.resolve(), head_src)
        base = run_side("base", base_src, targets, work, args.jobs)
        head = run_side("head", head_src, targets, work, args.jobs)
        testdata = args.testdata.resolve()
        for t in targets:
            (bdb, bexit, bsec), (hdb, hexit, hsec) = base[t.name], head[t.name]
            compare_cases(t.name, bdb, hdb, rules, report,
                          [*_subs(work, work / "base", testdata), (str(bdb.parent), "<CASE>")],
                          [*_subs(work, work / "head", testdata), (str(hdb.parent), "<CASE>")])
            report.targets[t.name]["exit_codes"] = {"base": bexit, "head": hexit}
            report.targets[t.name]["seconds"] = {"base": round(bsec, 1),
                                                 "head": round(hsec, 1)}
            if bexit != hexit:
                add_differences(report, [Difference(t.name, "scan", "changed", t.name,
                                                    "exit_code", bexit, hexit)], rules)
    except (SetupError, subprocess.TimeoutExpired, sqlite3.Error) as e:
        print(f"compare_scans: {e}", file=sys.stderr)
        return 2
    finally:
        if args.keep or args.workdir:
            print(f"compare_scans: work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report.to_json(), indent=2, default=str) if args.json
          else format_text(report, args.limit))
    return 0 if report.equal else 1


if __name__ == "__main__":
    sys.exit(main())
