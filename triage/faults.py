"""Test-only fault injection (RELIABILITY.md: every isolation path is tested without
real exploits).

Set ``TRIAGE_INJECT_FAULT`` to one or more ``STAGE:KIND:PATTERN`` items separated by ``;``:

* STAGE: in a worker: ``open``, ``read``, ``identify``, ``decode``, ``hash`` (perceptual),
  ``expand`` (containers); in the directory enumeration child: ``enumerate`` (pattern
  matched against the folder's display path, ``.`` for the root); in the supervisor:
  ``write`` (a batch of results; pattern ``*``) and ``match`` (the matching step; pattern
  ``*``), where only ``exception`` is meaningful: a crash or hang of the supervisor itself
  is what kill-and-resume covers.
  ``children`` (pattern ``*``): the trivial child a cluster node starts before it accepts
  a scan (:func:`triage.isolation.check_children`).
* KIND: ``segfault`` (SIGSEGV), ``abort`` (SIGABRT), ``hang`` (sleeps forever),
  ``memory`` (allocates until the memory limit), ``exception`` (raises RuntimeError),
  ``exit`` (the worker exits at once), ``slow`` (sleeps 0.1 s and goes on: makes a scan
  slow enough to be killed at chosen moments in kill-and-resume tests), ``slow=SECONDS``
  (the same for a chosen time: keeps a file in one stage long enough to kill the scan
  there)
* PATTERN: an ``fnmatch`` pattern matched against the entry's display path

A scan run with the switch set records it in the run's options, so a report made from such
a case shows that faults were injected.
"""

from __future__ import annotations

import ctypes
import fnmatch
import os
import signal
import time
from functools import cache

ENV = "TRIAGE_INJECT_FAULT"
KINDS = ("segfault", "abort", "hang", "memory", "exception", "exit", "slow")
SLOW_SECONDS = 0.1


class InjectedFault(RuntimeError):
    """The exception raised by an ``exception`` fault."""


@cache
def _rules(spec: str) -> tuple[tuple[str, str, str], ...]:
    rules = []
    for item in spec.split(";"):
        if not item.strip():
            continue
        stage, kind, pattern = item.strip().split(":", 2)
        if kind.startswith("slow="):
            try:
                float(kind[5:])
            except ValueError:
                raise ValueError(f"{ENV}: {kind!r}: slow=SECONDS needs a number") from None
        elif kind not in KINDS:
            raise ValueError(f"{ENV}: unknown fault kind {kind!r} (known: {', '.join(KINDS)})")
        rules.append((stage, kind, pattern))
    return tuple(rules)


def active() -> str | None:
    return os.environ.get(ENV) or None


def check(stage: str, display_path: str) -> None:
    """Trigger the configured fault if this stage and path match (no-op otherwise)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    for r_stage, kind, pattern in _rules(spec):
        if r_stage == stage and fnmatch.fnmatchcase(display_path, pattern):
            _trigger(kind, stage, display_path)


def _trigger(kind: str, stage: str, path: str) -> None:
    if kind == "slow" or kind.startswith("slow="):
        time.sleep(float(kind[5:]) if "=" in kind else SLOW_SECONDS)
        return
    if kind == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
        ctypes.string_at(0)  # in case SIGSEGV is caught somewhere
    elif kind == "abort":
        os.abort()
    elif kind == "hang":
        while True:
            time.sleep(3600)
    elif kind == "memory":
        hog = []
        while True:
            hog.append(bytearray(64 << 20))
    elif kind == "exit":
        os._exit(3)
    raise InjectedFault(f"injected fault at stage {stage} for {path}")
