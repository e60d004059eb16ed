"""Several exhibits in one command (issue 19 item 4): ``triage scan EV1 EV2 --case DIR`` and
``--queue FILE``, scanned one after the other into one case, each its own run; an exhibit
that cannot be opened does not stop the others."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import TESTDATA, file_hashes, rows, run_triage

PDQ = TESTDATA / "media" / "pdq"
IMAGEHASH = TESTDATA / "media" / "imagehash"


def test_two_exhibits_equal_two_scans(tmp_path: Path) -> None:
    together = tmp_path / "together"
    proc = run_triage("scan", str(PDQ), str(IMAGEHASH), "--case", str(together),
                      "--no-match", "-q", "--json")
    assert proc.returncode == 0, proc.stderr
    summaries = json.loads(proc.stdout)
    assert [s["evidence"]["path"] for s in summaries] == [str(PDQ), str(IMAGEHASH)]
    assert [s["run_id"] for s in summaries] == [1, 2]
    apart = tmp_path / "apart"
    for ev in (PDQ, IMAGEHASH):
        assert run_triage("scan", str(ev), "--case", str(apart), "--no-match", "-q"
                          ).returncode == 0
    assert file_hashes(together) == file_hashes(apart)
    assert [r["path"] for r in rows(together, "SELECT path FROM evidence ORDER BY id")] == [
        str(PDQ), str(IMAGEHASH)]


def test_queue_file_and_a_bad_exhibit(tmp_path: Path) -> None:
    queue = tmp_path / "queue.txt"
    missing = tmp_path / "no-such-exhibit"
    queue.write_text(f"# exhibits of case 19\n{missing}\n\n{IMAGEHASH}\n")
    case = tmp_path / "case"
    proc = run_triage("scan", str(PDQ), "--queue", str(queue), "--case", str(case),
                      "--no-match", "-q", "--json")
    # The missing exhibit is named (exit 4), and the one after it is still scanned.
    assert proc.returncode == 4, proc.stderr
    assert str(missing) in proc.stderr
    listed = json.loads(proc.stdout)
    assert [s["evidence"]["path"] for s in listed] == [str(PDQ), str(missing), str(IMAGEHASH)]
    assert listed[1]["exit_code"] == 4 and str(missing) in listed[1]["error"]
    assert "error" not in listed[0] and "error" not in listed[2]
    assert {r["path"] for r in rows(case, "SELECT path FROM evidence")} == {
        str(PDQ), str(IMAGEHASH)}


def test_no_evidence_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_triage("scan", "--case", str(tmp_path / "c"))
    assert proc.returncode == 2
    assert "no evidence given" in proc.stderr
    empty = tmp_path / "q.txt"
    empty.write_text("# nothing yet\n")
    proc = run_triage("scan", "--queue", str(empty), "--case", str(tmp_path / "c"))
    assert proc.returncode == 2 and "no evidence given" in proc.stderr
