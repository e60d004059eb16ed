"""Carving disk images' unallocated space and slack (issue 17), against independent tools:
the unallocated blocks against ``blkls`` (The Sleuth Kit), the carved items' MD5, SHA-1 and
SHA-256 against ``md5sum``/``sha1sum``/``sha256sum`` of the pictures and videos that
``build_carve.sh`` wrote into the images before deleting them or re-formatting."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.support import rows, scan_json
from triage.sources.image import ImageSource

HERE = Path(__file__).resolve().parent

@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The images, built by the committed script; fails (never skips) naming a missing
    tool (scripts/bootstrap.sh installs them)."""
    out = tmp_path_factory.mktemp("carve")
    proc = subprocess.run(["sh", str(HERE / "build_carve.sh"), str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"build_carve.sh failed: {proc.stderr.strip()}"
    return out


def _expected(built: Path) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for line in (built / "expected.tsv").read_text().splitlines():
        image, name, md5 = line.split("\t")
        out.setdefault(image.removesuffix(".raw"), []).append((name, md5))
    return out


def _areas(image: Path) -> dict[str, list[list[object]]]:
    src = ImageSource(str(image))
    try:
        out: dict[str, list[list[object]]] = {}
        for e in src.entries():
            loc = getattr(e, "locator", None)
            if isinstance(loc, (list, tuple)) and loc and loc[0] == "carve":
                out.setdefault(loc[1], []).extend(loc[5])
        return out
    finally:
        src.close()


def _blkls_free(image: Path) -> tuple[set[int], int]:
    """The unallocated block addresses ``blkls -l`` lists, and the block size fsstat says."""
    listing = subprocess.run(["blkls", "-l", str(image)], check=True, capture_output=True,
                             text=True).stdout.splitlines()
    free = {int(line.split("|")[0]) for line in listing
            if line.endswith("|f") and line.split("|")[0].isdigit()}
    stat = subprocess.run(["fsstat", str(image)], check=True, capture_output=True,
                          text=True).stdout
    # blkls counts in libtsk's blocks: sectors on FAT, clusters on NTFS, blocks on ext.
    unit = ("Cluster Size:" if "File System Type: NTFS" in stat else
            "Sector Size:" if "File System Type: FAT" in stat else "Block Size:")
    size = next(int(line.split(":")[1]) for line in stat.splitlines()
                if line.startswith(unit))
    return free, size


@pytest.mark.parametrize("name", ["fat32", "fat32re", "ext4", "ext4re", "ntfs"])
def test_unallocated_blocks_are_blkls_blocks(built: Path, name: str) -> None:
    image = built / f"{name}.raw"
    free, bs = _blkls_free(image)
    areas = _areas(image)
    mine: set[int] = set()
    for off, length, owner in areas["unallocated"]:
        assert owner is None
        assert isinstance(off, int) and isinstance(length, int)
        assert off % bs == 0 and length % bs == 0
        mine.update(range(off // bs, (off + length) // bs))
    assert mine == free
    # The bytes too: blkls writes the unallocated blocks' content in block order.
    want = hashlib.md5(subprocess.run(["blkls", str(image)], check=True,
                                      capture_output=True).stdout).hexdigest()
    got = hashlib.md5()
    with open(image, "rb") as f:
        for off, length, _ in areas["unallocated"]:
            f.seek(int(off))  # type: ignore[call-overload]
            got.update(f.read(int(length)))  # type: ignore[call-overload]
    assert got.hexdigest() == want


def _carved(case: Path) -> list[dict[str, object]]:
    return [dict(r) for r in rows(
        case, "SELECT k.*, f.display_path, f.status, f.status_reason, f.size, "
              "(SELECT value FROM hashes WHERE file_id=f.id AND algorithm='md5') AS md5, "
              "(SELECT value FROM hashes WHERE file_id=f.id AND algorithm='sha1') AS sha1, "
              "(SELECT value FROM hashes WHERE file_id=f.id AND algorithm='sha256') AS sha256 "
              "FROM carved k JOIN files f ON f.id = k.file_id ORDER BY k.image_offset")]


def _tool(tool: str, data: bytes) -> str:
    return subprocess.run([tool], input=data, check=True, capture_output=True
                          ).stdout.split()[0].decode()


@pytest.mark.parametrize("name", ["fat32", "fat32re", "ext4", "ext4re"])
def test_every_deleted_picture_carved_with_the_originals_digests(built: Path,
                                                                 tmp_path: Path,
                                                                 name: str) -> None:
    case = tmp_path / "case"
    scan_json(built / f"{name}.raw", case, expect=(0,))
    carved = _carved(case)
    for item, md5 in _expected(built)[name]:
        hits = [c for c in carved if c["md5"] == md5]
        assert hits, f"{item} not carved from {name}"
        c = hits[0]
        assert c["status"] == "done" and c["partial"] == 0
        original = (built / "media" / item.removeprefix("slack:")).read_bytes()
        assert c["sha1"] == _tool("sha1sum", original)
        assert c["sha256"] == _tool("sha256sum", original)
        assert c["length"] == c["size"] == len(original)
        # Where it lies: the image's bytes there are the original's.
        with open(built / f"{name}.raw", "rb") as f:
            f.seek(int(c["image_offset"]))  # type: ignore[call-overload]
            assert f.read(len(original)) == original
        bs = int(c["block_size"])  # type: ignore[call-overload]
        assert c["first_block"] == (int(c["image_offset"]) - int(c["volume_offset"])) // bs  # type: ignore[call-overload]
        if item.startswith("slack:"):
            assert (c["area"], c["slack_of"]) == ("slack", "small.txt")
        else:
            assert c["area"] == "unallocated"
    if name == "fat32":
        # TSK lists the deleted FAT files (naive recovery): the carved item is the same
        # content found again, at the same place, not a second discovery.
        same = rows(case, "SELECT k.same_location, s.deleted, s.display_path FROM carved k "
                          "JOIN files s ON s.id = k.same_as_file_id")
        assert len(same) == len(_expected(built)["fat32"])
        assert all(r[0] == 1 and r[1] == 1 for r in same)


def test_hostile_unallocated_ends_within_bounds_with_reasons(built: Path,
                                                              tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(built / "hostile.raw", case, expect=(8,))
    carved = _carved(case)
    gif = _expected(built)["hostile"][0][1]
    assert [c["status"] for c in carved if c["md5"] == gif] == ["done"]
    # The JPEG cut short and closed with an EOI: carved (digests kept), strict decoding
    # refuses it: a partial carve.
    cut = [c for c in carved if c["partial"] and c["md5"] is not None]
    assert len(cut) == 1 and cut[0]["status"] == "incomplete" and cut[0]["length"] == 702
    assert str(cut[0]["status_reason"]).startswith("partial carve: does not decode strictly")
    partial = [c for c in carved if c["partial"] and c["md5"] is None]
    # The JPEG that never ends, the 40 JPEG starts, the PNG with a lying chunk length.
    assert len(partial) == 42
    assert all(c["status"] == "incomplete" and
               str(c["status_reason"]).startswith("partial carve: ") for c in partial)
    assert {c["format"] for c in partial} == {"jpg", "png"}
    # The BMP whose header claims 60 MB is not carved at all.
    assert not [c for c in carved if c["format"] == "bmp"]
    # With a bound of 5 items, the area stops there and says so.
    case2 = tmp_path / "case2"
    from triage.scan import ScanOptions, scan
    from triage.worker import WorkerOptions

    scan(str(built / "hostile.raw"), case2, ScanOptions(
        jobs=1, match=False, worker=WorkerOptions(carve_max_items=5)))
    area = rows(case2, "SELECT status, status_reason FROM files WHERE display_path = "
                       "'$Unallocated'")
    assert area[0]["status"] == "incomplete"
    assert str(area[0]["status_reason"]).startswith(
        "limit: 5 carved items (max items per area, scan --carve-max-items) reached at "
        "image byte ")
    assert len(_carved(case2)) == 5


#: Where build_carve.sh wrote the lying TIFF headers in tiff.raw (sector 40000 of the data
#: area on, one per sector; the data area starts after 32 reserved sectors and 2 FATs).
TIFF_HOSTILE = (32 + 2 * 536 + 40000) * 512


def test_tiffs_carved_with_the_originals_digests_and_lying_headers_refused(
        built: Path, tmp_path: Path) -> None:
    """Deleted TIFFs written by ffmpeg's TIFF encoder and by libtiff's tiffcp (strips,
    tiles, both byte orders, LZW/Deflate/PackBits/JPEG, two pages): each carved whole,
    its digests those of md5sum/sha1sum/sha256sum; the lying headers after them carve
    nothing, except the one whose first IFD parses (a partial candidate)."""
    case = tmp_path / "case"
    scan_json(built / "tiff.raw", case, expect=(8,))  # 8: the partial candidate
    carved = _carved(case)
    want = dict(_expected(built)["tiff"])
    assert len(want) == 8
    intact = [c for c in carved if c["md5"] is not None]
    assert sorted(str(c["md5"]) for c in intact) == sorted(want.values())
    for name, md5 in want.items():
        c = next(c for c in intact if c["md5"] == md5)
        original = (built / "media" / name).read_bytes()
        assert (c["status"], c["partial"], c["format"]) == ("done", 0, "tif"), name
        assert c["sha1"] == _tool("sha1sum", original)
        assert c["sha256"] == _tool("sha256sum", original)
        assert c["length"] == c["size"] == len(original)
        with open(built / "tiff.raw", "rb") as f:
            f.seek(int(c["image_offset"]))  # type: ignore[call-overload]
            assert f.read(len(original)) == original
        assert str(c["display_path"]).endswith(".tif")
    # TSK lists the deleted files (FAT: first letter of the name lost, "_1.tif"): each
    # carve is that file's own data found again.
    same = rows(case, "SELECT k.same_location, s.display_path, s.deleted FROM carved k "
                      "JOIN files s ON s.id = k.same_as_file_id WHERE k.format = 'tif'")
    assert sorted(str(r[1])[1:] for r in same) == sorted(n[1:] for n in want)
    assert all(r[0] == 1 and r[2] == 1 for r in same)
    # The lying headers: only the one with a picture's first IFD whose strip lies 1 GiB
    # on is recorded (partial, no data); the others (IFD past the data, IFD loop, huge
    # counts, 65535 entries, an unknown type, no IFD) are not candidates at all.
    rest = [c for c in carved if c["md5"] is None]
    assert [(c["image_offset"], c["format"], c["partial"], c["status"]) for c in rest] == [
        (TIFF_HOSTILE + 7 * 512, "tif", 1, "incomplete")]
    assert str(rest[0]["status_reason"]).startswith("partial carve: TIF header")
    assert not [c for c in carved if TIFF_HOSTILE <= int(c["image_offset"])  # type: ignore[call-overload]
                < TIFF_HOSTILE + 7 * 512]
    area = rows(case, "SELECT status FROM files WHERE display_path = '$Unallocated'")
    assert area[0]["status"] == "done"
    # The default bounds, recorded in the run's options.
    worker = json.loads(rows(case, "SELECT options FROM runs")[0][0])["worker"]
    assert (worker["carve_max_items"], worker["carve_max_bytes"]) == (10_000, 4 << 30)


def test_bound_options_stop_the_area_and_are_recorded(built: Path, tmp_path: Path) -> None:
    """``--carve-max-items`` and ``--carve-max-bytes`` reach the carving worker: the area
    stops at the bound with a reason naming the option to raise; the run records them."""
    want = dict(_expected(built)["tiff"])
    first = (built / "media" / "t1.tif").stat().st_size  # 17496: fits in 20K, t2 does not
    case = tmp_path / "bytes"
    scan_json(built / "tiff.raw", case, "--carve-max-bytes", "20K", expect=(8,))
    carved = _carved(case)
    assert [c["md5"] for c in carved] == [want["t1.tif"]]
    assert carved[0]["length"] == first
    second = int(carved[0]["image_offset"]) + -(-first // 512) * 512  # type: ignore[call-overload]
    area = rows(case, "SELECT status, status_stage, status_reason FROM files WHERE "
                      "display_path = '$Unallocated'")
    assert (area[0]["status"], area[0]["status_stage"]) == ("incomplete", "carve")
    assert area[0]["status_reason"] == (
        f"limit: 20480 carved bytes (max bytes per area, scan --carve-max-bytes) reached at "
        f"image byte {second}; the rest of the area was not carved")
    worker = json.loads(rows(case, "SELECT options FROM runs")[0][0])["worker"]
    assert (worker["carve_max_items"], worker["carve_max_bytes"]) == (10_000, 20480)
    case = tmp_path / "items"
    scan_json(built / "tiff.raw", case, "--carve-max-items", "3", expect=(8,))
    carved = _carved(case)
    assert [c["md5"] for c in carved] == [want["t1.tif"], want["t2.tif"], want["t3.tif"]]
    area = rows(case, "SELECT status, status_reason FROM files WHERE display_path = "
                      "'$Unallocated'")
    assert area[0]["status"] == "incomplete"
    assert area[0]["status_reason"] == (
        f"limit: 3 carved items (max items per area, scan --carve-max-items) reached at "
        f"image byte {carved[2]['image_offset'] + 512}; the rest of the area was not "
        "carved")
    worker = json.loads(rows(case, "SELECT options FROM runs")[0][0])["worker"]
    assert (worker["carve_max_items"], worker["carve_max_bytes"]) == (3, 4 << 30)
    # A size that is not one is a usage error, before anything is written.
    from tests.support import run_triage

    bad = run_triage("scan", str(built / "tiff.raw"), "--case", str(tmp_path / "bad"),
                     "--carve-max-bytes", "1.5G", "-q")
    assert bad.returncode == 2 and "--carve-max-bytes" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_no_carve_lists_no_areas(built: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(built / "fat32.raw", case, "--no-carve", expect=(0,))
    assert rows(case, "SELECT count(*) FROM carved")[0][0] == 0
    assert not rows(case, "SELECT 1 FROM files WHERE locator LIKE '[\"carve\"%'")
    assert json.loads(rows(case, "SELECT options FROM runs")[0][0])["carve"] is False
    assert rows(case, "SELECT count(*) FROM files WHERE display_path = 'keep.txt'")[0][0] == 1


def test_fragments_of_a_half_overwritten_known_file(built: Path, tmp_path: Path) -> None:
    from tests.support import run_triage

    store = tmp_path / "store" / "hashsets.sqlite"
    proc = run_triage("hashset", "import-blocks", str(built / "known"), "--store", str(store),
                      "--json")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    # k.bin: 128 KiB at 512-byte steps = 249 windows; other.bin 40000 bytes = 71.
    assert (stats["files"], stats["blocks_kept"]) == (2, 249 + 71)
    case = tmp_path / "case"
    scan_json(built / "frag.raw", case, "--store", str(store), expect=(0,))
    hits = [dict(r) for r in rows(case, "SELECT g.*, f.display_path, f.status_reason FROM "
                                        "fragments g JOIN files f ON f.id = g.file_id "
                                        "ORDER BY f.display_path")]
    # Found in unallocated space, and in the deleted k.bin that TSK still lists (its
    # blocks now hold the first half and the random overwrite).
    assert [str(h["display_path"]).split("!")[0] for h in hits] == ["$Unallocated", "k.bin"]
    deleted = hits[1]
    assert (deleted["found_bytes"], json.loads(str(deleted["runs"]))) == (
        65536, [[0, 0, 65536]])
    h = hits[0]
    known = (built / "known" / "k.bin").read_bytes()
    assert h["known_path"] == "k.bin"
    assert h["known_sha256"] == _tool("sha256sum", known)
    assert (h["indexed_bytes"], h["found_bytes"], h["blocks"]) == (131072, 65536, 16)
    runs = json.loads(str(h["runs"]))
    # The first half, in as many runs as the allocator made extents of it; each run's
    # bytes in the image are the known file's at that offset.
    assert sum(n for _, _, n in runs) == 65536
    assert sorted(k for _, k, _ in runs)[0] == 0
    with open(built / "frag.raw", "rb") as f:
        for at, k, n in runs:
            f.seek(at)
            assert f.read(n) == known[k:k + n]
    assert "(50.0%)" in str(h["status_reason"])
    assert str(h["display_path"]).startswith("$Unallocated!@")


def test_reports_and_json_list_carved_items_with_the_caution(built: Path,
                                                            tmp_path: Path) -> None:
    from tests.support import run_triage
    from triage.carved import CAUTION

    case = tmp_path / "case"
    out = scan_json(built / "ext4.raw", case, expect=(0,))
    carving = out["carving"]
    assert carving["caution"] == CAUTION
    assert (carving["items"], carving["intact"], carving["partial"]) == (3, 3, 0)
    assert carving["found_again"] == 2  # p1.jpg and v1.mp4 are listed deleted files
    slack = [c for c in carving["carved"] if c["area"] == "slack"]
    assert [(c["slack_of"], c["same_as_path"]) for c in slack] == [("small.txt", None)]
    jsonl = tmp_path / "r.jsonl"
    assert run_triage("report", str(case), "-f", "jsonl", "-o", str(jsonl)).returncode == 0
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    carved = [x for x in lines if x["type"] == "carved"]
    assert sorted(x["md5"] for x in carved) == sorted(c["md5"] for c in carving["carved"])
    html = tmp_path / "r.html"
    assert run_triage("report", str(case), "-o", str(html)).returncode == 0
    text = html.read_text()
    assert "Carved items and fragments of known files" in text
    assert "may be incomplete, fragmented or mixed with other data" in text
    assert run_triage("verify", str(case)).returncode == 0


def test_fragments_inside_files_of_a_folder(built: Path, tmp_path: Path) -> None:
    from tests.support import run_triage

    store = tmp_path / "store" / "hashsets.sqlite"
    assert run_triage("hashset", "import-blocks", str(built / "known"), "--store",
                      str(store)).returncode == 0
    known = (built / "known" / "k.bin").read_bytes()
    folder = tmp_path / "evidence"
    folder.mkdir()
    # The first half of k.bin 1536 bytes into another file; and k.bin itself (an exact
    # copy is an exact match, not a fragment).
    (folder / "mixed.bin").write_bytes(b"\x01\x02" * 768 + known[:65536] + b"\x03" * 999)
    (folder / "k-copy.bin").write_bytes(known)
    case = tmp_path / "case"
    scan_json(folder, case, "--store", str(store), expect=(0,))
    hits = [dict(r) for r in rows(case, "SELECT g.*, p.display_path AS found_in FROM "
                                        "fragments g JOIN files f ON f.id = g.file_id "
                                        "JOIN files p ON p.id = f.parent_id")]
    assert [(h["found_in"], h["known_path"]) for h in hits] == [("mixed.bin", "k.bin")]
    # 4096-byte blocks of mixed.bin at 4096, 8192, ... are k.bin's at 2560, 6656, ...:
    # 15 of them lie inside the half that was copied.
    assert (hits[0]["found_bytes"], hits[0]["blocks"]) == (15 * 4096, 15)
    assert json.loads(str(hits[0]["runs"])) == [[4096, 2560, 15 * 4096]]


def test_unpartitioned_space_and_a_volume_without_file_system(built: Path,
                                                              tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(built / "mbr.raw", case, expect=(3,))  # the unformatted partition: an error
    carved = {(str(c["display_path"]).split("!")[0], c["md5"], c["area"], c["image_offset"])
              for c in _carved(case)}
    want = dict(_expected(built)["mbr"])
    assert carved == {
        ("p1/$Unallocated", want["p1/$Unallocated:p3.gif"], "unallocated", (2048 + 100) * 512),
        ("$Unpartitioned", want["$Unpartitioned:p1.jpg"], "unpartitioned", 12288 * 512)}
    area = rows(case, "SELECT notes FROM files WHERE display_path = 'p1/$Unallocated'")
    assert "the whole volume (no file system libtsk can open)" in area[0][0]


def test_a_copy_elsewhere_is_another_copy_not_found_again(built: Path,
                                                          tmp_path: Path) -> None:
    """Only a listed file's own data carved again is "found again"; the same content at
    another place in unallocated space is another copy, counted apart (cold review: every
    same-content item was counted as found again)."""
    image = tmp_path / "copy.raw"
    image.write_bytes((built / "ext4.raw").read_bytes())
    picture = (built / "media" / "p1.jpg").read_bytes()
    free, bs = _blkls_free(image)
    need = -(-len(picture) // bs)
    # The last run of free blocks long enough, well clear of the deleted files' data.
    top = max(free)
    start = top - need - 8
    assert all(b in free for b in range(start, start + need + 1))
    with open(image, "r+b") as f:
        f.seek(start * bs)
        f.write(picture)
    out = scan_json(image, tmp_path / "case", expect=(0,))
    carving = out["carving"]
    assert carving["found_again"] == 2  # p1.jpg and v1.mp4: their own clusters
    assert carving["copies"] == 1
    copy = [c for c in carving["carved"] if c["image_offset"] == start * bs]
    assert [(c["same_as_path"], c["same_location"]) for c in copy] == [("p1.jpg", 0)]
    assert copy[0]["md5"] == _tool("md5sum", picture)
