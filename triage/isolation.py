"""Isolated child processes: the one mechanism behind the worker pool and every enumeration
child (directory walk, libtsk probe and walk).

Anything that touches evidence content or runs native parsers on it (libtsk, libmagic,
Pillow's codecs, archive libraries) runs in a child started here, never in the supervisor
(RELIABILITY.md #1). Every child:

* is forked from one forkserver, a fresh interpreter that has already imported the heavy
  modules (:data:`PRELOAD`): replacing a dead child is cheap, and nothing of the supervisor
  is inherited (no SQLite handle, no lock, no thread);
* gets the supervisor's environment as it is when the child is started (the forkserver's
  own is frozen at its start);
* runs with core dumps off (a core file would hold evidence content) and an address-space
  limit (``RLIMIT_AS``), with stdout and stderr discarded (native libraries print
  diagnostics; problems reach the case as statuses, not as terminal noise), SIGINT ignored
  (the supervisor decides about Ctrl-C), its own private temporary directory (0700, removed
  with the child) as ``TMPDIR``, and a watchdog that ends it within a second once the
  supervisor is gone (``kill -9``), so no child outlives the scan holding evidence open;
* talks to the supervisor over its own pipe (:class:`Child.conn`);
* is given a deadline by its caller and killed with SIGKILL when it passes it; a death is
  described by signal name (:func:`describe_exit`).

:func:`stream` runs a child that streams messages (enumeration) and turns a death, a
silence longer than the timeout and a protocol error into a final ``("end", reason)``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection
from typing import Any

#: Modules the forkserver imports once, so that every child starts with them loaded (the
#: worker, its decoders, libmagic; the hashing libraries come from the algorithm registry,
#: see ``preload``). A module missing here is imported by the child.
PRELOAD = ("triage.worker", "triage.members", "PIL.Image", "magic")
#: Address-space limit of an enumeration child (bytes): a damaged file system cannot make
#: libtsk eat the machine. Workers take theirs from ``scan --memory-limit``, never above the
#: scan's total budget (:mod:`triage.membudget`).
ENUMERATION_MEMORY_LIMIT = 4 << 30
#: Largest message accepted from an enumeration child (a batch of entries is far smaller).
MAX_MESSAGE = 256 << 20
#: Prefix of every private temporary directory; the pid after it lets a later scan remove
#: the directories of a scan that was killed before it could clean up.
TMP_PREFIX = "triage-work-"
#: How often a child checks that its supervisor is still alive (seconds).
WATCHDOG_SECONDS = 1.0


@cache
def context() -> Any:
    """The forkserver context shared by all children (its preload list is set once, before
    the server starts)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(preload())
    return ctx


def preload() -> list[str]:
    """PRELOAD, then the libraries of every algorithm a scan computes and the modules that
    define them (from the registry, :mod:`hashsets.algorithms`)."""
    from hashsets.algorithms import computed

    algs = computed()
    return [*PRELOAD, *sorted({lib for a in algs for lib in a.libraries}),
            *sorted({type(a).__module__ for a in algs})]


def describe_exit(exitcode: int | None) -> str:
    """How a child ended, for a reason text: ``killed by signal SIGSEGV (11)``, ``exited
    with status 3``."""
    if exitcode is None:
        return "ended in an unknown way"
    if exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name} ({-exitcode})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def limit_resources(memory_limit: int | None) -> None:
    """In a child: no core dumps; address space capped at ``memory_limit`` bytes (never
    raised above an existing hard limit)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # never write a core dump of evidence
    if memory_limit:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _watch_supervisor(pid: int) -> None:
    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_SECONDS)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="supervisor-watchdog", daemon=True).start()


def _child_main(conn: Connection, target: Callable[..., Any], args: tuple[Any, ...],
                memory_limit: int | None, tmpdir: str, supervisor_pid: int,
                environ: dict[str, str]) -> None:
    """Entry point of every child: set up the isolation, then run ``target(conn, *args)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(environ)
    os.environ["TMPDIR"] = tmpdir
    tempfile.tempdir = tmpdir
    _watch_supervisor(supervisor_pid)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    limit_resources(memory_limit)
    target(conn, *args)


class ChildDied(Exception):
    """The child's pipe closed: it exited or was killed."""


@dataclass
class Child:
    """A running child: its process, its end of the pipe and its temporary directory."""

    process: Any
    conn: Connection
    tmpdir: str

    def recv(self, timeout: float, max_bytes: int = MAX_MESSAGE) -> tuple[Any, ...]:
        """The next message (a non-empty tuple). Raises :class:`TimeoutError` after
        ``timeout`` seconds of silence, :class:`ChildDied` when the pipe closed and
        :class:`ValueError` for anything that is not a message."""
        try:
            ready = self.conn.poll(timeout)
        except (EOFError, OSError):
            raise ChildDied from None
        if not ready:
            raise TimeoutError  # an OSError: raised outside the handler below
        try:
            data = self.conn.recv_bytes(max_bytes)
        except EOFError:
            raise ChildDied from None
        except OSError as e:  # longer than max_bytes, or a broken pipe
            if not self.process.is_alive():
                raise ChildDied from None
            raise ValueError(f"unreadable message: {e}") from e
        try:
            msg = pickle.loads(data)  # noqa: S301 - written by our own child, private pipe
        except Exception as e:
            raise ValueError(f"{e.__class__.__name__}: {e}") from e
        if not isinstance(msg, tuple) or not msg:
            raise ValueError("not a message tuple")
        return msg

    def death(self) -> str:
        """Wait (briefly) for a child whose pipe closed and describe how it ended."""
        self.process.join(5)
        return describe_exit(self.process.exitcode)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)

    def discard(self, grace: float = 0.0) -> None:
        """Give the child ``grace`` seconds to exit, kill it, close the pipe and remove its
        temporary directory."""
        if grace > 0:
            self.process.join(grace)
        self.kill()
        self.conn.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def spawn(target: Callable[..., Any], args: tuple[Any, ...] = (), *, name: str,
          memory_limit: int | None, tmp_root: str | None = None) -> Child:
    """Start ``target(conn, *args)`` in an isolated child (see the module docstring).

    ``target`` must be importable by name (a module-level function); ``tmp_root`` is where
    the child's private temporary directory is made (default: the system's, with
    :data:`TMP_PREFIX` and this process's pid in the name). Raises ``OSError`` when the
    process cannot be started."""
    ctx = context()
    if tmp_root is None:
        tmpdir = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
    else:
        tmpdir = tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_root)
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child_main,
                       args=(child, target, args, memory_limit, tmpdir, os.getpid(),
                             dict(os.environ)),
                       name=f"triage-{name}", daemon=True)
    try:
        proc.start()
    except BaseException:
        parent.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    finally:
        child.close()
    return Child(proc, parent, tmpdir)


def shared_int() -> Any:
    """An integer shared with a child without a message (a worker's current stage)."""
    return context().RawValue("i", 0)


def stream(target: Callable[..., Any], args: tuple[Any, ...], timeout: float, *,
           name: str, memory_limit: int | None = ENUMERATION_MEMORY_LIMIT,
           ) -> Iterator[tuple[Any, ...]]:
    """Run a child that sends messages and finishes with ``("done",)`` or
    ``("error", reason)``; yield its other messages and always end with
    ``("end", None)`` (clean finish) or ``("end", reason)``: ``failed: ...`` (the child's
    own error), ``crashed (child killed by signal ...)``, ``hung (no progress for N s;
    child killed)`` when no message came for ``timeout`` seconds, ``failed (corrupt
    message ...)``. The child never outlives the iteration."""
    try:
        child = spawn(target, args, name=name, memory_limit=memory_limit)
    except OSError as e:
        yield ("end", f"could not start the child process: {e}")
        return
    finished = False  # the child said it is done: let it exit on its own
    try:
        while True:
            try:
                msg = child.recv(timeout)
            except TimeoutError:
                child.kill()
                yield ("end", f"hung (no progress for {timeout:g} s; child killed)")
                return
            except ChildDied:
                yield ("end", f"crashed (child {child.death()})")
                return
            except ValueError as e:
                child.kill()
                yield ("end", f"failed (corrupt message from the child: {e})")
                return
            if msg[0] in ("done", "error"):
                finished = True
                yield ("end", None if msg[0] == "done" else f"failed: {msg[1]}")
                return
            yield msg
    finally:
        child.discard(grace=5.0 if finished else 0.0)


def remove_stale_tmpdirs() -> None:
    """Remove private temporary directories left by scans that were killed (their pid is
    gone)."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(TMP_PREFIX):
            continue
        pid_text = name[len(TMP_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except PermissionError:
            continue
