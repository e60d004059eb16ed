"""Hash-set fixtures BUILT HERE from ../shared/FORMATS.md.

No public VICS, CAID or ICSE sample exists, so these files are written by the tests from the
documented facts (field names, version markers, separators, quirks). Everything else comes
from ../shared/testdata/hashsets/ by path.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "hashsets"
MD5DEEP = TESTDATA / "md5deep" / "md5deep.txt"
MD5DEEP_SIZE = TESTDATA / "md5deep" / "md5deep-size.txt"
RDS2_ZIP = TESTDATA / "nsrl-rds2-mini" / "RDS-000001-15.zip"

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PHOTODNA_HEX = bytes(range(144)).hex()

# Media content of the synthetic sets: b"item-1" ... b"item-5".
ITEMS = [f"item-{i}".encode() for i in range(1, 6)]


def media(i: int, *, category: Any = 1, upper: bool = True, flags_as: str = "bool",
          v1_alt: bool = False) -> dict[str, Any]:
    data = ITEMS[i - 1]
    m5, s1 = md5(data), sha1(data)
    flag: Any = (i % 2 == 0) if flags_as == "bool" else ("true" if i % 2 == 0 else "false")
    rec: dict[str, Any] = {
        "MediaID": 1000 + i, "Category": category,
        "MD5": m5.upper() if upper else m5,
        "MediaSize": len(data), "DateUpdated": "2024-01-02T03:04:05Z",
        "VictimIdentified": flag, "OffenderIdentified": not flag if flags_as == "bool"
        else ("false" if flag == "true" else "true"),
        "IsDistributed": flag, "Series": f"series-{i}" if i <= 2 else None,
        "Tags": None, "Comments": None, "RelativeFilePath": f"media/{i}.jpg",
        "IsPrecategorized": True, "MimeType": "image/jpeg",
        "MediaFiles": [{"MD5": m5, "FileName": f"{i}.jpg", "FilePath": "x",
                        "Unallocated": False, "Deleted": False}],
        "Exifs": [],
    }
    if v1_alt:
        rec["AlternativeHashes"] = [{"HashName": "SHA1", "HashValue": s1.upper()},
                                    {"HashName": "PhotoDNA", "HashValue": PHOTODNA_HEX}]
    else:
        rec["SHA1"] = s1
        rec["PhotoDNA"] = PHOTODNA_HEX if i == 1 else None
    return rec


def vics_v1(path: Path, kind: str = "Media") -> Path:
    """VICS 1.3 ``#Media`` (or ``#Cases``) with AlternativeHashes, string flags."""
    records = [media(i, category=i % 4, flags_as="str", v1_alt=True) for i in (1, 2, 3)]
    marker = f"http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#{kind}"
    if kind == "Cases":
        value: list[Any] = [{"CaseID": "c1", "CaseNumber": "2024-1", "ContactName": "x",
                             "ContactOrganization": "y", "SourceApplicationName": "test",
                             "SourceApplicationVersion": "1", "TotalMediaFiles": 3,
                             "Media": records}]
    else:
        value = records
    path.write_text(json.dumps({"odata.metadata": marker, "value": value}), "utf-8")
    return path


def vics_v2(path: Path, context: str = "US", kind: str = "Media",
            categories: tuple[Any, ...] = (1, 2, 0, 3, 1)) -> Path:
    """VICS 2.0 with ``@odata.context``; record 3 carries the empty file's MD5 as a quirk."""
    records = [media(i, category=c) for i, c in enumerate(categories, 1)]
    records[2]["MD5"] = EMPTY_MD5.upper()
    records[2]["SHA1"] = EMPTY_SHA1
    marker = (f"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{context}/"
              f"$metadata#{kind}")
    if kind == "Cases":
        value: list[Any] = [{"CaseID": "c", "CaseNumber": "n", "Media": records[:2]},
                            {"CaseID": "d", "CaseNumber": "m", "Media": records[2:]}]
    else:
        value = records
    path.write_text(json.dumps({"@odata.context": marker, "value": value}, indent=1), "utf-8")
    return path


def caid(path: Path) -> Path:
    """CAID: VICS 2.0 with the UK context; categories 1/2/3 (A/B/C, mapping UNCONFIRMED)."""
    return vics_v2(path, context="UK", categories=(1, 2, 0, 3, 2))


ICSE_HEADER = ("MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender "
               "identified;Series name;Number of submissions;File Available;Media Type;"
               "Baseline")


def icse(path: Path) -> Path:
    """INTERPOL ICSE CSV (';'), header as in FORMATS.md, CRLF line ends."""
    rows = [ICSE_HEADER]
    for i, data in enumerate(ITEMS[:4], 1):
        base = "true" if i == 1 else "false"
        rows.append(f"{md5(data).upper()};{sha1(data)};;ICSE-{i};true;"
                    f"{'true' if i == 2 else 'false'};false;S{i};3;true;Image;{base}")
    rows.append("ZZZ;;;ICSE-bad;;;;;;;;")  # non-hex MD5: rejected, line 6
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return path


def rds3(path: Path, rows: list[tuple[str, str, str]] | None = None,
         full: bool = False) -> Path:
    """An RDSv3-shaped SQLite DB: minimal-edition schema (FILE table, DISTINCT_HASH view)
    or full-edition shape (FILE as a view over METADATA). Hashes upper-case hex."""
    if rows is None:
        rows = [(sha256(d).upper(), sha1(d).upper(), md5(d).upper()) for d in
                (b"nsrl-a", b"nsrl-b", b"nsrl-c")]
    conn = sqlite3.connect(path)
    c = conn.cursor()
    c.execute("CREATE TABLE VERSION (version TEXT, build_set TEXT, build_date TEXT, "
              "release_date TEXT, description TEXT)")
    c.execute("INSERT INTO VERSION VALUES ('2024.03.1', 'minimal', '2024-03-01', "
              "'2024-03-01', 'test')")
    c.execute("CREATE TABLE PKG (package_id INTEGER, name TEXT)")
    c.execute("CREATE TABLE OS (operating_system_id INTEGER, name TEXT)")
    c.execute("CREATE TABLE MFG (manufacturer_id INTEGER, name TEXT)")
    table = "METADATA" if full else "FILE"
    c.execute(f"CREATE TABLE {table} (sha256 VARCHAR, sha1 VARCHAR, md5 VARCHAR, crc32 "
              "VARCHAR, file_name VARCHAR, file_size INTEGER, package_id INTEGER)")
    c.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, '00000000', 'f', 1, 1)",
                  rows + rows[:1])  # one repeated row (same file in two packages)
    if full:
        c.execute("CREATE VIEW FILE AS SELECT * FROM METADATA")
    c.execute("CREATE VIEW DISTINCT_HASH AS SELECT DISTINCT sha256, sha1, md5, crc32 "
              "FROM FILE")
    conn.commit()
    conn.close()
    return path
