"""Contract suite run for every registered algorithm, and for the toy algorithm of
``tests/toy_algorithm.py`` registered in-process (python-threatexchange's shared signal-type
tests are the model)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import import_module, metadata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashsets.algorithms import (
    ALGORITHMS,
    EMPTY_DIGESTS,
    Algorithm,
    PictureAlgorithm,
    StreamAlgorithm,
    example_picture,
    get,
    lookup,
    register,
    registered,
    unregister,
)
from hashsets.matching import brute_force, hex_to_words, words_to_hex
from tests.toy_algorithm import MeanBits

TOY = MeanBits.name


@pytest.fixture(params=[*ALGORITHMS, TOY])
def alg(request: pytest.FixtureRequest) -> Iterator[Algorithm]:
    if request.param == TOY:
        with registered(MeanBits()) as toy:
            yield toy
    else:
        yield get(request.param)


def _values(alg: Algorithm) -> st.SearchStrategy[str]:
    return st.integers(0, 2 ** alg.bits - 1).map(lambda v: f"{v:0{alg.hex_length}x}")


def test_identity(alg: Algorithm) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", alg.name)
    assert get(alg.name) is alg and get(alg.name.upper()) is alg
    assert all(lookup(s) is alg for s in (alg.name, alg.label, *alg.aliases))
    assert alg.bits % 8 == 0 and alg.hex_length == alg.bits // 4
    assert alg.kind in ("cryptographic", "perceptual", "external")
    assert (alg.computed_from, alg.match) in {("bytes", "exact"), ("picture", "near"),
                                              ("none", "never")}
    assert isinstance(alg, StreamAlgorithm) == (alg.computed_from == "bytes")
    assert isinstance(alg, PictureAlgorithm) == (alg.computed_from == "picture")


def test_computed_against_its_own_examples(alg: Algorithm) -> None:
    assert alg.examples, f"{alg.name} has no examples"
    for key, value in alg.examples.items():
        assert alg.normalize(value) == value
        assert alg.compute_example(key) == value, key


def test_validation_rejects_bad_values(alg: Algorithm) -> None:
    value = "ab" * (alg.hex_length // 2)
    assert alg.normalize(value.upper()) == value
    assert alg.normalize(f"  {value}\r\n") == value
    for bad in (value[:-1], value + "0", "g" + value[1:], "", "0x" + value[2:], value[:-2]):
        with pytest.raises(ValueError, match=rf"is not a valid {re.escape(alg.label)} hash"):
            alg.normalize(bad)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_distance_and_hex_round_trip(alg: Algorithm, data: st.DataObject) -> None:
    a, b, c = (data.draw(_values(alg)) for _ in range(3))
    assert alg.normalize(a.upper()) == a
    assert words_to_hex(hex_to_words([a, b], alg.bits), alg.bits) == [a, b]
    d = alg.distance
    assert d(a, a) == 0 and d(a, b) == d(b, a) and 0 <= d(a, b) <= alg.bits
    assert d(a, c) <= d(a, b) + d(b, c)
    assert (d(a, b) == 0) == (a == b)


def test_near_matching_attributes(alg: Algorithm) -> None:
    if alg.match != "near":
        assert alg.default_threshold is None
        return
    assert alg.default_threshold is not None and 0 < alg.default_threshold < alg.bits
    rng = np.random.default_rng(alg.bits)
    known = rng.integers(0, 256, size=(300, alg.bits // 8), dtype=np.uint8)
    hexes = [row.tobytes().hex() for row in known]
    words = hex_to_words(hexes, alg.bits)
    queries = words[:40].copy()
    queries[:, -1] ^= np.uint64(0b1011)  # three bits away
    index = alg.index_class()(words, alg.bits)
    got = index.search(queries, alg.default_threshold)
    want = brute_force(queries, words, alg.default_threshold)
    assert all(np.array_equal(x, y) for x, y in zip(got, want, strict=True))
    assert len(got[0]) >= 40


def test_quality_gate(alg: Algorithm) -> None:
    assert alg.min_quality is None or 0 <= alg.min_quality <= 100
    if alg.min_quality is not None:
        assert isinstance(alg, PictureAlgorithm)


def test_stream_hasher_is_incremental(alg: Algorithm) -> None:
    if not isinstance(alg, StreamAlgorithm):
        return
    whole = alg.new()
    whole.update(b"abcdef" * 1000)
    parts = alg.new()
    for i in range(0, 6000, 7):
        parts.update((b"abcdef" * 1000)[i:i + 7])
    assert parts.hexdigest() == whole.hexdigest() == alg.normalize(whole.hexdigest())


def test_picture_compute_contract(alg: Algorithm) -> None:
    if not isinstance(alg, PictureAlgorithm):
        return
    for name in ("radial-gradient", "gradient-rgb"):
        image = example_picture(name)
        before = image.tobytes()
        value, quality = alg.compute(image)
        assert alg.normalize(value) == value
        assert quality is None or 0 <= quality <= 100
        assert image.tobytes() == before  # the caller's picture is not changed
        assert alg.compute(image) == (value, quality)  # deterministic
    assert alg.compute(example_picture("radial-gradient")) != \
        alg.compute(example_picture("linear-gradient"))


def test_libraries_are_installed_and_importable(alg: Algorithm) -> None:
    for module, dist in alg.libraries.items():
        import_module(module)
        assert metadata.version(dist)


def test_empty_digests_are_the_empty_inputs() -> None:
    assert {get(a).examples[""] for a in ("md5", "sha1", "sha256")} == EMPTY_DIGESTS


def test_pdq_defaults_from_meta() -> None:
    assert get("pdq").default_threshold == 31 and get("pdq").min_quality == 50


def test_registration_refuses_duplicates_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(get("md5"))

    class Alias(MeanBits):
        name = "meanbits2"
        aliases = ("sha-256",)

    with pytest.raises(ValueError, match="already names 'sha256'"):
        register(Alias())

    class Odd(MeanBits):
        name = "odd"
        bits = 42

    with pytest.raises(ValueError, match="whole number of bytes"):
        register(Odd())

    class BadName(MeanBits):
        name = "Bad name"

    with pytest.raises(ValueError, match="lower-case"):
        register(BadName())
    assert "meanbits2" not in ALGORITHMS and "odd" not in ALGORITHMS
    with registered(MeanBits()):
        assert lookup("Mean-Bits") is get(TOY)
    assert TOY not in ALGORITHMS and lookup("mean-bits") is None
    with pytest.raises(KeyError):
        unregister(TOY)


def test_registry_fits_on_one_screen() -> None:
    from pathlib import Path

    import hashsets.algorithms as registry

    assert len(Path(registry.__file__).read_text().splitlines()) <= 150
