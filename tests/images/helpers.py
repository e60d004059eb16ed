"""Helpers for the image-source tests: unpack test data, read the TSK oracles, scan an
image the way the pipeline does (enumerate in the supervisor, read in a separate worker
process rebuilt from ``spec()``)."""

from __future__ import annotations

import gzip
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import tarfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import TESTDATA
from triage.sources.base import EntryAmendment, FileEntry
from triage.sources.image import ImageSource

ANSWERS = TESTDATA / "answers"
DISK = TESTDATA / "disk"
HERE = Path(__file__).resolve().parent


def unpack(src: Path, dest: Path, member: str | None = None) -> Path:
    """Unpack a .gz / .zip / .tar.xz test image into ``dest`` (never into the repo)."""
    dest.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".gz":
        out = dest / src.stem
        with gzip.open(src, "rb") as fin, open(out, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        return out
    if src.suffix == ".zip":
        with zipfile.ZipFile(src) as z:
            name = next(n for n in z.namelist() if n.endswith("/" + member) or n == member)
            out = dest / os.path.basename(name)
            with z.open(name) as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        return out
    if src.name.endswith(".tar.xz"):
        with tarfile.open(src) as t:
            info = next(m for m in t.getmembers() if os.path.basename(m.name) == member)
            fin = t.extractfile(info)
            assert fin is not None
            out = dest / os.path.basename(info.name)
            with open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        return out
    return src


@dataclass(frozen=True)
class OracleRow:
    type: str
    inode: str
    deleted: bool
    path: str
    size: int | None
    md5: str | None
    sha256: str | None

    @property
    def is_file(self) -> bool:
        """r/r, -/r and r/- rows (regular files by meta or by name), as fls prints them."""
        name_t, meta_t = self.type.split("/")
        return meta_t == "r" or (meta_t == "-" and name_t == "r")


def read_oracle(tsv: Path) -> list[OracleRow]:
    rows = []
    for line in tsv.read_text("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        t, inode, deleted, path, size, md5, sha = (line.split("\t") + [""] * 7)[:7]
        rows.append(OracleRow(t, inode, deleted == "DELETED", path,
                              int(size) if size else None, md5 or None, sha or None))
    return rows


@dataclass
class Read:
    size: int
    md5: str | None
    sha256: str | None
    bad_ranges: list[tuple[int, int]]
    error: str | None


def _read_all(spec: tuple[str, Any], entries: list[FileEntry]) -> list[Read]:
    from triage.sources import image as image_mod

    source = image_mod.ImageSource.from_spec(spec[1])
    out = []
    for e in entries:
        try:
            f = source.open_entry(e)
        except OSError as exc:
            out.append(Read(0, None, None, [], str(exc)))
            continue
        md5, sha = hashlib.md5(), hashlib.sha256()
        n = 0
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            md5.update(chunk)
            sha.update(chunk)
            n += len(chunk)
        bad = list(getattr(f, "bad_ranges", []))
        out.append(Read(n, md5.hexdigest(), sha.hexdigest(), bad, None))
    source.close()
    return out


_pool: ProcessPoolExecutor | None = None


def worker_pool() -> ProcessPoolExecutor:
    """One spawned worker process, like the pipeline's: libtsk reads never run in pytest."""
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=1,
                                    mp_context=multiprocessing.get_context("spawn"))
    return _pool


@dataclass
class Scan:
    source: ImageSource
    describe: dict[str, Any]
    entries: list[FileEntry]
    reads: dict[str, Read]  # by identity
    amendments: list[EntryAmendment]  # the block-ownership check's, in order

    def files(self) -> dict[bytes, FileEntry]:
        """File entries by path; a path both live and deleted (a name reused after
        deletion, as in lde test.ext3) is keyed ``path`` and ``path + b" (deleted)"``."""
        out: dict[bytes, FileEntry] = {}
        for e in self.entries:
            if e.kind == "file":
                key = e.path
                if key in out:
                    key = e.path + b" (deleted)"
                    if not e.deleted:
                        out[key], e = out[e.path], e
                        out[e.path] = e
                        continue
                assert key not in out, f"duplicate path {e.path!r}"
                out[key] = e
        return out

    def read(self, entry: FileEntry) -> Read | None:
        return self.reads.get(entry.identity)

    def errors(self) -> list[FileEntry]:
        return [e for e in self.entries if e.preset_status and e.preset_status[0] == "error"]


def scan(path: Path | str, *, timeout: float = 60, read: bool = True,
         carve: bool = False) -> Scan:
    """``carve``: list the carving areas too (issue 17; off: the TSK oracles list files)."""
    source = ImageSource(str(path), timeout=timeout)
    source.carve = carve
    describe = source.describe()
    entries: list[FileEntry] = []
    amendments: list[EntryAmendment] = []
    for item in source.entries():
        if isinstance(item, EntryAmendment):
            assert item.identity in {e.identity for e in entries}, "amends an unseen entry"
            amendments.append(item)
        else:
            entries.append(item)
    identities = [e.identity for e in entries]
    assert len(identities) == len(set(identities)), "identities must be unique"
    readable = [e for e in entries if e.readable]
    reads: dict[str, Read] = {}
    if read and readable:
        results = worker_pool().submit(_read_all, source.spec(), readable).result(timeout=120)
        reads = {e.identity: r for e, r in zip(readable, results, strict=True)}
    return Scan(source, describe, entries, reads, amendments)


def build_images(dest: Path) -> Path:
    """Run the committed builder script; fail (never skip) with the missing package named."""
    proc = subprocess.run(["sh", str(HERE / "build_images.sh"), str(dest)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"build_images.sh failed: {proc.stderr.strip()}")
    return dest
