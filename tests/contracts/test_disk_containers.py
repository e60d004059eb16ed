"""Contract of every disk-image container kind (``triage.sources.disk_containers``), parametrised
over the kinds detection can answer: a new kind fails until it has a sample here.

The samples are the shared ext2 file system in its seven containers (testdata/MANIFEST.md;
the same set tests/images and tests/test_scan_images.py use) and, for the refused logical
evidence file, a header built here. Every kind detects its own sample and not the others';
every readable kind gives exactly the bytes of the raw reference, which gzip(1) decompressed
(an independent tool; its MD5 is the one the manifest and both E01 sets record), read
whole and at unaligned offsets; ``describe()`` is JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.contracts import registries as reg
from tests.contracts.conftest import DFVFS, EXT2_MD5

#: libewf's "Logical Evidence File" signature (EWF-L01), as in the EWF format documentation.
LEF_SIGNATURE = b"LVF\x09\x0d\x0a\xff\x00"


def _lef(tmp: Path, raw: Path) -> Path:
    """A file that starts like an L01 logical evidence file (built here)."""
    p = tmp / "logical.L01"
    p.write_bytes(LEF_SIGNATURE + bytes(4096))
    return p


def _shared(name: str) -> Callable[[Path, Path], Path]:
    return lambda tmp, raw: DFVFS / name


#: kind -> [(label, sample builder)]; the builder gets a temp dir and the raw reference.
SAMPLES: dict[str, list[tuple[str, Callable[[Path, Path], Path]]]] = {
    "raw": [("ext2.raw", lambda tmp, raw: raw)],
    "ewf": [("ext2.E01", _shared("ext2.E01")), ("ext2.split.E01", _shared("ext2.split.E01"))],
    "splitraw": [("ext2.splitraw.000", _shared("ext2.splitraw.000"))],
    "vmdk": [("ext2.vmdk", _shared("ext2.vmdk"))],
    "vhdi": [("ext2.vhd", _shared("ext2.vhd"))],
    "qcow": [("ext2.qcow2", _shared("ext2.qcow2"))],
    "lef": [("logical.L01", _lef)],
}
def _vhd_current_size(path: Path) -> int:
    """The disk size a VHD declares: "Current Size" at offset 48 of the 512-byte footer at
    the end of the file (Microsoft VHD Image Format Specification, Hard Disk Footer)."""
    with open(path, "rb") as f:
        f.seek(-512, 2)
        footer = f.read(512)
    assert footer.startswith(b"conectix")
    return int.from_bytes(footer[48:56], "big")


#: Media sizes that differ from the raw reference, from each format's own header: the
#: tool that made ext2.vhd rounded the disk up to a CHS geometry; the extra bytes are zero.
MEDIA_SIZE: dict[str, Callable[[Path], int]] = {"ext2.vhd": _vhd_current_size}

#: Kinds recognised only to be refused with a clear error (no media data to read).
REFUSED = {"lef": "logical evidence file"}

CASES = [(kind, label) for kind in sorted(SAMPLES) for label, _ in SAMPLES[kind]]


def test_every_disk_container_has_a_sample() -> None:
    assert set(reg.disk_container_kinds()) == set(SAMPLES), \
        "add a sample for each new container kind to SAMPLES"


@pytest.fixture
def built(tmp_path: Path, ext2_raw: Path) -> dict[str, Path]:
    return {label: build(tmp_path, ext2_raw) for kind in SAMPLES for label, build in
            SAMPLES[kind]}


@pytest.mark.parametrize(("kind", "label"), CASES)
def test_detects_its_own_sample_and_no_other(kind: str, label: str,
                                             built: dict[str, Path]) -> None:
    assert reg.detect_disk_container(built[label]) == kind
    for other_kind in SAMPLES:
        if other_kind == kind:
            continue
        for other_label, _ in SAMPLES[other_kind]:
            assert reg.detect_disk_container(built[other_label]) != kind, other_label


@pytest.mark.parametrize(("kind", "label"), CASES)
def test_reads_the_raw_reference_bytes(kind: str, label: str, built: dict[str, Path],
                                       ext2_raw: Path) -> None:
    if kind in REFUSED:
        with pytest.raises(reg.evidence_error(), match=REFUSED[kind]):
            reg.open_disk_container(built[label])
        return
    raw = ext2_raw.read_bytes()
    size = MEDIA_SIZE[label](built[label]) if label in MEDIA_SIZE else len(raw)
    assert size >= len(raw)
    reference = raw + bytes(size - len(raw))
    container = reg.open_disk_container(built[label])
    try:
        assert container.size == len(reference)
        info = container.describe()
        assert json.loads(json.dumps(info)) == info
        md5 = hashlib.md5()
        offset = 0
        while offset < container.size:
            chunk = container.read(offset, 1 << 20)
            assert chunk, f"short read at {offset}"
            md5.update(chunk)
            offset += len(chunk)
        assert md5.hexdigest() == hashlib.md5(reference).hexdigest()
        if size == len(raw):
            assert md5.hexdigest() == EXT2_MD5
        for off, n in ((0, 1), (511, 2), (1023, 4097), (65_537, 70_000),
                       (len(reference) - 3, 3)):
            assert container.read(off, n) == reference[off:off + n], (off, n)
        assert container.read(len(reference) - 3, 10) == reference[-3:]  # short at the end
    finally:
        container.close()
