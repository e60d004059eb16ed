"""The process model: crashes, hangs, memory blow-ups and exceptions cost one file, never
the scan (RELIABILITY.md), proven with the test-only fault switch."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.support import rows, run_triage, scan_json, start_scan, wait_dispatched


@pytest.fixture()
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    root.mkdir()
    for i in range(6):
        Image.new("RGB", (80, 60), (i * 40, 100, 200 - i * 30)).save(root / f"img{i}.jpg",
                                                                      quality=90)
    (root / "victim.jpg").write_bytes((root / "img0.jpg").read_bytes()[:-10] + b"x" * 10)
    (root / "plain.txt").write_text("just text\n")
    return root


def _status(case: Path) -> dict[str, dict]:
    return {r["display_path"]: dict(r) for r in rows(case, "SELECT * FROM files")}


def _fault(spec: str) -> dict[str, str]:
    return {"TRIAGE_INJECT_FAULT": spec}


@pytest.mark.parametrize("stage", ["open", "read", "identify", "decode", "hash"])
def test_segfault_twice_means_quarantine_and_the_scan_goes_on(evidence: Path, tmp_path: Path,
                                                             stage: str) -> None:
    case = tmp_path / "case"
    summary = scan_json(evidence, case, env=_fault(f"{stage}:segfault:img3.jpg"), expect=(3,))
    st = _status(case)
    bad = st["img3.jpg"]
    assert bad["status"] == "quarantined"
    assert bad["status_stage"] == stage
    assert "SIGSEGV" in bad["status_reason"] and "2 crashes" in bad["status_reason"]
    assert bad["attempts"] == 2
    others = [r for p, r in st.items() if p.startswith("img") and p != "img3.jpg"]
    assert all(r["status"] == "done" for r in others)
    assert summary["pool"]["worker_crashes"] == 2
    assert summary["pool"]["quarantined"] == 1
    err = rows(case, "SELECT * FROM errors WHERE file_id=?", (bad["id"],))
    assert err and err[0]["error_class"] == "WorkerCrash"


def test_abort_and_exit_are_crashes_too(evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(evidence, case, env=_fault("decode:abort:img1.jpg;read:exit:img2.jpg"),
              expect=(3,))
    st = _status(case)
    assert st["img1.jpg"]["status"] == "quarantined"
    assert "SIGABRT" in st["img1.jpg"]["status_reason"]
    assert st["img2.jpg"]["status"] == "quarantined"
    assert "exited with status 3" in st["img2.jpg"]["status_reason"]


def test_hang_is_killed_at_the_deadline(evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    started = time.monotonic()
    summary = scan_json(evidence, case, "--timeout", "2",
                        env=_fault("decode:hang:img4.jpg"), expect=(3,))
    elapsed = time.monotonic() - started
    bad = _status(case)["img4.jpg"]
    assert bad["status"] == "error" and bad["status_stage"] == "decode"
    assert bad["status_reason"].startswith("timeout")
    assert summary["pool"]["timeouts"] == 1
    assert 2 <= summary["pool"]["slowest_giveup_seconds"] <= 6  # deadline + scheduling slack
    assert elapsed < 60
    assert sum(r["status"] == "done" for r in _status(case).values()) == 6  # 5 img + txt


def test_memory_blowup_hits_the_limit_not_the_machine(evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(evidence, case, "--memory-limit", "1024", env=_fault("hash:memory:img5.jpg"),
              expect=(3,))
    bad = _status(case)["img5.jpg"]
    assert bad["status"] in ("error", "quarantined")
    assert bad["status_stage"] == "hash"
    if bad["status"] == "error":
        assert "memory limit" in bad["status_reason"]


def test_exception_is_recorded_with_stage_and_class(evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(evidence, case, env=_fault("identify:exception:plain.txt"), expect=(3,))
    bad = _status(case)["plain.txt"]
    assert bad["status"] == "error" and bad["status_stage"] == "identify"
    err = rows(case, "SELECT * FROM errors WHERE file_id=?", (bad["id"],))[0]
    assert err["error_class"] == "InjectedFault"
    assert "injected fault" in err["message"]


def test_fault_injection_is_recorded_in_the_run(evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(evidence, case, env=_fault("decode:exception:img0.jpg"), expect=(3,))
    run = rows(case, "SELECT options FROM runs")[0]
    assert "fault_injection" in run["options"]


def test_no_temp_files_or_core_dumps_left_behind(evidence: Path, tmp_path: Path,
                                                 scan_tmpdir: Path) -> None:
    tmp = scan_tmpdir  # private and empty (tests/conftest.py: tmp_path is too long)
    case = tmp_path / "case"
    scan_json(evidence, case, env={**_fault("decode:segfault:img2.jpg"), "TMPDIR": str(tmp)},
              expect=(3,))
    assert list(tmp.iterdir()) == []
    assert not [p for p in os.listdir(evidence) if p.startswith("core")]
    assert not [p for p in os.listdir(tmp_path) if p.startswith("core")]


def test_truncated_jpeg_is_an_error_with_digests(evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(evidence, case, expect=(3,))
    bad = _status(case)["victim.jpg"]
    assert bad["status"] == "error" and bad["status_stage"] == "decode"
    algs = {r["algorithm"] for r in rows(case, "SELECT algorithm FROM hashes WHERE file_id=?",
                                         (bad["id"],))}
    assert algs == {"md5", "sha1", "sha256"}


def test_exit_code_zero_when_everything_is_fine(tmp_path: Path) -> None:
    root = tmp_path / "ok"
    root.mkdir()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(root / "fine.png")
    proc = run_triage("scan", str(root), "--case", str(tmp_path / "case"), "--no-match", "-q")
    assert proc.returncode == 0, proc.stderr


def test_enumeration_fault_costs_one_directory(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "x.txt").write_text("x")
    (root / "b" / "y.txt").write_text("y")
    case = tmp_path / "case"
    scan_json(root, case, env=_fault("enumerate:exception:a"), expect=(3,))
    st = _status(case)
    assert "b/y.txt" in st and st["b/y.txt"]["status"] == "done"
    assert "a/x.txt" not in st
    err = [r for p, r in st.items() if r["status"] == "error"]
    assert err and "cannot list directory" in err[0]["status_reason"]


def test_write_fault_is_a_case_error_and_a_rerun_completes(evidence: Path,
                                                           tmp_path: Path) -> None:
    case = tmp_path / "case"
    proc = run_triage("scan", str(evidence), "--case", str(case), "--no-match", "-q",
                      env=_fault("write:exception:*"))
    assert proc.returncode == 5 and "cannot write to the case database" in proc.stderr
    assert "Traceback" not in proc.stderr
    summary = scan_json(evidence, case, expect=(3,))
    assert summary["resumed"] is True
    assert not rows(case, "SELECT id FROM files WHERE status='pending'")


def test_match_fault_keeps_the_scan_and_exits_6(evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    proc = run_triage("scan", str(evidence), "--case", str(case), "-q", "--json",
                      "--store", str(tmp_path / "store.sqlite"),
                      env=_fault("match:exception:*"))
    assert proc.returncode == 6, proc.stderr
    assert "matching failed" in proc.stderr
    assert rows(case, "SELECT status FROM runs")[0]["status"] == "completed"
    assert rows(case, "SELECT * FROM errors WHERE stage='match'")


def _digests(case: Path, path: str) -> set[str]:
    return {r["algorithm"] for r in rows(case, "SELECT h.algorithm FROM hashes h JOIN files f "
                                               "ON f.id=h.file_id WHERE f.display_path=?",
                                         (path,))}


@pytest.mark.parametrize("fault", ["decode:hang", "decode:segfault", "hash:abort"])
def test_digests_survive_a_decoder_that_hangs_or_crashes(evidence: Path, tmp_path: Path,
                                                         fault: str) -> None:
    """The file was read in full before decoding: a crafted file that kills the decoder
    must not escape exact hash matching."""
    case = tmp_path / "case"
    scan_json(evidence, case, "--timeout", "2", env=_fault(f"{fault}:img1.jpg"), expect=(3,))
    bad = _status(case)["img1.jpg"]
    assert bad["status"] in ("error", "quarantined")
    assert _digests(case, "img1.jpg") == {"md5", "sha1", "sha256"}
    assert bad["mime"] == "image/jpeg" and bad["read_status"] == "full"


def test_workers_that_cannot_start_stop_the_scan_without_blaming_files(
        evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    proc = run_triage("scan", str(evidence), "--case", str(case), "--no-match", "-q",
                      env={"MAGIC": str(tmp_path / "no-such-magic-file")})
    assert proc.returncode == 1, proc.stderr
    assert "worker processes cannot start" in proc.stderr
    assert not rows(case, "SELECT * FROM files WHERE status='quarantined'")
    assert rows(case, "SELECT status FROM runs")[0]["status"] == "failed"
    summary = scan_json(evidence, case, expect=(3,))      # fixed: the same scan completes
    assert summary["by_status"].get("done", 0) == 7


def test_ordinary_interruptions_do_not_count_against_a_file(evidence: Path,
                                                            tmp_path: Path) -> None:
    """SIGTERM twice while img2.jpg is being processed: it is not quarantined."""
    import signal
    import time

    case = tmp_path / "case"
    for _ in range(2):
        p = start_scan(evidence, case, "decode:hang:img2.jpg")
        wait_dispatched(case, b"img2.jpg")
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 130
    scan_json(evidence, case, expect=(3,))
    assert _status(case)["img2.jpg"]["status"] == "done"


@pytest.mark.parametrize("kind", ["hang", "segfault"])
def test_a_folder_whose_listing_hangs_or_crashes_is_skipped(tmp_path: Path, kind: str) -> None:
    """RELIABILITY #1: enumeration runs in a child; a stuck or crashing listing costs that
    folder (recorded with the reason), the walk goes on, and what was found is kept."""
    root = tmp_path / "ev"
    for d in ("a", "b", "c"):
        (root / d).mkdir(parents=True)
        (root / d / f"{d}.txt").write_text(d)
    case = tmp_path / "case"
    summary = scan_json(root, case, "--timeout", "2", env=_fault(f"enumerate:{kind}:b"),
                        expect=(3,))
    st = _status(case)
    assert st["a/a.txt"]["status"] == "done" and st["c/c.txt"]["status"] == "done"
    assert "b/b.txt" not in st
    err = rows(case, "SELECT * FROM files WHERE status='error'")
    assert len(err) == 1 and err[0]["display_path"] == "b"
    assert ("hung" if kind == "hang" else "crashed") in err[0]["status_reason"]
    assert summary["entries"] == 6     # 3 folders, a.txt, c.txt and the error for b
    assert len(rows(case, "SELECT DISTINCT identity FROM files")) == summary["entries"]
