"""Length-prefixed frames over a pair of byte streams (the pipes between the supervisor, the
Dask client, the Dask-side task and a node).

A frame is an 8-byte big-endian length and that many bytes of a pickle holding only
built-in types (dict, list, str, bytes, int, float, bool, None): this side unpickles them
without importing :mod:`triage`. Whatever belongs to triage travels as ``bytes`` inside.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
from collections.abc import Callable
from typing import IO, Any

_HEADER = struct.Struct(">Q")
#: The largest frame accepted (a batch of entries or results is far smaller).
MAX_FRAME = 1 << 30


class FrameError(EOFError):
    """The stream ended or held something that is not a frame."""


class _BuiltinsOnly(pickle.Unpickler):
    """An unpickler that refuses every class: a frame holds built-in containers and scalars
    only (those need no class lookup), never a triage object."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"frame holds {module}.{name}: only built-in types may "
                                     "cross this pipe")


def write(stream: IO[bytes], message: dict[str, Any]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read(stream: IO[bytes]) -> dict[str, Any]:
    head = _read_exactly(stream, _HEADER.size)
    (size,) = _HEADER.unpack(head)
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes announced (at most {MAX_FRAME})")
    message = _BuiltinsOnly(io.BytesIO(_read_exactly(stream, size))).load()
    if not isinstance(message, dict):
        raise FrameError("frame is not a message")
    return message


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    parts = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise FrameError("the other end closed the pipe")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def serve_stdio(serve: Callable[[IO[bytes], IO[bytes]], None]) -> None:
    """Run ``serve(stdin, out)`` as a process's main: ``out`` is the original stdout, which
    then carries frames only; whatever a library prints goes to stderr instead. The other
    end closing the pipe ends the process quietly."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        serve(sys.stdin.buffer, out)
    except (FrameError, BrokenPipeError):
        pass
