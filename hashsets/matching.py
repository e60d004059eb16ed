"""Exact and near (perceptual) matching against a :class:`~hashsets.store.HashSetStore`.

Exact: query values go into a temporary table of the store connection and are joined
against each set's indexed ``h{num}_{algorithm}`` table (indexed SQL; the lowest ``ref`` wins
when a set lists a value twice). Digests of the empty file are never looked up.

Near: :class:`NearIndex` finds every known hash within Hamming distance ``t`` of each query,
with exact recall, by multi-index hashing (Norouzi et al., "Fast Exact Search in Hamming
Space with Multi-Index Hashing", 2012/2014): the bits are cut into ``m`` chunks with radii
``r_j`` such that ``sum(r_j + 1) > t``; then any pair within ``t`` agrees within ``r_j`` on
at least one chunk ``j`` (pigeonhole). The known hashes are indexed once per threshold, one
table per chunk (bucket = the known values with that chunk value); each query probes the
buckets within ``r_j`` of its chunks (compiled loops in :mod:`hashsets._mih`, threads over
slices of a batch of queries). Every candidate is verified by its full distance, so there
are no false positives and, by the pigeonhole argument, no misses. :func:`brute_force` is
the oracle.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .algorithms import EMPTY_DIGESTS, get
from .errors import DamagedSetError
from .store import HashSetStore, SetInfo

#: Widest chunk indexed by a direct-address table (2**24 uint32 offsets = 64 MiB).
MAX_CHUNK_BITS = 24
#: Memory allowed for one threshold's tables (PDQ at 10M known needs ~0.9 GB, pHash
#: ~0.5 GB; issue 13: the whole index under 2 GB).
TABLE_BUDGET = 1_500_000_000
#: Relative costs in the plan's model (measured with benchmarks/bench_near.py: a probe and
#: a candidate are each one random memory read; a one-word candidate read in bucket order
#: costs about a fifth of that).
COST_PROBE = 1.0
COST_CANDIDATE = 1.0
COST_PACKED = 0.2
#: Queries per task of the thread pool (one compiled call each).
QUERY_SLICE = 256
#: Threads searching slices of a batch (the compiled loop releases the GIL; DESIGN.md:
#: 2-core machines).
MAX_THREADS = 4
#: Tables whose buckets hold fewer values than this on average (many probes find an empty
#: bucket: PDQ's 23-24-bit chunks at 10M values hold 0.6-1.2, a third to a half empty) get
#: a bitmap of their non-empty buckets, which a probe reads first (``_mih.search_range``;
#: +8% queries per CPU second for PDQ at 10M, none for pHash's 21-22-bit chunks, 2.4-4.8).
SPARSE_BUCKET = 2.0

Words = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class Hit:
    """One match of a query value against a set entry."""

    query: int  # the caller's id for the query (a file id)
    algorithm: str
    match_type: str  # exact | near
    file_value: str
    known_value: str
    distance: int
    threshold: int | None
    set_id: str
    ref: int
    category: str | None = None
    category_raw: str | None = None
    series: str | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    is_distributed: bool | None = None
    baseline: bool | None = None
    entry_ref: str | None = None
    name: str | None = None
    #: The entry's other fields (the source's own, e.g. an iLook path and size) as
    #: canonical JSON text, or None.
    fields: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _b(v: int | None) -> bool | None:
    return None if v is None else bool(v)


def _entries(store: HashSetStore, s: SetInfo, refs: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    table = store.entry_table(s)
    if table is None:
        return {}
    out: dict[int, tuple[Any, ...]] = {}
    refs = sorted(set(refs))
    # A store of schema 2 or older read without migrating has no ``fields`` column.
    has_fields = any(r[1] == "fields" for r in store.conn.execute(
        f"PRAGMA table_info({table})"))
    fields_col = "fields" if has_fields else "NULL"
    for i in range(0, len(refs), 500):
        chunk = refs[i:i + 500]
        for row in store.conn.execute(
                f"SELECT ref, category, category_raw, series, victim_identified, "
                f"offender_identified, is_distributed, baseline, entry_ref, name, {fields_col} "
                f"FROM {table} WHERE ref IN ({', '.join('?' * len(chunk))})", chunk):
            out[row[0]] = row[1:]
    return out


def _hit(s: SetInfo, meta: tuple[Any, ...] | None, **kw: Any) -> Hit:
    if meta is None:
        meta = (None,) * 10
    cat, raw, series, vic, off, dist, base, eref, name, extra = meta
    if cat is None and s.known:
        cat = "known"
    return Hit(set_id=s.set_id, category=cat, category_raw=raw, series=series,
               victim_identified=_b(vic), offender_identified=_b(off), is_distributed=_b(dist),
               baseline=_b(base), entry_ref=eref, name=name, fields=extra, **kw)


def _damaged(store: HashSetStore, s: SetInfo, what: str, e: Exception) -> DamagedSetError:
    return DamagedSetError(f"{store.path}: set {s.set_id} ({s.name}) is damaged: {what}: {e}",
                           s.set_id, s.name)


def _report(error: DamagedSetError, damaged: list[DamagedSetError] | None) -> None:
    """A damaged set must not hide the other sets' hits: with a ``damaged`` list the error
    is collected there and the set skipped; without one it is raised."""
    if damaged is None:
        raise error
    if not any(d.set_id == error.set_id for d in damaged):
        damaged.append(error)


def exact_matches(store: HashSetStore, queries: Iterable[tuple[int, str, str]],
                  sets: Sequence[SetInfo] | None = None,
                  damaged: list[DamagedSetError] | None = None) -> list[Hit]:
    """Exact matches of ``(query_id, algorithm, canonical hex)`` triples in every set.

    Cryptographic algorithms only are meaningful here, but any stored algorithm works.
    Empty-file digests and malformed values are skipped (never matched). Output order:
    set import order, then query id, then algorithm. A set that cannot be read raises
    :class:`DamagedSetError`, or, when ``damaged`` is a list, is appended to it and skipped
    (none of its hits are returned; the other sets' are).
    """
    conn = store.conn
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS q (qid INTEGER NOT NULL, alg TEXT NOT NULL, "
                 "value BLOB NOT NULL, hex TEXT NOT NULL)")
    conn.execute("DELETE FROM temp.q")
    rows = []
    for qid, alg, value in queries:
        if value in EMPTY_DIGESTS:
            continue
        try:
            rows.append((qid, alg, bytes.fromhex(get(alg).normalize(value)), value))
        except (ValueError, KeyError):
            continue
    conn.executemany("INSERT INTO temp.q VALUES (?, ?, ?, ?)", rows)
    hits: list[Hit] = []
    for s in (store.sets() if sets is None else sets):
        found: list[tuple[int, str, str, int]] = []
        try:
            for alg, table in store.tables(s).items():
                what = f"table {table}"
                cur = conn.execute(
                    f"SELECT q.qid, q.hex, min(h.ref) FROM temp.q AS q JOIN {table} AS h "
                    "ON h.value = q.value WHERE q.alg = ? GROUP BY q.qid, q.hex", (alg,))
                found.extend((qid, alg, hexv, ref) for qid, hexv, ref in cur)
            what = "entry metadata"
            meta = _entries(store, s, (f[3] for f in found))
        except sqlite3.Error as e:
            _report(_damaged(store, s, what, e), damaged)
            continue
        for qid, alg, hexv, ref in sorted(found):
            hits.append(_hit(s, meta.get(ref), query=qid, algorithm=alg, match_type="exact",
                             file_value=hexv, known_value=hexv, distance=0, threshold=None,
                             ref=ref))
    conn.execute("DELETE FROM temp.q")
    return hits


# -- near matching -----------------------------------------------------------------------

def n_words(bits: int) -> int:
    """64-bit words holding a ``bits``-bit value (right-aligned: the unused high bits of the
    first word are zero)."""
    return -(-bits // 64)


def hex_to_words(values: Sequence[str], bits: int) -> Words:
    """Canonical hex strings of ``bits`` bits -> ``(n, n_words(bits))`` uint64 array, most
    significant word first, each value right-aligned (zero-padded on the left)."""
    width = n_words(bits) * 16
    if not values:
        return np.zeros((0, width // 16), dtype=np.uint64)
    raw = bytes.fromhex("".join(v.rjust(width, "0") for v in values))
    return np.frombuffer(raw, dtype=">u8").reshape(len(values), width // 16).astype(np.uint64)


def bytes_to_words(raw: bytes, value_bytes: int) -> Words:
    """Concatenated big-endian values of ``value_bytes`` bytes each -> words as
    :func:`hex_to_words`. Raises ValueError when ``raw`` is not whole values."""
    if len(raw) % value_bytes:
        raise ValueError(f"{len(raw)} bytes is not a whole number of {value_bytes}-byte values")
    width = n_words(value_bytes * 8) * 8
    a = np.frombuffer(raw, dtype=np.uint8).reshape(-1, value_bytes)
    if value_bytes != width:
        padded = np.zeros((len(a), width), dtype=np.uint8)
        padded[:, width - value_bytes:] = a
        a = padded
    return np.ascontiguousarray(a).view(">u8").astype(np.uint64)


def words_to_hex(words: Words, bits: int | None = None) -> list[str]:
    """The inverse of :func:`hex_to_words` (``bits`` None: every word in full)."""
    digits = None if bits is None else -(-bits // 4)
    return [row.astype(">u8").tobytes().hex()[-digits if digits else 0:] for row in words]


def _distances(a: Words, b: Words) -> npt.NDArray[np.int64]:
    return np.bitwise_count(a ^ b).sum(axis=1, dtype=np.int64)


def brute_force(queries: Words, known: Words, threshold: int
                ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every (query index, known index, distance) with distance <= threshold, sorted.

    The correctness oracle for :class:`NearIndex` (and the baseline of the benchmark)."""
    qs, ks, ds = [], [], []
    for i in range(len(queries)):
        d = _distances(known, queries[i][None, :])
        idx = np.nonzero(d <= threshold)[0]
        qs.append(np.full(len(idx), i, dtype=np.int64))
        ks.append(idx.astype(np.int64))
        ds.append(d[idx])
    if not qs:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), e.copy()
    return _sorted(np.concatenate(qs), np.concatenate(ks), np.concatenate(ds))


def _sorted(q: npt.NDArray[np.int64], k: npt.NDArray[np.int64], d: npt.NDArray[np.int64]
            ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    order = np.lexsort((k, q))
    return q[order], k[order], d[order]


def _masks(bits: int, radius: int) -> npt.NDArray[np.int64]:
    """All XOR masks of at most ``radius`` set bits within ``bits`` bits."""
    out = [0]
    for r in range(1, radius + 1):
        for combo in itertools.combinations(range(bits), r):
            out.append(sum(1 << b for b in combo))
    return np.array(out, dtype=np.int64)


def _n_masks(bits: int, radius: int) -> int:
    from math import comb

    return sum(comb(bits, r) for r in range(radius + 1)) if radius >= 0 else 0


@dataclass(frozen=True)
class Plan:
    """Chunks ``(start bit, length, radius)`` from the most significant bit; radius -1 means
    the chunk is not probed. ``sum(radius + 1) == threshold + 1`` (pigeonhole)."""

    chunks: tuple[tuple[int, int, int], ...]

    @staticmethod
    def make(bits: int, threshold: int, n_queries: int, n_known: int) -> Plan:
        """The plan of least expected work per query for ``n_known`` known values.

        A probe costs one random read of a table (``COST_PROBE``), a candidate one random
        read of a known value (``COST_CANDIDATE``; ``COST_PACKED`` for one-word values,
        whose buckets hold the values in order); a bucket holds ``n_known / 2**length``
        values on average. Chunks are at most ``MAX_CHUNK_BITS`` bits and no longer than
        ``n_known`` needs (tables of empty buckets cost memory and probes), and the tables
        must fit in ``TABLE_BUDGET`` bytes. ``n_queries`` does not change the choice: the
        tables are built once per index and threshold and serve every batch."""
        del n_queries
        best: tuple[float, Plan] | None = None
        per_candidate = COST_PACKED if n_words(bits) == 1 else COST_CANDIDATE
        longest = max(1, min(MAX_CHUNK_BITS, max(n_known, 1).bit_length() + 1))
        lo = -(-bits // longest)
        for m in range(lo, min(bits, max(lo, threshold + 1)) + 1):
            lengths = [bits // m + (1 if j < bits % m else 0) for j in range(m)]
            slots = threshold + 1
            radii = [slots // m - 1 + (1 if j < slots % m else 0) for j in range(m)]
            cost = 0.0
            memory = 0
            for L, r in zip(lengths, radii, strict=True):
                if r < 0:
                    continue
                v = _n_masks(L, r)
                cost += v * (COST_PROBE + n_known / 2.0 ** L * per_candidate)
                memory += _table_bytes(L, n_known, n_words(bits))
            if memory > TABLE_BUDGET and best is not None:
                continue
            if best is None or cost < best[0]:
                starts = list(itertools.accumulate([0, *lengths[:-1]]))
                best = (cost, Plan(tuple(zip(starts, lengths, radii, strict=True))))
        if best is None:
            raise ValueError(f"no multi-index plan for {bits} bits at threshold {threshold}")
        return best[1]


def _table_bytes(length: int, n_known: int, words: int) -> int:
    """Memory of one chunk's table: offsets, ids and (one-word values) the values."""
    offset_bytes = 4 if n_known < 2**32 else 8
    return (2**length + 1) * offset_bytes + n_known * (4 + (8 if words == 1 else 0))


def _chunk(words: Words, start: int, length: int) -> npt.NDArray[np.int64]:
    """Bits ``[start, start+length)`` (from the most significant bit) as integers."""
    end = start + length
    a, b = start // 64, (end - 1) // 64
    if a == b:
        shift = 64 * (a + 1) - end
        v = (words[:, a] >> np.uint64(shift)) & np.uint64((1 << length) - 1)
    else:
        lo_bits = end - 64 * b
        hi = words[:, a] & np.uint64((1 << (64 * b - start)) - 1)
        lo = words[:, b] >> np.uint64(64 - lo_bits)
        v = (hi << np.uint64(lo_bits)) | lo
    return v.astype(np.int64)


def _chunk_mask(n_word: int, start: int, length: int) -> Words:
    """The bits ``[start, start+length)`` (from the most significant) as a word mask."""
    value = ((1 << length) - 1) << (n_word * 64 - start - length)
    return np.frombuffer(value.to_bytes(n_word * 8, "big"), dtype=">u8").astype(np.uint64)


@dataclass
class _Tables:
    """The multi-index tables of one plan (see :func:`hashsets._mih.search_range`)."""

    plan: Plan
    radii: npt.NDArray[np.int64]
    chunk_masks: Words
    mask_start: npt.NDArray[np.int64]
    masks: npt.NDArray[np.int64]
    table_start: npt.NDArray[np.int64]
    offsets: npt.NDArray[Any]
    ids: npt.NDArray[Any]
    packed: Words
    #: Bitmap of the non-empty buckets of sparse tables (empty: none), see ``SPARSE_BUCKET``.
    nonempty: Words

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.offsets, self.ids, self.packed, self.masks,
                                      self.nonempty))


class NearIndex:
    """Known perceptual hashes of one algorithm, searchable by Hamming radius.

    Any width: ``known`` is an ``(n, ceil(bits/64))`` uint64 array with each value
    right-aligned and the unused high bits zero (see :func:`hex_to_words`); queries alike.
    ``search`` returns every ``(query index, known index, distance)`` with
    ``distance <= threshold``, sorted by query then known index: the same result as
    :func:`brute_force`. Many queries per call are cheapest per query (one thread per
    slice of the batch); the tables of a threshold are built on its first search (see
    :meth:`prepare`) and kept, so later calls with the same threshold pay only the queries.
    ``known`` is referenced, not copied (when already a C-contiguous uint64 array): do not
    change it while the index is in use.
    """

    def __init__(self, known: Words, bits: int, threads: int | None = None) -> None:
        self.threads = threads or min(os.cpu_count() or 1, MAX_THREADS)
        if bits <= 0 or known.ndim != 2 or known.shape[1] != n_words(bits):
            raise ValueError(f"known {bits}-bit hashes must be an (n, {n_words(bits)}) "
                             "uint64 array")
        self.known = np.ascontiguousarray(known, dtype=np.uint64)
        self.bits = bits
        #: Offset of the value's most significant bit in the words (the zero padding).
        self.pad = n_words(bits) * 64 - bits
        self._tables: dict[int, _Tables] = {}

    def __len__(self) -> int:
        return len(self.known)

    @property
    def nbytes(self) -> int:
        """Memory held: the known values and every table built so far."""
        return self.known.nbytes + sum(t.nbytes for t in self._tables.values())

    def prepare(self, threshold: int) -> None:
        """Build the tables for ``threshold`` now (``search`` does it on first use)."""
        if threshold >= 0 and len(self.known) and threshold not in self._tables:
            self._tables[threshold] = self._build(threshold)

    def _build(self, threshold: int) -> _Tables:
        from . import _mih

        n = len(self.known)
        plan = Plan.make(self.bits, threshold, 0, n)
        w = self.known.shape[1]
        radii = np.array([r for _, _, r in plan.chunks], dtype=np.int64)
        probed = [(s, L, r) for s, L, r in plan.chunks if r >= 0]
        chunk_masks = np.array([_chunk_mask(w, s + self.pad, L) for s, L, _ in plan.chunks],
                               dtype=np.uint64).reshape(len(plan.chunks), w)
        masks = [_masks(L, r) if r >= 0 else np.zeros(0, np.int64) for _, L, r in plan.chunks]
        mask_start = np.zeros(len(masks) + 1, dtype=np.int64)
        np.cumsum([len(m) for m in masks], out=mask_start[1:])
        table_start = np.zeros(len(probed) + 1, dtype=np.int64)
        np.cumsum([2**L + 1 for _, L, _ in probed], out=table_start[1:])
        offsets = np.zeros(int(table_start[-1]), dtype=np.uint32 if n < 2**32 else np.int64)
        ids = np.empty(len(probed) * n, dtype=np.uint32 if n < 2**32 else np.int64)
        for s, (start, L, _) in enumerate(probed):
            keys = _chunk(self.known, start + self.pad, L)
            _mih.build_table(keys, offsets[table_start[s]:table_start[s + 1]],
                             ids[s * n:(s + 1) * n])
        packed = self.known[ids, 0] if w == 1 else np.zeros(0, dtype=np.uint64)
        nonempty = np.zeros(0, dtype=np.uint64)
        if probed and sum(n / 2.0 ** L for _, L, _ in probed) / len(probed) < SPARSE_BUCKET:
            nonempty = np.zeros(len(offsets) // 64 + 1, dtype=np.uint64)
            _mih.nonempty_bits(offsets, table_start, nonempty)
        return _Tables(plan, radii, chunk_masks, mask_start, np.concatenate(masks),
                       table_start, offsets, ids, packed, nonempty)

    def search(self, queries: Words, threshold: int
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        empty = np.zeros(0, dtype=np.int64)
        if len(queries) == 0 or len(self.known) == 0 or threshold < 0:
            return empty, empty.copy(), empty.copy()
        if queries.ndim != 2 or queries.shape[1] != self.known.shape[1]:
            raise ValueError(f"queries must be an (n, {self.known.shape[1]}) uint64 array")
        self.prepare(threshold)
        tables = self._tables[threshold]
        qkeys = np.stack([_chunk(queries, s + self.pad, L) for s, L, _ in tables.plan.chunks],
                         axis=1)
        slices = [(a, min(a + QUERY_SLICE, len(queries)))
                  for a in range(0, len(queries), QUERY_SLICE)]
        with ThreadPoolExecutor(max(1, min(self.threads, len(slices)))) as pool:
            parts = list(pool.map(lambda s: self._search_slice(tables, queries, qkeys,
                                                               threshold, *s), slices))
        q_all, k_all, d_all = (np.concatenate([p[i] for p in parts]) for i in range(3))
        return _sorted(q_all, k_all, d_all)

    def _search_slice(self, t: _Tables, queries: Words, qkeys: npt.NDArray[np.int64],
                      threshold: int, q0: int, q1: int
                      ) -> tuple[npt.NDArray[np.int64], ...]:
        from . import _mih

        cap = 4096
        out: list[tuple[npt.NDArray[np.int64], ...]] = []
        while q0 < q1:
            oq, ok, od = (np.empty(cap, dtype=np.int64) for _ in range(3))
            n, q0 = _mih.search_range(self.known, t.packed, queries, qkeys, t.radii,
                                      t.chunk_masks, t.mask_start, t.masks, t.table_start,
                                      t.offsets, t.nonempty, t.ids, threshold, q0, q1, oq,
                                      ok, od)
            out.append((oq[:n], ok[:n], od[:n]))
            cap *= 2  # full (or done): a larger buffer for the rest
        return tuple(np.concatenate([o[i] for o in out]) for i in range(3))


@dataclass
class KnownPerceptual:
    """All known values of one perceptual algorithm across the store's sets."""

    algorithm: str
    words: Words
    set_index: npt.NDArray[np.int64]  # index into ``sets``
    refs: npt.NDArray[np.int64]
    sets: list[SetInfo]


def load_perceptual(store: HashSetStore, algorithm: str,
                    sets: Sequence[SetInfo] | None = None,
                    damaged: list[DamagedSetError] | None = None) -> KnownPerceptual:
    """Read every stored value of ``algorithm`` (ordered by set, value, ref).

    A set whose table cannot be read or holds values of the wrong width raises
    :class:`DamagedSetError`, or with a ``damaged`` list is reported there and left out."""
    alg = get(algorithm)
    use = list(store.sets() if sets is None else sets)
    parts: list[Words] = []
    set_idx: list[npt.NDArray[np.int64]] = []
    refs: list[int] = []
    width = alg.bits // 8
    for i, s in enumerate(use):
        table = store.tables(s).get(alg.name)
        if table is None:
            continue
        try:
            rows = store.conn.execute(
                f"SELECT value, min(ref) FROM {table} GROUP BY value ORDER BY value").fetchall()
            if bad := next((r[0] for r in rows if not isinstance(r[0], bytes)
                            or len(r[0]) != width), None):
                raise ValueError(f"a value of {len(bad)} bytes, expected {width}")
            words = bytes_to_words(b"".join(r[0] for r in rows), width)
        except (sqlite3.Error, ValueError) as e:
            _report(_damaged(store, s, f"table {table}", e), damaged)
            continue
        parts.append(words)
        refs.extend(r[1] for r in rows)
        set_idx.append(np.full(len(rows), i, dtype=np.int64))
    words = np.concatenate(parts) if parts else np.zeros((0, n_words(alg.bits)), np.uint64)
    return KnownPerceptual(alg.name, words,
                           np.concatenate(set_idx) if set_idx else np.zeros(0, dtype=np.int64),
                           np.array(refs, dtype=np.int64), use)


def near_matches(store: HashSetStore, queries: Sequence[tuple[int, str, str]],
                 threshold: int, known: KnownPerceptual | None = None,
                 damaged: list[DamagedSetError] | None = None) -> list[Hit]:
    """Near matches of ``(query_id, algorithm, hex)`` for ONE near-matching algorithm,
    searched with the algorithm's ``index_class``.

    Every hit is a "near" match (a perceptual distance of 0 is not byte identity). The
    caller filters queries (e.g. by the algorithm's quality gate). Output order: set, query
    id, known value. Damaged sets: as :func:`load_perceptual` (entry metadata too).
    """
    if not queries:
        return []
    alg = queries[0][1]
    if any(q[1] != alg for q in queries):
        raise ValueError("near_matches takes queries of one algorithm")
    a = get(alg)
    kp = known if known is not None else load_perceptual(store, alg, damaged=damaged)
    if len(kp.words) == 0:
        return []
    qwords = hex_to_words([a.normalize(q[2]) for q in queries], a.bits)
    qi, ki, di = a.index_class()(kp.words, a.bits).search(qwords, threshold)
    known_hex = dict(zip(sorted(set(ki.tolist())),
                         words_to_hex(kp.words[sorted(set(ki.tolist()))], a.bits),
                         strict=True))
    by_set: dict[int, list[tuple[int, int, int]]] = {}
    for q, k, d in zip(qi.tolist(), ki.tolist(), di.tolist(), strict=True):
        by_set.setdefault(int(kp.set_index[k]), []).append((q, k, d))
    hits: list[Hit] = []
    for si in sorted(by_set):
        s = kp.sets[si]
        found = by_set[si]
        try:
            meta = _entries(store, s, (int(kp.refs[k]) for _, k, _ in found))
        except sqlite3.Error as e:
            _report(_damaged(store, s, "entry metadata", e), damaged)
            continue
        rows = sorted(found, key=lambda t: (queries[t[0]][0], known_hex[t[1]]))
        for q, k, d in rows:
            ref = int(kp.refs[k])
            hits.append(_hit(s, meta.get(ref), query=queries[q][0], algorithm=alg,
                             match_type="near",
                             file_value=queries[q][2], known_value=known_hex[k], distance=d,
                             threshold=threshold, ref=ref))
    return hits
