"""The typed result model: frozen records, one deterministic JSON form that reads back,
pickling for the worker pipe, and the scan's --json keys unchanged."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from tests.support import scan_json
from triage import model
from triage.model import (
    CaseCounts,
    DamagedSet,
    FileEntry,
    FileProblem,
    FileResult,
    HashValue,
    InnerItem,
    KnownHits,
    MatchSummary,
    PictureFacts,
    PoolSummary,
    Problem,
    RunSummary,
    SetHits,
    SetUsed,
    from_dict,
    from_json,
    to_dict,
    to_json,
)
from triage.worker import Checkpoint

#: The keys `triage scan --json` printed before the model existed (batch scripts read them).
SCAN_KEYS = {"by_kind", "by_status", "case_database", "duplicate_groups", "elapsed_seconds",
             "entries", "extension_mismatches", "files_in_duplicate_groups", "hashed_bytes",
             "images_with_perceptual_hashes", "pool", "problems_shown", "resumed", "run_id",
             "by_outcome",  # added by issue 12 item 3 (per-class counts)
             "gaps_shown",  # added by issue 12 item 3 (the first 20 coverage gaps)
             "evidence"}  # added by issue 12 item 6 (resume and new-entry counts)
MATCH_KEYS = {"store", "thresholds", "sets", "hits", "exact", "near", "files_matched",
              "by_category", "by_set", "known", "skipped", "notes",
              "damaged_sets",  # added by issue 10 item 8 (new key, old ones unchanged)
              "by_grade", "confirmation"}  # added by issue 14 (match grades, second pass)


def _result() -> FileResult:
    child = FileResult(file_id=0, status="done", read_status="full", mime="image/png",
                       hashes=(HashValue("md5", "0" * 32),
                               HashValue("pdq", "f" * 64, 87, "first frame; grey", "rot90")),
                       image=PictureFacts("PNG", 64, 48, "RGB", 1, 64, 48, "first frame"),
                       warnings=(Problem("decode", "UserWarning", "odd chunk"),))
    return FileResult(
        file_id=7, status="done", read_status="full", mime="application/zip",
        media_kind="other", ext_mismatch=0,
        hashes=(HashValue("md5", "1" * 32), HashValue("sha1", "2" * 40)),
        warnings=(Problem("container", "ContainerLimit", "limit: 1 member"),),
        children=(InnerItem(inner=(b"a\xff!b.png",), member_kind="member", size=10,
                            mtime=1.5, offset=None, flags=("encrypted",), result=child),))


def _summary() -> RunSummary:
    matches = MatchSummary(
        store="/s.sqlite", thresholds={"pdq": 31, "phash": 10},
        sets=(SetUsed("s1", "vics", "2", "vics", "ab" * 32, 3, False),),
        hits=2, exact=1, near=1, files_matched=1, by_category={"1": 1},
        by_set={"vics (s1)": SetHits(1, 1, 1)},
        known=KnownHits(1, 1, {"nsrl (s2)": SetHits(1, 0, 1)}),
        skipped={"empty_file_digests": 2, "pdq_low_quality": 0},
        damaged_sets=(DamagedSet("s1", "set one", "damaged"),), notes=("a note",))
    return RunSummary(
        run_id=3, case_database="/c/case.sqlite",
        counts=CaseCounts(entries=2, by_status={"done": 1, "error": 1}, by_kind={"file": 2},
                          problems_shown=(FileProblem("x/é", "error", "read", None),)),
        resumed=True, elapsed_seconds=1.25, pool=PoolSummary(2, 1, 0, 0, 0.5),
        matches=matches)


@pytest.mark.parametrize("record", [_result(), _summary(), Problem("a", "b", "c"),
                                    FileEntry("i", b"p\xfe", "file", size=3, locator=[1, 2],
                                              times_raw={"mtime_ns": 5},
                                              preset_status=("error", "open", "no"))])
def test_frozen_and_slotted(record: object) -> None:
    first = dataclasses.fields(record)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, first, None)
    with pytest.raises((AttributeError, TypeError)):
        record.extra = 1  # type: ignore[attr-defined]  # slots: no stray attributes
    assert not hasattr(record, "__dict__")


@pytest.mark.parametrize("record", [_result(), _summary(),
                                    FileEntry("i", b"p\xfe", "file", size=3, locator=[1, 2],
                                              times_raw={"mtime_ns": 5},
                                              preset_status=("error", "open", "no"))])
def test_json_round_trip_is_exact_and_deterministic(record: object) -> None:
    text = to_json(record)
    assert from_json(type(record), text) == record
    assert to_json(from_json(type(record), text)) == text
    # Keys sorted at every level: the same record always gives the same bytes.
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True)


def test_json_shape_of_a_run_summary() -> None:
    d = to_dict(_summary())
    # The counts sit at the top level (as the scan's --json always had them) ...
    assert d["entries"] == 2 and d["by_status"] == {"done": 1, "error": 1}
    assert d["problems_shown"] == [{"path": "x/é", "status": "error", "stage": "read",
                                    "reason": None}]
    assert d["pool"]["worker_crashes"] == 1 and d["pool"]["slowest_giveup_seconds"] == 0.5
    assert set(d["matches"]) == MATCH_KEYS
    assert d["matches"]["known"]["by_set"] == {"nsrl (s2)": {"exact": 1, "near": 0,
                                                             "files": 1}}
    assert d["matches"]["skipped"] == {"empty_file_digests": 2, "pdq_low_quality": 0}
    # ... and the optional parts are absent, not null, when they did not happen.
    assert "match_error" not in d and "demo_directory" not in d
    bare = to_dict(RunSummary(run_id=1, case_database="c"))
    assert set(bare) == {"run_id", "case_database", "resumed", "elapsed_seconds"}
    assert from_dict(RunSummary, bare) == RunSummary(run_id=1, case_database="c")


def test_bytes_are_written_as_hex() -> None:
    d = to_dict(_result())
    assert d["children"][0]["inner"] == [{"hex": "61ff21622e706e67"}]
    with pytest.raises(ValueError, match="bytes"):
        from_dict(InnerItem, {**d["children"][0], "inner": ["a!b.png"]})


def test_from_dict_refuses_wrong_shapes() -> None:
    with pytest.raises(ValueError):
        from_dict(HashValue, {"algorithm": "md5", "value": 5})
    with pytest.raises(ValueError):
        from_dict(PoolSummary, [1, 2])
    with pytest.raises(ValueError):
        from_dict(SetHits, {"exact": True})


@pytest.mark.parametrize("protocol", [4, pickle.HIGHEST_PROTOCOL])
def test_pickling_for_the_worker_pipe(protocol: int) -> None:
    r = _result()
    back = pickle.loads(pickle.dumps(r, protocol=protocol))
    assert back == r and type(back.children[0].result.image) is PictureFacts
    s = _summary()
    assert pickle.loads(pickle.dumps(s, protocol=protocol)) == s
    entry = FileEntry("i", b"p", "file", locator=[1, 2])
    assert pickle.loads(pickle.dumps(entry, protocol=protocol)) == entry
    # The worker's checkpoint message (one field: still a constructor call).
    cp = Checkpoint(r)
    assert pickle.loads(pickle.dumps(cp, protocol=protocol)) == cp


def test_records_change_only_by_rebuilding() -> None:
    r = _result()
    moved = dataclasses.replace(r.children[0].result, file_id=99)
    assert moved.file_id == 99 and r.children[0].result.file_id == 0


def test_model_imports_nothing_from_the_rest_of_triage() -> None:
    source = Path(model.__file__).read_text("utf-8")
    assert "from ." not in source and "import triage" not in source


def test_scan_json_keys_unchanged(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "a.txt").write_bytes(b"hello")
    (ev / "b.bin").write_bytes(b"")
    summary = scan_json(ev, tmp_path / "case")
    assert set(summary) == SCAN_KEYS
    assert summary["by_status"]["done"] == 2
    assert summary["by_outcome"] == {"done": 2, "not_applicable": 0, "coverage_gap": 0,
                                     "error": 0, "pending": 0}
    assert set(summary["pool"]) == {"workers_started", "worker_crashes", "timeouts",
                                    "quarantined", "slowest_giveup_seconds",
                                    "memory_budget_bytes", "decode_grant_capacity_bytes",
                                    "decode_grant_peak_bytes", "decodes_waited",
                                    "decodes_refused"}
    # The run row records the same summary (less the database path).
    back = from_dict(RunSummary, {**summary, "case_database": ""})
    assert back.counts is not None and back.counts.entries == summary["entries"]
