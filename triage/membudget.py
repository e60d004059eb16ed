"""A total memory budget for the scan's workers (issue 11, defect 4).

Each worker has an address-space limit (``RLIMIT_AS``, ``--memory-limit``), but that bounds
one process: eight workers each decoding a large picture at once used to need eight times
that and drove a 24 GB machine into the kernel's OOM killer. The scan therefore also has a
total budget (``--memory-budget``; by default :data:`DEFAULT_BUDGET_FRACTION` of what the
machine, or the control group the scan runs in, has available when the scan starts), and
large picture decodes are admitted against it:

* **The estimate** (:func:`decode_cost`) is known before a single pixel is decoded: Pillow
  opens lazily, so width, height and mode (after JPEG draft reduction) come from the header.
  The cost per pixel is the decoded picture plus what the picture algorithms allocate while
  they run (pdqhash's float luma buffers dominate); the figures are measured, see the
  constants.
* **Where the decision lives.** Only the worker reads evidence (RELIABILITY.md #1: the
  supervisor never parses a header), and only the supervisor sees every worker. So a worker
  that has opened a picture whose estimate is over :data:`FREE_DECODE` asks the supervisor
  for a grant (:class:`GrantRequest`) and blocks until it answers (:class:`GrantReply`);
  smaller decodes (every JPEG at the default draft size, ordinary PNGs) flow freely. The
  supervisor (:class:`Admission`) grants while the sum of granted estimates stays within the
  grant capacity, queues the rest first come first served, and refuses at once a picture
  that could never fit. A grant is returned when the decode and hashing are over
  (:class:`GrantRelease`), and in any case when the worker's task ends, crashes or times out,
  so a crash or a hang costs one file and never leaks budget. A worker waiting for a grant
  is not on its deadline's clock (the supervisor pauses it), and holds no grant.
* **What the budget covers.** The grant capacity is the budget less
  :data:`SUPERVISOR_RESERVE` and :data:`WORKER_RESERVE` per worker (a worker's own memory
  outside grants: interpreter and libraries, a file's bytes while it is read, the decodes
  that flow freely). ``--jobs`` is lowered if the workers' reserves alone would take more
  than half the budget. Each worker's ``RLIMIT_AS`` stays the hard stop, and is never above
  the budget.
* **Refusals are clear.** A picture that cannot fit in the worker's own limit or in the
  budget is not decoded: the file ends ``incomplete`` (a coverage gap) at stage ``decode``,
  an errors row of class :class:`MemoryBudgetExceeded`, a reason naming the estimate and
  the limit.

The two picture defaults agree: :data:`DEFAULT_WORKER_MEMORY` (the default
``--memory-limit``) is derived from :data:`DEFAULT_MAX_PIXELS` (the default
``--max-pixels``), so a picture the pixel limit accepts is never refused by the memory
limit of a worker (only, on a small machine, by the total budget, with that reason).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

MIB = 1 << 20

#: Default ``--max-pixels``: Pillow's hard limit, twice ``PIL.Image.MAX_IMAGE_PIXELS``
#: (``int(1024 * 1024 * 1024 // 4 // 3)`` = 89,478,485 in Pillow's Image.py; Pillow raises
#: DecompressionBombError above twice it).
DEFAULT_MAX_PIXELS = 178_956_970

# Bytes per pixel, measured on Pillow 13.0 / numpy 2.4 / pdqhash 0.2 by
# ``benchmarks/bench_memory.py --calibrate`` (PNG and TIFF pictures of modes 1, L, P, LA,
# I;16, I, F, RGB, RGBA, CMYK, YCbCr and LAB; 6000x6000 and 11000x11000): peak address
# space (VmPeak) and peak resident memory (VmHWM) grew by the same amount, at most these
# figures (F: 0.3 byte over), plus up to about 30 MB per decode whatever its size (decoder
# buffers; inside WORKER_RESERVE).
#: Pillow's storage of a decoded picture: 1 byte per pixel for 1, L and P; 2 for the 16-bit
#: grey modes; 4 for everything else (RGB is stored as 4 bytes per pixel too).
STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
STORED_BYTES_OTHER = 4
#: Pillow's ``convert("RGB")`` of a picture that is not RGB already (a new 4-byte image).
RGB_CONVERSION = 4
#: pdqhash.compute(numpy.asarray(rgb)): the RGB array (3 bytes), the float64 luma sum built
#: by numpy from 3 channel products (two float64 arrays live at once, 16 bytes), the float32
#: luma and the float32 work buffer of the same size (8), plus 1 byte of slack for
#: allocator rounding (measured 27.0 to 27.6 over the decoded picture).
PDQ_WORK = 28
#: imagehash's pHash and dHash: ``convert("L")`` (a 1-byte copy, also of an L picture),
#: then resizes to at most 32x32; plus 1 byte of slack.
GREY_HASH_WORK = 2
#: What each picture algorithm allocates while it runs, on top of the decoded picture:
#: (bytes per pixel, mode it converts to (``None``: none)).
ALGORITHM_WORK: dict[str, tuple[int, str | None]] = {
    "pdq": (PDQ_WORK, "RGB"),
    "phash": (GREY_HASH_WORK, None),
    "dhash": (GREY_HASH_WORK, None),
}
#: An algorithm not in the table (a plug-in, a test's toy) is assumed to cost as much as
#: the costliest known one, conversion included.
UNKNOWN_WORK = PDQ_WORK + RGB_CONVERSION
#: The most any picture costs per pixel with the default algorithms: stored as 4 bytes,
#: converted to RGB (4), PDQ (28).
WORST_BYTES_PER_PIXEL = STORED_BYTES_OTHER + RGB_CONVERSION + PDQ_WORK  # 36
#: A worker's address space besides the picture being decoded: the interpreter and the
#: preloaded libraries (VmSize about 0.3 GiB measured), the file's bytes held for decoding
#: (typically well under 0.5 GiB for the largest pictures) and allocator slack.
WORKER_OVERHEAD = 1 << 30
#: Decodes estimated at most this much need no grant (every JPEG at the default draft size,
#: a 1500x1300 PNG); their memory is part of :data:`WORKER_RESERVE`.
FREE_DECODE = 64 * MIB
#: A worker's memory outside grants, set aside from the budget for each worker: resident
#: interpreter and libraries (about 60 MiB, much of it shared with the forkserver), the
#: decodes that flow freely (:data:`FREE_DECODE`), a file's chunks while it is read, and
#: on a disk image the read-ahead windows of libtsk's and carving's reads (at most 16 and
#: 32 MiB, :class:`triage.sources.disk_containers.ReadAhead`).
WORKER_RESERVE = 192 * MIB
#: The supervisor, the forkserver and an enumeration child: set aside from the budget.
SUPERVISOR_RESERVE = 256 * MIB
#: Share of the available memory the scan takes by default; the rest is left to the page
#: cache that reads the evidence, the case database and the other programs of the machine.
DEFAULT_BUDGET_FRACTION = 0.75
#: Smallest default budget (on a machine that seems to have almost nothing available, the
#: scan still runs one worker; the per-worker limit refuses what does not fit).
MIN_BUDGET = 512 * MIB


def worker_memory_limit(max_pixels: int) -> int:
    """The per-worker address-space limit that lets every picture under ``max_pixels`` be
    decoded and hashed: :data:`WORKER_OVERHEAD` + ``max_pixels`` x
    :data:`WORST_BYTES_PER_PIXEL`, rounded up to a MiB. For the default 178,956,970 pixels:
    1 GiB + 178,956,970 x 36 B = 1,073,741,824 + 6,442,450,920 = 7,516,192,744 B, 7,168 MiB
    (7 GiB)."""
    need = WORKER_OVERHEAD + max_pixels * WORST_BYTES_PER_PIXEL
    return -(-need // MIB) * MIB


#: Default ``--memory-limit`` (per worker), derived from the default ``--max-pixels``.
DEFAULT_WORKER_MEMORY = worker_memory_limit(DEFAULT_MAX_PIXELS)


def decode_cost(width: int, height: int, mode: str, algorithms: Iterable[str]) -> int:
    """Estimated peak bytes to decode a ``width`` x ``height`` picture of Pillow ``mode``
    and run the named picture algorithms on it (they run one after the other, so the
    costliest one counts)."""
    pixels = max(0, width) * max(0, height)
    stored = STORED_BYTES.get(mode, STORED_BYTES_OTHER)
    work = 0
    for name in algorithms:
        per_pixel, target = ALGORITHM_WORK.get(name, (UNKNOWN_WORK, None))
        if target is not None and mode != target:
            per_pixel += RGB_CONVERSION
        work = max(work, per_pixel)
    return pixels * (stored + work)


def mib(n: int) -> str:
    """``n`` bytes as whole MiB, rounded up, for reasons (``"1,536 MiB"``)."""
    return f"{-(-n // MIB):,} MiB"


# -- what the machine has ----------------------------------------------------------------
@dataclass(frozen=True)
class Available:
    """Memory the scan can use: ``nbytes`` (None: unknown) and where the figure came from."""

    nbytes: int | None
    source: str


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _stat_value(path: str, key: str) -> int:
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key and value.strip().isdigit():
                    return int(value)
    except (OSError, UnicodeDecodeError):
        pass
    return 0


def mem_available(meminfo: str = "/proc/meminfo") -> int | None:
    """``MemAvailable`` of /proc/meminfo in bytes (the kernel's estimate of memory that can
    be allocated without swapping), or None."""
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_dirs(proc_cgroup: str, root: str) -> list[tuple[str, str, str, str]]:
    """Directories of this process's memory control group and its ancestors, as
    (directory, limit file, usage file, stat file and key), cgroup v2 and v1."""
    try:
        with open(proc_cgroup, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    found: list[tuple[str, str, str, str]] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2 unified hierarchy
            base, files = root, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            base = os.path.join(root, "memory")
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes",
                     "total_inactive_file")
        else:
            continue
        rel = path.strip("/")
        while True:
            found.append((os.path.join(base, rel) if rel else base, *files))
            if not rel:
                break
            rel = os.path.dirname(rel)
    return found


def cgroup_headroom(proc_cgroup: str = "/proc/self/cgroup",
                    root: str = "/sys/fs/cgroup") -> int | None:
    """The least memory left under any memory limit of this process's control group or its
    ancestors (limit minus usage, reclaimable inactive page cache counted as free), or None
    when no limit is set or none can be read."""
    least: int | None = None
    for directory, limit_file, usage_file, inactive_key in _cgroup_dirs(proc_cgroup, root):
        limit = _read_int(os.path.join(directory, limit_file))
        if limit is None or limit >= 1 << 60:  # "max" (v2) or v1's page-rounded 2^63
            continue
        usage = _read_int(os.path.join(directory, usage_file)) or 0
        usage -= _stat_value(os.path.join(directory, "memory.stat"), inactive_key)
        room = max(0, limit - max(0, usage))
        least = room if least is None else min(least, room)
    return least


def available_memory() -> Available:
    """What the scan may use: the smaller of MemAvailable and the control group's
    headroom."""
    avail = mem_available()
    room = cgroup_headroom()
    if room is not None and (avail is None or room < avail):
        return Available(room, "control group memory limit")
    if avail is not None:
        return Available(avail, "MemAvailable")
    return Available(None, "unknown")


# -- the plan for one scan ---------------------------------------------------------------
@dataclass(frozen=True)
class MemoryPlan:
    """The total budget of one scan and what follows from it."""

    #: Total bytes for the whole process tree; None: no total budget (per-worker limits
    #: only, ``--memory-budget 0``).
    budget: int | None
    #: Where the budget came from: ``--memory-budget``, or the machine figure it derives from.
    source: str
    #: Workers to run (``--jobs``, lowered when the budget cannot carry that many).
    jobs: int
    #: Bytes of decode estimates that may be granted at once (budget less the reserves).
    capacity: int | None
    #: What the user asked for, when it was lowered (for a warning).
    jobs_requested: int

    def describe(self) -> str:
        """``--memory-budget 1,536 MiB``, ``the memory budget 17,000 MiB (75% of
        MemAvailable (22,667 MiB))`` or ``no total memory budget (...)``."""
        if self.budget is None:
            return f"no total memory budget ({self.source})"
        if self.source == "--memory-budget":
            return f"--memory-budget {mib(self.budget)}"
        return f"the memory budget {mib(self.budget)} ({self.source})"

    def worker_limit(self, memory_limit: int | None) -> int | None:
        """A worker's RLIMIT_AS: ``--memory-limit``, never above the total budget."""
        if self.budget is None:
            return memory_limit
        return self.budget if memory_limit is None else min(memory_limit, self.budget)


def plan(requested: int | None, jobs: int, available: Available | None = None) -> MemoryPlan:
    """The budget for a scan with ``jobs`` workers: ``requested`` bytes (``--memory-budget``),
    0 for none, or None for :data:`DEFAULT_BUDGET_FRACTION` of :func:`available_memory`."""
    jobs = max(1, jobs)
    if requested == 0:
        return MemoryPlan(None, "--memory-budget 0 (no total budget)", jobs, None, jobs)
    if requested is not None:
        budget, source = requested, "--memory-budget"
    else:
        avail = available if available is not None else available_memory()
        if avail.nbytes is None:
            return MemoryPlan(None, "available memory unknown (no total budget)", jobs,
                              None, jobs)
        budget = max(MIN_BUDGET, int(avail.nbytes * DEFAULT_BUDGET_FRACTION))
        source = (f"{int(DEFAULT_BUDGET_FRACTION * 100)}% of {avail.source} "
                  f"({mib(avail.nbytes)})")
    # The workers' own reserves may take at most half of what is left for workers.
    allowed = max(1, (budget - SUPERVISOR_RESERVE) // 2 // WORKER_RESERVE)
    run = min(jobs, allowed)
    capacity = max(0, budget - SUPERVISOR_RESERVE - run * WORKER_RESERVE)
    return MemoryPlan(budget, source, run, capacity, jobs)


# -- messages between a worker and the supervisor ----------------------------------------
@dataclass(frozen=True, slots=True)
class GrantRequest:
    """Worker to supervisor: may I allocate ``nbytes`` (a decode estimate)? The worker
    blocks until a :class:`GrantReply`."""

    nbytes: int


@dataclass(frozen=True, slots=True)
class GrantReply:
    """Supervisor to a waiting worker: granted, or refused with the reason."""

    granted: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class GrantRelease:
    """Worker to supervisor: the granted memory is free again (no reply)."""


# -- the supervisor's side ----------------------------------------------------------------
@dataclass
class Admission:
    """The supervisor's ledger of grants: at most ``capacity`` bytes of estimates granted at
    once (None: no limit), the rest queued first come first served. Holders are keyed by
    worker (one grant per worker at most; a new request returns the old grant first)."""

    capacity: int | None
    budget_text: str = ""
    held: dict[int, int] = field(default_factory=dict)
    queue: deque[tuple[int, int]] = field(default_factory=deque)
    in_use: int = 0
    peak: int = 0
    #: Requests that had to wait, and requests refused outright.
    waited: int = 0
    refused: int = 0

    def request(self, key: int, nbytes: int) -> GrantReply | None:
        """A worker asks for ``nbytes``: the reply to send now, or None when it must wait
        (it is granted later by :meth:`release`)."""
        self.release(key)
        if self.capacity is None:
            self._grant(key, nbytes)
            return GrantReply(True)
        if nbytes > self.capacity:
            self.refused += 1
            return GrantReply(False, f"more than the scan's memory budget can give at once "
                                     f"({mib(self.capacity)} {self.budget_text})")
        if not self.queue and self.in_use + nbytes <= self.capacity:
            self._grant(key, nbytes)
            return GrantReply(True)
        self.waited += 1
        self.queue.append((key, nbytes))
        return None

    def release(self, key: int) -> list[int]:
        """``key`` gives its grant back (or stops waiting): the keys granted in turn, in
        order, each to be told with ``GrantReply(True)``."""
        self.in_use -= self.held.pop(key, 0)
        if any(k == key for k, _ in self.queue):
            self.queue = deque((k, n) for k, n in self.queue if k != key)
        granted: list[int] = []
        while self.queue and (self.capacity is None
                              or self.in_use + self.queue[0][1] <= self.capacity):
            k, n = self.queue.popleft()
            self._grant(k, n)
            granted.append(k)
        return granted

    def _grant(self, key: int, nbytes: int) -> None:
        self.held[key] = nbytes
        self.in_use += nbytes
        self.peak = max(self.peak, self.in_use)


# -- the worker's side --------------------------------------------------------------------
class MemoryBudgetExceeded(Exception):
    """A picture was not decoded: its estimate does not fit the worker's memory limit or the
    scan's budget (the message names both)."""


_conn: Connection | None = None
_holding = False


def install(conn: Connection) -> None:
    """In a worker: ask the supervisor at the other end of ``conn`` for grants. Without it
    (a decode outside the pool), only the worker's own limit is checked."""
    global _conn, _holding
    _conn, _holding = conn, False


def _address_space() -> tuple[int, int | None, int | None]:
    """(current VmSize, RLIMIT_AS soft and hard limits or None) of this process."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = 0
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    size = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    unlimited = resource.RLIM_INFINITY
    return (size, None if soft == unlimited else soft, None if hard == unlimited else hard)


def _limit_origin(soft: int, hard: int | None, configured: int | None) -> str:
    """Why a worker's address-space limit is what it is, for a reason text."""
    if configured is not None and soft >= configured:
        return "--memory-limit"
    if hard is not None and soft >= hard:
        return "the address-space limit the scan was started with"
    return "--memory-limit lowered to the scan's memory budget"


def admit(width: int, height: int, mode: str, algorithms: Iterable[str],
          configured_limit: int | None = None) -> int:
    """In a worker, before a picture is decoded: :func:`reserve` its estimate
    (:func:`decode_cost`). Returns the estimate; raises :class:`MemoryBudgetExceeded`."""
    cost = decode_cost(width, height, mode, algorithms)
    reserve(cost, f"picture {width}x{height} ({mode})", "to decode and hash", configured_limit)
    return cost


def reserve(nbytes: int, what: str, purpose: str, configured_limit: int | None = None) -> None:
    """In a worker, before a large allocation (``nbytes`` for ``what`` ``purpose``, for the
    reason text): make sure it fits this worker's address-space limit (``configured_limit``
    is ``--memory-limit``, to say which limit it is) and, when it is over
    :data:`FREE_DECODE`, wait for a grant from the supervisor. Raises
    :class:`MemoryBudgetExceeded` with the reason when it cannot fit. Call :func:`release`
    once the memory is freed (a worker holds one grant at a time: a new reservation returns
    the previous one; the supervisor takes it back in any case when the task ends)."""
    size, limit, hard = _address_space()
    if limit is not None and size + nbytes > limit:
        raise MemoryBudgetExceeded(
            f"{what} needs about {mib(nbytes)} {purpose}; this worker has "
            f"{mib(max(0, limit - size))} of its {mib(limit)} address-space limit free "
            f"({_limit_origin(limit, hard, configured_limit)})")
    if nbytes <= FREE_DECODE or _conn is None:
        return
    global _holding
    _conn.send(GrantRequest(nbytes))
    _holding = True  # the supervisor holds it from now until a release or the task's end
    while True:
        reply = _conn.recv()
        if isinstance(reply, GrantReply):
            break
        # A task queued behind this one (the pool's prefetch, issue 13): kept for
        # next_message(), in order.
        _stash.append(reply)
    if not reply.granted:
        _holding = False
        raise MemoryBudgetExceeded(f"{what} needs about {mib(nbytes)} {purpose}, "
                                   f"{reply.reason}")


#: Messages for the worker's main loop that came while it waited for a grant reply.
_stash: deque[Any] = deque()


def next_message(conn: Connection) -> Any:
    """In a worker: the next message for its main loop (a task or None), those that came
    while it waited for a grant reply first."""
    return _stash.popleft() if _stash else conn.recv()


def release() -> None:
    """In a worker: give back the grant held, if any (a no-op otherwise)."""
    global _holding
    if _holding and _conn is not None:
        _holding = False
        _conn.send(GrantRelease())
