"""Picture variants (issue 14): extra cost per picture, exactness, and draft-decode error.

    .venv/bin/python benchmarks/bench_variants.py [--corpus DIR ...] [--repeat N]

Pictures: every JPEG and PNG under the given folders (default: the shared test data's
media/pdq, media/imageio and media/pillow JPEGs/PNGs that decode).

a. **Cost**, per picture, decoded as the scanner does (JPEG draft 360), one thread: the
   registry's three perceptual hashes of the picture as stored (what a scan did before
   issue 14) against :func:`hashsets.algorithms.variants.picture_variants` (8 dihedral
   forms of each, letterbox detection, and the unletterboxed picture when borders are
   found). Best of ``--repeat`` per picture; sums and the ratio are printed.
b. **Exactness** of the shortcuts: pHash/dHash variants from two reduced grids against
   hashing each transformed picture in full (expected 0 bits everywhere), and Meta's DCT
   shortcut (``pdqhash.compute_dihedral``, not used) against PDQ of the transformed picture.
c. **Draft against full decode**, JPEGs large enough to be draft-decoded: mean and max
   Hamming distance per algorithm over all eight variants (the figures behind the
   full-decode confirmation margin and README "Perceptual hashes and preprocessing").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from hashsets.algorithms import get, picture_algorithms
from hashsets.algorithms.variants import DIHEDRAL, picture_variants, transform

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "media"
DEFAULT = [TESTDATA / "pdq", TESTDATA / "imageio", TESTDATA / "pillow"]
DRAFT = 360  # the scanner's default --draft-size


def pictures(folders: list[Path]) -> list[Path]:
    out = []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file():
                out.append(p)
    return out


def load(path: Path, draft: int) -> Image.Image | None:
    try:
        im = Image.open(path)
        if im.format == "JPEG" and draft:
            im.draft("RGB" if im.mode == "RGB" else None, (draft, draft))
        im.load()
        if im.mode not in ("RGB", "RGBA", "L", "LA", "P", "I;16", "I", "CMYK", "1"):
            return None
        return im
    except Exception:
        return None


def best_of(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t)
    return best


def cost(paths: list[Path], repeat: int) -> None:
    algs = picture_algorithms()
    plain_total = variants_total = 0.0
    n = boxed = 0
    for p in paths:
        im = load(p, DRAFT)
        if im is None:
            continue
        try:
            plain = best_of(lambda im=im: [a.compute(im) for a in algs], repeat)
            var = best_of(lambda im=im: picture_variants(im, algs), repeat)
            boxed += picture_variants(im, algs)[1] is not None
        except Exception:
            continue
        n += 1
        plain_total += plain
        variants_total += var
    print(f"a. cost over {n} pictures (draft {DRAFT}), best of {repeat}, one thread:")
    print(f"   picture as stored only (pHash, dHash, PDQ): {plain_total / n * 1000:7.2f} ms "
          "per picture")
    print(f"   with 8 dihedral variants + letterbox check: {variants_total / n * 1000:7.2f} ms "
          f"per picture ({boxed} with borders: one more form)")
    print(f"   extra: {(variants_total - plain_total) / n * 1000:.2f} ms per picture, "
          f"x{variants_total / plain_total:.2f}")


def exactness(paths: list[Path]) -> None:
    import numpy as np
    import pdqhash

    from hashsets.algorithms.variants import dihedral_values

    pdq = get("pdq")
    worst: dict[str, list[int]] = {}
    meta: list[int] = []
    n = 0
    for p in paths:
        im = load(p, 0)
        if im is None:
            continue
        try:
            for alg in (get("phash"), get("dhash")):
                values = dihedral_values(alg, im)  # type: ignore[arg-type]
                for v in DIHEDRAL:
                    exact = alg.compute(transform(im, v))[0]  # type: ignore[attr-defined]
                    worst.setdefault(alg.name, []).append(alg.distance(exact, values[v][0]))
            bits, _ = pdqhash.compute_dihedral(np.asarray(im.convert("RGB")))
            for v, b in zip(("original", "rot90", "rot180", "rot270", "flipy", "flipx",
                             "transpose", "transverse"), bits, strict=True):
                fast = f"{int(''.join('1' if x else '0' for x in b), 2):064x}"
                exact = pdq.compute(transform(im, v))[0]  # type: ignore[attr-defined]
                meta.append(pdq.distance(exact, fast))
        except Exception:
            continue
        n += 1
    print(f"b. exactness over {n} pictures (full decode), 8 variants each:")
    for name, d in worst.items():
        print(f"   {name} two-grid shortcut vs transformed picture: mean "
              f"{statistics.mean(d):.3f}, max {max(d)} bits")
    print(f"   pdqhash.compute_dihedral (not used) vs PDQ of the transformed picture: mean "
          f"{statistics.mean(meta):.1f}, max {max(meta)} bits, "
          f"{sum(1 for d in meta if d > 31)} of {len(meta)} over 31")


def draft_error(paths: list[Path]) -> None:
    algs = picture_algorithms()
    dist: dict[str, list[int]] = {a.name: [] for a in algs}
    n = 0
    for p in paths:
        if p.suffix.lower() not in (".jpg", ".jpeg"):
            continue
        draft, full = load(p, DRAFT), load(p, 0)
        if draft is None or full is None or draft.size == full.size:
            continue
        try:
            a_values, _ = picture_variants(draft, algs, letterbox=False)
            b_values, _ = picture_variants(full, algs, letterbox=False)
        except Exception:
            continue
        n += 1
        for x, y in zip(a_values, b_values, strict=True):
            dist[x.algorithm].append(get(x.algorithm).distance(x.value, y.value))
    print(f"c. draft {DRAFT} against full decode, {n} JPEGs x 8 variants:")
    for name, d in dist.items():
        if d:
            print(f"   {name}: mean {statistics.mean(d):.2f}, max {max(d)} bits")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, action="append")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parts", default="abc")
    args = ap.parse_args()
    paths = pictures(args.corpus or DEFAULT)
    if "a" in args.parts:
        cost(paths, args.repeat)
    if "b" in args.parts:
        exactness(paths)
    if "c" in args.parts:
        draft_error(paths)


if __name__ == "__main__":
    main()
