"""HEIC/HEIF pictures are decoded (issue 16, item 1: pillow-heif, :mod:`triage.heif`) and
get pHash, dHash and PDQ like any other picture, under the same bounds.

The pictures are synthetic (Pillow's generators), written with pillow-heif's own encoder
(x265) beside a PNG of the same pixels: the PNG's values, computed here with pdqhash and
imagehash directly, are the reference the HEIC's must come near (HEVC is lossy). Sizes are
checked against exiftool (``ImageSize`` is the coded size, ``Rotation`` the irot angle).
The shared samples: ``media/small/heif.heif`` and ``media/pillow/avif/hopper.heif`` decode;
``media/exiftool/QuickTime.heic`` is exiftool's metadata-only sample (18 bytes of picture
data for 1596x1064): damage, an error.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image

from tests.support import TESTDATA, rows, scan_json
from triage import heif, membudget
from triage.worker import WorkerOptions, decode_image

pillow_heif = pytest.importorskip("pillow_heif")

MEDIA = TESTDATA / "media"
SAMPLES = {"heif.heif": MEDIA / "small" / "heif.heif",
           "hopper.heif": MEDIA / "pillow" / "avif" / "hopper.heif"}
STUB = MEDIA / "exiftool" / "QuickTime.heic"
#: HEVC at quality 90 moves PDQ by a few bits on these pictures (measured: 0-4); the
#: default near-match threshold is 31.
PDQ_BITS = 10
GREY_BITS = 4


def _picture(w: int, h: int, seed: int) -> Image.Image:
    """Deterministic, textured enough that pHash is stable (a smooth picture's DCT sits at
    its median: JPEG at quality 90 moves its pHash by 18 bits), asymmetric (a top-to-bottom
    gradient) so that rotations are told apart."""
    blocks = np.random.RandomState(seed).randint(0, 256, (12, 16, 3), dtype=np.uint8)
    texture = Image.fromarray(blocks).resize((w, h), Image.Resampling.BICUBIC)
    grad = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    fractal = Image.effect_mandelbrot((w, h), (-2, -1.2, 1, 1.2), 64).convert("RGB")
    return Image.blend(Image.blend(grad, fractal, 0.5), texture, 0.5)


def _pdq(im: Image.Image) -> int:
    bits, _ = pdqhash.compute(np.asarray(im.convert("RGB")))
    return int("".join("1" if b else "0" for b in bits), 2)


def _bits(a: int | str, b: int | str) -> int:
    return bin((int(a, 16) if isinstance(a, str) else a)
               ^ (int(b, 16) if isinstance(b, str) else b)).count("1")


def _save_heic(path: Path, *images: Image.Image, **kw: Any) -> None:
    """Write with pillow-heif's encoder, without registering its opener in this process."""
    heif_file = pillow_heif.from_pillow(images[0])
    for extra in images[1:]:
        heif_file.add_from_pillow(extra)
    heif_file.save(str(path), quality=90, **kw)


def _set_ispe(data: bytes, width: int, height: int) -> bytes:
    """The same file with its (single) ispe box declaring another size."""
    assert data.count(b"ispe") == 1
    at = data.index(b"ispe") + 8  # type, then version and flags
    return data[:at] + struct.pack(">II", width, height) + data[at + 8:]


def _exiftool(path: Path) -> dict[str, Any]:
    out = subprocess.run(["exiftool", "-j", "-n", "-ImageWidth", "-ImageHeight", "-Rotation",
                          "-PrimaryItemReference", str(path)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return dict(json.loads(out)[0])


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("heic")
    ev = root / "ev"
    ev.mkdir()
    photo, other = _picture(640, 480, 0), _picture(320, 240, 7)
    _save_heic(ev / "photo.heic", photo)
    photo.save(root / "photo.png")  # outside the evidence: the reference
    # Two images, the second primary: the primary is the one hashed.
    _save_heic(ev / "two.heic", _picture(320, 240, 3), other, primary_index=1)
    # EXIF orientation 6 given to pillow-heif's Pillow writer: it stores the pixels as
    # given (320x240: exiftool's ImageWidth/ImageHeight) with irot 270 (anticlockwise, so
    # 90 degrees clockwise: exiftool's Rotation) and keeps the EXIF orientation.
    heif.register()
    exif = Image.Exif()
    exif[0x0112] = 6
    other.save(ev / "turned.heic", format="HEIF", quality=90, exif=exif.tobytes())
    data = (ev / "photo.heic").read_bytes()
    (ev / "cut.heic").write_bytes(data[:len(data) // 2])  # picture data cut short
    (ev / "head.heic").write_bytes(data[:100])  # cut inside the meta box
    for name, src in SAMPLES.items():
        shutil.copyfile(src, ev / name)
    shutil.copyfile(STUB, ev / "stub.heic")
    case = root / "case"
    summary = scan_json(ev, case, expect=(3,))
    files = {r["display_path"]: r for r in rows(case, "SELECT * FROM files")}
    hashes: dict[str, dict[str, str]] = {}
    for r in rows(case, "SELECT f.display_path, h.algorithm, h.value, h.preprocessing "
                        "FROM hashes h JOIN files f ON f.id = h.file_id"):
        hashes.setdefault(r["display_path"], {})[r["algorithm"]] = r["value"]
        if r["algorithm"] == "pdq":
            hashes[r["display_path"]]["pdq.preprocessing"] = r["preprocessing"]
    images = {r["display_path"]: r for r in rows(
        case, "SELECT f.display_path, i.* FROM images i JOIN files f ON f.id = i.file_id")}
    return {"root": root, "ev": ev, "case": case, "summary": summary, "files": files,
            "hashes": hashes, "images": images, "photo": photo, "other": other}


def test_heic_pictures_are_decoded_and_perceptually_hashed(pictures: dict[str, Any]) -> None:
    files, hashes, images = pictures["files"], pictures["hashes"], pictures["images"]
    for name in ("photo.heic", "two.heic", "turned.heic", *SAMPLES):
        assert files[name]["status"] == "done", (name, files[name]["status_reason"])
        assert files[name]["mime"] in ("image/heic", "image/heif")
        assert {"phash", "dhash", "pdq", "sha256", "md5"} <= set(hashes[name]), name
        assert images[name]["format"] == "HEIF"
        pre = images[name]["preprocessing"]
        assert pre.startswith(f"HEIF primary image{' of 2 images' * (name == 'two.heic')}"
                              f", full decode by pillow-heif {pillow_heif.__version__} "
                              f"(libheif {pillow_heif.libheif_version()}; libde265 "), pre
        assert "EXIF orientation not applied" in pre
        assert hashes[name]["pdq.preprocessing"].startswith(pre)


def test_sizes_agree_with_exiftool(pictures: dict[str, Any]) -> None:
    """The recorded size is the HEIF image as decoded: the coded size (exiftool's
    ImageWidth/ImageHeight, from ispe), turned by irot (exiftool's Rotation)."""
    ev, images = pictures["ev"], pictures["images"]
    for name in ("photo.heic", "two.heic", "turned.heic", *SAMPLES):
        tool = _exiftool(ev / name)
        w, h = tool["ImageWidth"], tool["ImageHeight"]
        if tool.get("Rotation") in (90, 270):
            w, h = h, w
        row = images[name]
        assert (row["width"], row["height"]) == (w, h), (name, tool)
        assert (row["decoded_width"], row["decoded_height"]) == (w, h)
    turned = _exiftool(ev / "turned.heic")
    assert (turned["ImageWidth"], turned["ImageHeight"], turned["Rotation"]) == (320, 240, 270)
    assert (images["turned.heic"]["width"], images["turned.heic"]["height"]) == (240, 320)
    assert images["two.heic"]["frames"] == 2
    assert _exiftool(ev / "two.heic")["PrimaryItemReference"] == 2


def test_heic_hashes_are_near_those_of_the_same_picture_as_png(
        pictures: dict[str, Any]) -> None:
    hashes = pictures["hashes"]
    png = Image.open(pictures["root"] / "photo.png")
    got = hashes["photo.heic"]
    assert _bits(got["pdq"], _pdq(png)) <= PDQ_BITS
    assert _bits(got["phash"], str(imagehash.phash(png))) <= GREY_BITS
    assert _bits(got["dhash"], str(imagehash.dhash(png))) <= GREY_BITS
    # Far from an unrelated picture: the closeness above is not PDQ being blind.
    assert _bits(got["pdq"], _pdq(pictures["other"])) > 64


def test_the_primary_image_is_hashed(pictures: dict[str, Any]) -> None:
    got = pictures["hashes"]["two.heic"]["pdq"]
    assert _bits(got, _pdq(pictures["other"])) <= PDQ_BITS
    assert _bits(got, _pdq(_picture(320, 240, 3))) > 64


def test_heif_rotation_is_applied_exif_orientation_is_not_applied_again(
        pictures: dict[str, Any]) -> None:
    """irot is part of the HEIF image (libheif applies it, as every reader does): the coded
    320x240 picture turned 90 degrees clockwise. The EXIF orientation 6 the file also
    carries is not applied a second time (that would turn it by 180 degrees in all)."""
    got = pictures["hashes"]["turned.heic"]["pdq"]
    other = pictures["other"]
    assert _bits(got, _pdq(other.transpose(Image.Transpose.ROTATE_270))) <= PDQ_BITS
    for wrong in (Image.Transpose.ROTATE_90, Image.Transpose.TRANSPOSE,
                  Image.Transpose.TRANSVERSE):
        assert _bits(got, _pdq(other.transpose(wrong))) > 64, wrong
    assert _bits(got, _pdq(other)) > 64


def test_damaged_heic_is_an_error_naming_the_decoder(pictures: dict[str, Any]) -> None:
    files = pictures["files"]
    decoder = (f"HEIF decoder pillow-heif {pillow_heif.__version__} "
               f"(libheif {pillow_heif.libheif_version()}; libde265 ")
    expect = {"cut.heic": "Invalid input: Unexpected end of file",
              "head.heic": "Invalid input: No 'meta' box",
              "stub.heic": "Decoder plugin generated an error: Unexpected end of file"}
    for name, message in expect.items():
        f = files[name]
        assert f["status"] == "error" and f["status_stage"] == "decode", (name, f)
        assert f["status_reason"].startswith(decoder), f["status_reason"]
        assert message in f["status_reason"], f["status_reason"]
        assert f["read_status"] == "full"
        assert {"sha256", "md5"} <= set(pictures["hashes"][name])
        assert "pdq" not in pictures["hashes"][name]
    errors = rows(pictures["case"], "SELECT f.display_path, e.error_class FROM errors e "
                                    "JOIN files f ON f.id = e.file_id")
    assert {r["display_path"]: r["error_class"] for r in errors} == {
        name: "HeifDecodeError" for name in expect}


def test_over_max_pixels_heic_is_refused_like_any_picture(pictures: dict[str, Any],
                                                          tmp_path: Path) -> None:
    """--max-pixels: the HEIC and the PNG of the same picture get the same outcome (an
    error: Pillow's decompression-bomb limit, as tests/test_identify.py has for PNG)."""
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copyfile(pictures["ev"] / "photo.heic", ev / "photo.heic")
    shutil.copyfile(pictures["root"] / "photo.png", ev / "photo.png")
    scan_json(ev, tmp_path / "case", "--max-pixels", "100000", expect=(3,))
    got = {r["display_path"]: r for r in rows(tmp_path / "case", "SELECT * FROM files")}
    for name in ("photo.heic", "photo.png"):
        assert got[name]["status"] == "error" and got[name]["status_stage"] == "decode"
        assert "307200 pixels" in got[name]["status_reason"]
        assert "decompression bomb" in got[name]["status_reason"]


def test_over_the_memory_limit_heic_is_a_coverage_gap_from_its_header(
        pictures: dict[str, Any], tmp_path: Path) -> None:
    """A HEIC whose header declares 9000x9000 (81 MP x 32 bytes: 2,472 MiB to decode and hash) in
    a worker limited to 1 GiB: refused from the header's size before decoding (a decode
    would fail: the data holds 640x480), incomplete with the estimate and the limit."""
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "big.heic").write_bytes(_set_ispe((pictures["ev"] / "photo.heic").read_bytes(),
                                            9000, 9000))
    summary = scan_json(ev, tmp_path / "case", "--memory-limit", "1024", expect=(8,))
    (gap,) = summary["gaps_shown"]
    assert gap["status"] == "incomplete" and gap["stage"] == "decode"
    assert gap["reason"].startswith("picture 9000x9000 (RGB) needs about 2,472 MiB to decode "
                                    "and hash; this worker has "), gap["reason"]
    errors = rows(tmp_path / "case", "SELECT error_class FROM errors WHERE stage = 'decode'")
    assert [r["error_class"] for r in errors] == ["MemoryBudgetExceeded"]


def test_memory_estimate_is_the_header_size_before_decoding(
        pictures: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The grant is asked with the header's width and height, before libheif decodes: a
    header that promises more than the data holds is then damage, naming the decoder."""
    data = _set_ispe((pictures["ev"] / "photo.heic").read_bytes(), 700, 500)
    calls: list[Any] = []
    real_admit = membudget.admit

    def admit(width: int, height: int, mode: str, *args: Any) -> None:
        calls.append(("admit", width, height, mode))
        real_admit(width, height, mode, *args)

    real_load = pillow_heif.HeifImage.load

    def load(self: Any) -> Any:
        calls.append("decode")
        return real_load(self)

    monkeypatch.setattr(membudget, "admit", admit)
    monkeypatch.setattr(pillow_heif.HeifImage, "load", load)
    with pytest.raises(heif.HeifDecodeError, match=r"HEIF decoder pillow-heif .*Decoded image "
                       r"does not have the size signaled in the file"):
        decode_image(data, WorkerOptions())
    assert calls[0] == ("admit", 700, 500, "RGB")
    assert "decode" in calls[1:]


def test_heic_larger_than_its_header_is_damage_not_a_limit() -> None:
    """A header smaller than the coded picture: libheif refuses at a 'security limit' it
    derives from the header; that is damage (an error), not a bound (a coverage gap)."""
    e = RuntimeError("Memory allocation error: Security limit exceeded: Image size 640x480 "
                     "exceeds the maximum image size 116736\n")
    assert heif.classify(e, "d") == (False, "HEIF decoder d: Memory allocation error: "
                                            "Security limit exceeded: Image size 640x480 "
                                            "exceeds the maximum image size 116736")
    limit = RuntimeError("Memory allocation error: Security limit exceeded: Image size "
                         "40000x40000 exceeds the maximum image size 1073741824")
    assert heif.classify(limit, "d")[0] is True
    assert heif.classify(ValueError("Unsupported feature: Unsupported codec"), "d")[0] is True
    assert heif.classify(ValueError("Invalid input: No 'meta' box"), "d")[0] is False


def test_heic_over_the_decode_bytes_limit_is_a_coverage_gap(pictures: dict[str, Any],
                                                            tmp_path: Path) -> None:
    from triage.scan import ScanOptions, scan

    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copyfile(pictures["ev"] / "photo.heic", ev / "photo.heic")
    size = (ev / "photo.heic").stat().st_size
    scan(str(ev), tmp_path / "case", ScanOptions(
        jobs=1, match=False, worker=WorkerOptions(max_decode_bytes=size - 1)))
    (f,) = rows(tmp_path / "case", "SELECT * FROM files")
    assert f["status"] == "incomplete" and f["status_stage"] == "decode"
    assert f["status_reason"] == (f"picture not decoded: {size} bytes is over the decode "
                                  f"limit ({size - 1} bytes); digests kept, no perceptual "
                                  "hash")


def test_thumbnails_are_never_decoded_in_place_of_the_picture() -> None:
    """pillow-heif's draft() picks an embedded thumbnail when thumbnails are on (its
    default): the opener is registered with them off, and one decoding thread."""
    buf = io.BytesIO()
    pillow_heif.from_pillow(_picture(800, 600, 1)).save(buf, quality=90, thumbnails=[256])
    heif.register()
    assert pillow_heif.options.THUMBNAILS is False
    assert pillow_heif.options.DECODE_THREADS == 1
    im = Image.open(io.BytesIO(buf.getvalue()))
    assert im.format == "HEIF" and im.draft("RGB", (200, 150)) is None
    im.load()
    assert im.size == (800, 600)
    pillow_heif.options.THUMBNAILS = True  # the file does hold one draft() would take
    try:
        im = Image.open(io.BytesIO(buf.getvalue()))
        assert im.draft("RGB", (200, 150)) is not None and im.size == (256, 192)
    finally:
        pillow_heif.options.THUMBNAILS = False


def test_avif_stays_with_pillows_decoder() -> None:
    im, facts, _ = decode_image((MEDIA / "pillow" / "avif" / "hopper.avif").read_bytes(),
                                WorkerOptions())
    im.close()
    membudget.release()
    assert facts.format == "AVIF" and facts.preprocessing.startswith("first frame")
    assert "AVIF" not in pillow_heif.libheif_info() or not pillow_heif.libheif_info()["AVIF"]


def test_without_pillow_heif_heic_is_a_coverage_gap_again() -> None:
    """A lab may uninstall pillow-heif (its wheel is GPL-2.0, README): HEIC pictures are
    then the coverage gap they were, and the run record says the decoder is missing."""
    code = f"""
import sys
sys.modules["pillow_heif"] = None  # as if not installed: import raises ImportError
from PIL import UnidentifiedImageError
from triage.versions import versions
from triage.worker import WorkerOptions, decode_image, undecodable_reason
try:
    decode_image(open({str(SAMPLES["heif.heif"])!r}, "rb").read(), WorkerOptions())
except UnidentifiedImageError:
    print("unidentified")
print(undecodable_reason("image/heic"))
print(str(versions()["heif"]).startswith("unavailable: "))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "unidentified", "format not decodable yet: HEIC (image/heic); digests kept, no "
        "perceptual hash", "True"]
