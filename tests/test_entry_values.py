"""The fast paths that format an enumerated entry's columns (issue 13) write exactly what the
general code wrote: ``strftime`` for times, ``json.dumps`` for raw times and locators."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from triage.case import _entry_values, _json_locator, _json_sorted
from triage.model import FileEntry
from triage.util import utc_from_timestamp


def _strftime(ts: float) -> str | None:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):
        return None


def test_times_as_strftime() -> None:
    r = random.Random(13)
    values: list[float] = [
        0, -1, 0.5, -0.5, 5e-7, 1.5e-6, 2.5e-6, -62135596800, -62135596801,
        -31000000000, -30000000000.25, 253402300799, 253402300800, 253402300799.9999996,
        1e20, float("nan"), float("inf"), 2**63, 1796297574.4162843]
    values += [r.uniform(-6.3e10, 2.6e11) for _ in range(20000)]
    values += [r.randrange(0, 2**31) + r.choice([0.0, 0.9999995, 5e-7, 0.1234565])
               for _ in range(5000)]
    assert [utc_from_timestamp(v) for v in values] == [_strftime(v) for v in values]
    assert utc_from_timestamp(-31000000000) == "987-08-25T16:53:20.000000Z"  # not padded
    assert utc_from_timestamp(None) is None


@pytest.mark.parametrize("value", [
    {"mtime_ns": 1, "atime_ns": -2, "\u00e9\n\"": 3}, {"b": 1.5, "a": 2}, {"x": True},
    {1: 2}, {"a": None}, {"z": 10**30, "a": 0}, {"s": "\u202e"}])
def test_raw_times_as_json(value: dict[Any, Any]) -> None:
    assert _json_sorted(value) == json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("value", [
    [1, -2, 3], [], [True, 1], [1.0], ["a"], [10**40], (1, 2), {"a": 1}, "s", 5,
    ["carve", 1, 2, 3, 4]])
def test_locators_as_json(value: Any) -> None:
    assert _json_locator(value) == json.dumps(value)


def test_equal_times_formatted_once() -> None:
    e = FileEntry(identity="i", path=b"a", kind="file", mtime=5.25, atime=5.25, ctime=7,
                  crtime=None, times_raw={"mtime_ns": 5250000000}, locator=[1, 2, 3])
    values = _entry_values(e)
    assert values[6:10] == ("1970-01-01T00:00:05.250000Z", "1970-01-01T00:00:05.250000Z",
                            "1970-01-01T00:00:07.000000Z", None)
    assert values[10] == '{"mtime_ns": 5250000000}'
    assert values[17] == "[1, 2, 3]"
