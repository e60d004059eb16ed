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


# -- iLook and HashKeeper (issue 14) ---------------------------------------------------------
# Built here from ../shared/FORMATS.md ("iLook hash sets", "HashKeeper bundles") and the
# layout of hashdeep's own sample (tests/testfiles/ilookv4.hsh in hashdeep's repository):
# upper-case hex, empty SHA-256/384/512 columns, a Windows path, day-first local times, a
# last row with one field too many, no final line break. The hash values are of ITEMS.

ILOOK_V4_HEADER = ("V4Hash,HashSHA1,FileName,FilePath,FileSize,HashSHA256,HashSHA384,"
                   "HashSHA512,CreateTime,ModTime,LastAccessTime")
ILOOK_V3_HEADER = "V3Hash,HashSHA1,FileName,FilePath,FileSize,HashSHA256,HashSHA384,HashSHA512"


def ilook(path: Path, version: int = 4) -> Path:
    """ITEMS[0..2] as an iLook set; the v4 file ends with an empty-file row of 12 fields."""
    rows = [ILOOK_V4_HEADER if version == 4 else ILOOK_V3_HEADER]
    for i, data in enumerate(ITEMS[:3]):
        sha = sha256(data).upper() if i == 1 else ""
        times = f",16.4.2008 14:29:24,16.4.2008 10:2{i}:28,18.4.2008" if version == 4 else ""
        rows.append(f"{md5(data).upper()},{sha1(data).upper()},item-{i + 1}.bin,"
                    f"D:\\items\\,{len(data)},{sha},,{times}")
    if version == 4:
        rows.append(f"{EMPTY_MD5.upper()},{EMPTY_SHA1.upper()},NULL,DEV,,0,,,,"
                    "16.4.2008 14:29:24,2.4.2008 14:25:16,18.4.2008")
    path.write_bytes("\r\n".join(rows).encode())
    return path


HK_HEADER = ('"file_id","hashset_id","file_name","directory","hash","file_size",'
             '"date_modified","time_modified","time_zone","comments","date_accessed",'
             '"time_accessed"')
HKE_HEADER = ('"hashset_id","name","vendor","package","version","authenicated_flag",'
              '"notable_flag","initials","num_of_files","description","date_loaded"')


def hashkeeper_hsh(path: Path, hashset_id: str = "77") -> Path:
    """ITEMS[0..2] as a HashKeeper .hsh; records 1 and 2 share file_id 5 (as two records of
    Microsoft's published sample do)."""
    rows = [HK_HEADER]
    for i, (fid, data) in enumerate(zip(("5", "5", "9"), ITEMS[:3], strict=True)):
        rows.append(f'{fid},{hashset_id},"item-{i + 1}.bin","C:\\WINDOWS",'
                    f'"{md5(data).upper()}",{len(data)},1/2/2003,12:00:00,"",,,')
    path.write_text("\r\n".join(rows) + "\r\n")
    return path


def hashkeeper_hke(path: Path, notable: str = "0", hashset_id: str = "77",
                   files: int = 3) -> Path:
    path.write_text(HKE_HEADER + "\r\n" + f'{hashset_id},"Windows XP SP1 sample","Microsoft",'
                    f'"Windows XP","SP1",0,{notable},"AB",{files},"sample set",1/2/2003\r\n')
    return path


def hashkeeper_zip(path: Path, notable: str = "0", pk00: bool = False) -> Path:
    """A .zip holding NAME.hsh and NAME.hke; with ``pk00`` it starts with the spanning
    marker, offsets adjusted as PKZIP wrote them (the central directory counts the
    marker)."""
    import io
    import zipfile

    tmp = path.with_name(path.name + ".parts")
    tmp.mkdir()
    buf = io.BytesIO()
    if pk00:
        buf.write(b"PK00")
    with zipfile.ZipFile(buf, "a" if pk00 else "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("WINXP.hsh", hashkeeper_hsh(tmp / "WINXP.hsh").read_bytes())
        zf.writestr("WINXP.hke", hashkeeper_hke(tmp / "WINXP.hke", notable).read_bytes())
    path.write_bytes(buf.getvalue())
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    return path
