"""A total memory budget across workers (issue 11, defect 4): eight 11000x11000 PNGs with
``--jobs 8`` used to drive the process tree to 23.7 GB, the kernel's OOM killer fired and
seven files ended as timeouts; pictures under ``--max-pixels`` failed with MemoryError
under the default ``--memory-limit``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.memtree import TreeMemory, write_png
from tests.support import rows
from triage import membudget
from triage.membudget import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_WORKER_MEMORY,
    FREE_DECODE,
    MIB,
    Admission,
    Available,
    GrantReply,
    decode_cost,
    plan,
    worker_memory_limit,
)
from triage.worker import WorkerOptions, decode_image

# -- the estimate and the defaults --------------------------------------------------------


def test_estimate_from_the_header_per_mode() -> None:
    algs = ("phash", "dhash", "pdq")
    # RGB is stored as 4 bytes per pixel and needs no conversion for PDQ: 4 + 28.
    assert decode_cost(11000, 11000, "RGB", algs) == 121_000_000 * 32
    # L: 1 stored + 4 for convert("RGB") + 28.
    assert decode_cost(1000, 1000, "L", algs) == 1_000_000 * 33
    assert decode_cost(1000, 1000, "I;16", algs) == 1_000_000 * 34
    assert decode_cost(1000, 1000, "RGBA", algs) == 1_000_000 * 36
    # Without PDQ only the grey copy of pHash and dHash.
    assert decode_cost(1000, 1000, "RGB", ("phash", "dhash")) == 1_000_000 * 6
    # An algorithm the table does not know costs as much as the costliest known one.
    assert decode_cost(10, 10, "RGB", ("toy",)) == 100 * (4 + 28 + 4)


def test_the_default_limits_agree() -> None:
    """The default --memory-limit is derived from the default --max-pixels: the costliest
    picture the pixel limit accepts fits a worker with room for the interpreter."""
    assert WorkerOptions().max_pixels == DEFAULT_MAX_PIXELS == 2 * 89_478_485
    assert WorkerOptions().memory_limit == DEFAULT_WORKER_MEMORY == 7168 * MIB
    worst = max(decode_cost(1, DEFAULT_MAX_PIXELS, mode, ("phash", "dhash", "pdq"))
                for mode in ("1", "L", "P", "I;16", "I", "F", "LA", "RGB", "RGBA", "CMYK"))
    assert worst + membudget.WORKER_OVERHEAD <= DEFAULT_WORKER_MEMORY
    assert worker_memory_limit(1000) == 1024 * MIB + MIB  # rounded up to a MiB


def test_a_picture_over_the_worker_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    """In a child with a 1 GiB address-space limit, a 16 MP RGB PNG (about 490 MiB to
    decode and hash) fits; a 49 MP one (about 1.5 GiB) is refused with the estimate and
    the limit named, instead of a MemoryError half-way through."""
    write_png(tmp_path / "a.png", 4000, 4000)
    write_png(tmp_path / "b.png", 7000, 7000)
    code = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.RLIM_INFINITY))
from triage.worker import WorkerOptions, decode_image
from triage.membudget import MemoryBudgetExceeded
opts = WorkerOptions(algorithms=("phash",), memory_limit=1 << 30)
im, facts, _ = decode_image(open({str(tmp_path / "a.png")!r}, "rb").read(), opts)
print("a", facts.width, facts.height)
try:
    decode_image(open({str(tmp_path / "b.png")!r}, "rb").read(), WorkerOptions(
        memory_limit=1 << 30))
except MemoryBudgetExceeded as e:
    print("b", e)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "a 4000 4000"
    assert lines[1].startswith("b picture 7000x7000 (RGB) needs about 1,496 MiB to decode "
                               "and hash; this worker has ")
    assert lines[1].endswith(" of its 1,024 MiB address-space limit free (--memory-limit)")


def test_jpeg_estimate_is_after_draft_reduction(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG is estimated at the size it is decoded at (draft mode: 4000x3000 at 1/8), so
    an ordinary photo never needs a grant."""
    from PIL import Image

    Image.new("RGB", (4000, 3000), (10, 20, 30)).save(tmp_path / "p.jpg", quality=80)
    seen: list[tuple[int, int, str]] = []
    real = membudget.decode_cost

    def spy(width: int, height: int, mode: str, algorithms: Iterable[str]) -> int:
        seen.append((width, height, mode))
        return real(width, height, mode, algorithms)

    monkeypatch.setattr(membudget, "decode_cost", spy)
    decode_image((tmp_path / "p.jpg").read_bytes(), WorkerOptions())
    assert seen == [(500, 375, "RGB")]
    assert real(500, 375, "RGB", ("phash", "dhash", "pdq")) <= FREE_DECODE


# -- what the machine has -----------------------------------------------------------------


def test_mem_available_is_read_from_meminfo(tmp_path: Path) -> None:
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:  2048 kB\nMemFree:  100 kB\nMemAvailable:   1536 kB\n")
    assert membudget.mem_available(str(info)) == 1536 * 1024
    info.write_text("MemTotal:  2048 kB\n")
    assert membudget.mem_available(str(info)) is None


def test_cgroup_v2_limit_of_the_group_or_an_ancestor(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/a/b\n")
    root = tmp_path / "fs"
    (root / "a" / "b").mkdir(parents=True)
    (root / "memory.max").write_text("max\n")
    (root / "a" / "memory.max").write_text(f"{8 << 30}\n")
    (root / "a" / "memory.current").write_text(f"{3 << 30}\n")
    (root / "a" / "memory.stat").write_text(f"anon 1\ninactive_file {1 << 30}\n")
    (root / "a" / "b" / "memory.max").write_text("max\n")
    # The parent's limit applies to the child: 8 GiB less 3 GiB used, 1 GiB of it
    # reclaimable page cache.
    assert membudget.cgroup_headroom(str(proc), str(root)) == 6 << 30
    (root / "a" / "b" / "memory.max").write_text(f"{2 << 30}\n")
    (root / "a" / "b" / "memory.current").write_text(f"{1 << 30}\n")
    assert membudget.cgroup_headroom(str(proc), str(root)) == 1 << 30


def test_cgroup_v1_limit_and_unlimited(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("9:pids:/x\n4:memory:/grp\n0::/\n")
    root = tmp_path / "fs"
    (root / "memory" / "grp").mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    grp = root / "memory" / "grp"
    (grp / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert membudget.cgroup_headroom(str(proc), str(root)) is None
    (grp / "memory.limit_in_bytes").write_text(f"{4 << 30}\n")
    (grp / "memory.usage_in_bytes").write_text(f"{1 << 30}\n")
    assert membudget.cgroup_headroom(str(proc), str(root)) == 3 << 30


def test_the_plan_lowers_jobs_and_sets_the_grant_capacity() -> None:
    big = plan(None, 8, Available(24 << 30, "MemAvailable"))
    assert big.budget == 18 << 30 and big.jobs == 8
    assert big.capacity == (18 << 30) - membudget.SUPERVISOR_RESERVE - 8 * membudget.WORKER_RESERVE
    assert "75% of MemAvailable" in big.describe()
    small = plan(1536 * MIB, 8)
    # (1536 - 256) / 2 / 192 = 3 workers; 1536 - 256 - 3 x 192 = 704 MiB for decodes.
    assert (small.jobs, small.jobs_requested, small.capacity) == (3, 8, 704 * MIB)
    assert small.describe() == "--memory-budget 1,536 MiB"
    assert small.worker_limit(7168 * MIB) == 1536 * MIB
    assert small.worker_limit(1024 * MIB) == 1024 * MIB
    off = plan(0, 8)
    assert off.budget is None and off.capacity is None and off.jobs == 8
    assert off.worker_limit(7168 * MIB) == 7168 * MIB
    tiny = plan(None, 4, Available(100 * MIB, "MemAvailable"))
    assert tiny.budget == membudget.MIN_BUDGET and tiny.jobs == 1


# -- the supervisor's ledger --------------------------------------------------------------


def test_admission_grants_queues_in_order_and_refuses() -> None:
    a = Admission(1000, "of --memory-budget x")
    assert a.request(1, 600) == GrantReply(True)
    assert a.request(2, 300) == GrantReply(True)
    assert a.request(3, 500) is None  # waits
    assert a.request(4, 50) is None  # would fit, but waits behind 3 (first come first served)
    refused = a.request(5, 1001)
    assert refused is not None and not refused.granted
    assert refused.reason.startswith("more than the scan's memory budget can give at once (")
    assert a.release(2) == []  # 600 + 500 still too much
    assert a.release(1) == [3, 4]
    assert a.in_use == 550 and a.peak == 900
    assert (a.waited, a.refused) == (2, 1)
    # A worker that dies while waiting leaves the queue; one that asks again first gives
    # its grant back.
    assert a.request(6, 900) is None
    assert a.release(6) == [] and not a.queue
    assert a.request(3, 400) == GrantReply(True)
    assert a.in_use == 450


def test_admission_without_a_budget_grants_everything() -> None:
    a = Admission(None)
    assert a.request(1, 1 << 50) == GrantReply(True)
    assert a.request(2, 1 << 50) == GrantReply(True)
    assert a.release(1) == [] and a.in_use == 1 << 50


# -- the whole scan under a small budget ---------------------------------------------------

BUDGET_MIB = 2048
#: The test's own hard cap on the summed resident memory of the scan's process tree: the
#: scan is killed (and the test fails) past it, so a regression cannot exhaust the machine.
TREE_CAP = 3 << 30


def test_four_large_pictures_under_a_small_total_budget(tmp_path: Path) -> None:
    """Four 4000x4000 RGB PNGs (about 490 MiB each to decode and hash), one 6500x6500
    (1,290 MiB) and one 11000x11000 (3,693 MiB), ``--jobs 4`` and ``--memory-budget 2048``:
    the grant capacity is 2048 - 256 - 4 x 192 = 1024 MiB, so at most two decodes run at
    once while four workers are busy. The tree's resident memory (every process summed,
    sampled every 50 ms) stays under the budget; the four end ``done`` with no timeout; the
    two others are clear errors naming their estimate and the limit: the 6500x6500 fits a
    worker (its limit is lowered to the budget, 2 GiB) but not the grant capacity
    (refused by the supervisor), the 11000x11000 not even a worker. Without the budget
    the pictures decode at once: the tree passes the budget (and the test's cap)."""
    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(4):
        write_png(ev / f"p{i}.png", 4000, 4000, seed=i)
    write_png(ev / "wide.png", 6500, 6500, seed=8)
    write_png(ev / "huge.png", 11000, 11000, seed=9)
    case = tmp_path / "case"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "triage", "scan", str(ev), "--case",
                             str(case), "--no-match", "--json", "-q", "--jobs", "4",
                             "--memory-budget", str(BUDGET_MIB)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemory(proc.pid, interval=0.05, cap=TREE_CAP) as mem:
        out, err = proc.communicate(timeout=300)
    elapsed = time.monotonic() - started
    assert not mem.capped, f"the scan's tree passed {TREE_CAP} bytes and was killed"
    assert proc.returncode == 8, err  # the refused pictures are coverage gaps
    assert "Traceback" not in err
    summary = json.loads(out)
    pool = summary["pool"]
    assert pool["memory_budget_bytes"] == BUDGET_MIB * MIB
    assert pool["decode_grant_capacity_bytes"] == 1024 * MIB
    assert pool["decode_grant_peak_bytes"] <= 1024 * MIB
    assert pool["decode_grant_peak_bytes"] in {n * decode_cost(4000, 4000, "RGB", ("pdq",))
                                               for n in (1, 2)}
    assert pool["decodes_waited"] >= 1  # the queue was used
    assert pool["decodes_refused"] == 1  # wide.png
    assert pool["timeouts"] == 0 and pool["worker_crashes"] == 0
    assert mem.peak <= BUDGET_MIB * MIB, f"tree peak {mem.peak} bytes, {mem.samples} samples"
    got = {r["display_path"]: r for r in rows(case, "SELECT display_path, status, "
                                                    "status_stage, status_reason FROM files")}
    for i in range(4):
        assert got[f"p{i}.png"]["status"] == "done"
    huge = got["huge.png"]
    # A bound, not damage: a coverage gap (issue 12's outcome classes), digests kept.
    assert (huge["status"], huge["status_stage"]) == ("incomplete", "decode")
    cost = decode_cost(11000, 11000, "RGB", ("pdq",))
    assert huge["status_reason"].startswith(
        f"picture 11000x11000 (RGB) needs about {membudget.mib(cost)} to decode and hash")
    assert huge["status_reason"].endswith(
        " of its 2,048 MiB address-space limit free (--memory-limit lowered to the scan's "
        "memory budget); not decoded, digests kept")
    wide = got["wide.png"]
    assert (wide["status"], wide["status_stage"]) == ("incomplete", "decode")
    assert wide["status_reason"] == (
        "picture 6500x6500 (RGB) needs about 1,290 MiB to decode and hash, more than the "
        "scan's memory budget can give at once (1,024 MiB of --memory-budget 2,048 MiB); "
        "not decoded, digests kept")
    err_rows = rows(case, "SELECT error_class FROM errors WHERE message LIKE 'picture%'")
    assert [r["error_class"] for r in err_rows] == ["MemoryBudgetExceeded"] * 2
    assert elapsed < 300


def test_no_budget_is_recorded_as_none(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "a.txt").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "triage", "scan", str(ev), "--case",
                           str(tmp_path / "case"), "--no-match", "--json", "-q",
                           "--memory-budget", "0"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    pool = json.loads(proc.stdout)["pool"]
    assert pool["memory_budget_bytes"] is None and pool["decode_grant_capacity_bytes"] is None


def test_waiting_for_memory_does_not_run_down_the_deadline(tmp_path: Path) -> None:
    """Five 4000x4000 PNGs, ``--jobs 5``, a budget that admits one decode at a time
    (capacity 2176 - 256 - 5 x 192 = 960 MiB for 488 MiB each) and ``--timeout 3``: the
    last waits for four decodes of 1.5 s or more each, longer than its own deadline, and a
    decode itself may take longer than 3 s on a busy machine. Neither counts: the deadline
    stops while a worker waits, and a granted decode adds 1 s per 20 MiB of its estimate
    (24 s here). Before, every file would have had 3 s from its dispatch."""
    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(5):
        write_png(ev / f"p{i}.png", 4000, 4000, seed=i)
    proc = subprocess.run([sys.executable, "-m", "triage", "scan", str(ev), "--case",
                           str(tmp_path / "case"), "--no-match", "--json", "-q", "--jobs",
                           "5", "--memory-budget", "2176", "--timeout", "3"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    pool = json.loads(proc.stdout)["pool"]
    assert pool["decode_grant_capacity_bytes"] == 960 * MIB
    assert pool["decode_grant_peak_bytes"] == decode_cost(4000, 4000, "RGB", ("pdq",))
    assert pool["decodes_waited"] >= 3 and pool["timeouts"] == 0
    statuses = [r["status"] for r in rows(tmp_path / "case", "SELECT status FROM files "
                                                             "WHERE kind='file'")]
    assert statuses == ["done"] * 5
