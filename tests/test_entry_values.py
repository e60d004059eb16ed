"""The fast path that formats an enumerated entry's times (issue 13) writes exactly what
``strftime`` wrote, and equal times of an entry are formatted once."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from triage.case import _entry_values
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


def test_equal_times_formatted_once() -> None:
    e = FileEntry(identity="i", path=b"a", kind="file", mtime=5.25, atime=5.25, ctime=7,
                  crtime=None, times_raw={"mtime_ns": 5250000000}, locator=[1, 2, 3])
    values = _entry_values(e)
    assert values[6:10] == ("1970-01-01T00:00:05.250000Z", "1970-01-01T00:00:05.250000Z",
                            "1970-01-01T00:00:07.000000Z", None)
    assert values[10] == '{"mtime_ns": 5250000000}'
    assert values[17] == "[1, 2, 3]"
