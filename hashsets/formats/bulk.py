"""Vectorised helpers for the bulk import path (:meth:`Format.parse_bulk`).

Large hash lists are read in blocks of whole lines, hex is decoded and validated with a
lookup table over whole arrays, and only the odd lines (blank, comment, padded, bad) go
through the per-line Python code of the format, so the result is identical to ``parse``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .bounds import ImportLimits, line_too_long

#: Bytes read per block (whole lines only are processed; the rest carries over).
BLOCK_BYTES = 8 << 20
_BOM = b"\xef\xbb\xbf"

#: ASCII byte -> hex digit value, 255 for anything that is not a hex digit.
HEX_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    HEX_LUT[_c] = _i
for _i, _c in enumerate(b"ABCDEF", 10):
    HEX_LUT[_c] = _i

Int64s = npt.NDArray[np.int64]
Bytes2D = npt.NDArray[np.uint8]


def line_blocks(path: Path, block_bytes: int | None = None, *,
                limits: ImportLimits | None = None
                ) -> Iterator[tuple[npt.NDArray[np.uint8], Int64s, Int64s, int]]:
    """Blocks of complete lines: ``(data, starts, ends, first line number)``.

    Line ``i`` of a block is ``data[starts[i]:ends[i]]`` (without its terminator; a ``\\r``
    before ``\\n`` stays in it). Lines end like Python's text files opened with
    ``newline=""``: at ``\\n``, ``\\r\\n`` or a lone ``\\r``. A UTF-8 BOM at the start of the
    file is skipped, as ``utf-8-sig`` does. A line longer than ``limits.line_bytes`` raises
    the same error as :class:`~hashsets.formats.bounds.LineReader` (same line number).
    """
    limits = limits or ImportLimits()
    bound = limits.line_bytes
    size = block_bytes or BLOCK_BYTES
    lineno = 1
    carry = b""
    first = True
    with open(path, "rb") as f:
        while True:
            chunk = f.read(size)
            eof = not chunk
            buf = carry + chunk if carry else chunk
            if first and (len(buf) >= len(_BOM) or eof):
                if buf.startswith(_BOM):
                    buf = buf[len(_BOM):]
                first = False
            if not eof:
                # The last line end: \n, or a \r that is not the last byte (a lone \r,
                # or \r\n and then \n is later still); what follows is one partial line.
                cut = max(buf.rfind(b"\n"), buf.rfind(b"\r", 0, len(buf) - 1))
                if cut < 0 or first:
                    if len(buf) > bound + 1 and not first:
                        _check_lengths(path, np.frombuffer(buf, dtype=np.uint8), lineno,
                                       limits, partial=True)
                    carry = buf
                    continue
                carry, buf = buf[cut + 1:], buf[:cut + 1]
            elif not buf:
                return
            a = np.frombuffer(buf, dtype=np.uint8)
            nxt = np.zeros_like(a)
            nxt[:-1] = a[1:]
            ends = np.flatnonzero((a == 10) | ((a == 13) & (nxt != 10))).astype(np.int64)
            if eof and (len(ends) == 0 or ends[-1] != len(a) - 1):
                ends = np.append(ends, np.int64(len(a)))  # a last line without terminator
            starts = np.empty_like(ends)
            if len(ends):
                starts[0] = 0
                starts[1:] = ends[:-1] + 1
            if len(ends) and int((ends - starts).max()) > bound:
                _check_lengths(path, a, lineno, limits)
            if not eof and len(carry) > bound + 1:
                _check_lengths(path, a, lineno, limits)  # the block's lines come first
                _check_lengths(path, np.frombuffer(carry, dtype=np.uint8),
                               lineno + len(ends), limits, partial=True)
            yield a, starts, ends, lineno
            lineno += len(ends)
            if eof:
                return


def _check_lengths(path: Path, a: npt.NDArray[np.uint8], lineno: int, limits: ImportLimits,
                   partial: bool = False) -> None:
    """Raise for the first line of ``a`` (numbered from ``lineno``) longer than the bound,
    measured as the line reader does; ``partial``: ``a`` is the start of a line whose end
    has not been read yet."""
    nxt = np.zeros_like(a)
    nxt[:-1] = a[1:]
    ends = np.flatnonzero((a == 10) | ((a == 13) & (nxt != 10))).astype(np.int64)
    ends = np.append(ends, np.int64(len(a)))
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    lengths = content_lengths(a, starts, ends) if len(a) else ends - starts
    if partial and len(a) and a[-1] == 13:
        lengths[-1] -= 1  # a \r at the very end may be the start of \r\n
    over = np.flatnonzero(lengths > limits.line_bytes)
    if len(over):
        i = int(over[0])
        raise line_too_long(path, lineno + i, limits)


def content_lengths(data: npt.NDArray[np.uint8], starts: Int64s, ends: Int64s) -> Int64s:
    """Line lengths without a trailing ``\\r`` (the ``\\r`` of ``\\r\\n``)."""
    lengths = ends - starts
    last = np.maximum(ends - 1, 0)
    has_cr = (lengths > 0) & (data[last] == 13)
    return lengths - has_cr


def decode_fixed(data: npt.NDArray[np.uint8], starts: Int64s, n_hex: int
                 ) -> tuple[Bytes2D, npt.NDArray[np.bool_]]:
    """Decode ``n_hex`` hex digits at each start: ``(raw bytes (n, n_hex/2), valid rows)``.

    Rows with any non-hex digit are marked invalid (their bytes are garbage)."""
    if len(starts) == 0:
        return np.zeros((0, n_hex // 2), dtype=np.uint8), np.zeros(0, dtype=bool)
    windows = np.lib.stride_tricks.sliding_window_view(data, n_hex)
    nib = HEX_LUT[windows[starts]]
    valid = nib.max(axis=1) < 16
    raw = ((nib[:, 0::2] << 4) | nib[:, 1::2]).astype(np.uint8)
    return raw, valid


def decode_hex_column(values: list[str], n_hex: int) -> Bytes2D | None:
    """Decode a column of hex strings that must all be exactly ``n_hex`` digits.

    Returns None when any is not (the caller then checks value by value)."""
    n = len(values)
    if n == 0:
        return np.zeros((0, n_hex // 2), dtype=np.uint8)
    try:
        if min(map(len, values)) != n_hex or max(map(len, values)) != n_hex:
            return None
        raw = bytes.fromhex("".join(values))
    except (ValueError, TypeError):  # not hex, or not text at all
        return None
    if len(raw) != n * (n_hex // 2):  # fromhex skips whitespace: then the count is short
        return None
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, n_hex // 2)
