"""Contract of every archive / document kind whose members triage lists
(``triage.members``), parametrised over the registered kinds: a new kind fails until it
has a sample here.

Every kind is detected from its sample's content and no other sample is taken for it;
``expand`` lists the sample's members in a stable order, each with its bytes, and the
(name, bytes) set equals what an independent tool gives: the archive is made by zip(1),
tar(1), gzip(1), bzip2(1) or xz(1) from files written here and read back by the same tool
(``unzip -p``, ``tar -xO``, ``TOOL -d``); PDF images are extracted by poppler's
``pdfimages -all`` and attachments by ``pdfdetach``; OLE2 streams are known by
construction (tests/members/builders.py writes the compound file by hand from [MS-CFB],
independently of olefile, which triage reads it with); 7z members by construction (py7zr
writes it; there is no 7z tool on the test machines, and ``7z`` is used when present).
RAR is recognised only to be refused with the reason "unsupported".
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import py7zr
import pytest

from tests.contracts import registries as reg
from tests.members import builders as b

#: Member content: text, binary with every byte value, and an empty file.
CONTENT = {b"notes.txt": b"first line\nsecond line\n",
           b"dir/data.bin": bytes(range(256)) * 33,
           b"dir/sub/empty": b""}


@dataclass(frozen=True)
class Sample:
    data: bytes
    name: bytes  # the container's own file name (names a gzip/bzip2/xz stream)
    expected: dict[bytes, bytes] | None  # None: the kind is refused


def _tree(tmp: Path) -> Path:
    root = tmp / "tree"
    for rel, data in CONTENT.items():
        p = root / rel.decode()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install it (scripts/bootstrap.sh)")
    return path


def _run(cmd: list[str], cwd: Path) -> bytes:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True).stdout


def _zip(tmp: Path) -> Sample:
    root = _tree(tmp)
    names = [n.decode() for n in CONTENT]
    _run([_tool("zip"), "-X", "-D", "-q", str(tmp / "s.zip"), *names], root)
    data = (tmp / "s.zip").read_bytes()
    listed = _run([_tool("unzip"), "-Z1", str(tmp / "s.zip")], tmp).decode().split()
    expected = {n.encode(): _run([_tool("unzip"), "-p", str(tmp / "s.zip"), n], tmp)
                for n in listed}
    return Sample(data, b"s.zip", expected)


def _tar(tmp: Path) -> Sample:
    root = _tree(tmp)
    names = [n.decode() for n in CONTENT]
    _run([_tool("tar"), "--format=gnu", "-cf", str(tmp / "s.tar"), *names], root)
    listed = _run([_tool("tar"), "-tf", str(tmp / "s.tar")], tmp).decode().splitlines()
    expected = {n.encode(): _run([_tool("tar"), "-xOf", str(tmp / "s.tar"), n], tmp)
                for n in listed}
    return Sample((tmp / "s.tar").read_bytes(), b"s.tar", expected)


def _compressed(tool: str, suffix: str, keep_name: bool) -> Callable[[Path], Sample]:
    def build(tmp: Path) -> Sample:
        root = _tree(tmp)
        src = root / "dir" / "data.bin"
        packed = _run([_tool(tool), "-c", str(src)], root)
        name = f"packed{suffix}"
        scratch = tmp / "scratch"
        scratch.mkdir()
        (scratch / name).write_bytes(packed)
        _run([_tool(tool), "-d", *(["-N"] if keep_name else []), name], scratch)
        (out,) = sorted(scratch.iterdir())  # the tool's own choice of name
        return Sample(packed, name.encode(), {out.name.encode(): out.read_bytes()})
    return build


def _7z(tmp: Path) -> Sample:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        for name, data in CONTENT.items():
            z.writestr(data, name.decode())
    data = out.getvalue()
    expected = dict(CONTENT)
    seven = shutil.which("7z") or shutil.which("7za")
    if seven:
        (tmp / "s.7z").write_bytes(data)
        for name in expected:
            assert _run([seven, "x", "-so", str(tmp / "s.7z"), name.decode()], tmp) == \
                expected[name]
    return Sample(data, b"s.7z", expected)


def _ole2(tmp: Path) -> Sample:
    streams = [("Alpha", CONTENT[b"notes.txt"] * 300), ("Data", CONTENT[b"dir/data.bin"])]
    data = b.ole2(streams)
    # builders.ole2 pads every stream with zeros to 4,096 bytes (no mini stream).
    expected = {n.encode(): d + bytes(max(0, 4096 - len(d))) for n, d in streams}
    return Sample(data, b"s.doc", expected)


def _pdf(tmp: Path) -> Sample:
    import pikepdf

    jpeg = b.jpeg(seed=3)
    base = b.pdf_with_images([(jpeg, "/DCTDecode")])
    with pikepdf.open(io.BytesIO(base)) as pdf:
        pdf.attachments["notes.txt"] = pikepdf.AttachedFileSpec(
            pdf, CONTENT[b"notes.txt"], filename="notes.txt")
        out = io.BytesIO()
        pdf.save(out, deterministic_id=True)
    data = out.getvalue()
    (tmp / "s.pdf").write_bytes(data)
    img_dir = tmp / "images"
    img_dir.mkdir()
    _run([_tool("pdfimages"), "-all", str(tmp / "s.pdf"), str(img_dir / "img")], tmp)
    images = sorted(img_dir.iterdir())
    att_dir = tmp / "attachments"
    att_dir.mkdir()
    _run([_tool("pdfdetach"), "-saveall", "-o", str(att_dir), str(tmp / "s.pdf")], tmp)
    # pdfimages names its files by order; triage names obj<num>-<gen>.jpg, with the
    # object number and generation pdfimages -list prints (columns "object" and "ID").
    assert [p.suffix for p in images] == [".jpg"]
    listing = _run([_tool("pdfimages"), "-list", str(tmp / "s.pdf")], tmp).decode()
    header, _, row = listing.splitlines()[:3]
    cols = header.split()
    obj, gen = (row.split()[cols.index("object")], row.split()[cols.index("ID")])
    expected = {f"obj{obj}-{gen}.jpg".encode(): images[0].read_bytes()}
    for p in sorted(att_dir.iterdir()):
        expected[b"attachments/" + p.name.encode()] = p.read_bytes()
    return Sample(data, b"s.pdf", expected)


def _rar(tmp: Path) -> Sample:
    # RAR 5.0 signature (RARLAB technote) and a few bytes: recognised, then refused.
    return Sample(b"Rar!\x1a\x07\x01\x00" + bytes(64), b"s.rar", None)


def _disk(tmp: Path) -> Sample:
    """An ext2 file system built by mke2fs from the tree; bytes per file from debugfs."""
    root = _tree(tmp)
    img = tmp / "s.img"
    _run([_tool("mkfs.ext4"), "-q", "-F", "-t", "ext2", "-b", "1024", "-d", str(root),
          "-E", "root_owner=0:0", str(img), "1M"], tmp)
    expected = {n: _run([_tool("debugfs"), "-R", f"cat /{n.decode()}", str(img)], tmp)
                for n in CONTENT}
    return Sample(img.read_bytes(), b"s.img", expected)


#: One sample per kind.
SAMPLES: dict[str, Callable[[Path], Sample]] = {
    "zip": _zip,
    "tar": _tar,
    "gzip": _compressed("gzip", ".gz", keep_name=True),
    "bzip2": _compressed("bzip2", ".bz2", keep_name=False),
    "xz": _compressed("xz", ".xz", keep_name=False),
    "7z": _7z,
    "ole2": _ole2,
    "pdf": _pdf,
    "rar": _rar,
    "disk": _disk,
}


def test_every_member_kind_has_a_sample() -> None:
    assert set(reg.member_kinds()) == set(SAMPLES), \
        "add a sample for each new archive/document kind to SAMPLES"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Sample]:
    out = {}
    for kind, build in SAMPLES.items():
        tmp = tmp_path_factory.mktemp(kind)
        out[kind] = build(tmp)
    return out


@pytest.mark.parametrize("kind", sorted(reg.member_kinds()))
def test_detects_its_own_sample_and_no_other(kind: str, samples: dict[str, Sample]) -> None:
    assert reg.member_kind(samples[kind].data) == kind
    for other, sample in samples.items():
        if other != kind:
            assert reg.member_kind(sample.data) != kind, other


@pytest.mark.parametrize("kind", sorted(reg.member_kinds()))
def test_lists_members_with_the_independent_tools_bytes(kind: str,
                                                        samples: dict[str, Sample]) -> None:
    sample = samples[kind]
    if sample.expected is None:
        with pytest.raises(reg.member_error()) as info:
            list(reg.expand_members(kind, sample.data, sample.name))
        assert "unsupported" in info.value.flags  # type: ignore[attr-defined]
        return
    members = list(reg.expand_members(kind, sample.data, sample.name))
    again = list(reg.expand_members(kind, sample.data, sample.name))
    assert [m.name for m in members] == [m.name for m in again], "order not deterministic"
    for m in members:
        assert isinstance(m.name, bytes) and m.name
        assert m.data is not None, (m.name, m.reason)
        assert m.size == len(m.data)
    got = {m.name: hashlib.sha256(m.data).hexdigest() for m in members}
    assert len(got) == len(members), "duplicate member names"
    assert got == {n: hashlib.sha256(d).hexdigest() for n, d in sample.expected.items()}


def test_expansion_writes_nothing(samples: dict[str, Sample], tmp_path: Path) -> None:
    """Members are data: expanding every sample leaves the working directory untouched."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for kind, sample in samples.items():
            try:
                list(reg.expand_members(kind, sample.data, sample.name))
            except reg.member_error():
                pass
    finally:
        os.chdir(cwd)
    assert list(tmp_path.iterdir()) == []
