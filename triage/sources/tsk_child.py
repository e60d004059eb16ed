"""The libtsk enumeration child process, and the supervisor side that runs it.

The child is a fresh interpreter (``python -m triage.sources.tsk_child``): nothing of the
supervisor is inherited (no fork of a threaded process, no re-import of ``__main__``). It
writes length-prefixed pickles to a dedicated pipe; its stdout is sent to stderr so that a
stray print from a library cannot corrupt the stream.

Messages: ``("layout", dict)``, then per volume ``("volume", i)``, ``("entries", [...])``,
``("volume_done", i)``, and finally ``("done",)`` or ``("error", reason)``. The supervisor
side (:func:`run_child`) turns a dead child, a silent child (timeout) and a protocol error
into a final ``("end", reason)``; a clean finish is ``("end", None)``.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

#: Address-space limit of the child (bytes): a damaged file system cannot make libtsk eat
#: the supervisor's machine.
CHILD_MEMORY_LIMIT = 4 << 30
BATCH = 256
BATCH_SECONDS = 0.5
_HEADER = struct.Struct(">I")
_MAX_MESSAGE = 256 << 20


def run_child(path: str, kind: str, mode: str, start: int,
              timeout: float) -> Iterator[tuple[Any, ...]]:
    """Start the child and yield its messages; always ends with ``("end", reason|None)``."""
    # libtsk converts FAT local times with mktime(): the child runs in UTC.
    yield from run_python_child("triage.sources.tsk_child", [path, kind, mode, str(start)],
                                timeout, {"TZ": "UTC"})


def run_python_child(module: str, args: list[str], timeout: float,
                     env_extra: dict[str, str] | None = None) -> Iterator[tuple[Any, ...]]:
    """Run ``python -m module *args WRITE_FD`` and yield the messages it writes to the fd;
    always ends with ``("end", reason|None)``: a dead child, a silent one (no message for
    ``timeout`` seconds: killed) and a protocol error each end with their reason."""
    read_fd, write_fd = os.pipe()
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"]
                                        if env.get("PYTHONPATH") else "")
    env.update(env_extra or {})
    stderr = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, str(write_fd)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            pass_fds=(write_fd,), env=env, close_fds=True)
    except OSError as e:
        os.close(read_fd)
        os.close(write_fd)
        stderr.close()
        yield ("end", f"could not start the enumeration child: {e}")
        return
    os.close(write_fd)
    reader = _Reader(read_fd)
    try:
        while True:
            try:
                msg = reader.next(timeout)
            except TimeoutError:
                proc.kill()
                proc.wait()
                yield ("end", f"hung (no progress for {timeout:g} s; child killed)")
                return
            except EOFError:
                code = proc.wait()
                yield ("end", f"crashed (child {_exit_text(code)}{_tail(stderr)})")
                return
            except (pickle.UnpicklingError, ValueError) as e:
                proc.kill()
                proc.wait()
                yield ("end", f"failed (corrupt message from the child: {e})")
                return
            if msg[0] == "done":
                proc.wait()
                yield ("end", None)
                return
            if msg[0] == "error":
                proc.wait()
                yield ("end", f"failed: {msg[1]}")
                return
            yield msg
    finally:
        os.close(read_fd)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()


def _exit_text(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _tail(f: Any) -> str:
    try:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 400))
        text = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return f"; last message: {text[-1][:200]}" if text else ""


class _Reader:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, n: int, deadline: float) -> None:
        while len(self.buf) < n:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.fd, max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError
            self.buf += chunk

    def next(self, timeout: float) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout
        self._fill(_HEADER.size, deadline)
        (length,) = _HEADER.unpack_from(self.buf)
        if length > _MAX_MESSAGE:
            raise ValueError(f"message of {length} bytes")
        self._fill(_HEADER.size + length, deadline)
        data = bytes(self.buf[_HEADER.size:_HEADER.size + length])
        del self.buf[:_HEADER.size + length]
        msg = pickle.loads(data)  # noqa: S301 - written by our own child over a private pipe
        if not isinstance(msg, tuple) or not msg:
            raise ValueError("not a message tuple")
        return msg


# --------------------------------------------------------------------------- child side


def _send(fd: int, msg: tuple[Any, ...]) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def child_main(path: str, kind: str, mode: str, start: int, fd: int) -> int:
    """Probe the layout and (mode ``walk``) walk volumes ``start``.. sending messages."""
    import resource

    os.dup2(2, 1)  # a library printing to stdout must not reach anything
    time.tzset()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > CHILD_MEMORY_LIMIT:
            resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_LIMIT, hard))
    except (ValueError, OSError):
        pass
    _fault_injection("start")
    from . import base
    from .base import FileEntry
    from .disk_containers import open_container
    from .tsk import ContainerImg, probe_layout, walk_volume

    try:
        container = open_container(path, kind)
        img = ContainerImg(container)
        sector = int(container.describe().get("sector_size") or 512)
        layout = probe_layout(img, sector)
    except Exception as e:  # any failure of the probe is the image's error
        _send(fd, ("error", f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"))
        return 0
    vols = []
    for v in layout.volumes:
        d = asdict(v)
        d["prefix"] = v.prefix.decode()
        vols.append(d)
    _send(fd, ("layout", {"volume_system": layout.volume_system,
                          "sector_size": layout.sector_size,
                          "partitions": layout.partitions, "volumes": vols}))
    if mode == "walk":
        for vol in layout.volumes[start:]:
            _send(fd, ("volume", vol.index))
            if vol.error:
                _send(fd, ("entries", [FileEntry(
                    identity=f"{vol.offset}:volume:error", path=vol.prefix,
                    kind=base.OTHER, preset_status=("error", "enumerate", vol.error))]))
                _send(fd, ("volume_done", vol.index))
                continue
            batch: list[Any] = []
            last = time.monotonic()
            try:
                for entry in walk_volume(img, vol):
                    batch.append(entry)
                    if len(batch) >= BATCH or time.monotonic() - last > BATCH_SECONDS:
                        _send(fd, ("entries", batch))
                        batch = []
                        last = time.monotonic()
                        _fault_injection("walk")
            except Exception as e:  # libtsk error mid-walk: keep what was found
                batch.append(FileEntry(
                    identity=f"{vol.offset}:volume:walk-error", path=vol.prefix,
                    kind=base.OTHER,
                    preset_status=("error", "enumerate",
                                   f"walk of volume at byte offset {vol.offset} stopped: "
                                   f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")))
            if batch:
                _send(fd, ("entries", batch))
            _fault_injection("volume_done")
            _send(fd, ("volume_done", vol.index))
    _send(fd, ("done",))
    return 0


def _fault_injection(stage: str) -> None:
    """Test-only: ``TRIAGE_TSK_FAULT=<stage>:<segv|hang|exit>`` (RELIABILITY: every
    isolation path is tested without real exploits)."""
    spec = os.environ.get("TRIAGE_TSK_FAULT", "")
    if not spec or ":" not in spec:
        return
    want, action = spec.split(":", 1)
    if want != stage:
        return
    if action == "segv":
        import ctypes

        ctypes.string_at(0)  # segmentation fault, like a libtsk crash
    elif action == "hang":
        time.sleep(3600)
    elif action == "exit":
        os._exit(3)


if __name__ == "__main__":
    _path, _kind, _mode, _start, _fd = sys.argv[1:6]
    sys.exit(child_main(_path, _kind, _mode, int(_start), int(_fd)))
