"""``triage selftest``: known-answer tests of the installed tool, for validation (ISO/IEC 17025).

Needs no data outside the installed package. Every check compares an observed value with a
committed reference value (``data/reference.json``, ``data/disk-expected.tsv``) and is
recorded with both, whether it passes or not:

* ``digest.*``: MD5, SHA-1 and SHA-256 of published test vectors (RFC 1321, FIPS 180-2),
  computed through the algorithm registry's incremental hashers (the code a scan uses);
* ``picture.*``: pHash, dHash and PDQ (with PDQ's quality) of deterministic synthetic
  pictures made by Pillow's own generators;
* ``disk.*``: a scan (the real pipeline: worker processes, libtsk, libmagic, decoding) of a
  tiny raw disk image shipped as package data (``data/disk.img.gz``, built by
  ``scripts/build_selftest_image.sh``: an MBR partition table, FAT12 and ext2, each with a
  deleted file): the scan's full listing equal to the reference's (``disk.scan_entries``,
  both ways: no entry missing, none unexpected, the ``$Unallocated``, ``$Slack`` and
  ``$Unpartitioned`` areas and carved items included), every expected file with its size,
  SHA-256, deleted flag and status, no entry in the outcome class error or coverage gap,
  and the perceptual hashes of the picture in it;
* ``hashset.*``: two hash sets written by the self-test (a SHA-256 list and a PDQ list
  whose value is the picture's PDQ with bits flipped) imported into a private store, and
  the scan's matches: exact hits on the known file, near hits at the known distance;
* ``export.*``: a JSONL export with its manifest, ``triage verify`` passing on it, and
  ``verify`` failing, naming the export, once a byte of the export is changed;
* ``offline.*``: the offline guard refuses an Internet socket and a name look-up.

Everything the checks write (the decompressed image, the case, the store, the export) goes
into a private temporary directory that is removed at the end. The validation record
(:mod:`triage.selftest.record`) is written only where the caller asks.
"""

from __future__ import annotations

import gzip
import json
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hashsets.store import ImportResult

    from ..model import RunSummary

#: Where the reference values and the disk image live (package data).
DATA = Path(str(resources.files(__package__) / "data"))
REFERENCE = "reference.json"
#: Bits of the picture's PDQ flipped in the self-test's PDQ hash set: a near hit at this
#: distance (well inside PDQ's threshold of 31) is expected. A choice.
PDQ_FLIPPED_BITS = 8


@dataclass(frozen=True)
class Check:
    """One known-answer test: what was expected, what was observed, and whether they agree."""

    id: str
    description: str
    expected: str
    observed: str
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "expected": self.expected,
                "observed": self.observed, "result": "pass" if self.ok else "FAIL"}


def _check(id: str, description: str, expected: str, observed: str) -> Check:
    return Check(id, description, expected, observed, expected == observed)


@dataclass(frozen=True)
class SelftestResult:
    checks: tuple[Check, ...]
    started_utc: str
    elapsed_seconds: float

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not self.failed


def load_reference(data: Path | None = None) -> dict[str, Any]:
    """The reference values (``data/reference.json``, the scan's full listing under
    ``disk.scan_entries``) with the disk image's files (``data/disk-expected.tsv``) under
    ``disk.files``."""
    folder = DATA if data is None else data
    ref: dict[str, Any] = json.loads((folder / REFERENCE).read_text(encoding="utf-8"))
    files = []
    for line in (folder / ref["disk"]["listing"]).read_text(encoding="utf-8").splitlines():
        path, size, sha256, deleted = line.split("\t")
        files.append({"path": path, "size": int(size), "sha256": sha256,
                      "deleted": deleted == "1"})
    ref["disk"]["files"] = files
    return ref


def run(data: Path | None = None, *, jobs: int = 1,
        progress: Callable[[str], None] | None = None) -> SelftestResult:
    """Run every check against the reference values in ``data`` (default: the package's).

    A group whose code raises records one failing check naming the group and the
    exception (never a traceback of content: the inputs are all synthetic)."""
    from datetime import UTC, datetime

    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.monotonic()
    folder = DATA if data is None else data
    ref = load_reference(folder)
    say = progress or (lambda _: None)
    checks: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="triage-selftest-") as tmp:
        groups: list[tuple[str, Callable[[], Iterator[Check]]]] = [
            ("digest", lambda: _digests(ref)),
            ("picture", lambda: _pictures(ref)),
            ("offline", _offline),
            ("disk", lambda: _disk(ref, folder, Path(tmp), jobs)),
        ]
        for name, group in groups:
            say(name)
            try:
                for check in group():  # checks made before a failure are kept
                    checks.append(check)
            except Exception as e:  # a group that breaks is a failed check, named
                checks.append(Check(f"{name}.run", f"the {name} checks ran to the end",
                                    "completed", f"{type(e).__name__}: {e}", False))
    return SelftestResult(tuple(checks), started, round(time.monotonic() - t0, 3))


# --- digests ------------------------------------------------------------------------------

def _digests(ref: dict[str, Any]) -> Iterator[Check]:
    from hashsets.algorithms import StreamAlgorithm, get

    for v in ref["digests"]:
        data = v["input"].encode("utf-8") * int(v.get("repeat", 1))
        alg = get(v["algorithm"])
        if not isinstance(alg, StreamAlgorithm):
            raise TypeError(f"{alg.name} is not computed from bytes")
        h = alg.new()
        for i in range(0, len(data), 65536):  # chunked, as a scan's read pass feeds it
            h.update(data[i:i + 65536])
        shown = repr(v["input"]) + (f" x {v['repeat']}" if "repeat" in v else "")
        yield _check(f"digest.{v['algorithm']}.{v['name']}",
                     f"{v['algorithm'].upper()} of {shown} ({v['source']})",
                     v["expected"], h.hexdigest())


# --- pictures -----------------------------------------------------------------------------

def picture(name: str) -> Any:
    """A deterministic synthetic picture: the registry's examples, or Pillow's Mandelbrot
    generator (256x256, 8-bit grey, 64 iterations)."""
    from PIL import Image

    from hashsets.algorithms import EXAMPLE_PICTURES, example_picture

    if name in EXAMPLE_PICTURES:
        return example_picture(name)
    if name == "mandelbrot":
        return Image.effect_mandelbrot((256, 256), (-2.0, -1.5, 1.0, 1.5), 64)
    raise KeyError(f"no synthetic picture {name!r}")


def _hash_text(value: str, quality: int | None) -> str:
    return value if quality is None else f"{value} quality {quality}"


def _pictures(ref: dict[str, Any]) -> Iterator[Check]:
    from hashsets.algorithms import PictureAlgorithm, get

    for v in ref["pictures"]:
        alg = get(v["algorithm"])
        if not isinstance(alg, PictureAlgorithm):
            raise TypeError(f"{alg.name} is not computed from pictures")
        value, quality = alg.compute(picture(v["picture"]))
        yield _check(f"picture.{v['algorithm']}.{v['picture']}",
                     f"{alg.label} of the synthetic picture {v['picture']}",
                     _hash_text(v["expected"], v.get("quality")),
                     _hash_text(value, quality if "quality" in v else None))


# --- offline guard ------------------------------------------------------------------------

def _offline() -> Iterator[Check]:
    from ..offline import NetworkBlockedError, install

    install()  # importing triage installs it; said again so this check cannot depend on it

    def attempt(action: Callable[[], object]) -> str:
        try:
            action()
        except NetworkBlockedError:
            return "refused"
        except OSError as e:  # the guard let it through; the network then failed
            return f"not refused by the guard (network error: {e})"
        return "not refused"

    def inet() -> None:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()

    yield _check("offline.socket", "creating an Internet (AF_INET) socket is refused",
                 "refused", attempt(inet))
    yield _check("offline.lookup", "a name look-up (getaddrinfo) is refused",
                 "refused", attempt(lambda: socket.getaddrinfo("localhost", 80)))


# --- the disk image: scan, hash sets, export, verify ------------------------------------------

def _flip(value: str, bits: int) -> str:
    """``value`` (hex) with its ``bits`` most significant bits inverted."""
    n = len(value) * 4
    return f"{int(value, 16) ^ (((1 << bits) - 1) << (n - bits)):0{len(value)}x}"


@contextmanager
def _readonly_db(path: Path) -> Iterator[Any]:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


@dataclass(frozen=True)
class DiskScan:
    """The self-test's scan of its disk image: the hash sets imported before it, its
    summary and its case folder."""

    imported: list[ImportResult]
    summary: RunSummary
    case_dir: Path


def scan_disk(ref: dict[str, Any], folder: Path, tmp: Path, jobs: int = 1) -> DiskScan:
    """Decompress the disk image into ``tmp``, import the self-test's two hash sets into a
    private store there and scan the image into a case there, as the ``disk`` checks do
    (``scripts/selftest_reference.py`` records the listing of this same scan)."""
    from hashsets.store import HashSetStore

    from ..scan import ScanOptions, scan

    disk = ref["disk"]
    image = tmp / "selftest-disk.img"
    image.write_bytes(gzip.decompress((folder / disk["image"]).read_bytes()))
    pic = disk["picture_hashes"]
    files = {f["path"]: f for f in disk["files"]}

    # Two hash sets: the known file's SHA-256 (exact) and the picture's PDQ with
    # PDQ_FLIPPED_BITS bits flipped (near).
    known = files[disk["known_file"]]["sha256"]
    sets = tmp / "sets"
    sets.mkdir()
    (sets / "known.sha256").write_text(f"{known}\n", encoding="ascii")
    (sets / "near.pdq").write_text(_flip(pic["pdq"], PDQ_FLIPPED_BITS) + "\n",
                                   encoding="ascii")
    store_path = tmp / "hashsets.sqlite"
    store = HashSetStore(store_path)
    try:
        imported = [store.import_file(sets / "known.sha256", name="selftest SHA-256",
                                      options={"algorithm": "sha256"}),
                    store.import_file(sets / "near.pdq", name="selftest PDQ",
                                      options={"algorithm": "pdq"})]
    finally:
        store.close()
    case_dir = tmp / "case"
    options = ScanOptions(jobs=jobs, store=str(store_path), case_number="SELFTEST",
                          examiner="triage selftest", agency="triage selftest",
                          notes="known-answer disk image shipped with triage")
    summary = scan(str(image), case_dir, options, argv=["selftest"])
    return DiskScan(imported, summary, case_dir)


def scan_entries(case_dir: Path) -> list[str]:
    """Every entry the case's scan recorded (display paths, sorted; a path recorded twice
    is listed twice): files, folders, the file systems' own entries, and the virtual
    entries of a disk image (``$Unallocated``, ``$Slack``, ``$Unpartitioned`` areas and the
    items carved from them)."""
    from ..case import DB_NAME

    with _readonly_db(case_dir / DB_NAME) as conn:
        return sorted(r[0] for r in conn.execute("SELECT display_path FROM files"))


#: Paths shown at most in each list (missing, unexpected) of a failed ``disk.entries``.
SHOWN_ENTRIES = 10


def _shown(paths: list[str]) -> str:
    more = len(paths) - SHOWN_ENTRIES
    return ", ".join(paths[:SHOWN_ENTRIES]) + (f" and {more} more" if more > 0 else "")


def entries_check(expected: list[str], observed: list[str]) -> Check:
    """``disk.entries``: the scan's listing is exactly the reference's, both ways (a
    missing entry and an unexpected one both fail, each listed, at most SHOWN_ENTRIES)."""
    from collections import Counter

    want, got = Counter(expected), Counter(observed)
    missing = sorted((want - got).elements())
    unexpected = sorted((got - want).elements())
    agree = f"{len(expected)} entries, none missing, none unexpected"
    parts = [f"{len(observed)} entries"]
    if missing:
        parts.append(f"missing ({len(missing)}): {_shown(missing)}")
    if unexpected:
        parts.append(f"unexpected ({len(unexpected)}): {_shown(unexpected)}")
    return _check("disk.entries", "the scan lists exactly the disk image's entries in the "
                  "reference (disk.scan_entries: files, folders, file-system entries, "
                  "unallocated, slack and unpartitioned areas, carved items), none missing "
                  "and none more", agree,
                  agree if not (missing or unexpected) else "; ".join(parts))


def _disk(ref: dict[str, Any], folder: Path, tmp: Path, jobs: int) -> Iterator[Check]:
    from ..case import DB_NAME
    from ..report.export import export
    from ..report.verify import verify

    disk = ref["disk"]
    pic = disk["picture_hashes"]
    files = {f["path"]: f for f in disk["files"]}
    done = scan_disk(ref, folder, tmp, jobs)
    imported, summary, case_dir = done.imported, done.summary, done.case_dir
    yield _check("hashset.import", "two one-entry hash sets import (SHA-256 and PDQ lists)",
                 "2 sets, 2 entries",
                 f"{len(imported)} sets, {sum(r.set.accepted for r in imported)} entries")
    outcomes = {s: n for s, n in sorted(summary.by_status.items()) if n}
    yield _check("disk.outcomes", "every entry of the disk image ends done or not "
                 "applicable by design (no error, no coverage gap, matching ran)",
                 "no error, incomplete, quarantined or pending entry; matching ok",
                 "no error, incomplete, quarantined or pending entry; matching ok"
                 if not (set(outcomes) - {"done", "skipped"}) and summary.match_error is None
                 else f"statuses {outcomes}; matching: {summary.match_error or 'ok'}")

    with _readonly_db(case_dir / DB_NAME) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT f.display_path, f.size, f.deleted, f.status, h.value, f.mime "
            "FROM files f LEFT JOIN hashes h ON h.file_id = f.id AND h.algorithm = 'sha256' "
            "WHERE f.kind = 'file'")}
        picture_id = conn.execute("SELECT id FROM files WHERE display_path = ?",
                                  (disk["picture"],)).fetchone()
        perceptual = dict(conn.execute(
            "SELECT algorithm, value || coalesce(' quality ' || quality, '') FROM hashes "
            "WHERE file_id = ?", (picture_id[0] if picture_id else -1,)).fetchall())
        hits = sorted(conn.execute(
            "SELECT f.display_path, m.algorithm, m.match_type, m.distance FROM matches m "
            "JOIN files f ON f.id = m.file_id").fetchall())

    yield entries_check(disk["scan_entries"], scan_entries(case_dir))
    for path, f in files.items():
        want = (f"size {f['size']}, SHA-256 {f['sha256']}, "
                f"{'deleted' if f['deleted'] else 'allocated'}, done")
        row = rows.get(path)
        got = "not found" if row is None else (
            f"size {row[0]}, SHA-256 {row[3]}, {'deleted' if row[1] else 'allocated'}, "
            f"{row[2]}")
        yield _check(f"disk.file.{path}", f"the disk image's file {path} is found and read",
                     want, got)
    mime = rows.get(disk["picture"], (None,) * 5)[4]
    yield _check("disk.identify", f"{disk['picture']} is identified by content (libmagic)",
                 "image/png", str(mime))
    for alg, value in sorted(pic.items()):
        quality = disk.get("picture_quality") if alg == "pdq" else None
        yield _check(f"disk.picture.{alg}", f"{alg} of {disk['picture']} as the scan "
                     "decoded and hashed it", _hash_text(value, quality),
                     perceptual.get(alg, "not computed"))

    want_hits = sorted((h["path"], h["algorithm"], h["type"], h["distance"])
                       for h in ref["matches"])
    yield _check("hashset.match", "the scan's matches: exact SHA-256 hits on the known file, "
                 f"near PDQ hits at distance {PDQ_FLIPPED_BITS} on the picture",
                 "; ".join(f"{p} {a} {t} {d}" for p, a, t, d in want_hits),
                 "; ".join(f"{p} {a} {t} {d}" for p, a, t, d in hits) or "no hits")

    result = export(case_dir, "jsonl", argv=["selftest"])
    checks = verify(case_dir)
    bad = [c.subject for c in checks if not c.ok]
    yield _check("export.verify", "a JSONL export and its manifest pass 'triage verify'",
                 "all checks passed", "all checks passed" if not bad
                 else "failed: " + "; ".join(bad))
    with result.output.open("ab") as f:  # one byte more: verify must name the export
        f.write(b"\n")
    bad = [c.subject for c in verify(case_dir) if not c.ok]
    named = any(result.output.name in s for s in bad)
    yield _check("export.tamper", "'triage verify' fails, naming the export, once the "
                 "export is changed by one byte", f"fails naming {result.output.name}",
                 f"fails naming {result.output.name}" if named
                 else ("passed" if not bad else "fails naming " + "; ".join(bad)))
