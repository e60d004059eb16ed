"""Concatenated gzip members, bzip2 and xz streams (issue 11, defect 1).

The decompressed member must be byte for byte what ``gzip -dc`` / ``bzip2 -dc`` /
``xz -dc`` write, whatever follows the last stream (zeros, garbage, a damaged stream), and
expansion must stop at the byte caps however many members a file holds. The real tools are
the oracle; the step sizes of the decoder are shrunk in some tests so that every boundary
(a member ending inside a read, output filling a step exactly) is crossed many times.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import random
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.members import builders as b
from tests.support import rows
from triage.members import Budget, Found, Limits, expand, walk
from triage.members import base as cbase

JPEG = b.jpeg(3, size=(40, 30))


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ)


COMPRESS: dict[str, Callable[[bytes], bytes]] = {"gzip": _gz, "bzip2": bz2.compress,
                                                 "xz": _xz}
#: Exit codes of "decompression OK" (gzip exits 2 after "trailing garbage ignored").
TOOL_OK = {"gzip": (0, 2), "bzip2": (0,), "xz": (0,)}


#: Cases every tool accepts without an error (xz refuses garbage and zero padding of 10
#: bytes, gzip a lone magic byte: the bytes they wrote before failing are still the oracle).
CLEAN = ("two", "many", "empty members", "zeros x4 after")


def _tool(kind: str, data: bytes, tmp: Path) -> tuple[int, bytes]:
    exe = shutil.which(kind)
    if exe is None:
        pytest.fail(f"{kind} not found: apt-get install gzip bzip2 xz-utils")
    src = tmp / f"in.{kind}"
    src.write_bytes(data)
    proc = subprocess.run([exe, "-dc", str(src)], capture_output=True, check=False)
    return proc.returncode, proc.stdout


def _expand(kind: str, data: bytes, limits: Limits | None = None) -> cbase.Member:
    limits = limits or Limits()
    (m,) = list(expand(kind, data, limits, Budget(limits), name=b"x"))
    return m


def _log(size: int) -> bytes:
    """A deterministic sshd log of about ``size`` bytes that compresses about 19:1, as real
    logs do: one read of compressed input then gives more than one step of output, which
    is where the decoder used to lose track of the bytes after a member."""
    rng = random.Random(11)
    lines, n, t = [], 0, 0
    while n < size:
        t += rng.randint(0, 3)
        line = (f"2026-01-01T{t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z host1 "
                f"sshd[{1000 + t % 7}]: Accepted publickey for user{rng.randint(1, 4)} "
                f"from 10.0.0.{rng.randint(1, 4)}\n").encode()
        lines.append(line)
        n += len(line)
    return b"".join(lines)


def _pieces(kind: str) -> dict[str, tuple[bytes, bool]]:
    """name -> (file bytes, whether non-zero bytes follow the last stream)."""
    c = COMPRESS[kind]
    a, bb = c(b"hello\n" * 1000), c(bytes(range(256)) * 40)
    rng = random.Random(kind)
    many = b"".join(c(rng.randbytes(rng.randint(0, 5000))) for _ in range(40))
    magic = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}[kind]
    return {
        "two": (a + bb, False),
        "many": (many, False),
        "empty members": (c(b"") + a + c(b"") + c(b""), False),
        "zeros after": (a + bytes(10), False),
        "zeros x4 after": (a + bytes(8), False),
        "garbage after": (a + b"garbage", True),
        "zeros then garbage": (a + bytes(12) + b"x", True),
        "zeros x4 then member": (a + bytes(4) + bb, kind != "xz"),
        "zeros x3 then member": (a + bytes(3) + bb, True),
        "half a magic after": (a + magic[:1], True),
        "garbage then member": (a + b"junk" + bb, True),
    }


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_joined_streams_match_the_command_line_tool(kind: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case twice: with the real step sizes, and with tiny ones (7 bytes of output
    and 3 bytes of input per step) so that members end at every possible place."""
    for small in (False, True):
        if small:
            monkeypatch.setattr(cbase, "STREAM_CHUNK", 7)
            monkeypatch.setattr(cbase, "READ_CHUNK", 3)
        for name, (data, trailing) in _pieces(kind).items():
            rc, out = _tool(kind, data, tmp_path)
            m = _expand(kind, data)
            assert m.data is not None, (name, m.reason)
            assert m.data == out, (name, len(m.data), len(out))
            assert ("trailing-data" in m.flags) == trailing, (name, m.flags)
            if name in CLEAN:
                assert rc in TOOL_OK[kind], (name, rc)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_a_damaged_later_stream_makes_the_member_corrupt(kind: str, tmp_path: Path) -> None:
    """A stream that starts with the magic but is cut short or damaged: the tool fails
    (non-zero, no "decompression OK"), and the member has no data and says why."""
    c = COMPRESS[kind]
    a, second = c(b"first\n" * 100), c(b"second\n" * 100)
    damaged = bytearray(second)
    damaged[len(damaged) // 2] ^= 0xFF
    for data in (a + second[:len(second) - 5], a + bytes(damaged)):
        rc, _ = _tool(kind, data, tmp_path)
        assert rc not in TOOL_OK[kind]
        m = _expand(kind, data)
        assert m.data is None and "corrupt" in m.flags, m
        assert m.reason and m.reason.startswith(f"corrupt {kind} stream")


def test_log_and_jpeg_members_are_exact_and_the_jpeg_is_at_its_true_offset(
        tmp_path: Path) -> None:
    """The attack: gzip(10.5 MB log) + gzip(JPEG). The member is exactly log + JPEG (as
    ``gzip -dc`` says) and the only carved picture is the JPEG at offset len(log)."""
    log = _log(10_500_000)
    data = _gz(log) + _gz(JPEG)
    _rc, out = _tool("gzip", data, tmp_path)
    assert out == log + JPEG
    events = list(walk(data, Limits(), name=b"mail.log.gz"))
    member = events[0]
    assert isinstance(member, Found) and member.member.data is not None
    assert member.member.size == len(out)
    assert hashlib.sha256(member.member.data).digest() == hashlib.sha256(out).digest()
    carved = [e for e in events[1:] if isinstance(e, Found)]
    assert [e.path for e in carved] == [(b"mail.log", f"@{len(log)}.jpg".encode())]
    assert carved[0].member.data == JPEG


def test_many_members_stop_at_the_caps_without_growing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """400 x gzip(1 MiB of zeros) under a 16 MiB member cap: the limit is named, and the
    compressed input is never held more than once (it was doubled at every member)."""
    one = _gz(bytes(1 << 20))
    data = one * 400
    seen: list[int] = []
    real = cbase.ZlibStream.decompress

    def spy(self: cbase.ZlibStream, chunk: bytes, max_length: int = -1) -> bytes:
        seen.append(len(chunk))
        return real(self, chunk, max_length)

    monkeypatch.setattr(cbase.ZlibStream, "decompress", spy)
    limits = Limits(max_member_bytes=16 << 20)
    m = _expand("gzip", data, limits)
    assert m.data is None and "limit:member-bytes" in m.flags
    assert m.reason == (f"limit: member decompressed {(16 << 20) + 1} bytes > {16 << 20} "
                        "(max_member_bytes)")
    assert max(seen) <= cbase.READ_CHUNK + len(one)
    limits = Limits(max_member_bytes=1 << 30, max_ratio=50)
    m = _expand("gzip", data, limits)
    assert m.data is None and "limit:ratio" in m.flags


def _limit_memory() -> None:
    cap = 1200 << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def test_the_exponential_gzip_is_bounded_in_a_real_scan(tmp_path: Path) -> None:
    """The attack file, 400 x gzip(10 MiB of zeros) (4 MB), scanned under a 1.2 GB
    address-space cap for the whole process tree: the member is recorded as a coverage gap
    (incomplete) at the member byte cap (128 MiB here). Before the fix the worker grew the
    input exponentially and ended with "corrupt gzip: MemoryError" and no member at all."""
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "bomb.gz").write_bytes(_gz(bytes(10 << 20)) * 400)
    case = tmp_path / "case"
    proc = subprocess.run([sys.executable, "-m", "triage", "scan", str(ev), "--case",
                           str(case), "--no-match", "--json", "-q", "--jobs", "1",
                           "--memory-limit", "1100", "--container-max-mb", "128"],
                          capture_output=True, text=True, preexec_fn=_limit_memory,
                          timeout=600, check=False)
    assert proc.returncode in (0, 8), proc.stderr  # 8 (coverage gap) once the scan uses it
    assert "Traceback" not in proc.stderr
    got = {r["display_path"]: r for r in rows(case, "SELECT display_path, status, "
                                                    "status_reason FROM files")}
    member = got["bomb.gz!bomb"]
    assert member["status"] == "incomplete"
    assert member["status_reason"] == (f"limit: member decompressed {(128 << 20) + 1} bytes "
                                       f"> {128 << 20} (max_member_bytes)")
    assert got["bomb.gz"]["status"] == "incomplete"  # and so is the file above it
    assert got["bomb.gz"]["status_reason"].endswith(member["status_reason"])
    assert not rows(case, "SELECT message FROM errors WHERE message LIKE '%MemoryError%'")
