"""Contract tests run for EVERY registered format, plus format-specific facts.

VICS/CAID/ICSE/RDSv3 fixtures are built in these tests (tests/hashsets/fixtures.py) from
../shared/FORMATS.md: no public sample exists.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hashsets.algorithms import ALGORITHMS
from hashsets.errors import HashSetFileError
from hashsets.formats import (
    FORMATS,
    Batch,
    ParseContext,
    Record,
    Rejected,
    VideoRecord,
    detect_format,
    get,
)

from . import fixtures as fx


def _write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


# One sample per format: builder -> (path, number of Records expected, options).
Sample = Callable[[Path], tuple[Path, int, dict[str, str]]]
SAMPLES: dict[str, Sample] = {
    "vics": lambda d: (fx.vics_v2(d / "v2.json"), 5, {}),
    "caid": lambda d: (fx.caid(d / "caid.json"), 5, {}),
    "nsrl-rds3": lambda d: (fx.rds3(d / "rds.db"), 3, {}),
    "nsrl-rds2": lambda d: (fx.RDS2_ZIP, 218, {}),
    "hashdeep": lambda d: (_write(d / "hd.txt", "%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,"
                                  "filename\n## Invoked from: /x\n## \n"
                                  f"3,{fx.md5(b'abc')},{fx.sha256(b'abc')},/a,b.txt\n"), 1, {}),
    "icse": lambda d: (fx.icse(d / "icse.csv"), 4, {}),
    "hashkeeper": lambda d: (_write(d / "hk.hke", '"file_id","hashset_id","file_name",'
                                    '"directory","hash","file_size"\n'
                                    f'1,7,"a.jpg","c:\\\\","{fx.md5(b"x").upper()}",1\n'), 1, {}),
    "ilook": lambda d: (fx.ilook(d / "set.hsh"), 3, {}),
    "bsd": lambda d: (_write(d / "bsd.txt", f"MD5 (a b.txt) = {fx.md5(b'a')}\n"
                             f"SHA256 (c) = {fx.sha256(b'c')}\n"), 2, {}),
    "md5sum": lambda d: (fx.MD5DEEP_SIZE, 4, {}),
    "csv": lambda d: (_write(d / "t.tsv", f"SHA-1\tName\tCategory\n{fx.sha1(b'q')}\tq.jpg\t1\n"),
                      1, {}),
    "perceptual": lambda d: (_write(d / "p.txt", "# pdq\n" + "ab" * 32 + ",label one\n"),
                             1, {}),
    "plain": lambda d: (_write(d / "l.txt", f"{fx.md5(b'1')}\n{fx.md5(b'2').upper()}\n"), 2, {}),
    # Meta's per-video vPDQ output (testdata/video/vpdq/*.vpdq.txt), one video (issue 15).
    "vpdq": lambda d: (_write(d / "clip.vpdq.txt", "0,100," + "ab" * 32 + ",0.000\n"
                              "1,49," + "cd" * 32 + ",0.033\n"), 1, {}),
}


def test_every_registered_format_has_a_sample() -> None:
    assert set(SAMPLES) == set(FORMATS)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_format_contract(name: str, tmp_path: Path) -> None:
    fmt = get(name)
    path, expected, options = SAMPLES[name](tmp_path)
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    # detect: accepts its own sample, is what auto-detection picks, consumes nothing.
    assert fmt.detect(path, path.read_bytes()[:65536])
    assert detect_format(path).name == name
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before
    items = list(fmt.parse(ParseContext(path, options)))
    records = [i for i in items if isinstance(i, Record | VideoRecord)]
    assert len(records) == expected
    refs = [i.ref for i in items]
    assert refs == sorted(refs) and all(r >= 1 for r in refs)
    for r in records:
        if isinstance(r, VideoRecord):  # a video: its frames' PDQ values, canonical
            assert r.frames and all(ALGORITHMS["pdq"].normalize(f.pdq) == f.pdq
                                    for f in r.frames)
            continue
        assert r.hashes or r.photodna
        for alg, value in r.hashes.items():
            assert ALGORITHMS[alg].normalize(value) == value  # canonical lower-case hex
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


def test_vics_v1_media_alternative_hashes(tmp_path: Path) -> None:
    p = fx.vics_v1(tmp_path / "v1.json")
    ctx = ParseContext(p)
    recs = [r for r in get("vics").parse(ctx) if isinstance(r, Record)]
    assert ctx.version == "1.3" and ctx.info["kind"] == "Media"
    assert [r.entry_ref for r in recs] == ["1001", "1002", "1003"]
    r = recs[1]
    assert r.hashes == {"md5": fx.md5(fx.ITEMS[1]), "sha1": fx.sha1(fx.ITEMS[1])}
    assert r.photodna == fx.PHOTODNA_HEX
    assert (r.victim_identified, r.offender_identified, r.is_distributed) == (True, False, True)
    assert r.category_raw == "2" and r.series == "series-2"


def test_vics_v1_cases_export(tmp_path: Path) -> None:
    p = fx.vics_v1(tmp_path / "cases.json", kind="Cases")
    ctx = ParseContext(p)
    recs = [r for r in get("vics").parse(ctx) if isinstance(r, Record)]
    assert ctx.info["kind"] == "Cases" and len(recs) == 3


def test_vics_v2_cases_across_several_cases(tmp_path: Path) -> None:
    p = fx.vics_v2(tmp_path / "c.json", kind="Cases")
    ctx = ParseContext(p)
    items = list(get("vics").parse(ctx))
    assert [i.ref for i in items] == [1, 2, 3, 4, 5]
    assert ctx.version == "2.0" and ctx.info["context"] == "US"


def test_vics_truncated_json_names_record(tmp_path: Path) -> None:
    full = fx.vics_v2(tmp_path / "v.json").read_bytes()
    p = tmp_path / "t.json"
    p.write_bytes(full[: int(len(full) * 0.6)])
    with pytest.raises(HashSetFileError, match=r"t\.json: record \d+: truncated"):
        list(get("vics").parse(ParseContext(p)))


def test_vics_bad_hash_rejected_with_record_number(tmp_path: Path) -> None:
    p = fx.vics_v2(tmp_path / "v.json")
    text = p.read_text().replace(fx.md5(fx.ITEMS[3]).upper(), "XYZ")
    p.write_text(text)
    items = list(get("vics").parse(ParseContext(p)))
    bad = [i for i in items if isinstance(i, Rejected)]
    assert [b.ref for b in bad] == [4] and "XYZ" in bad[0].reason


def test_caid_detected_by_uk_context(tmp_path: Path) -> None:
    assert detect_format(fx.caid(tmp_path / "c.json")).name == "caid"
    assert detect_format(fx.vics_v2(tmp_path / "v.json", context="US")).name == "vics"


def test_icse_fields(tmp_path: Path) -> None:
    items = list(get("icse").parse(ParseContext(fx.icse(tmp_path / "i.csv"))))
    recs = [i for i in items if isinstance(i, Record)]
    assert recs[0].baseline is True and recs[0].category_raw == "baseline"
    assert recs[1].victim_identified is True and recs[1].series == "S2"
    assert recs[1].entry_ref == "ICSE-2"
    rej = [i for i in items if isinstance(i, Rejected)]
    assert [r.ref for r in rej] == [6]


def test_rds2_counts_match_independent_csv_count() -> None:
    with zipfile.ZipFile(fx.RDS2_ZIP) as zf:
        text = zf.read("NSRLFile.txt").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    items = list(get("nsrl-rds2").parse(ParseContext(fx.RDS2_ZIP)))
    recs = [i for i in items if isinstance(i, Record)]
    assert len(recs) == len(rows) == 218
    assert {r.hashes["sha1"] for r in recs} == {x["SHA-1"].lower() for x in rows}
    assert {r.hashes["md5"] for r in recs} == {x["MD5"].lower() for x in rows}


def test_rds2_plain_nsrlfile_txt(tmp_path: Path) -> None:
    with zipfile.ZipFile(fx.RDS2_ZIP) as zf:
        (tmp_path / "NSRLFile.txt").write_bytes(zf.read("NSRLFile.txt"))
    assert detect_format(tmp_path / "NSRLFile.txt").name == "nsrl-rds2"


@pytest.mark.parametrize("full", [False, True])
def test_rds3_minimal_and_full(tmp_path: Path, full: bool) -> None:
    p = fx.rds3(tmp_path / "rds.db", full=full)
    ctx = ParseContext(p)
    recs = list(get("nsrl-rds3").parse(ctx))
    assert ctx.info["read_from"] == "DISTINCT_HASH" and ctx.version.startswith("2024.03.1")
    assert len(recs) == 3  # the repeated FILE row is one DISTINCT_HASH row
    assert recs[0].hashes["md5"] == fx.md5(b"nsrl-a")


def test_md5deep_outputs() -> None:
    expected = {}
    for line in fx.MD5DEEP.read_text().splitlines():
        h, name = line.split("  ", 1)
        expected[h] = name
    for path in (fx.MD5DEEP, fx.MD5DEEP_SIZE):
        recs = [r for r in get("md5sum").parse(ParseContext(path)) if isinstance(r, Record)]
        assert {r.hashes["md5"]: r.name for r in recs} == expected


def test_sumfile_binary_marker_crlf_bom_and_bad_lines(tmp_path: Path) -> None:
    good = hashlib.sha256(b"z").hexdigest()
    p = tmp_path / "s.sha256"
    p.write_bytes(b"\xef\xbb\xbf" + f"{good.upper()} *bin name\r\n".encode()
                  + b"# comment\r\n" + b"abc123  short\r\n" + f"{good}  again\r\n".encode())
    items = list(get("md5sum").parse(ParseContext(p)))
    assert [type(i).__name__ for i in items] == ["Record", "Rejected", "Record"]
    assert items[0].hashes == {"sha256": good} and items[0].name == "bin name"
    assert items[1].ref == 3


def test_plain_list_rejects_wrong_length_and_non_hex(tmp_path: Path) -> None:
    p = _write(tmp_path / "l.txt", f"{fx.md5(b'1')}\n{fx.md5(b'2')[:-1]}\n{'g' * 32}\n\n")
    items = list(get("plain").parse(ParseContext(p)))
    assert [(type(i).__name__, i.ref) for i in items] == [("Record", 1), ("Rejected", 2),
                                                          ("Rejected", 3)]


def test_perceptual_phash_detected_without_declaration(tmp_path: Path) -> None:
    p = _write(tmp_path / "ph.txt", "ba8c84536bd3c366\tknown-a\n0026273b2b19550e\n")
    assert detect_format(p).name == "perceptual"
    recs = list(get("perceptual").parse(ParseContext(p)))
    assert recs[0].hashes == {"phash": "ba8c84536bd3c366"} and recs[0].category_raw == "known-a"


def test_64_hex_list_is_refused_unless_the_algorithm_is_given(tmp_path: Path) -> None:
    p = _write(tmp_path / "x.txt", "# list\n" + "ab" * 32 + "\n")
    with pytest.raises(HashSetFileError, match=r"x\.txt: record 2: 64 hex digits is "
                       r"ambiguous \(sha256 or pdq\).*--algorithm sha256\|pdq"):
        list(get("plain").parse(ParseContext(p)))
    with pytest.raises(HashSetFileError, match="ambiguous"):
        list(get("plain").parse_bulk(ParseContext(p)) or ())
    recs = list(get("plain").parse(ParseContext(p, {"algorithm": "sha256"})))
    assert recs[0].hashes == {"sha256": "ab" * 32}
    recs = list(get("perceptual").parse(ParseContext(p, {"algorithm": "pdq"})))
    assert recs[0].hashes == {"pdq": "ab" * 32}


def test_unrecognised_file_names_itself(tmp_path: Path) -> None:
    p = _write(tmp_path / "notes.txt", "hello world\n")
    with pytest.raises(HashSetFileError, match=r"notes\.txt: format not recognised"):
        detect_format(p)


def _expand(items: list[object]) -> list[tuple[str, int, object]]:
    out: list[tuple[str, int, object]] = []
    for i in items:
        if isinstance(i, Batch):
            out.extend(("Record", r.ref, r.hashes) for r in i.records())
        elif isinstance(i, Record):
            out.append(("Record", i.ref, i.hashes))
        elif isinstance(i, Rejected):
            out.append(("Rejected", i.ref, i.reason))
    return sorted(out, key=lambda t: t[1])


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
@pytest.mark.parametrize("algorithm", [None, "md5"])
def test_plain_bulk_path_equals_per_line_path(tmp_path: Path, block: int,
                                              algorithm: str | None) -> None:
    from hashsets.formats import bulk

    good = [fx.md5(bytes([i])) for i in range(40)]
    lines = ["# comment", "", "abc", good[0], good[1].upper(), f"  {good[2]}  ", good[3][:-1],
             good[4][:-1] + "g", good[5][:8] + " " + good[5][9:], "\t", good[6] + "\r",
             good[7] + "x", "\ufeff" + good[8], "é" * 32, *good[9:]]
    body = ("\r\n".join(lines[:5]) + "\n" + "\r".join(lines[5:8]) + "\n" + "\n".join(lines[8:]))
    p = tmp_path / "l.txt"
    p.write_bytes(b"\xef\xbb\xbf" + body.encode())
    opts = {"algorithm": algorithm} if algorithm else {}
    slow = list(get("plain").parse(ParseContext(p, opts)))
    old, bulk.BLOCK_BYTES = bulk.BLOCK_BYTES, block
    try:
        fast_gen = get("plain").parse_bulk(ParseContext(p, opts))
        assert fast_gen is not None
        fast = list(fast_gen)
    finally:
        bulk.BLOCK_BYTES = old
    assert any(isinstance(i, Batch) for i in fast)
    assert _expand(fast) == _expand(slow)
    assert sum(isinstance(i, Rejected) for i in slow) >= 6


def test_rds3_bulk_path_equals_per_row_path(tmp_path: Path) -> None:
    rows = [(fx.sha256(d).upper(), fx.sha1(d).upper(), fx.md5(d).upper())
            for d in (b"a", b"b", b"c")]
    rows.append((fx.sha256(b"d"), "", fx.md5(b"d")))  # no sha1: not an error
    rows.append(("zz", fx.sha1(b"e"), fx.md5(b"e")))  # bad sha256: rejected
    rows.append(("", "", ""))  # nothing: rejected
    p = fx.rds3(tmp_path / "r.db", rows)
    slow = list(get("nsrl-rds3").parse(ParseContext(p)))
    fast_gen = get("nsrl-rds3").parse_bulk(ParseContext(p))
    assert fast_gen is not None
    assert _expand(list(fast_gen)) == _expand(slow)
    p2 = fx.rds3(tmp_path / "r2.db")
    fast = list(get("nsrl-rds3").parse_bulk(ParseContext(p2)) or [])
    assert [type(i).__name__ for i in fast] == ["Batch"]
    assert _expand(fast) == _expand(list(get("nsrl-rds3").parse(ParseContext(p2))))
