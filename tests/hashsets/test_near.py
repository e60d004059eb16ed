"""Multi-index near matching against the brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashsets.matching import NearIndex, Plan, brute_force, hex_to_words, words_to_hex


def _flip(rng: np.random.Generator, row: np.ndarray, bits: int, n: int,
          pad: int = 0) -> np.ndarray:
    """``row`` with ``n`` of its ``bits`` value bits flipped (after ``pad`` zero bits)."""
    out = row.copy()
    for b in rng.choice(bits, size=n, replace=False) + pad:
        out[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return out


def _same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("bits", "threshold"), [(256, 31), (64, 10), (64, 0), (256, 8),
                                                 (64, 20)])
def test_near_index_equals_brute_force(bits: int, threshold: int) -> None:
    rng = np.random.default_rng(bits * 100 + threshold)
    known = rng.integers(0, 2**64, size=(5000, bits // 64), dtype=np.uint64)
    queries = []
    for i in range(200):  # around the threshold: inside, on and just outside it
        n = int(rng.integers(max(0, threshold - 3), threshold + 3))
        queries.append(_flip(rng, known[i * 7], bits, min(n, bits)))
    q = np.array(queries, dtype=np.uint64)
    got = NearIndex(known, bits).search(q, threshold)
    want = brute_force(q, known, threshold)
    assert len(want[0]) >= 40  # the test exercises real matches
    assert _same(got, want)
    assert got[2].max() <= threshold


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
       st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=10),
       st.integers(0, 24))
def test_near_index_property_64(known: list[int], queries: list[int], t: int) -> None:
    k = np.array(known, dtype=np.uint64)[:, None]
    # Make some queries close to known values so matches occur.
    q = np.array([x ^ (known[i % len(known)] & 0xFF) for i, x in enumerate(queries)] + known[:3],
                 dtype=np.uint64)[:, None]
    assert _same(NearIndex(k, 64).search(q, t), brute_force(q, k, t))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=20),
       st.integers(0, 64))
def test_near_index_property_256(known: list[bytes], t: int) -> None:
    hexes = [b.hex() for b in known]
    k = hex_to_words(hexes, 256)
    q = k.copy()
    q[:, 3] ^= np.uint64(0xF0F)  # 8 bits away from each known
    assert words_to_hex(k) == hexes
    assert _same(NearIndex(k, 256).search(q, t), brute_force(q, k, t))


def test_plan_satisfies_pigeonhole() -> None:
    for bits, t in ((256, 31), (64, 10), (64, 3), (256, 0)):
        plan = Plan.make(bits, t, 10_000, 10_000_000)
        assert sum(length for _, length, _ in plan.chunks) == bits
        assert sum(r + 1 for _, _, r in plan.chunks) >= t + 1


def test_empty_inputs() -> None:
    k = np.zeros((0, 1), dtype=np.uint64)
    q = np.ones((3, 1), dtype=np.uint64)
    assert all(len(x) == 0 for x in NearIndex(k, 64).search(q, 10))


def test_near_index_threads_slices_and_full_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several threads over many small slices of a batch, and output buffers that fill up
    mid-query (a query near thousands of duplicates): still the brute-force result."""
    from hashsets import matching

    monkeypatch.setattr(matching, "QUERY_SLICE", 7)
    rng = np.random.default_rng(5)
    known = rng.integers(0, 2**64, size=(3000, 4), dtype=np.uint64)
    known[1000:] = known[0]  # 1,500 copies of one value (hot buckets) ...
    known[2500:] ^= rng.integers(0, 2, size=(500, 4), dtype=np.uint64)  # ... and 500 near
    q = np.array([_flip(rng, known[i * 40], 256, 20 + i % 20) for i in range(60)],
                 dtype=np.uint64)
    q[::9] = known[0]
    index = NearIndex(known, 256, threads=2)
    got = index.search(q, 31)
    assert _same(got, brute_force(q, known, 31)) and len(got[0]) > 5000
    # the tables of a threshold are kept; another threshold gets its own
    assert _same(index.search(q, 8), brute_force(q, known, 8))
    assert _same(index.search(q[:5], 31), brute_force(q[:5], known, 31))


def test_near_index_clustered_values() -> None:
    """Values that share most chunks (near-duplicate families, biased bits): buckets far
    larger than uniform values give, and pairs found through several chunks, each once."""
    rng = np.random.default_rng(11)
    centres = rng.integers(0, 2**64, size=(40, 1), dtype=np.uint64)
    noise = np.zeros((4000, 1), dtype=np.uint64)
    for b in range(64):
        noise[:, 0] |= (rng.random(4000) < 0.04).astype(np.uint64) << np.uint64(b)
    known = centres[rng.integers(0, 40, size=4000)] ^ noise
    queries = centres[rng.integers(0, 40, size=300)] ^ (noise[:300] << np.uint64(1))
    got = NearIndex(known, 64).search(queries, 10)
    assert _same(got, brute_force(queries, known, 10)) and len(got[0]) > 10_000


def _random_values(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """``n`` random ``bits``-bit values as right-aligned words (high padding bits zero)."""
    ints = [int.from_bytes(rng.bytes(-(-bits // 8)), "big") >> (-bits % 8) for _ in range(n)]
    return hex_to_words([f"{v:0{-(-bits // 4)}x}" for v in ints], bits)


@pytest.mark.parametrize(("bits", "threshold"), [(40, 6), (100, 12), (13, 3), (200, 25),
                                                 (8, 2), (72, 9)])
def test_near_index_equals_brute_force_any_width(bits: int, threshold: int) -> None:
    rng = np.random.default_rng(bits * 1000 + threshold)
    known = _random_values(rng, 3000, bits)
    pad = known.shape[1] * 64 - bits
    queries = known[:150].copy()
    for row in queries:  # flip bits inside the value only, around the threshold
        for b in rng.choice(bits, size=min(bits, int(rng.integers(0, threshold + 3))),
                            replace=False):
            g = pad + int(b)
            row[g // 64] ^= np.uint64(1) << np.uint64(63 - g % 64)
    got = NearIndex(known, bits).search(queries, threshold)
    want = brute_force(queries, known, threshold)
    assert len(want[0]) >= 100
    assert _same(got, want)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 300), st.data())
def test_near_index_property_any_width(bits: int, data: st.DataObject) -> None:
    values = st.integers(0, 2 ** bits - 1)
    known = data.draw(st.lists(values, min_size=1, max_size=30))
    t = data.draw(st.integers(0, min(bits, 40)))
    flips = data.draw(st.lists(values, min_size=1, max_size=10))
    digits = -(-bits // 4)
    queries = [k ^ (f & ((1 << min(bits, 6)) - 1)) for k, f in zip(known, flips)] + flips
    k = hex_to_words([f"{v:0{digits}x}" for v in known], bits)
    q = hex_to_words([f"{v:0{digits}x}" for v in queries], bits)
    assert words_to_hex(k, bits) == [f"{v:0{digits}x}" for v in known]
    assert _same(NearIndex(k, bits).search(q, t), brute_force(q, k, t))


def test_near_index_refuses_wrong_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(n, 1\)"):
        NearIndex(np.zeros((3, 2), dtype=np.uint64), 40)
    with pytest.raises(ValueError):
        NearIndex(np.zeros((3, 1), dtype=np.uint64), 0)


@pytest.mark.parametrize("sparse", [0.0, float("inf")])
@pytest.mark.parametrize(("bits", "threshold"), [(256, 31), (64, 10), (100, 12)])
def test_near_index_with_and_without_the_empty_bucket_bitmap(
        monkeypatch: pytest.MonkeyPatch, sparse: float, bits: int, threshold: int) -> None:
    """The bitmap of non-empty buckets (matching.SPARSE_BUCKET) only skips probes of empty
    buckets: the same pairs with it on every table and with it off, on uniform values and
    on a dense cluster; and its bits are exactly the non-empty buckets."""
    import hashsets.matching as matching

    monkeypatch.setattr(matching, "SPARSE_BUCKET", sparse)
    rng = np.random.default_rng(bits + threshold)
    pad = -bits % 64
    known = _random_values(rng, 3000, bits)
    for i in range(1, 500):  # a dense family around known[0]
        known[i] = _flip(rng, known[0], bits, int(rng.integers(0, threshold)), pad)
    queries = np.array([_flip(rng, known[i * 40], bits, int(rng.integers(
        max(0, threshold - 3), threshold + 3)), pad) for i in range(75)], dtype=np.uint64)
    index = NearIndex(known, bits)
    got = index.search(queries, threshold)
    assert _same(got, brute_force(queries, known, threshold)) and len(got[0]) > 60
    t = index._tables[threshold]
    if sparse == 0.0:
        assert len(t.nonempty) == 0
        return
    bits_set = np.unpackbits(t.nonempty.view(np.uint8), bitorder="little")[:len(t.offsets)]
    off = t.offsets.astype(np.int64)
    want = np.zeros(len(off), dtype=np.uint8)
    for s in range(len(t.table_start) - 1):
        a, b = int(t.table_start[s]), int(t.table_start[s + 1])
        want[a:b - 1] = off[a + 1:b] > off[a:b - 1]
    assert np.array_equal(bits_set, want) and want.sum() > 0
