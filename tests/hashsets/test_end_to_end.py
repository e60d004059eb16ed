"""End to end through the CLI: import sets, scan a folder, re-match an old case (issue 3).

Every input is BUILT HERE: benign synthetic pictures (seeded noise textures made with
Pillow and numpy), a VICS 2.0 ``#Media`` hash set written from FORMATS.md (no public VICS
sample exists), PDQ and pHash lists of some set members' originals, and an NSRL RDS
2.x-style ``NSRLFile.txt`` listing a few non-media files. The scan must report exact hits
for the set members, near hits for resized / re-encoded copies, known hits for the NSRL
files, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hashsets.algorithms import get
from triage.case import DB_NAME

pytest.importorskip("pdqhash")
pytest.importorskip("imagehash")

VICS_CONTEXT = ("http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/"
                "$metadata#Media")
SIZE = 256


def texture(seed: int) -> Image.Image:
    """A seeded, multi-octave noise texture (PDQ quality well above 50)."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((SIZE, SIZE), dtype=np.float32)
    for cell, weight in ((64, 0.5), (16, 0.3), (4, 0.2)):
        g = SIZE // cell + 2
        coarse = Image.fromarray((rng.random((g, g)) * 255).astype(np.uint8), "L")
        acc += weight * np.asarray(coarse.resize((SIZE, SIZE), Image.Resampling.BICUBIC),
                                   dtype=np.float32) / 255
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    rgb = c0 * (1 - acc[..., None]) + c1 * acc[..., None]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def save(image: Image.Image, path: Path, fmt: str, **params: Any) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **params)
    return path.read_bytes()


def cli(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "triage", *args], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def matches(case: Path, run_id: int) -> dict[str, list[dict[str, Any]]]:
    """The run's matches by file path (relative to the evidence folder)."""
    conn = sqlite3.connect(case / DB_NAME)
    conn.row_factory = sqlite3.Row
    out: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute("SELECT f.display_path AS path, m.* FROM matches m JOIN files f ON "
                          "f.id = m.file_id WHERE m.run_id = ? ORDER BY path, m.algorithm",
                          (run_id,)):
        d = dict(r)
        out.setdefault(str(d["path"]).replace("\\", "/").rsplit("evidence/", 1)[-1],
                       []).append(d)
    conn.close()
    return out


def test_scan_finds_exact_near_and_known_hits_and_nothing_else(tmp_path: Path) -> None:
    ev = tmp_path / "evidence"
    pdq, phash = get("pdq"), get("phash")
    # Set members 1..4 (VICS). 1 and 2 are in the folder as they are; 3 and 4 only as
    # copies: 3 resized (its original's PDQ is in a PDQ list), 4 re-encoded as JPEG (its
    # original's pHash is in a pHash list).
    originals = {i: texture(100 + i) for i in range(1, 5)}
    member_bytes = {1: save(originals[1], ev / "DCIM/member1.jpg", "JPEG", quality=92),
                    2: save(originals[2], ev / "DCIM/member2.png", "PNG")}
    others = {i: save(originals[i], tmp_path / f"elsewhere/member{i}.png", "PNG")
              for i in (3, 4)}
    save(originals[3].resize((200, 200), Image.Resampling.LANCZOS), ev / "copies/resized.jpg",
         "JPEG", quality=90)
    save(originals[4], ev / "copies/reencoded.jpg", "JPEG", quality=70)
    # Distractors: pictures in no set, and a file only a later set knows.
    save(texture(7), ev / "DCIM/holiday.jpg", "JPEG", quality=90)
    save(texture(8), ev / "DCIM/cat.png", "PNG")
    later = ev / "docs/later.txt"
    later.parent.mkdir(parents=True)
    later.write_bytes(b"only the next quarterly set knows this file\n")
    # Non-media files that an NSRL RDS 2.x list knows.
    nsrl_files = {"bin/tool.exe": b"MZ" + bytes(range(256)) * 8,
                  "bin/readme.txt": b"NSRL-known readme\r\n" * 20}
    for rel, data in nsrl_files.items():
        (ev / rel).parent.mkdir(parents=True, exist_ok=True)
        (ev / rel).write_bytes(data)

    for i in (1, 2, 3):
        assert pdq.compute(originals[i])[1] >= 50  # type: ignore[attr-defined]

    # VICS 2.0 hash set, built here (see the module doc).
    vics_media = []
    for i in range(1, 5):
        data = member_bytes.get(i) or others[i]
        vics_media.append({
            "MediaID": 500 + i, "Category": 1 if i % 2 else 2,
            "MD5": hashlib.md5(data).hexdigest().upper(),
            "SHA1": hashlib.sha1(data).hexdigest(), "MediaSize": len(data),
            "VictimIdentified": i == 1, "OffenderIdentified": False, "IsDistributed": True,
            "Series": f"series-{i}", "MimeType": "image/png",
            "MediaFiles": [{"MD5": hashlib.md5(data).hexdigest(), "FileName": f"m{i}"}]})
    sets = tmp_path / "sets"
    sets.mkdir()
    (sets / "vics.json").write_text(json.dumps({"@odata.context": VICS_CONTEXT,
                                                "value": vics_media}), "utf-8")
    (sets / "pdq.txt").write_text(f"{pdq.compute(originals[3])[0]} member3\n")
    (sets / "phash.txt").write_text(f"{phash.compute(originals[4])[0]} member4\n")
    rows = ['"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode",'
            '"SpecialCode"']
    for rel, data in nsrl_files.items():
        rows.append(f'"{hashlib.sha1(data).hexdigest().upper()}",'
                    f'"{hashlib.md5(data).hexdigest().upper()}","00000000",'
                    f'"{rel.rsplit("/", 1)[-1]}",{len(data)},1,"358",""')
    rows.append('"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709","D41D8CD98F00B204E9800998ECF8427E",'
                '"00000000","empty",0,1,"358",""')  # the empty file: counted, never stored
    (sets / "NSRLFile.txt").write_text("\r\n".join(rows) + "\r\n")

    store = tmp_path / "store.sqlite"
    out = json.loads(cli("hashset", "import", str(sets / "vics.json"), "--format", "vics",
                         "--store", str(store), "--json"))
    assert out[0]["set"]["accepted"] == 4
    cli("hashset", "import", str(sets / "pdq.txt"), "--format", "perceptual", "--algorithm",
        "pdq", "--store", str(store))
    cli("hashset", "import", str(sets / "phash.txt"), "--format", "perceptual", "--algorithm",
        "phash", "--store", str(store))
    out = json.loads(cli("hashset", "import", str(sets / "NSRLFile.txt"), "--format",
                         "nsrl-rds2", "--store", str(store), "--json"))
    assert out[0]["set"]["accepted"] == 2 and out[0]["set"]["empty_digests"] == 1

    case = tmp_path / "case"
    summary = json.loads(cli("scan", str(ev), "--case", str(case), "--store", str(store),
                             "--json", "-q"))
    assert summary  # the scan's own summary; the case database holds the details
    got = matches(case, 1)

    assert set(got) == {"DCIM/member1.jpg", "DCIM/member2.png", "copies/resized.jpg",
                        "copies/reencoded.jpg", "bin/tool.exe", "bin/readme.txt"}, got.keys()
    for i in (1, 2):
        hits = got[f"DCIM/member{i}.{'jpg' if i == 1 else 'png'}"]
        assert [(h["algorithm"], h["match_type"], h["distance"]) for h in hits] == \
            [("md5", "exact", 0), ("sha1", "exact", 0)]
        for h in hits:
            assert h["set_name"] == "vics.json" and not h["known"]
            assert h["category_raw"] == str(1 if i % 2 else 2) and h["category"]
            assert h["series"] == f"series-{i}"
            assert h["victim_identified"] == (1 if i == 1 else 0)
            assert h["offender_identified"] == 0
            assert h["entry_ref"] == str(500 + i)
    [near3] = got["copies/resized.jpg"]
    assert (near3["algorithm"], near3["match_type"], near3["threshold"]) == ("pdq", "near", 31)
    assert 0 <= near3["distance"] <= 31 and near3["set_name"] == "pdq.txt"
    [near4] = got["copies/reencoded.jpg"]
    assert (near4["algorithm"], near4["match_type"], near4["threshold"]) == \
        ("phash", "near", 10)
    assert 0 <= near4["distance"] <= 10 and near4["set_name"] == "phash.txt"
    for rel in nsrl_files:
        hits = got[rel]
        assert sorted(h["algorithm"] for h in hits) == ["md5", "sha1"]
        assert all(h["known"] == 1 and h["category"] == "known" and h["match_type"] == "exact"
                   for h in hits)

    # The next set arrives: `triage match` finds its hit in the old case, as a new run.
    (sets / "later.md5").write_text(hashlib.md5(later.read_bytes()).hexdigest() + "\n")
    cli("hashset", "import", str(sets / "later.md5"), "--store", str(store))
    summary = json.loads(cli("match", str(case), "--store", str(store), "--json"))
    assert summary["files_matched"] == 5  # 4 pictures + the newly known file
    regot = matches(case, 2)
    assert set(regot) == set(got) | {"docs/later.txt"}
    [new] = regot["docs/later.txt"]
    assert (new["set_name"], new["algorithm"], new["match_type"]) == ("later.md5", "md5",
                                                                     "exact")
    conn = sqlite3.connect(case / DB_NAME)
    actions = [r[0] for r in conn.execute("SELECT action FROM audit ORDER BY seq")]
    runs = conn.execute("SELECT id, command, status FROM runs ORDER BY id").fetchall()
    conn.close()
    assert runs[-1] == (2, "match", "completed")
    assert actions.index("match.start") < actions.index("match.end")
    assert actions[-1] == "match.end"
