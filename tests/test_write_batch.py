"""Case.write_results writes a batch with one statement per table (issue 13): the rows must
be exactly those of writing each result on its own, in order, including the error rows'
ids, a rewrite of files that already have rows, a quarantined file that keeps its
checkpointed digests, and a batch naming the same file twice (written one at a time)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from triage.case import _MIRROR, RESULT_STAGES, Case, _in_list
from triage.model import (
    FileEntry,
    FileResult,
    HashValue,
    PictureFacts,
    Problem,
    VideoFacts,
    VideoFrame,
)
from triage.sources.base import EntryAmendment

TABLES = {"files": "id", "hashes": "file_id, algorithm", "images": "file_id",
          "videos": "file_id", "video_frames": "file_id, seq", "errors": "id",
          "hash_variants": "rowid"}
#: Columns that hold the time of the write (different between the two cases).
TIMES = {"time_utc"}


def _case(path: Path, n: int) -> tuple[Case, int, list[int]]:
    case = Case.open(path)
    run = case.start_run("scan", ["scan"], {}, {})
    ev = case.add_evidence(path="ev", path_bytes=b"ev", source_type="directory", size=None,
                           description={}, run_id=run)
    entries = [FileEntry(identity=f"f{i}", path=f"d/f{i}.jpg".encode(), kind="file")
               for i in range(n)]
    return case, run, [e.file_id for e in case.insert_entries(ev, run, entries)]


def _results(ids: list[int], tag: str) -> list[FileResult]:
    pic = PictureFacts("JPEG", 4, 3, "RGB", 1, 4, 3, "draft")
    out = []
    for k, fid in enumerate(ids):
        kind = k % 4
        hashes = (HashValue("md5", f"{tag}{k:031x}"[:32], None),
                  HashValue("sha256", f"{tag}{k:063x}"[:64], None))
        if kind == 0 and k % 8 == 4:
            video = VideoFacts("mov,mp4", "h264", 4, 3, 25.0, 1.0, 1, 1, 0, None, (), 25, 2,
                               0.5, 4, 3, "draft", frames=(
                                   VideoFrame(0, 0.0, f"{tag}{k:063x}"[:64], 90),
                                   VideoFrame(12, 0.48, f"{tag}{k:063x}"[:64], 80, 2)))
            out.append(FileResult(fid, "done", mime="video/mp4", media_kind="video",
                                  ext_mismatch=1, hashes=hashes, video=video))
        elif kind == 0:
            pictures = (HashValue("pdq", f"{tag}{k:063x}"[:64], 90, "JPEG draft decode"),
                        HashValue("pdq", f"{tag}{k:063x}"[:64], 80, "x", "rot90"))
            out.append(FileResult(fid, "done", mime="image/jpeg", media_kind="image",
                                  ext_mismatch=0, hashes=hashes + pictures, image=pic))
        elif kind == 1:
            out.append(FileResult(fid, "done", mime="text/plain", media_kind="other",
                                  hashes=hashes, warnings=(
                                      Problem("identify", "Odd", f"{tag} warning {k}"),)))
        elif kind == 2:
            out.append(FileResult(fid, "error", stage="decode", reason=f"{tag} bad {k}",
                                  error_class="DecodeError", hashes=hashes, warnings=(
                                      Problem("container", "W", f"{tag} w {k}"),)))
        else:  # no digests this attempt: keeps a checkpoint's if there is one
            out.append(FileResult(fid, "quarantined", stage="worker", attempts=2,
                                  reason=f"{tag} crash {k}", error_class="WorkerCrash"))
    return out


def _dump(case: Case) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for table, order in TABLES.items():
        cur = case.conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
        cols = [d[0] for d in cur.description]
        out[table] = [tuple(v for c, v in zip(cols, row, strict=True) if c not in TIMES)
                      for row in cur]
    return out


def _write(case: Case, run: int, batches: list[list[FileResult]], one_by_one: bool) -> None:
    for batch in batches:
        if one_by_one:
            for r in batch:
                case.write_results(run, [r])
        else:
            case.write_results(run, batch)


def test_batched_rows_equal_one_at_a_time(tmp_path: Path) -> None:
    n = 12
    dumps = []
    for one in (True, False):
        case, run, ids = _case(tmp_path / f"case-{one}", n)
        first = _results(ids, "a")
        # Checkpointed digests for two files that then end quarantined without digests.
        case.write_results(run, [FileResult(ids[3], "pending", hashes=(
            HashValue("sha256", "c" * 64, None), HashValue("phash", "d" * 16, None)))])
        case.write_results(run, [FileResult(ids[7], "pending", hashes=(
            HashValue("sha256", "e" * 64, None),))])
        again = _results(list(reversed(ids)), "b")  # rewrites every file's rows
        twice = [*_results(ids[:3], "c"), *_results(ids[:2], "d")]  # files 0, 1 twice
        # A full-decode confirmation keeps the draft values as variants (picture variants
        # are then replaced file by file), beside plain results.
        confirm = [replace(r, full_decode=r.image is not None)
                   for r in _results(ids[6:], "g")]
        fresh = _results(ids[8:], "f")  # no errors rows of this run left: one statement
        states = []
        for batch in (first, again, twice, _results(ids[6:], "e"), confirm):
            _write(case, run, [batch], one)
            states.append(_dump(case))
        case.conn.execute("DELETE FROM errors WHERE file_id >= ?", (ids[8],))
        for batch in (fresh,):
            _write(case, run, [batch], one)
            states.append(_dump(case))
        dumps.append(states)
        case.close()
    one_by_one, batched = dumps
    assert batched == one_by_one
    assert batched[0]["hash_variants"] and any(
        v[2] == "draft" for v in batched[4]["hash_variants"])
    assert [e for e in batched[5]["errors"] if e[1] >= ids[8]]
    assert len(batched[-1]["errors"]) >= n // 2  # the comparison covers error rows and ids
    assert batched[0]["video_frames"] and batched[1]["video_frames"]
    kept = [h for h in batched[0]["hashes"] if h[2] == "c" * 64]
    assert kept and not [h for h in batched[0]["hashes"] if h[2] == "d" * 16]


def _mirror_matches_table(case: Case, run: int, ids: list[int]) -> None:
    """The connection's mirror of result errors rows equals the errors table, and the
    lookup answers as a read of the whole table would, for every file and pairs of them."""
    stages = ", ".join(f"'{s}'" for s in RESULT_STAGES)
    table = case.conn.execute(f"SELECT id, file_id, run_id FROM errors WHERE stage IN "
                              f"({stages}) ORDER BY id").fetchall()
    with case.transaction() as c:
        for group in [[i] for i in ids] + [ids[:2], ids[2:], [max(ids) + 1]]:
            expected = any(f in group and r == run for _, f, r in table)
            assert Case._has_result_errors(c, run, group) == expected, (group, table)
        mirror = c.execute(f"SELECT id, file_id, run_id FROM temp.{_MIRROR} ORDER BY id"
                           ).fetchall()
    assert mirror == table


def test_result_errors_mirror_follows_every_writer(tmp_path: Path) -> None:
    """Whether a file already has result errors of this run is looked up in a TEMP mirror
    of those rows (issue 13), kept by triggers: it must follow every writer of the errors
    table (result writes, record_error, amendments, quarantine, deletes, updates), undo
    with a rolled-back transaction, be rebuilt on a new connection, and never touch the
    case file."""
    case, run, ids = _case(tmp_path / "case", 6)
    _mirror_matches_table(case, run, ids)  # made on an empty table
    case.record_error(run, "worker", "WorkerCrash", "m", file_id=ids[0])
    case.record_error(run, "evidence", "Warning", "not a result stage", file_id=ids[1])
    _mirror_matches_table(case, run, ids)
    case.amend_entries(1, run, [EntryAmendment("f1", problems=(Problem("read", "R", "r"),))])
    _mirror_matches_table(case, run, ids)
    case.write_results(run, _results(ids[:3], "a")[2:])  # an error row and a warning
    assert case.conn.execute("SELECT count(*) FROM errors WHERE file_id=?", (ids[2],)
                             ).fetchone()[0] == 2
    _mirror_matches_table(case, run, ids)
    try:
        with case.transaction() as c:
            c.execute("INSERT INTO errors(file_id, run_id, stage, error_class, message, "
                      "time_utc) VALUES (?, ?, 'decode', 'X', 'x', 't')", (ids[5], run))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    _mirror_matches_table(case, run, ids)
    case.conn.execute("UPDATE errors SET stage='enumerate' WHERE file_id=?", (ids[0],))
    _mirror_matches_table(case, run, ids)
    other = case.start_run("match", ["match"], {}, {})
    case.conn.execute("UPDATE errors SET stage='open', run_id=? WHERE file_id=?",
                      (other, ids[1]))
    _mirror_matches_table(case, run, ids)
    case.conn.execute("UPDATE errors SET run_id=? WHERE file_id=?", (run, ids[1]))
    _mirror_matches_table(case, run, ids)
    case.conn.execute("DELETE FROM errors WHERE file_id=?", (ids[2],))
    _mirror_matches_table(case, run, ids)
    case.conn.execute("UPDATE files SET worker_crashes=2 WHERE id=?", (ids[4],))
    assert case.quarantine_repeated_inflight(1, run, 2) == 1
    _mirror_matches_table(case, run, ids)
    assert not case.conn.execute("SELECT 1 FROM sqlite_master WHERE name LIKE ?",
                                 (f"%{_MIRROR}%",)).fetchall()
    case.close()
    # A new connection finds the rows written before and makes its own mirror; one made in
    # a transaction that rolls back goes with it and is made again.
    case = Case.open(tmp_path / "case")
    try:
        with case.transaction() as c:
            Case._has_result_errors(c, run, ids)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert not case.conn.execute("SELECT 1 FROM sqlite_temp_master").fetchall()
    _mirror_matches_table(case, run, ids)
    # A part of the mirror gone (a trigger dropped with a rebuilt errors table, say): made
    # again whole, from the table, not half-reused.
    case.conn.execute(f"DROP TRIGGER temp.{_MIRROR}_insert")
    case.conn.execute(f"DELETE FROM temp.{_MIRROR}")
    case.record_error(run, "decode", "X", "after the drop", file_id=ids[3])
    _mirror_matches_table(case, run, ids)
    case.close()


def test_in_lists_few_statement_texts(tmp_path: Path) -> None:
    """The ``IN (...)`` lists of a batch's deletes and lookups come in power-of-two lengths
    (the last id repeated: the same set), so that batches of every size reuse a few cached
    statements instead of preparing new ones (issue 13); the rows are those of a
    one-at-a-time write (test above)."""
    assert _in_list([5]) == ("?", [5])
    assert _in_list([5, 6, 7]) == ("?, ?, ?, ?", [5, 6, 7, 7])
    assert _in_list(list(range(8)))[1] == list(range(8))
    case, run, ids = _case(tmp_path / "case", 70)
    texts: set[str] = set()
    case.conn.set_trace_callback(texts.add)
    start = 0
    for size in range(1, 12):
        case.write_results(run, _results(ids[start:start + size], "a"))
        start += size
    case.conn.set_trace_callback(None)
    # (The texts traced have the values in place of the parameters.)
    lengths = {t.split("file_id IN (")[1].split(")")[0].count(",") + 1
               for t in texts if "file_id IN (" in t}
    assert lengths == {1, 2, 4, 8, 16}, lengths
    case.close()
