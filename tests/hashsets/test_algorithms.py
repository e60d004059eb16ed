"""Contract suite run for every registered algorithm."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashsets.algorithms import ALGORITHMS, EMPTY_DIGESTS, get


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_algorithm_contract(name: str) -> None:
    alg = get(name)
    assert alg.name == name and get(name.upper()) is alg
    assert alg.bits % 8 == 0 and alg.kind in ("cryptographic", "perceptual", "external")
    value = "ab" * (alg.hex_length // 2)
    assert alg.normalize(value.upper()) == value
    assert alg.normalize(f"  {value}\r\n") == value
    for bad in (value[:-1], value + "0", "g" + value[1:], ""):
        with pytest.raises(ValueError, match=name):
            alg.normalize(bad)
    assert alg.distance(value, value) == 0
    for data, digest in alg.examples.items():
        assert alg.normalize(digest) == digest, data
    if alg.is_perceptual:
        assert alg.default_threshold is not None and 0 < alg.default_threshold < alg.bits


def test_empty_digests_are_the_empty_inputs() -> None:
    assert {get(a).examples[""] for a in ("md5", "sha1", "sha256")} == EMPTY_DIGESTS


def test_pdq_defaults_from_meta() -> None:
    assert get("pdq").default_threshold == 31 and get("pdq").min_quality == 50


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_phash_distance_is_hamming(a: int, b: int) -> None:
    alg = get("phash")
    assert alg.distance(f"{a:016x}", f"{b:016x}") == bin(a ^ b).count("1")
