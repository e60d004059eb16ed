"""Compiled inner loops of :class:`hashsets.matching.NearIndex` (multi-index hashing).

Written with numba (LLVM-compiled Python) because no library does exact Hamming range
search at 10 million known values within 2 GB: faiss's ``IndexBinaryMultiHash`` is exact
with ``nhash * (nflip + 1) > t`` but keeps a hash map of id vectors per table (measured
0.93 GB per million 256-bit values with the 11 tables PDQ needs: ~9 GB at 10 million), and
its ``IndexBinaryFlat`` is a linear scan. The loops here are the textbook algorithm
(Norouzi et al., "Fast Exact Search in Hamming Space with Multi-Index Hashing", 2014) over
compact tables: per chunk a CSR table (``offsets`` into ``ids``, 4 bytes per known value).

The functions are compiled on first use and cached next to this file (numba ``cache=True``;
where that folder is read-only numba uses its per-user cache). They release the GIL, so a
thread pool runs them on every core. This module imports numba: import it lazily.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _prefetch(typingctx: Any, array: Any, index: Any) -> Any:  # pragma: no cover - compiled
    """Ask the processor to fetch ``array[index]`` into cache (LLVM's ``llvm.prefetch``;
    no bounds check: a prefetch never faults). Numba has no prefetch of its own."""
    signature = types.void(array, index)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        arytype = sig.args[0]
        ary = context.make_array(arytype)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, arytype, ary, [args[1]],
                                       wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        # read, highest locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return signature, codegen


_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@nb.njit(inline="always")
def _popcount(x: Any) -> Any:
    # The SWAR bit count (Hacker's Delight 5-1): LLVM compiles it to one POPCNT.
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@nb.njit(nogil=True, cache=True)
def build_table(keys: Any, offsets: Any, ids: Any) -> None:  # pragma: no cover - compiled
    """Counting sort: ``ids[offsets[k]:offsets[k + 1]]`` are, in increasing order, the
    indices ``i`` with ``keys[i] == k``. ``offsets`` (length n_keys + 1) must be zero."""
    for i in range(keys.shape[0]):
        offsets[keys[i] + 1] += 1
    for k in range(1, offsets.shape[0]):
        offsets[k] += offsets[k - 1]
    fill = offsets[:-1].copy()
    for i in range(keys.shape[0]):
        k = keys[i]
        ids[fill[k]] = i
        fill[k] += 1


@nb.njit(nogil=True, cache=True)
def search_range(known: Any, packed: Any, queries: Any, qkeys: Any, radii: Any,
                 chunk_masks: Any, mask_start: Any, masks: Any, table_start: Any,
                 offsets: Any, nonempty: Any, ids: Any, threshold: int, q0: int, q1: int,
                 out_q: Any, out_k: Any, out_d: Any) -> tuple[int, int]:  # pragma: no cover
    """Every (query, known, distance) with distance <= ``threshold`` for queries
    ``q0 <= i < q1``, each pair once, written to ``out_*``.

    ``qkeys[i, j]`` is chunk ``j`` of query ``i``; chunk ``j`` (``radii[j] >= 0``) has table
    ``s`` (its rank among the probed chunks): bucket ``key`` is
    ``ids[s*n + offsets[table_start[s] + key] : s*n + offsets[table_start[s] + key + 1]]``
    and ``masks[mask_start[j]:mask_start[j + 1]]`` are the XOR masks within its radius.
    ``nonempty`` (or an empty array: no filter) has bit ``x % 64`` of word ``x // 64`` set
    when bucket ``x`` (indexed as ``offsets``) holds a value: a probe of an empty bucket then
    reads 1 bit from a bitmap small enough to stay in the processor's cache (2 MB per 24-bit
    table) instead of the offsets (64 MB per table), for sparse tables (PDQ at 10M: ~55% of
    probes find an empty bucket).
    ``packed`` (one-word values only, else empty) holds ``known[ids[p], 0]`` at ``p`` so
    that a bucket's values are read in order. A pair is reported through the first chunk
    within whose radius it lies (``chunk_masks[j]``: the chunk's bits in the words).

    Each query runs in phases whose memory reads do not depend on each other (bucket
    bounds of every probe, then the candidates' ids, prefetched, then their first words),
    so the processor overlaps the cache misses instead of waiting for each in turn.

    Returns ``(pairs written, next query)``: when the output is full, the query that did
    not fit is rolled back and is the next query (the caller grows the output, goes on).
    """
    n = known.shape[0]
    words = known.shape[1]
    n_probes = mask_start[-1]
    lo = np.empty(n_probes, dtype=np.int64)
    hi = np.empty(n_probes, dtype=np.int64)
    chunk_of = np.empty(n_probes, dtype=np.int64)
    cand = np.empty(4096, dtype=np.int64)
    cand_chunk = np.empty(4096, dtype=np.int64)
    first_word = np.empty(4096, dtype=np.uint64)
    is_packed = packed.shape[0] > 0
    filtered = nonempty.shape[0] > 0
    n_out = 0
    for qi in range(q0, q1):
        # 1. bucket bounds of every probe (independent reads of the offset tables)
        e = 0
        s = 0
        for j in range(radii.shape[0]):
            if radii[j] < 0:
                continue
            base = s * n
            tb = table_start[s]
            s += 1
            key0 = qkeys[qi, j]
            for mi in range(mask_start[j], mask_start[j + 1]):
                key = tb + (key0 ^ masks[mi])
                if filtered and not (nonempty[key >> 6] >> np.uint64(key & 63)) & np.uint64(1):
                    continue  # an empty bucket
                lo[e] = base + offsets[key]
                hi[e] = base + offsets[key + 1]
                chunk_of[e] = j
                e += 1
        # 2. candidates: positions in the id tables (one-word values: tested in place)
        total = 0
        for x in range(e):
            total += hi[x] - lo[x]
        if total > cand.shape[0]:
            size = max(total, 2 * cand.shape[0])
            cand = np.empty(size, dtype=np.int64)
            cand_chunk = np.empty(size, dtype=np.int64)
            first_word = np.empty(size, dtype=np.uint64)
        c = 0
        for x in range(e):  # the buckets' cache lines requested together, not in turn
            if hi[x] > lo[x]:
                if is_packed:
                    _prefetch(packed, lo[x])  # type: ignore[call-arg]
                else:
                    _prefetch(ids, lo[x])  # type: ignore[call-arg]
        if is_packed:
            q_word = queries[qi, 0]
            for x in range(e):
                for p in range(lo[x], hi[x]):
                    if _popcount(q_word ^ packed[p]) <= threshold:
                        cand[c] = p
                        cand_chunk[c] = chunk_of[x]
                        c += 1
            for y in range(c):
                cand[y] = ids[cand[y]]
        else:
            for x in range(e):
                for p in range(lo[x], hi[x]):
                    cand[c] = ids[p]
                    cand_chunk[c] = chunk_of[x]
                    c += 1
            # 3. first words of the candidates (independent reads of the known values)
            for y in range(c):
                first_word[y] = known[cand[y], 0]
        # 4. verify: full distance; report through the first chunk within its radius
        start_out = n_out
        for y in range(c):
            k = cand[y]
            if is_packed:
                d = _popcount(queries[qi, 0] ^ known[k, 0])
            else:
                d = _popcount(queries[qi, 0] ^ first_word[y])
                if d > threshold:
                    continue
                for w in range(1, words):
                    d += _popcount(queries[qi, w] ^ known[k, w])
                    if d > threshold:
                        break
            if d > threshold:
                continue
            j = cand_chunk[y]
            first = True
            for j2 in range(j):
                if radii[j2] < 0:
                    continue
                bits_in = 0
                for w in range(words):
                    bits_in += _popcount((queries[qi, w] ^ known[k, w]) & chunk_masks[j2, w])
                if bits_in <= radii[j2]:
                    first = False
                    break
            if not first:
                continue
            if n_out == out_q.shape[0]:
                return start_out, qi
            out_q[n_out] = qi
            out_k[n_out] = k
            out_d[n_out] = d
            n_out += 1
    return n_out, q1


@nb.njit(nogil=True, cache=True)
def nonempty_bits(offsets: Any, table_start: Any, out: Any) -> None:  # pragma: no cover
    """Set bit ``x`` of ``out`` (zeroed, ``len(offsets) // 64 + 1`` words) for every bucket
    ``x`` that holds a value: ``offsets[x + 1] > offsets[x]`` within its own table (the last
    entry of a table is its end, not a bucket)."""
    for s in range(table_start.shape[0] - 1):
        for x in range(table_start[s], table_start[s + 1] - 1):
            if offsets[x + 1] > offsets[x]:
                out[x >> 6] |= np.uint64(1) << np.uint64(x & 63)
