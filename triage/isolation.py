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

The forkserver listens on a Unix socket that multiprocessing puts in its own folder below
``TMPDIR`` (``pymp-XXXXXXXX/listener-XXXXXXXX``), and a Unix socket path holds at most
:data:`MAX_SOCKET_PATH` bytes. When ``TMPDIR`` is too long for that, the socket's folder
alone goes to a short private folder in ``/tmp`` (or ``/var/tmp``), with a warning; the
children's temporary folders stay below ``TMPDIR``. When no child can be started at all (no
such folder, the forkserver cannot start or died), :class:`ChildStartError` stops the
command (exit code 1): it is this machine's problem, never a file's. So does a forkserver
that does not start a child within :func:`child_start_seconds` (stopped, stuck in an import
of its preload list, not answering on its socket): it is killed, and no child outlives the
command by more than a second (each ends itself when its supervisor is gone).

:func:`stream` runs a child that streams messages (enumeration) and turns a death, a
silence longer than the timeout and a protocol error into a final ``("end", reason)``.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection
from typing import Any

from .errors import TriageError, UsageError

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
#: Longest path of a Unix socket (``sun_path`` holds 108 bytes with the terminating NUL).
MAX_SOCKET_PATH = 107
#: What multiprocessing puts below its folder (:func:`multiprocessing.util.get_temp_dir`,
#: ``pymp-XXXXXXXX`` below ``TMPDIR``) for the forkserver's socket.
SOCKET_NAME = "/listener-XXXXXXXX"
#: Where the socket's folder goes when ``TMPDIR`` is too long, first usable wins.
SHORT_SOCKET_BASES = ("/tmp", "/var/tmp")  # noqa: S108 - only as mkdtemp(dir=...): 0700
#: Prefix of that folder (0700, holds the socket only, removed at exit); the pid after it
#: lets a later scan remove the folder of a scan that was killed.
SOCKET_DIR_PREFIX = "triage-sock-"
#: Longest wait for the forkserver to start one child (seconds), unless
#: :data:`CHILD_START_ENV` says otherwise: the first start includes the forkserver's imports
#: of :func:`preload` (about 0.4 s here; tens of seconds from a cold network file system),
#: any later one a fork. Past it the forkserver is taken for hung (:func:`spawn`).
CHILD_START_SECONDS = 120.0
#: Environment variable that sets :data:`CHILD_START_SECONDS` (seconds, above 0).
CHILD_START_ENV = "TRIAGE_CHILD_START_SECONDS"
#: How long a hung forkserver is given to die once killed before it is left to the system.
KILL_WAIT_SECONDS = 5.0


class ChildStartError(TriageError):
    """No isolated child can be started (the forkserver cannot be started or reached, its
    socket path is too long, no temporary folder): a problem of this machine's setup, not of
    any file. Exit code 1; nothing is recorded against a file."""


@cache
def context() -> Any:
    """The forkserver context shared by all children (its preload list is set once, before
    the server starts)."""
    ctx = mp.get_context("forkserver")
    short_socket_dir()
    ctx.set_forkserver_preload(preload())
    return ctx


def short_socket_dir() -> str | None:
    """Make sure the forkserver's socket path fits in :data:`MAX_SOCKET_PATH`: when the
    folder multiprocessing would use (below ``TMPDIR``) is too long, give it a short private
    folder (0700, in the first usable of :data:`SHORT_SOCKET_BASES`, removed at exit) and
    warn on stderr. Returns that folder, or None when ``TMPDIR`` is fine. Raises
    :class:`ChildStartError` naming ``TMPDIR`` and the limit when no such folder can be
    made."""
    from multiprocessing import util

    config = mp.current_process()._config  # type: ignore[attr-defined]
    chosen = config.get("tempdir")
    if chosen is None:  # multiprocessing would make pymp-XXXXXXXX below the temp folder
        would_be = os.path.join(tempfile.gettempdir(), "pymp-XXXXXXXX")
    else:
        would_be = chosen
    length = len(os.fsencode(would_be + SOCKET_NAME))
    if length <= MAX_SOCKET_PATH:
        return None
    tmpdir = tempfile.gettempdir()
    for base in SHORT_SOCKET_BASES:
        remove_stale_tmpdirs(base, SOCKET_DIR_PREFIX)
        try:
            short = tempfile.mkdtemp(prefix=f"{SOCKET_DIR_PREFIX}{os.getpid()}-", dir=base)
        except OSError:
            continue
        if len(os.fsencode(short + SOCKET_NAME)) > MAX_SOCKET_PATH:  # a very long base
            os.rmdir(short)
            continue
        config["tempdir"] = short
        # As multiprocessing does for its own folder: removed by its exit handler.
        util.Finalize(None, shutil.rmtree, args=(short,), kwargs={"ignore_errors": True},
                      exitpriority=-100)
        sys.stderr.write(f"warning: TMPDIR ({tmpdir}) is too long for the worker "
                         f"processes' Unix socket ({length} bytes, at most "
                         f"{MAX_SOCKET_PATH}): the socket goes to {short} (private, "
                         "removed at the end); temporary files stay in TMPDIR\n")
        sys.stderr.flush()
        return short
    raise ChildStartError(
        f"TMPDIR ({tmpdir}) is too long for the worker processes' Unix socket "
        f"({length} bytes, at most {MAX_SOCKET_PATH}) and no private folder could be made "
        f"in {' or '.join(SHORT_SOCKET_BASES)}: set TMPDIR to a shorter path")


def ensure_running() -> None:
    """Start the forkserver if it is not running (without waiting for its imports).
    Raises :class:`ChildStartError` with the reason when it cannot be started, and
    :class:`~triage.errors.UsageError` for a bad :data:`CHILD_START_ENV`: called before a
    command records anything, so that no file is charged with it."""
    from multiprocessing import forkserver

    context()
    child_start_seconds()  # a bad TRIAGE_CHILD_START_SECONDS: refused before any work
    try:
        forkserver.ensure_running()
    except OSError as e:
        raise ChildStartError(f"the worker processes' forkserver cannot start: {e}") from e


def start_early() -> None:
    """Start the forkserver now, without waiting for it: it imports :data:`PRELOAD` (about
    0.4 s) in its own process while the supervisor opens the evidence and the case, instead
    of when the first child is needed. Never raises: :func:`ensure_running` and the first
    :func:`spawn` report the same problem properly."""
    try:
        ensure_running()
    except Exception:  # noqa: S110 - reported by ensure_running() or spawn()
        pass


def child_start_seconds() -> float:
    """The bound on one child's start: :data:`CHILD_START_ENV` when set, else
    :data:`CHILD_START_SECONDS`. Raises :class:`~triage.errors.UsageError` (exit code 2) for
    a value that is not a number of seconds above 0."""
    text = os.environ.get(CHILD_START_ENV, "").strip()
    if not text:
        return CHILD_START_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value < math.inf):
        raise UsageError(f"{CHILD_START_ENV}={text!r}: needs a number of seconds above 0")
    return value


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
    :data:`TMP_PREFIX` and this process's pid in the name). Raises
    :class:`ChildStartError` when the process cannot be started, or is not started within
    :func:`child_start_seconds` (the forkserver hangs: it is killed); never a file's fault."""
    ctx = context()
    try:
        if tmp_root is None:
            tmpdir = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        else:
            tmpdir = tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_root)
    except OSError as e:
        raise ChildStartError(f"cannot make a child's temporary folder: {e}") from e
    try:
        parent, child = ctx.Pipe(duplex=True)
    except OSError as e:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise ChildStartError(f"cannot make a child's pipe: {e}") from e
    proc = ctx.Process(target=_child_main,
                       args=(child, target, args, memory_limit, tmpdir, os.getpid(),
                             dict(os.environ)),
                       name=f"triage-{name}", daemon=True)
    try:
        _start_within(proc, child_start_seconds())
    except BaseException as e:
        parent.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
        if isinstance(e, OSError | EOFError):  # EOF: the forkserver died before forking
            raise ChildStartError(f"the forkserver cannot start a child process: "
                                  f"{e.__class__.__name__}: {e}") from e
        raise
    finally:
        child.close()
    return Child(proc, parent, tmpdir)


def _start_within(proc: Any, seconds: float) -> None:
    """``proc.start()``, given at most ``seconds``; raises :class:`ChildStartError` naming
    the forkserver and its state when it is not done by then, after killing the forkserver.

    multiprocessing's start has no timeout and blocks at several places when the forkserver
    does not serve (connecting to its socket once the backlog is full, writing the child's
    data to a full pipe, and above all reading the new child's pid back, which a stopped
    forkserver, or one stuck importing its preload list, never writes). Rather than
    re-implement that protocol with a timeout on each step (private, version-dependent
    code), the start runs in a daemon thread and this thread waits for it with a deadline.
    On expiry the forkserver is killed with SIGKILL (which also ends a stopped process) and
    reaped: its end of the pipes closes, so the start fails at once (EOF, broken pipe) and
    the thread ends; the next :func:`ensure_running` would start a new forkserver.

    Left behind, for at most :data:`WATCHDOG_SECONDS` after the supervisor exits (which the
    :class:`ChildStartError` makes it do): a child forked in the instant before the kill,
    whose pid never reached this process, and the children already running, whose exit
    status came from the killed forkserver (so :meth:`Child.discard` takes them for dead).
    Each ends itself when its watchdog sees the supervisor gone (cold review)."""
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            proc.start()
        except BaseException as e:  # handed to the waiting thread
            outcome.append(e)
        else:
            outcome.append(None)

    starter = threading.Thread(target=start, name=f"start-{proc.name}", daemon=True)
    starter.start()
    starter.join(seconds)
    if not starter.is_alive():
        if outcome[0] is not None:
            raise outcome[0]
        return
    pid, state = _kill_forkserver()
    starter.join(KILL_WAIT_SECONDS)
    if outcome and outcome[0] is None:  # forked at the last moment: not wanted any more
        proc.kill()
        proc.join(5)
    raise ChildStartError(
        f"the worker processes' forkserver (pid {pid}) did not start a child process within "
        f"{seconds:g} s: {state}. It was killed ({CHILD_START_ENV} sets the wait)")


#: A process's state letter in /proc/PID/stat (proc(5)), as a reason for a hung forkserver.
_STATES = {
    "T": "it is stopped (SIGSTOP)",
    "t": "it is stopped by a debugger",
    "D": "it is stuck in uninterruptible I/O",
    "S": "it is asleep: stuck in an import of its preload list, or not answering",
    "R": "it is busy running: still importing its preload list, or looping",
    "Z": "it is dead",
}


def _kill_forkserver() -> tuple[int | None, str]:
    """Kill the forkserver (SIGKILL) and, once it is dead, reap it and remove its socket
    (multiprocessing's own stop); returns its pid and what it was doing (its state before
    the kill). A process in uninterruptible I/O dies only when that ends: it is given
    :data:`KILL_WAIT_SECONDS`, then left to die on its own (never waited for without a
    bound)."""
    from multiprocessing import forkserver

    server: Any = forkserver._forkserver  # private: its pid, its stop
    pid = server._forkserver_pid
    if pid is None:
        return None, "it is not running"
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            letter = f.read().rsplit(b")", 1)[1].split()[0].decode()
        state = _STATES.get(letter, f"its state is {letter}")
    except (OSError, IndexError, UnicodeDecodeError):
        state = "its state is unknown"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while True:
        try:  # dead? (WNOWAIT: left to be reaped by _stop)
            dead = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            dead = True
        if dead or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if dead:
        try:
            server._stop()  # closes its "alive" pipe, reaps it, removes its socket
        except OSError:
            pass
    return pid, state


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
    message ...)``. The child never outlives the iteration. A child that cannot be started
    raises :class:`ChildStartError` (nothing about the evidence)."""
    child = spawn(target, args, name=name, memory_limit=memory_limit)
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


def _probe_main(conn: Connection) -> None:
    from . import faults

    faults.check("children", "*")
    conn.send(("done",))


def check_children(timeout: float = 60.0) -> None:
    """Start one trivial isolated child and wait for it to finish. Raises
    :class:`ChildStartError` with the reason when children cannot be started or do not run
    on this machine: for a process that must refuse work before it is given any file (a
    cluster node, :mod:`triage.cluster_node`)."""
    for msg in stream(_probe_main, (), timeout, name="probe", memory_limit=None):
        if msg[0] == "end" and msg[1] is not None:
            raise ChildStartError(f"a test child process {msg[1]}")


def remove_stale_tmpdirs(base: str | None = None, prefix: str = TMP_PREFIX) -> None:
    """Remove private temporary directories (``prefix`` and a pid, in ``base``, default the
    system's temporary folder) left by scans that were killed (their pid is gone)."""
    base = tempfile.gettempdir() if base is None else base
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix):].split("-", 1)[0]
        path = os.path.join(base, name)
        try:
            if not pid_text.isdigit() or os.lstat(path).st_uid != os.getuid():
                continue  # not ours (a shared /tmp)
        except OSError:
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            continue
