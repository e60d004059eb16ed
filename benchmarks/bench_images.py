"""Benchmark: disk-image reading against The Sleuth Kit and libewf's own tools.

    .venv/bin/python benchmarks/bench_images.py --size-gb 1 [--workdir DIR] [--keep]

Builds a raw ext4 image of a generated tree (camera-size synthetic JPEGs made with Pillow,
benign content, plus large non-media files), then times on the same image:

* triage's image source: enumerate (child process) + read every file + MD5/SHA-1/SHA-256
  (one process, like one worker);
* ``tsk_loaddb -h`` (enumerate + MD5) and ``fiwalk`` (enumerate + MD5/SHA-1), if installed;
* ``triage scan IMAGE --case DIR --json`` when the image source is registered in the CLI;
* E01: ``ewfverify`` against ``verify_image`` (MD5+SHA-1 over the media data) with the
  Debian zlib libewf and with the PyPI wheel.

Not run in CI. Needs e2fsprogs, sleuthkit, ewf-tools.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_tree(root: Path, size_bytes: int) -> tuple[int, int]:
    from PIL import Image

    rng = random.Random(7)
    jpeg_budget = int(size_bytes * 0.6)
    made = 0
    n = 0
    (root / "DCIM").mkdir(parents=True)
    (root / "data").mkdir()
    base = Image.effect_noise((4000, 3000), 60).convert("RGB")  # 12 MP, camera-like size
    while made < jpeg_budget:
        tint = Image.new("RGB", base.size, (rng.randrange(256), rng.randrange(256),
                                            rng.randrange(256)))
        img = Image.blend(base, tint, 0.3 + rng.random() * 0.4)
        path = root / "DCIM" / f"IMG_{n:05d}.JPG"
        img.save(path, quality=92)
        made += path.stat().st_size
        n += 1
    other = 0
    k = 0
    while made + other < size_bytes:
        chunk = min(256 << 20, size_bytes - made - other)
        with open(root / "data" / f"blob{k:03d}.bin", "wb") as f:
            left = chunk
            while left:
                piece = os.urandom(min(left, 8 << 20))
                f.write(piece)
                left -= len(piece)
        other += chunk
        k += 1
    return n, k


def timed(cmd: list[str], **kw: object) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   **kw)  # type: ignore[call-overload]
    return time.perf_counter() - t


def source_throughput(image: Path) -> tuple[float, int, int]:
    from triage.sources.base import FileEntry
    from triage.sources.image import ImageSource

    t = time.perf_counter()
    source = ImageSource(str(image))
    source.describe()
    total = files = 0
    for entry in source.entries():
        if not isinstance(entry, FileEntry) or not entry.readable:  # skip amendments
            continue
        f = source.open_entry(entry)
        hs = (hashlib.md5(), hashlib.sha1(), hashlib.sha256())
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            for h in hs:
                h.update(chunk)
            total += len(chunk)
        files += 1
    source.close()
    return time.perf_counter() - t, total, files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-images-"))
    work.mkdir(parents=True, exist_ok=True)
    size = int(args.size_gb * (1 << 30))
    image = work / "tree.raw"
    try:
        if not image.exists():
            t = time.perf_counter()
            n_jpeg, n_blob = make_tree(work / "tree", size)
            fs_size = (int(size * 1.15) + (64 << 20)) // (1 << 20) * (1 << 20)  # whole MiB
            subprocess.run(["truncate", "-s", str(fs_size), str(image)], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(work / "tree"), str(image)],
                           check=True)
            shutil.rmtree(work / "tree")
            print(f"built {image} ({fs_size / 1e9:.2f} GB, {n_jpeg} JPEGs, {n_blob} blobs) "
                  f"in {time.perf_counter() - t:.0f} s")
        # Warm the page cache so every tool reads from memory.
        subprocess.run(["cat", str(image)], stdout=subprocess.DEVNULL, check=True)
        print(f"\n{'tool':<48} {'seconds':>8} {'MB/s':>8}")

        def row(name: str, secs: float, nbytes: int) -> None:
            print(f"{name:<48} {secs:8.2f} {nbytes / secs / 1e6:8.0f}")

        secs, nbytes, files = source_throughput(image)
        row(f"triage image source, 1 process ({files} files)", secs, nbytes)
        if shutil.which("tsk_loaddb"):
            db = work / "tsk.db"
            db.unlink(missing_ok=True)
            row("tsk_loaddb -h (MD5)", timed(["tsk_loaddb", "-h", "-d", str(db), str(image)]),
                nbytes)
        if shutil.which("fiwalk"):
            row("fiwalk -X (MD5+SHA-1)",
                timed(["fiwalk", "-X", str(work / "fiwalk.xml"), str(image)]), nbytes)
        triage_bin = ROOT / ".venv/bin/triage"
        case = work / "case"
        shutil.rmtree(case, ignore_errors=True)
        proc = subprocess.run([str(triage_bin), "scan", str(image), "--case", str(case),
                               "--json", "--no-perceptual", "--no-match", "-q"],
                              capture_output=True, text=True, check=False)
        if proc.returncode in (0, 3):
            shutil.rmtree(case, ignore_errors=True)
            t = time.perf_counter()
            subprocess.run([str(triage_bin), "scan", str(image), "--case", str(case),
                            "--json", "--no-perceptual", "--no-match", "-q"],
                           capture_output=True, check=False)
            row("triage scan (3 hashes + identify)", time.perf_counter() - t, nbytes)
            shutil.rmtree(case, ignore_errors=True)
            t = time.perf_counter()
            subprocess.run([str(triage_bin), "scan", str(image), "--case", str(case),
                            "--json", "--no-match", "-q"], capture_output=True, check=False)
            row("triage scan (full, perceptual too)", time.perf_counter() - t, nbytes)
        else:
            print(f"(triage scan of an image not available yet: "
                  f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]})")

        # E01
        e01 = work / "tree.E01"
        if shutil.which("ewfacquire") and not e01.exists():
            subprocess.run(["ewfacquire", "-u", "-q", "-t", str(work / "tree"), "-c",
                            "deflate:fast", "-S", "4000000000", str(image)], check=True,
                           stdout=subprocess.DEVNULL)
        if e01.exists():
            subprocess.run(["cat", str(e01)], stdout=subprocess.DEVNULL, check=True)
            media = image.stat().st_size
            row("ewfverify (MD5)", timed(["ewfverify", "-q", str(e01)]), media)
            code = (f"import sys,time; sys.path.insert(0, {str(ROOT)!r}); "
                    "from triage.sources.image import verify_image; t=time.perf_counter(); "
                    f"r=verify_image({str(e01)!r}); print(time.perf_counter()-t, r['result'], "
                    "r['libewf']['origin'])")
            for choice in ("debian", "wheel"):
                env = dict(os.environ, TRIAGE_PYEWF=choice)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, env=env, check=False)
                if out.returncode == 0:
                    secs_s, result, origin = out.stdout.split()
                    row(f"verify_image MD5+SHA-1 ({origin}, {result})", float(secs_s), media)
                else:
                    print(f"verify_image with TRIAGE_PYEWF={choice}: {out.stderr.strip()[-200:]}")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
