"""Series clusters and the ranked leads queue (issue 16 items 3 and 4; docs/leads.md).

A generated case of benign synthetic pictures (Pillow shapes; EXIF make, model, body serial
and capture times set with Pillow and read back by exiftool): three series from three
synthetic cameras with consecutive capture times, edited copies (resized, re-encoded, no
EXIF), one picture of series B in a known set by its SHA-256, and series C near a known
set made from rotated versions of its pictures (PDQ distances just above the threshold).
The clusters, their order in ``triage leads`` and the reasons are what the rules give;
two runs give the same ids and order.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hashsets.algorithms import get
from tests.support import rows, run_triage
from triage.clusters import (
    NEAR_FACTOR,
    UnionFind,
    camera_folder,
    cluster_id,
    components,
    near_pairs,
    normalise_serial,
)

PDQ_T = get("pdq").default_threshold or 31
CAMERAS = {
    "A": ("Synthcam", "A1", "SA-0001", "2025:03:01 10:00:00"),
    "B": ("Synthcam", "B2", "SB 0002", "2025:03:02 14:30:00"),
    "C": ("Othercam", "C3", "sc-0003", "2025:03:05 09:15:00"),
}


def picture(seed: int) -> Image.Image:
    """A benign synthetic picture: coloured rectangles and ellipses on a plain ground."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (320, 240), tuple(int(x) for x in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, 300)), int(rng.integers(0, 220))
        x1, y1 = x0 + int(rng.integers(20, 160)), y0 + int(rng.integers(20, 120))
        col = tuple(int(x) for x in rng.integers(0, 256, 3))
        (d.rectangle if rng.random() < 0.5 else d.ellipse)([x0, y0, x1, y1], fill=col)
    return im


def exif_bytes(make: str, model: str, serial: str, when: str) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = make, model
    sub = exif.get_ifd(0x8769)
    sub[0xA431] = serial  # BodySerialNumber
    sub[0x9003] = when  # DateTimeOriginal
    return exif.tobytes()


def _minutes(when: str, n: int) -> str:
    day, time = when.split(" ")
    h, m, s = (int(x) for x in time.split(":"))
    m += 2 * n
    return f"{day} {h + m // 60:02d}:{m % 60:02d}:{s:02d}"


def _pdq(im: Image.Image) -> str:
    return get("pdq").compute(im)[0]


def _dist(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def build_evidence(root: Path) -> dict[str, Any]:
    """The evidence folder and the two hash-set files; returns what the test expects."""
    ev = root / "evidence"
    layout = {"A": ev / "DCIM" / "100SYNTH", "B": ev / "photos" / "b", "C": ev / "photos" / "c"}
    counts = {"A": 4, "B": 4, "C": 3}
    seeds = {"A": 100, "B": 200, "C": 300}
    files: dict[str, list[Path]] = {}
    for series, folder in layout.items():
        folder.mkdir(parents=True)
        make, model, serial, when = CAMERAS[series]
        files[series] = []
        for i in range(counts[series]):
            p = folder / f"IMG_{seeds[series] + i:04d}.JPG"
            picture(seeds[series] + i).save(p, "JPEG", quality=95,
                                            exif=exif_bytes(make, model, serial,
                                                            _minutes(when, i)))
            files[series].append(p)
    copies = ev / "copies"
    copies.mkdir()
    for series in ("A", "B"):  # edited copies: half size, re-encoded, no EXIF
        with Image.open(files[series][1]) as im:
            im.convert("RGB").resize((160, 120)).save(copies / f"edit_{series}.jpg", "JPEG",
                                                      quality=60)
    other = ev / "misc"
    other.mkdir()
    for i in range(3):  # unrelated pictures, no metadata: singletons, no lead
        picture(900 + i).save(other / f"pic{i}.png")
    # Known set 1: one picture of series B by SHA-256 (an exact hit).
    sets = root / "sets"
    sets.mkdir()
    b_known = hashlib.sha256(files["B"][0].read_bytes()).hexdigest()
    (sets / "known_b.csv").write_text(f"sha256,series,category\n{b_known},SERIES-B,1\n")
    # Known set 2: rotated versions of series C, PDQ just above the threshold.
    lines = ["pdq,series,category"]
    distances = []
    for p in files["C"]:
        with Image.open(p) as im:
            im = im.convert("RGB")
            own = _pdq(im)
            for angle in (2.0, 1.5, 2.5, 1.0, 3.0, 1.75, 2.25):
                value = _pdq(im.rotate(angle, resample=Image.Resampling.BICUBIC))
                d = _dist(own, value)
                if PDQ_T + 2 <= d <= int(PDQ_T * NEAR_FACTOR) - 2:
                    lines.append(f"{value},SERIES-C,1")
                    distances.append(d)
                    break
            else:
                raise AssertionError(f"no rotation puts {p.name} just beyond the threshold")
    (sets / "near_c.csv").write_text("\n".join(lines) + "\n")
    return {"evidence": ev, "sets": sets, "files": files, "distances": distances}


def _exiftool(path: Path) -> dict[str, Any]:
    out = subprocess.run(["exiftool", "-j", "-n", str(path)], capture_output=True,
                         text=True, check=True, timeout=60)
    return dict(json.loads(out.stdout)[0])


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("leads")
    built = build_evidence(root)
    store = root / "store.sqlite"
    for name in ("known_b", "near_c"):
        r = run_triage("hashset", "import", str(built["sets"] / f"{name}.csv"), "--store",
                       str(store), "--name", name, "--format", "csv")
        assert r.returncode == 0, r.stderr
    case = root / "case"
    r = run_triage("scan", str(built["evidence"]), "--case", str(case), "--store", str(store),
                   "--device-make", "synthcam", "--device-model", "A1", "-q", "--json")
    assert r.returncode == 0, r.stderr
    leads = run_triage("leads", str(case), "--store", str(store), "--json", "--limit", "0")
    assert leads.returncode == 0, leads.stderr
    return {**built, "store": store, "case": case, "root": root,
            "leads": json.loads(leads.stdout), "leads_stderr": leads.stderr}


def test_synthetic_exif_as_exiftool_reads_it(generated: dict[str, Any]) -> None:
    """The generated cameras are what an independent reader sees (and what the case has)."""
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool not installed (bootstrap.sh installs it)")
    for series, paths in generated["files"].items():
        make, model, serial, _ = CAMERAS[series]
        for p in paths:
            tags = _exiftool(p)
            assert (tags["Make"], tags["Model"], str(tags["SerialNumber"])) == \
                (make, model, serial)
    got = {(r["make"], r["model"], r["serial"]) for r in rows(
        generated["case"], "SELECT make, model, serial FROM media_metadata")}
    assert got == {c[:3] for c in CAMERAS.values()}


def _members(case: Path, run: int) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rows(case, "SELECT m.cluster_id, f.display_path FROM cluster_members m "
                        "JOIN files f ON f.id = m.file_id WHERE m.run_id = ?", (run,)):
        out.setdefault(r["cluster_id"], set()).add(r["display_path"])
    return out


def test_expected_clusters(generated: dict[str, Any]) -> None:
    case, run = generated["case"], generated["leads"]["summary"]["run"]
    clusters = sorted(sorted(m) for m in _members(case, run).values())
    expected = sorted([
        sorted([f"DCIM/100SYNTH/IMG_{100 + i:04d}.JPG" for i in range(4)]
               + ["copies/edit_A.jpg"]),
        sorted([f"photos/b/IMG_{200 + i:04d}.JPG" for i in range(4)] + ["copies/edit_B.jpg"]),
        sorted(f"photos/c/IMG_{300 + i:04d}.JPG" for i in range(3)),
        ["misc/pic0.png"], ["misc/pic1.png"], ["misc/pic2.png"]])
    assert clusters == expected
    by_id = {r["cluster_id"]: r for r in rows(case, "SELECT * FROM clusters WHERE run_id=?",
                                              (run,))}
    b = next(r for r in by_id.values() if r["known_members"])
    assert b["size"] == 5 and json.loads(b["series"]) == ["SERIES-B"]
    assert json.loads(b["joined_by"]) == {"pdq": 1, "phash+dhash": 1, "serial": 3}
    assert (b["first_capture"], b["last_capture"]) == ("2025:03:02 14:30:00",
                                                       "2025:03:02 14:36:00")
    assert json.loads(b["cameras"]) == [["Synthcam", "B2", "SB 0002"]]
    # The id is derived from the members' SHA-256 values.
    shas = [r["value"] for r in rows(
        case, "SELECT h.value FROM cluster_members m JOIN hashes h ON h.file_id = m.file_id "
              "AND h.algorithm = 'sha256' WHERE m.run_id = ? AND m.cluster_id = ?",
        (run, b["cluster_id"]))]
    assert b["cluster_id"] == cluster_id(shas)
    # ... checked independently: coreutils' sha256sum of the member files, then the rule.
    paths = [generated["evidence"] / r["display_path"] for r in rows(
        case, "SELECT f.display_path FROM cluster_members m JOIN files f ON f.id = m.file_id "
              "WHERE m.run_id = ? AND m.cluster_id = ?", (run, b["cluster_id"]))]
    out = subprocess.run(["sha256sum", *map(str, paths)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    independent = sorted(line.split()[0] for line in out.splitlines())
    assert sorted(shas) == independent
    text = "".join(v + "\n" for v in independent).encode("ascii")
    assert b["cluster_id"] == "c" + hashlib.sha256(text).hexdigest()[:16]


def test_leads_order_and_reasons(generated: dict[str, Any]) -> None:
    doc = generated["leads"]
    case = generated["case"]
    members = _members(case, doc["summary"]["run"])
    order = [next(p for p in sorted(members[x["cluster_id"]]) if not p.startswith("copies"))
             .split("/")[-2] for x in doc["leads"]]
    # B: unknown pictures from the camera of a known picture; A: the seized device's
    # camera, in DCIM; C: near a known series beyond its threshold. Singletons: no lead.
    assert order == ["b", "100SYNTH", "c"], doc["leads"]
    signals = [[r["signal"] for r in x["reasons"]] for x in doc["leads"]]
    assert signals == [["serial_of_known", "consecutive", "size"],
                       ["device", "camera_folder", "consecutive", "size"],
                       ["near_known", "consecutive", "size"]]
    assert [x["score"] for x in doc["leads"]] == [50 + 10 + 4, 30 + 10 + 10 + 4, 40 + 10 + 2]
    near = doc["leads"][2]["reasons"][0]["reason"]
    assert "series SERIES-C of set near_c" in near
    assert f"closest PDQ distance {min(generated['distances'])} (threshold {PDQ_T}" in near
    assert "SERIES-B" in doc["leads"][0]["reasons"][0]["reason"]
    # Nothing of the metadata or the paths on the terminal.
    text = json.dumps(doc) + generated["leads_stderr"]
    for make, model, serial, when in CAMERAS.values():
        for value in (serial, when, "Synthcam", "Othercam"):
            assert value not in text
    assert "photos/" not in text and "100SYNTH" not in text and "IMG_" not in text


def test_two_runs_same_ids_and_order(generated: dict[str, Any]) -> None:
    case, store = generated["case"], generated["store"]
    again = run_triage("leads", str(case), "--store", str(store), "--json", "--limit", "0")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    first = generated["leads"]
    assert second["summary"]["run"] > first["summary"]["run"]
    assert first["leads"] == second["leads"]
    r1, r2 = first["summary"]["run"], second["summary"]["run"]
    assert _members(case, r1) == _members(case, r2)
    # Recorded like a match: a run, audited start and end covering the new tables.
    actions = [r["action"] for r in rows(case, "SELECT action FROM audit ORDER BY seq")]
    assert actions[-2:] == ["leads.start", "leads.end"]
    end = json.loads(rows(case, "SELECT details FROM audit ORDER BY seq DESC LIMIT 1")[0][0])
    assert {"clusters", "cluster_members"} <= set(end["data_digest"]["tables"])
    verify = run_triage("verify", str(case))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_terminal_table(generated: dict[str, Any]) -> None:
    r = run_triage("leads", str(generated["case"]), "--store", str(generated["store"]),
                   "--limit", "2")
    assert r.returncode == 0, r.stderr
    assert "leads (best first; 2 of 3)" in r.stdout
    assert "+50 " in r.stdout and "+40 " not in r.stdout
    assert "Synthcam" not in r.stdout and "photos" not in r.stdout


def test_report_section(generated: dict[str, Any]) -> None:
    out = generated["root"] / "report.html"
    r = run_triage("report", str(generated["case"]), "--format", "html", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    html = out.read_text(encoding="utf-8")
    assert 'id="leads"' in html
    first = generated["leads"]["leads"][0]["cluster_id"]
    assert first in html and "<img" not in html
    section = html.split('id="leads"', 1)[1].split("</section>", 1)[0]
    assert first in section
    assert "SB 0002" not in section  # serials are left out of the section ...
    # ... and out of the whole export when the prosecutor's copy is redacted (appendix G
    # lists the metadata of files with hits, serials included, unless --redact serial).
    out2 = generated["root"] / "report-redacted.html"
    r = run_triage("report", str(generated["case"]), "--format", "html", "--out", str(out2),
                   "--redact", "serial")
    assert r.returncode == 0, r.stdout + r.stderr
    redacted = out2.read_text(encoding="utf-8")
    assert 'id="leads"' in redacted and "SB 0002" not in redacted


# -- units ---------------------------------------------------------------------------------
def test_union_find_and_components() -> None:
    uf = UnionFind(6)
    uf.union_pairs([0, 2, 4], [1, 3, 5])
    uf.union(1, 3)
    assert len({uf.find(i) for i in range(6)}) == 2
    roots = components(5, [np.array([[0, 4], [1, 2]], dtype=np.int64)])
    assert roots[0] == roots[4] and roots[1] == roots[2] and roots[3] not in roots[:3]


def test_near_pairs_equals_brute_force() -> None:
    """The compiled index gives exactly the pairs a pairwise comparison gives."""
    from hashsets.matching import hex_to_words

    rng = np.random.default_rng(7)
    base = [int.from_bytes(rng.bytes(32), "big") for _ in range(40)]
    values = list(base)
    for v in base[:20]:  # near copies: 5 to 40 bits flipped
        flips = rng.choice(256, size=int(rng.integers(5, 41)), replace=False)
        values.append(v ^ sum(1 << int(b) for b in flips))
    hexes = [f"{v:064x}" for v in values]
    words = hex_to_words(hexes, 256)
    nodes = np.arange(len(values), dtype=np.int64)
    got = {tuple(p) for p in near_pairs(words, nodes, words, nodes, 256, PDQ_T).tolist()}
    want = {(i, j) for i in range(len(values)) for j in range(i + 1, len(values))
            if bin(values[i] ^ values[j]).count("1") <= PDQ_T}
    assert got == want and want


def test_serial_and_folder_rules() -> None:
    assert normalise_serial("Canon ", " 12 34") == normalise_serial("canon", "1234")
    assert normalise_serial("Canon", "0000") is None
    assert normalise_serial("Canon", "unknown") is None
    assert normalise_serial("Canon", "1234") != normalise_serial("Nikon", "1234")
    assert camera_folder("DCIM/100APPLE/IMG_1.HEIC")
    assert camera_folder("Internal/Camera/x.jpg")
    assert not camera_folder("Pictures/x.jpg")
    assert not camera_folder("DCIM.jpg")


def test_exif_bytes_roundtrip() -> None:
    buf = io.BytesIO()
    picture(1).save(buf, "JPEG", exif=exif_bytes("M", "N", "S1", "2025:01:01 00:00:00"))
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        exif = im.getexif()
        assert exif[0x010F] == "M" and exif.get_ifd(0x8769)[0xA431] == "S1"


def test_pdf_leads_section_layout(generated: dict[str, Any]) -> None:
    """The PDF's Leads section read back by poppler and pdfplumber: the title, every lead's
    id and reasons, no cell too narrow, no raw JSON, capture times never broken."""
    from tests.reports.test_layout import MIN_CELL_CHARS, RAW_JSON, _cells, _pdftotext

    pdf = generated["root"] / "report.pdf"
    # --redact serial: the serials must then be nowhere in the PDF (the Leads section never
    # shows them; appendix G would list them for files with hits without the option).
    r = run_triage("report", str(generated["case"]), "--format", "pdf", "--out", str(pdf),
                   "--redact", "serial")
    assert r.returncode == 0, r.stdout + r.stderr
    text = _pdftotext(pdf)
    assert "Leads: series clusters of unknown media, ranked" in text
    flat = " ".join(text.split())
    for lead in generated["leads"]["leads"]:
        assert lead["cluster_id"] in flat
    assert "share the camera body serial of 1 known file" in flat
    assert not RAW_JSON.search(text)
    for serial in ("SA-0001", "SB 0002", "sc-0003"):
        assert serial not in flat
    narrow = [(p, round(w, 1), t) for p, _land, w, t in _cells(pdf) if w < MIN_CELL_CHARS]
    assert narrow == []
    words = set(_pdftotext(pdf, "-layout").split())
    assert {"2025:03:02", "14:30:00"} <= words


def test_without_store_the_near_signal_is_missing_and_said(generated: dict[str, Any]) -> None:
    r = run_triage("leads", str(generated["case"]), "--store",
                   str(generated["root"] / "no-such-store.sqlite"), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert any("near a known series' was not searched" in n for n in doc["summary"]["notes"])
    signals = {s["signal"] for x in doc["leads"] for s in x["reasons"]}
    assert "near_known" not in signals and "serial_of_known" in signals


def test_terminal_reasons_are_escaped() -> None:
    from triage.cli_leads import _reasons

    text = _reasons((("review_hit", 35, "1 member with near hits to series \x1b[31mX\u202e"),))
    assert "\x1b" not in text.plain and "\u202e" not in text.plain
    assert "\\x1b[31mX\\u202e" in text.plain


def test_video_frames_and_rotated_copies_join(tmp_path: Path) -> None:
    """A picture made from a frame of a video joins the video (its frames' PDQ); a copy
    turned 90 degrees joins its original (through the variants); unrelated pictures stay
    alone."""
    import av

    from tests.support import TESTDATA

    clip = TESTDATA / "video" / "vpdq" / "chair-orig-22-sd-bar.mp4"
    if not clip.exists():
        pytest.skip("shared test video missing")
    ev = tmp_path / "evidence"
    ev.mkdir()
    with av.open(str(clip)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == 300:
                frame.to_image().save(ev / "still.png")
                break
    shutil.copyfile(clip, ev / "clip.mp4")
    picture(5).save(ev / "a.png")
    picture(5).transpose(Image.Transpose.ROTATE_270).save(ev / "a_turned.png")
    picture(6).save(ev / "b.png")
    case = tmp_path / "case"
    r = run_triage("scan", str(ev), "--case", str(case), "--no-match", "-q", "--json")
    assert r.returncode == 0, r.stderr
    r = run_triage("leads", str(case), "--store", str(tmp_path / "none.sqlite"), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert any("no match run" in n for n in doc["summary"]["notes"])
    groups = sorted(sorted(m) for m in _members(case, doc["summary"]["run"]).values())
    assert groups == [["a.png", "a_turned.png"], ["b.png"], ["clip.mp4", "still.png"]]
    joined = [json.loads(r["joined_by"]) for r in rows(
        case, "SELECT joined_by FROM clusters WHERE run_id = ? AND size = 2",
        (doc["summary"]["run"],))]
    assert len(joined) == 2 and all(j.get("pdq", 0) >= 1 for j in joined)
    # Two-file clusters without other signals are leads by size only (+1).
    assert [x["score"] for x in doc["leads"]] == [1, 1]
    # Without the variants the turned copy is alone (its own PDQ is far from the original).
    r = run_triage("leads", str(case), "--store", str(tmp_path / "none.sqlite"), "--json",
                   "--no-variants")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["summary"]["run"]
    groups = sorted(sorted(m) for m in _members(case, run).values())
    assert groups == [["a.png"], ["a_turned.png"], ["b.png"], ["clip.mp4", "still.png"]]


def test_score_signals_one_by_one() -> None:
    """Every signal of docs/leads.md, from made-up members (no case needed)."""
    from triage.clusters import (
        MEMBER_KNOWN,
        MEMBER_REVIEW,
        POINTS,
        Member,
        NearKnown,
        score,
    )

    def member(i: int, path: str, status: int = 0, serial: str | None = None,
               when: str | None = None) -> Member:
        m = Member(i, i, display_path=path, make="Cam" if serial else None, serial=serial,
                   captured=when, status=status)
        if status == MEMBER_REVIEW:
            m.review_series.add("S1")
        return m

    ms = [member(1, "a/x.jpg", MEMBER_KNOWN, serial="9", when="2025:01:01 10:00:00"),
          member(2, "a/y.jpg", serial="9", when="2025:01:01 10:09:59"),
          member(3, "hits/z.jpg", MEMBER_REVIEW)]
    near = {2: NearKnown("pdq", 40, 31, "set1", "S2")}
    got = {s: (p, r) for s, p, r in score(ms, {"serial": 1, "pdq": 1}, near, {2: ("", "")},
                                          {"hits": 3})}
    assert set(got) == {"serial_of_known", "near_known", "review_hit", "device",
                        "consecutive", "dense_folder", "size"}
    assert all(got[s][0] == POINTS[s] for s in got if s != "size")
    assert got["size"][0] == 2
    assert "series S1" in got["review_hit"][1] and "series S2 of set set1" in got["near_known"][1]
    assert "closest PDQ distance 40 (threshold 31, searched to 46)" in got["near_known"][1]
    # Joined by hashes only (no shared camera): the weak signal; 10 min + 1 s: not consecutive.
    ms2 = [member(1, "b/x.jpg", MEMBER_KNOWN, when="2025:01:01 10:00:00"),
           member(2, "b/y.jpg", when="2025:01:01 10:10:01")]
    got2 = {s for s, _, _ in score(ms2, {"pdq": 1}, {}, {}, {})}
    assert got2 == {"near_known_file", "size"}
    assert [r[0] for r in score([member(1, "DCIM/100APPLE/a.jpg")], {}, {}, {}, {})] == \
        ["camera_folder"]
    assert score([member(1, "x.jpg")], {}, {}, {}, {}) == []


def test_flat_pictures_do_not_join(tmp_path: Path) -> None:
    """Blank and one-colour pictures have degenerate pHash/dHash (8000000000000000 and 0)
    and PDQ below its quality gate: found on real evidence (tiny camera samples), they
    formed one false series. They join nothing; textured copies still join."""
    ev = tmp_path / "evidence"
    ev.mkdir()
    for i, colour in enumerate([(0, 0, 0), (255, 255, 255), (10, 200, 30), (128, 128, 128)]):
        Image.new("RGB", (64 + 16 * i, 48 + 8 * i), colour).save(ev / f"flat{i}.png")
    (ev / "copy").mkdir()
    Image.new("RGB", (64, 48), (0, 0, 0)).save(ev / "copy" / "flat0.png")  # same bytes
    picture(7).save(ev / "t.png")
    picture(7).resize((200, 150)).save(ev / "t_small.png")
    case = tmp_path / "case"
    r = run_triage("scan", str(ev), "--case", str(case), "--no-match", "-q", "--json")
    assert r.returncode == 0, r.stderr
    flat = rows(case, "SELECT count(DISTINCT h.file_id) FROM hashes h JOIN files f ON "
                "f.id = h.file_id WHERE f.display_path LIKE 'flat%' AND ((h.algorithm = "
                "'phash' AND h.value IN ('8000000000000000', '0000000000000000')) OR "
                "(h.algorithm = 'dhash' AND h.value = '0000000000000000'))")
    assert flat[0][0] == 4  # the premise: their 64-bit hashes are degenerate and equal
    r = run_triage("leads", str(case), "--store", str(tmp_path / "none.sqlite"), "--json")
    assert r.returncode == 0, r.stderr
    groups = sorted(sorted(m) for m in _members(case, json.loads(r.stdout)["summary"]["run"])
                    .values())
    assert groups == [["copy/flat0.png", "flat0.png"], ["flat1.png"], ["flat2.png"],
                      ["flat3.png"], ["t.png", "t_small.png"]]  # a copy joins by content
