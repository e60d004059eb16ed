"""Hostile hash-set files of issue 11 (defect 3), BUILT HERE, streaming, from its
description: shared by ``test_import_bounds.py`` (small sizes, quick) and
``benchmarks/hostile_imports.py`` (the sizes of the issue).

Each builder writes one file and returns its path. Sizes are parameters so that a test can
build the same shape small while the bound it hits is the same mechanism.
"""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

VICS_MEDIA = "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media"
MD5_A = "0123456789abcdef0123456789abcdef"
MD5_B = "fedcba9876543210fedcba9876543210"
CHUNK = 1 << 20


def _repeat(f: object, unit: bytes, size: int) -> None:
    """Write ``unit`` repeated to ``size`` bytes, a MiB at a time."""
    block = unit * max(1, CHUNK // len(unit))
    left = size
    while left > 0:
        piece = block[:left]
        f.write(piece)  # type: ignore[attr-defined]
        left -= len(piece)


def vics_deep(path: Path, depth: int = 200_000) -> Path:
    """A VICS #Media set whose second record holds an object nested ``depth`` deep
    (``{"a":`` ... ``}``: 6 bytes a level, 1.2 MB at 200k)."""
    with open(path, "wb") as f:
        f.write(b'{"odata.metadata": "' + VICS_MEDIA.encode() + b'", "value": [')
        f.write(b'{"MD5": "' + MD5_A.encode() + b'"}, {"MD5": "' + MD5_B.encode()
                + b'", "Exifs": ')
        _repeat(f, b'{"a":', 5 * depth)
        f.write(b"1")
        _repeat(f, b"}", depth)
        f.write(b"}]}")
    return path


def vics_deep_header(path: Path, depth: int = 200_000) -> Path:
    """Nesting before the ``value`` array (read by the header scan, not the record scan)."""
    with open(path, "wb") as f:
        f.write(b'{"odata.metadata": "' + VICS_MEDIA.encode() + b'", "x": ')
        _repeat(f, b"[", depth)
        _repeat(f, b"]", depth)
        f.write(b', "value": [{"MD5": "' + MD5_A.encode() + b'"}]}')
    return path


def vics_long_marker(path: Path, size: int = 100 << 20) -> Path:
    """A VICS file whose ``odata.metadata`` value is ``size`` bytes (a kind that is
    neither #Media nor #Cases, quoted in the error)."""
    with open(path, "wb") as f:
        f.write(b'{"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#')
        _repeat(f, b"X", size)
        f.write(b'", "value": [{"MD5": "' + MD5_A.encode() + b'"}]}')
    return path


def vics_big_record(path: Path, size: int = 64 << 20) -> Path:
    """A Media record of about ``size`` bytes made of small values (an array of 1s)."""
    with open(path, "wb") as f:
        f.write(b'{"odata.metadata": "' + VICS_MEDIA.encode() + b'", "value": [')
        f.write(b'{"MD5": "' + MD5_A.encode() + b'", "Tags": [1')
        _repeat(f, b",1", size)
        f.write(b"]}]}")
    return path


def vics_long_number(path: Path, digits: int = 5000) -> Path:
    """A ``Category`` of ``digits`` digits (Python refuses int() of over 4,300 digits)."""
    with open(path, "wb") as f:
        f.write(b'{"odata.metadata": "' + VICS_MEDIA.encode() + b'", "value": [')
        f.write(b'{"MD5": "' + MD5_A.encode() + b'", "Category": ' + b"7" * digits + b"}]}")
    return path


def long_line(path: Path, size: int = 300 << 20) -> Path:
    """A bare MD5 list: one good line, then one line of ``size`` bytes and no newline."""
    with open(path, "wb") as f:
        f.write(MD5_A.encode() + b"\n")
        _repeat(f, b"a", size)
    return path


def long_csv_line(path: Path, size: int = 300 << 20) -> Path:
    """A CSV hash table (header ``md5,name``) whose second row is ``size`` bytes long."""
    with open(path, "wb") as f:
        f.write(b"md5,name\n" + MD5_A.encode() + b",x\n" + MD5_B.encode() + b",")
        _repeat(f, b"n", size)
    return path


def csv_multiline_record(path: Path, lines: int = 100_000) -> Path:
    """A CSV row whose quoted fields span ``lines`` short lines (one record, many lines)."""
    with open(path, "wb") as f:
        f.write(b"md5,name\n" + MD5_A.encode() + b",x\n" + MD5_B.encode() + b',"')
        _repeat(f, b"n\n", 2 * lines)
        f.write(b'"\n')
    return path


def rds2_zip_of_zeros(path: Path, size: int = 2 << 30) -> Path:
    """A zip posing as an NSRL RDS 2.x: ``NSRLFile.txt`` holds the RDS header and then
    ``size`` zero bytes, no newline (deflate: about 1,000 to 1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("NSRLFile.txt", "w", force_zip64=True) as f:
        f.write(b'"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode",'
                b'"SpecialCode"\r\n')
        _repeat(f, b"\0", size)
    return path


def rds2_zip_of_newlines(path: Path, size: int = 2 << 30) -> Path:
    """The same with ``size`` bytes of empty lines: no long line, only a huge ratio."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("NSRLFile.txt", "w", force_zip64=True) as f:
        f.write(b'"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode",'
                b'"SpecialCode"\r\n')
        _repeat(f, b"\n", size)
    return path


def _rds3_base(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE FILE (sha256 VARCHAR, sha1 VARCHAR, md5 VARCHAR, crc32 "
                 "VARCHAR, file_name VARCHAR, file_size INTEGER, package_id INTEGER)")
    conn.execute("INSERT INTO FILE VALUES (NULL, NULL, ?, '00000000', 'f', 1, 1)", (MD5_A,))
    return conn


def rds3_recursive_view(path: Path) -> Path:
    """An RDSv3 whose ``DISTINCT_HASH`` view counts up forever and sorts the result (it
    never yields a row: memory and temporary files grow until killed)."""
    conn = _rds3_base(path)
    conn.execute("CREATE VIEW DISTINCT_HASH AS WITH RECURSIVE r(n) AS (SELECT 1 UNION "
                 "SELECT n + 1 FROM r) SELECT DISTINCT printf('%064x', n) AS sha256, "
                 "NULL AS sha1, NULL AS md5, NULL AS crc32 FROM r ORDER BY 1")
    conn.commit()
    conn.close()
    return path


def rds3_slow_view(path: Path, rows: int = 200) -> Path:
    """No recursion: a sorted 4-way cross join of ``rows`` rows (rows**4 sorted before the
    first row comes out): only the stall bound stops it."""
    conn = _rds3_base(path)
    conn.execute("CREATE TABLE N (n INTEGER)")
    conn.executemany("INSERT INTO N VALUES (?)", [(i,) for i in range(rows)])
    conn.execute("CREATE VIEW DISTINCT_HASH AS SELECT DISTINCT printf('%016x%016x%016x%016x',"
                 " a.n, b.n, c.n, d.n) AS sha256, NULL AS sha1, NULL AS md5, NULL AS crc32 "
                 "FROM N a, N b, N c, N d ORDER BY 1 DESC")
    conn.commit()
    conn.close()
    return path


def rds3_zeroblob(path: Path, size: int = 900_000_000) -> Path:
    """An 8 KB RDSv3 whose ``DISTINCT_HASH`` returns ``zeroblob(size)``."""
    conn = _rds3_base(path)
    conn.execute(f"CREATE VIEW DISTINCT_HASH AS SELECT zeroblob({int(size)}) AS sha256, "
                 "NULL AS sha1, md5, NULL AS crc32 FROM FILE")
    conn.commit()
    conn.close()
    return path


def many_lines(path: Path, lines: int = 2000) -> Path:
    """A bare MD5 list of ``lines`` distinct values."""
    with open(path, "w") as f:
        for i in range(lines):
            f.write(f"{i:032x}\n")
    return path
