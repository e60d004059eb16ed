"""The one isolated-child mechanism (triage.isolation) behind workers and enumeration:
environment as the supervisor has it now, limits, no core dumps, discarded output, private
temporary folder removed afterwards, deadlines, deaths described by signal name."""

from __future__ import annotations

import ctypes
import os
import resource
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from triage import isolation


def _report(conn: Connection) -> None:
    tmp = os.environ["TMPDIR"]
    conn.send(("state", os.environ.get("ISO_TEST"), tmp, os.path.isdir(tmp),
               oct(os.stat(tmp).st_mode & 0o777), resource.getrlimit(resource.RLIMIT_CORE),
               resource.getrlimit(resource.RLIMIT_AS)[0],
               [os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)]))
    conn.send(("done",))


def _crash(conn: Connection) -> None:
    conn.send(("entries", [1, 2]))
    ctypes.string_at(0)


def _hang(conn: Connection) -> None:
    conn.send(("entries", []))
    time.sleep(3600)


def test_child_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISO_TEST", "set after the forkserver started")
    messages = list(isolation.stream(_report, (), 30, name="t", memory_limit=1 << 30))
    assert messages[-1] == ("end", None)
    (tag, env, tmp, existed, mode, core, mem, outputs), = messages[:-1]
    assert (tag, env, existed, mode) == ("state", "set after the forkserver started", True,
                                          "0o700")
    assert core == (0, 0) and mem == 1 << 30
    assert Path(tmp).name.startswith(f"{isolation.TMP_PREFIX}{os.getpid()}-")
    assert not Path(tmp).exists()                # removed with the child
    assert outputs == [os.devnull, os.devnull]   # native chatter never reaches a terminal


def test_death_and_silence_end_the_stream_with_a_reason() -> None:
    crashed = list(isolation.stream(_crash, (), 30, name="t"))
    assert crashed == [("entries", [1, 2]),
                       ("end", "crashed (child killed by signal SIGSEGV (11))")]
    hung = list(isolation.stream(_hang, (), 1, name="t"))
    assert hung == [("entries", []), ("end", "hung (no progress for 1 s; child killed)")]


def test_describe_exit() -> None:
    assert isolation.describe_exit(-9) == "killed by signal SIGKILL (9)"
    assert isolation.describe_exit(3) == "exited with status 3"
    assert isolation.describe_exit(None) == "ended in an unknown way"
