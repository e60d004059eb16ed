"""ReadAhead (issue 13): small reads of a disk image served from read-ahead windows give
exactly the container's bytes and errors, with far fewer reads where they go forward."""

from __future__ import annotations

import random

import pytest

from triage.sources.disk_containers import ReadAhead

SIZE = 9 * (1 << 20) + 12345  # not a multiple of the window: the last one is short


class Media:
    """A container stand-in: deterministic bytes, a bad range, a log of its reads."""

    def __init__(self, size: int = SIZE, bad: tuple[int, int] | None = None) -> None:
        self.size = size
        self.data = random.Random(7).randbytes(size)
        self.bad = bad
        self.reads: list[tuple[int, int]] = []

    def read(self, offset: int, size: int) -> bytes:
        self.reads.append((offset, size))
        if offset >= self.size or size <= 0:
            return b""
        if self.bad and offset < self.bad[1] and offset + size > self.bad[0]:
            raise OSError(f"unreadable at {offset}+{size}")
        return self.data[offset:offset + size]


def _outcome(read, offset: int, size: int) -> bytes | str:
    try:
        return read(offset, size)
    except OSError as e:
        return f"OSError: {e}"


def test_same_bytes_and_errors_as_the_container() -> None:
    bad = (5 * (1 << 20) + 1000, 5 * (1 << 20) + 3000)
    direct, media = Media(bad=bad), Media(bad=bad)
    ahead = ReadAhead(media.read, media.size, max_window=1 << 20, budget=2 << 20, slots=4)
    rnd = random.Random(1)
    requests = []
    pos = 0
    while pos < SIZE + 5000:  # a forward sweep, with gaps, past the end of the media
        n = rnd.choice((1, 100, 4096, 65536, 70000))
        requests.append((pos, n))
        pos += n + rnd.choice((0, 0, 512, 20000, 300000))
    requests += [(rnd.randrange(SIZE + 100), rnd.choice((1, 512, 65536, 1 << 20)))
                 for _ in range(3000)]  # and anywhere
    requests += [(bad[0] - 10, 20), (bad[1] - 1, 2), (bad[0] + 1, 1), (bad[1], 100)]
    for offset, n in requests:
        assert _outcome(ahead.read, offset, n) == _outcome(direct.read, offset, n), (offset, n)


def test_forward_small_reads_take_few_container_reads() -> None:
    media = Media()
    ahead = ReadAhead(media.read, media.size, max_window=1 << 20)
    for offset in range(0, SIZE, 65536):  # libtsk's cache pieces, one after the other
        assert ahead.read(offset, 65536) == media.data[offset:offset + 65536]
    pieces = -(-SIZE // 65536)
    # 64 KiB, 128 KiB, ... then 1 MiB windows: about a tenth of the reads.
    assert len(media.reads) <= pieces // 8, len(media.reads)
    assert max(n for _, n in media.reads) == 1 << 20


def test_scattered_reads_are_not_read_ahead() -> None:
    media = Media()
    ahead = ReadAhead(media.read, media.size, max_window=4 << 20)
    for offset in range(100, SIZE - 4096, 1 << 20):  # 1 MiB apart: no stream
        ahead.read(offset, 4096)
    assert max(n for _, n in media.reads) == 65536


def test_a_stream_outlives_one_off_reads_and_memory_is_bounded() -> None:
    media = Media()
    ahead = ReadAhead(media.read, media.size, max_window=1 << 20, budget=2 << 20, slots=8)
    for offset in range(0, 4 << 20, 65536):  # grow a stream over the first 4 MiB
        ahead.read(offset, 65536)
    before = len(media.reads)
    ahead.read(7 << 20, 100)  # one-off reads elsewhere...
    ahead.read(8 << 20, 100)
    ahead.read((4 << 20) - 10, 10)  # ...the stream's last window is still there
    assert len(media.reads) == before + 2
    for offset in range(0, SIZE - 100, 200_000):
        ahead.read(offset, 100)
        held = sum(len(w[1]) for w in ahead._windows)
        assert held <= 2 << 20 and len(ahead._windows) <= 8


@pytest.mark.parametrize("size", [0, -1])
def test_empty_requests_go_to_the_container(size: int) -> None:
    media = Media()
    assert ReadAhead(media.read, media.size).read(10, size) == b""
    assert media.reads == [(10, size)]
