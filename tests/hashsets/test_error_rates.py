"""The measured error rates stored with the tool (issue 14, item 5).

``hashsets/algorithms/error_rates.json`` is written by ``benchmarks/bench_error_rates.py
--store``. These tests check that the stored record is complete and self-consistent (counts
add up, thresholds and quality gates are the registry's defaults, the corpus is as large as
the issue asks) and that the typed API says what it should for defaults, measured
non-defaults, unmeasured thresholds and a missing file.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

from hashsets.algorithms import error_rates, near_algorithms
from hashsets.algorithms.error_rates import (
    ErrorRatesUnavailable,
    load,
    method_data,
    method_statements,
    parse,
)


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    text = resources.files("hashsets.algorithms").joinpath("error_rates.json").read_text()
    return json.loads(text)


def test_the_stored_file_is_package_data() -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "algorithms/error_rates.json" in project["tool"]["setuptools"]["package-data"][
        "hashsets"]


def test_provenance_is_recorded(record: dict[str, Any]) -> None:
    assert record["format"] == error_rates.FORMAT
    assert record["format_version"] == error_rates.FORMAT_VERSION
    assert record["command"].startswith("python benchmarks/bench_error_rates.py")
    assert "--store" in record["command"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["date_utc"])
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"])
    for lib in ("Pillow", "ImageHash", "pdqhash", "numpy"):
        assert record["versions"][lib]
    corpus = record["corpus"]
    # The floor: at least 1,000 distinct pictures, public ones among them.
    assert corpus["pictures"] >= 1000
    assert corpus["public"] > 0 and corpus["generated"] > 0
    assert corpus["pictures"] == corpus["public"] + corpus["generated"]
    assert sum(corpus["by_kind"].values()) == corpus["pictures"]
    assert corpus["by_kind"]["public"] == corpus["public"]
    assert corpus["copies"] == corpus["pictures"] * len(corpus["transforms"])
    families = set(corpus["transforms"].values())
    for family in ("re-encode", "resize", "crop", "rotate 90/180/270", "rotate small angle",
                   "flip", "letterbox", "colour shift", "logo overlay"):
        assert family in families
    assert str(corpus["pictures"]) in corpus["description"].replace(",", "")


def test_every_near_algorithm_is_measured_at_its_default(record: dict[str, Any]) -> None:
    algs = record["algorithms"]
    for alg in near_algorithms():
        if alg.default_threshold is None:
            continue
        a = algs[alg.name]
        assert a["default_threshold"] == alg.default_threshold
        assert a["min_quality"] == alg.min_quality
        assert a["bits"] == alg.bits
        assert [r["threshold"] for r in a["thresholds"]] == list(
            range(2 * alg.default_threshold + 1))
        assert load().figure(alg.name, alg.default_threshold) is not None


def test_counts_are_consistent(record: dict[str, Any]) -> None:
    corpus = record["corpus"]
    for name, a in record["algorithms"].items():
        n, gated = a["transformed_pairs"], a["copies_below_quality_gate"]
        assert n == corpus["copies"], name
        # Every compared copy against every other picture's reference.
        assert a["unrelated_pairs"] == (n - gated) * (corpus["pictures"] - 1), name
        assert a["unrelated_pairs"] >= 10**6, name
        if a["min_quality"] is None:
            assert gated == 0 and a["references_below_quality_gate"] is None
        previous = {"dihedral": (0, 0), "plain": (0, 0)}
        for row in a["thresholds"]:
            for mode in ("dihedral", "plain"):
                fm, found = row[mode]["false_matches"], row[mode]["found"]
                assert 0 <= fm <= a["unrelated_pairs"] and 0 <= found <= n - gated
                # A larger threshold never matches fewer pairs.
                assert fm >= previous[mode][0] and found >= previous[mode][1]
                previous[mode] = (fm, found)
            # The dihedral distance is a minimum that includes the plain one.
            assert row["dihedral"]["false_matches"] >= row["plain"]["false_matches"]
            assert row["dihedral"]["found"] >= row["plain"]["found"]
        # The per-transform recall adds up to the figure at the default threshold.
        default = a["thresholds"][a["default_threshold"]]
        by = a["at_default"]["recall_by_transform"]
        assert set(by) == set(corpus["transforms"])
        assert sum(x["copies"] for x in by.values()) == n
        for mode in ("dihedral", "plain"):
            assert sum(x[mode] for x in by.values()) == default[mode]["found"], (name, mode)
        assert sum(a["at_default"]["false_matches_by_kind"].values()) == \
            default["dihedral"]["false_matches"]


def test_the_typed_api_reads_the_same_figures(record: dict[str, Any]) -> None:
    rates = load()
    a = record["algorithms"]["pdq"]
    row = a["thresholds"][31]
    f = rates.figure("pdq", 31)
    assert f is not None and f.default
    assert f.dihedral.false_matches == row["dihedral"]["false_matches"]
    assert f.plain.found == row["plain"]["found"]
    assert f.dihedral.unrelated_pairs == a["unrelated_pairs"]
    assert f.dihedral.false_match_rate == row["dihedral"]["false_matches"] / a["unrelated_pairs"]
    assert rates.figure("pdq", 2 * 31 + 1) is None
    assert rates.figure("nosuch", 1) is None
    assert rates.pictures == record["corpus"]["pictures"]
    # Without variants the pairs compared are the plain ones (fewer PDQ copies pass the
    # quality gate without the unletterboxed form).
    assert f.plain.unrelated_pairs == a["plain_unrelated_pairs"]
    assert f.plain.false_match_rate == row["plain"]["false_matches"] / a["plain_unrelated_pairs"]


def test_plain_pairs_default_to_the_variants_pairs(record: dict[str, Any]) -> None:
    old = json.loads(json.dumps(record))
    for a in old["algorithms"].values():
        a.pop("plain_unrelated_pairs", None)
    f = parse(old).figure("pdq", 31)
    assert f is not None
    assert f.plain.unrelated_pairs == f.dihedral.unrelated_pairs == \
        record["algorithms"]["pdq"]["unrelated_pairs"]


def test_the_stored_run_modelled_the_scan(record: dict[str, Any]) -> None:
    corpus = record["corpus"]
    # Letterboxed and pillarboxed copies are found through the unletterboxed variant.
    by = corpus["copies_unletterboxed_by_transform"]
    assert by["letterbox 20%+20%"] > 0.9 * corpus["pictures"]
    assert by["pillarbox 20%+20%"] > 0.9 * corpus["pictures"]
    assert corpus["no_variants_value_mismatches"] == 0
    assert corpus["copies_draft_decoded"] > 0
    assert not record["tree_modified"]


def test_statements_for_the_defaults_and_for_a_run(record: dict[str, Any]) -> None:
    rates = load()
    pdq = rates.figure("pdq", 31)
    assert pdq is not None
    lines = method_statements({})
    assert lines[0].startswith("No match run: measured error rates at the default thresholds.")
    assert rates.command in lines[0]
    expected = (f"At PDQ 31 (the default): {pdq.dihedral.false_matches:,} false matches in "
                f"{pdq.dihedral.unrelated_pairs:,} unrelated pairs")
    assert any(line.startswith(expected) for line in lines)
    assert lines[-1] == error_rates.LIMITS
    assert "evidence of similarity, not identity" in lines[-1]

    run = method_statements({"pdq": 70, "phash": 12, "dhash": 10, "pdq_min_quality": 40})
    assert lines[0] != run[0] and run[0].startswith("Measured error rates at this run's")
    (pdq_line,) = [s for s in run if "PDQ" in s and "threshold 70" in s]
    assert "no measured error rate" in pdq_line and "default (31)" in pdq_line
    (phash_line,) = [s for s in run if s.startswith("At pHash 12:")]
    assert "(the default)" not in phash_line
    assert any(s.startswith("At dHash 10 (the default)") for s in run)

    run = method_statements({"pdq": 31, "pdq_min_quality": 40})
    (line,) = [s for s in run if s.startswith("At PDQ 31")]
    assert "quality gate was 40" in line and "measured with 50" in line


def test_method_data_is_json(record: dict[str, Any]) -> None:
    data = method_data({"pdq": 70, "phash": 10})
    json.dumps(data)
    assert data["available"] and not data["thresholds_are_defaults"]
    by = {f["algorithm"]: f for f in data["figures"]}
    assert by["pdq"]["figure"] is None and "no measured error rate" in by["pdq"]["statement"]
    assert by["phash"]["figure"]["dihedral"]["false_matches"] == \
        record["algorithms"]["phash"]["thresholds"][10]["dihedral"]["false_matches"]


def test_a_missing_or_damaged_file_is_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise ErrorRatesUnavailable("error_rates.json: no such file")

    monkeypatch.setattr(error_rates, "load", broken)
    assert method_statements({"pdq": 31}) == [
        "Measured error rates are not available (error_rates.json: no such file)."]
    assert method_data(None) == {"available": False,
                                 "reason": "error_rates.json: no such file"}


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.update(format="other"), "not a triage-error-rates record"),
    (lambda r: r.update(format_version=99), "format version 99"),
    (lambda r: r["algorithms"]["pdq"].update(unrelated_pairs=-1), "'unrelated_pairs'"),
    (lambda r: r["algorithms"]["phash"]["thresholds"][3]["plain"].pop("found"),
     "algorithm phash threshold 3: 'found'"),
])
def test_parse_names_what_is_wrong(record: dict[str, Any], change: Any, message: str) -> None:
    damaged = json.loads(json.dumps(record))
    change(damaged)
    with pytest.raises(ErrorRatesUnavailable, match=re.escape(message)):
        parse(damaged)
