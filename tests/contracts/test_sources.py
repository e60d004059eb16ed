"""Contract of every registered evidence source (``triage.sources``), parametrised over the
registry: a newly registered source is tested automatically, and fails until it has a
sample here.

For each source: ``detect`` accepts its own sample, changes nothing, and the registry picks
that source for it; ``spec()`` survives pickling and rebuilds an equal source;
``describe()`` is JSON; ``warnings()`` are strings; every entry has a unique identity, path
bytes with a printable display form and a JSON locator; enumeration is deterministic; and
every readable entry reads, through a source rebuilt from ``spec()``, the bytes an
independent oracle gives (the directory: Python's own ``open``; the image: The Sleuth Kit's
listing ``answers/tsk/dfvfs__ext2.raw.tsv``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.contracts import registries as reg
from tests.images.helpers import read_oracle
from tests.support import TESTDATA


@dataclass(frozen=True)
class Sample:
    path: Path
    expected: dict[bytes, str]  # path bytes of every regular file -> SHA-256 of its content


def _directory(tmp: Path, ext2_raw: Path) -> Sample:
    root = tmp / "dir"
    files = {b"a.txt": b"hello\n", b"sub/deeper/b.bin": bytes(range(256)) * 40,
             b"empty": b"", "ímynd.dat".encode(): b"x" * 3, b"bad\xffname": b"bytes name",
             b"tab\tname": b"t"}
    for rel, data in files.items():
        p = os.path.join(bytes(root), rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    os.symlink(b"a.txt", os.path.join(bytes(root), b"link"))
    expected = {}
    for rel in files:  # read back with Python's open: the oracle
        with open(os.path.join(bytes(root), rel), "rb") as f:
            expected[rel] = hashlib.sha256(f.read()).hexdigest()
    return Sample(root, expected)


def _image(tmp: Path, ext2_raw: Path) -> Sample:
    oracle = read_oracle(TESTDATA / "answers" / "tsk" / "dfvfs__ext2.raw.tsv")
    expected = {r.path.encode(): r.sha256 or "" for r in oracle if r.is_file and not r.deleted}
    assert len(expected) == 3
    return Sample(ext2_raw, expected)


#: One sample per registered source name.
SAMPLES: dict[str, Callable[[Path, Path], Sample]] = {
    "directory": _directory,
    "image": _image,
}


def test_every_registered_source_has_a_sample() -> None:
    assert set(reg.sources()) == set(SAMPLES), "add a sample for each new source to SAMPLES"


@pytest.fixture
def samples(tmp_path: Path, ext2_raw: Path) -> dict[str, Sample]:
    return {name: build(tmp_path, ext2_raw) for name, build in SAMPLES.items()}


def _state(path: Path) -> tuple[object, ...]:
    st = os.lstat(path)
    content = path.read_bytes() if path.is_file() else sorted(os.listdir(path))
    return (st.st_mtime_ns, st.st_size, hashlib.sha256(repr(content).encode()).hexdigest())


@pytest.mark.parametrize("name", sorted(reg.sources()))
def test_detect_and_registry_order(name: str, samples: dict[str, Sample],
                                   tmp_path: Path) -> None:
    cls = reg.sources()[name]
    own = samples[name].path
    before = _state(own)
    assert cls.detect(str(own)) is True
    assert _state(own) == before, "detect changed the evidence"
    assert type(reg.open_source(own)) is cls
    assert cls.detect(str(tmp_path / "no such evidence")) is False
    for other, sample in samples.items():
        if other != name and cls.detect(str(sample.path)):
            # Accepting another source's evidence is only allowed for a catch-all that is
            # tried after it.
            order = list(reg.sources())
            assert order.index(other) < order.index(name), (name, other)
            assert type(reg.open_source(sample.path)) is reg.sources()[other]


@pytest.mark.parametrize("name", sorted(reg.sources()))
def test_spec_round_trip_describe_and_warnings(name: str, samples: dict[str, Sample]) -> None:
    source = reg.open_source(samples[name].path)
    try:
        spec = source.spec()
        assert spec[0] == name
        again = pickle.loads(pickle.dumps(spec))
        rebuilt = reg.open_spec(again)
        try:
            assert type(rebuilt) is type(source)
            assert rebuilt.spec() == spec
            info = source.describe()
            assert json.loads(json.dumps(info)) == info  # JSON-serialisable, plain values
            assert {"type", "path", "size"} <= set(info)
            assert rebuilt.describe() == info
        finally:
            rebuilt.close()
        warnings = source.warnings()
        assert isinstance(warnings, list) and all(isinstance(w, str) and w for w in warnings)
    finally:
        source.close()


@pytest.mark.parametrize("name", sorted(reg.sources()))
def test_entries_and_content(name: str, samples: dict[str, Sample]) -> None:
    file_entry, amendment = reg.entry_types()
    sample = samples[name]
    source = reg.open_source(sample.path)
    try:
        items = list(source.entries())
        again = list(source.entries())
        spec = source.spec()
    finally:
        source.close()
    entries = [e for e in items if isinstance(e, file_entry)]
    assert all(isinstance(e, file_entry | amendment) for e in items)
    assert [e.identity for e in entries] == \
        [e.identity for e in again if isinstance(e, file_entry)], "enumeration not deterministic"
    identities = [e.identity for e in entries]
    assert all(isinstance(i, str) and i for i in identities)
    assert len(set(identities)) == len(identities), "identities are not unique"
    for e in entries:
        assert isinstance(e.path, bytes) and e.path
        shown = reg.display(e.path)
        assert isinstance(shown, str) and shown.isprintable(), (e.path, shown)
        json.dumps(e.locator)
    known = {e.identity for e in entries}
    for item in items:
        if isinstance(item, amendment):
            assert item.identity in known
    readable = {e.path: e for e in entries if e.readable}
    assert set(sample.expected) <= set(readable), "files missing from the enumeration"

    worker = reg.open_spec(spec)  # the worker side: a source rebuilt from spec()
    try:
        for path, digest in sample.expected.items():
            f = worker.open_entry(readable[path])
            h = hashlib.sha256()
            n = 0
            try:
                while chunk := f.read(1 << 16):
                    h.update(chunk)
                    n += len(chunk)
                assert not list(getattr(f, "bad_ranges", []))
            finally:
                f.close()
            assert h.hexdigest() == digest, path
            assert readable[path].size == n, path
    finally:
        worker.close()


@pytest.mark.parametrize("name", sorted(reg.sources()))
def test_enumeration_gives_up_after_enumeration_timeout(
        name: str, samples: dict[str, Sample], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 #6: every source's enumeration gives up on a child that makes no progress
    for ``enumeration_timeout`` seconds (``scan --timeout``), records why as an error entry
    and ends (here the walk hangs everywhere: TRIAGE_INJECT_FAULT=enumerate:hang:*)."""
    file_entry, _amendment = reg.entry_types()
    monkeypatch.setenv("TRIAGE_INJECT_FAULT", "enumerate:hang:*")
    source = reg.open_source(samples[name].path)
    try:
        source.enumeration_timeout = 1.5
        items = list(source.entries())
    finally:
        source.close()
    errors = [e for e in items if isinstance(e, file_entry) and e.preset_status
              and e.preset_status[0] == "error"]
    assert errors, items
    assert all("hung (no progress for 1.5 s; child killed)" in e.preset_status[2]
               for e in errors), [e.preset_status for e in errors]
