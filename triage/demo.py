"""Benign synthetic demo evidence and a demo hash set, for the README quick start.

``build_demo(dest)`` writes, deterministically (fixed seeds, fixed encoder settings, fixed
file times):

* ``dest/evidence/``: about 40 files in nested folders. Every picture is generated from
  numbers (gradients, geometric shapes, noise textures, mountain "landscapes"): there are no
  people and nothing that could pass for a real photograph. The set exercises what a scan
  must handle: pictures renamed to wrong extensions, byte-identical duplicates, re-encoded
  and resized copies, a truncated JPEG, a 16-bit PNG, an RGBA PNG, an animated GIF, WebP,
  BMP and TIFF, non-media files, and a file name with non-ASCII characters.
* ``dest/hashsets/``: ``demo-known.md5`` (md5sum format: the "known material" of the demo
  story), ``demo-pdq.txt`` (``<64 hex>  <label>``: PDQ of originals whose modified copies are
  in the evidence, so near matches show) and ``demo-nsrl.md5`` (known non-media files).
* ``dest/demo-manifest.json``: what was built, file by file, with the role of each file and
  its expected hashes. ``build_demo`` returns the same dictionary.

Two "known" originals are deliberately left out of the evidence: only their re-encoded or
resized copies are there, so the demo shows near matches without exact ones.

Bytes are identical across runs with the same Pillow, numpy and zlib versions. Nothing here
displays a picture or writes one outside ``dest``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

DEMO_SEED = 20240601
MANIFEST_NAME = "demo-manifest.json"
MANIFEST_VERSION = 1
# Every file and folder gets this modification time (2023-06-15T12:00:00Z) so that scan
# reports of the demo are the same on every machine.
DEMO_MTIME = 1686830400
JPEG_QUALITY = 90  # originals; copies use the lower qualities named where they are made
# A label prefix that says, in every hash-set line, that the entry is demo material.
LABEL_PREFIX = "DEMO-benign-synthetic"

_RGB = tuple[int, int, int]


# --------------------------------------------------------------------------- pictures


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> np.ndarray:
    return rng.integers(lo, hi, size=3).astype(np.float32)


def _to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _linear_gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Float RGB array (h, w, 3): a linear blend of two random colours at a random angle."""
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * np.cos(angle) + yy * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    c0, c1 = _colour(rng), _colour(rng)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cell: int) -> np.ndarray:
    """Float array (h, w) in [0, 1]: random values on a coarse grid, bicubically enlarged."""
    gw, gh = max(2, w // cell + 2), max(2, h // cell + 2)
    coarse = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8), "L")
    return np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) / 255


def gradient_picture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A smooth two-colour gradient with a soft radial glow."""
    pixels = _linear_gradient(rng, w, h)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - cx, yy - cy) / max(w, h)
    glow = np.clip(1 - r * 2, 0, 1)[..., None]
    pixels = pixels * (1 - 0.5 * glow) + _colour(rng) * 0.5 * glow
    return _to_image(pixels)


def shapes_picture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Rectangles, ellipses, polygons and lines on a gradient background."""
    image = _to_image(_linear_gradient(rng, w, h))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(10, 22))):
        kind = int(rng.integers(0, 4))
        x0, x1 = sorted(int(v) for v in rng.integers(0, w, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, h, 2))
        fill: _RGB = tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[assignment]
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif kind == 2:
            points = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
            draw.polygon(points, fill=fill)
        else:
            draw.line((x0, y0, x1, y1), fill=fill, width=int(rng.integers(2, 12)))
    return image


def texture_picture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Seeded multi-octave noise, tinted with two colours."""
    t = (0.55 * _smooth_noise(rng, w, h, 64) + 0.3 * _smooth_noise(rng, w, h, 16)
         + 0.15 * rng.random((h, w), dtype=np.float32))
    c0, c1 = _colour(rng), _colour(rng)
    return _to_image(c0 * (1 - t[..., None]) + c1 * t[..., None])


def landscape_picture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A sky gradient, a sun, layered mountain ridges and a textured foreground."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    top, horizon = _colour(rng, 20, 140) * np.array([0.5, 0.7, 1.0], np.float32), \
        _colour(rng, 150, 256)
    v = (yy / h)[..., None]
    pixels = top * (1 - v) + horizon * v
    sx, sy, sr = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.4) * h, rng.uniform(0.04, 0.09)
    dist = np.hypot(xx - sx, yy - sy) / max(w, h)
    sun = np.clip((sr * 2.5 - dist) / (sr * 1.5), 0, 1)[..., None]
    pixels = pixels * (1 - sun) + np.array([255, 240, 200], np.float32) * sun
    x = np.arange(w, dtype=np.float32) / w
    layers = int(rng.integers(2, 5))
    for i in range(layers):
        base = h * (0.35 + 0.45 * (i + 1) / (layers + 1))
        ridge = np.full(w, base, np.float32)
        for octave in (1, 2, 4, 8, 16):
            ridge += (h * 0.12 / octave) * np.sin(2 * np.pi * (octave * x + rng.random()))
        ridge += (_smooth_noise(rng, w, 1, 8)[0] - 0.5) * h * 0.04
        below = yy >= ridge[None, :]
        shade = 0.55 + 0.45 * _smooth_noise(rng, w, h, 24)
        colour = _colour(rng, 30, 170) * (1 - 0.15 * i)
        pixels = np.where(below[..., None], colour * shade[..., None], pixels)
    grain = (rng.random((h, w), dtype=np.float32) - 0.5) * 10
    return _to_image(pixels + grain[..., None])


_GENERATORS = {
    "gradient": gradient_picture,
    "shapes": shapes_picture,
    "texture": texture_picture,
    "landscape": landscape_picture,
}


def _picture(kind: str, seed: int, w: int, h: int) -> Image.Image:
    return _GENERATORS[kind](np.random.default_rng([DEMO_SEED, seed]), w, h)


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """Encode with fixed settings; Pillow adds no timestamps or EXIF unless asked."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        params = {"quality": JPEG_QUALITY, "optimize": False, "progressive": False, **params}
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _pdq_hex(image: Image.Image) -> tuple[str, int]:
    from hashsets.algorithms import get

    value, quality = get("pdq").compute(image)  # type: ignore[attr-defined]
    return value, int(quality)


# --------------------------------------------------------------------------- non-media


_NOTES = (
    "Demo case notes\n"
    "===============\n"
    "This folder is synthetic demo evidence generated by `triage demo`.\n"
    "All pictures are computed gradients, shapes, textures and landscapes.\n"
)


def _minimal_pdf(text: str) -> bytes:
    """A small valid one-page PDF with correct xref offsets, built with the stdlib only."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip with fixed member times, so its bytes do not depend on the clock."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(members.items()):
            info = zipfile.ZipInfo(name, date_time=(2023, 6, 15, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Original:
    """One generated picture: the pixels every copy of it derives from."""

    id: str
    kind: str
    seed: int
    size: tuple[int, int]


# id -> how it is generated. Sizes range from 320x240 to 1600x1200.
_ORIGINALS = [
    _Original("landscape-01", "landscape", 1, (1600, 1200)),
    _Original("landscape-02", "landscape", 2, (1024, 768)),
    _Original("landscape-03", "landscape", 3, (800, 600)),
    _Original("landscape-04", "landscape", 4, (1280, 960)),
    _Original("landscape-05", "landscape", 5, (640, 480)),
    _Original("landscape-06", "landscape", 6, (1600, 900)),
    _Original("landscape-07", "landscape", 7, (1024, 768)),   # renamed .txt
    _Original("landscape-08", "landscape", 8, (1024, 768)),   # truncated
    _Original("landscape-09", "landscape", 9, (640, 480)),    # TIFF
    _Original("landscape-w1", "landscape", 91, (1200, 900)),  # withheld: copies only
    _Original("landscape-w2", "landscape", 92, (1600, 1200)),  # withheld: copies only
    _Original("gradient-01", "gradient", 11, (320, 240)),
    _Original("gradient-02", "gradient", 12, (640, 480)),
    _Original("gradient-03", "gradient", 13, (800, 600)),
    _Original("gradient-04", "gradient", 14, (1024, 768)),
    _Original("gradient-05", "gradient", 15, (320, 240)),     # BMP
    _Original("shapes-01", "shapes", 21, (800, 600)),
    _Original("shapes-02", "shapes", 22, (640, 480)),
    _Original("shapes-03", "shapes", 23, (1024, 768)),
    _Original("shapes-04", "shapes", 24, (1280, 960)),
    _Original("shapes-05", "shapes", 25, (480, 360)),
    _Original("shapes-06", "shapes", 26, (640, 480)),          # renamed .jpg (is PNG)
    _Original("shapes-07", "shapes", 27, (480, 360)),          # GIF
    _Original("texture-01", "texture", 31, (800, 600)),
    _Original("texture-02", "texture", 32, (640, 480)),
    _Original("texture-03", "texture", 33, (800, 600)),        # WebP
    _Original("texture-04", "texture", 34, (640, 480)),        # renamed .dat
]


@dataclass
class _Builder:
    root: Path
    files: list[dict[str, Any]] = field(default_factory=list)
    pictures: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, Image.Image] = field(default_factory=dict)
    encoded: dict[str, bytes] = field(default_factory=dict)  # original id -> its bytes

    def image(self, picture: str) -> Image.Image:
        if picture not in self.images:
            spec = next(o for o in _ORIGINALS if o.id == picture)
            self.images[picture] = _picture(spec.kind, spec.seed, *spec.size)
            self.pictures[picture] = {"kind": spec.kind, "seed": spec.seed,
                                      "width": spec.size[0], "height": spec.size[1],
                                      "in_evidence": False}
        return self.images[picture]

    def write(self, rel: str, data: bytes, role: str, *, picture: str | None = None,
              fmt: str | None = None, size: tuple[int, int] | None = None,
              extension_mismatch: bool = False, note: str = "") -> dict[str, Any]:
        path = self.root / "evidence" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        entry: dict[str, Any] = {
            "path": rel,
            "role": role,
            "picture": picture,
            "format": fmt,
            "width": size[0] if size else None,
            "height": size[1] if size else None,
            "size": len(data),
            "md5": hashlib.md5(data).hexdigest(),
            "sha1": hashlib.sha1(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
            "extension_mismatch": extension_mismatch,
            "note": note,
        }
        self.files.append(entry)
        if picture is not None and role in ("original", "renamed", "high_bit_depth", "alpha",
                                            "animated"):
            self.pictures[picture]["in_evidence"] = True
        return entry

    def original(self, rel: str, picture: str, fmt: str, *, role: str = "original",
                 extension_mismatch: bool = False, note: str = "",
                 **params: Any) -> dict[str, Any]:
        image = self.image(picture)
        data = _encode(image, fmt, **params)
        self.encoded[picture] = data
        self.pictures[picture]["original_md5"] = hashlib.md5(data).hexdigest()
        self.pictures[picture]["original_format"] = fmt
        return self.write(rel, data, role, picture=picture, fmt=fmt, size=image.size,
                          extension_mismatch=extension_mismatch, note=note)


def _plan(b: _Builder) -> None:
    """Write every evidence file. The order of calls fixes the manifest order."""
    cam = "DCIM/100DEMO"
    b.original(f"{cam}/IMG_0001.JPG", "landscape-01", "JPEG")
    b.original(f"{cam}/IMG_0002.JPG", "landscape-02", "JPEG")
    b.original(f"{cam}/IMG_0003.JPG", "landscape-03", "JPEG")
    b.original(f"{cam}/IMG_0004.JPG", "landscape-04", "JPEG")
    b.original(f"{cam}/IMG_0006.JPG", "landscape-06", "JPEG")
    b.original("Pictures/Urlaub/Café Straße – 日本.jpg", "landscape-05", "JPEG",
               note="non-ASCII file name")
    b.original("Pictures/Wallpapers/gradient_01.png", "gradient-01", "PNG")
    b.original("Pictures/Wallpapers/gradient_02.png", "gradient-02", "PNG")
    b.original("Pictures/Wallpapers/gradient_03.png", "gradient-03", "PNG")
    b.original("Pictures/Wallpapers/gradient_04.jpg", "gradient-04", "JPEG")
    b.original("Pictures/Shapes/shapes_01.png", "shapes-01", "PNG")
    b.original("Pictures/Shapes/shapes_02.png", "shapes-02", "PNG")
    b.original("Pictures/Shapes/shapes_03.jpg", "shapes-03", "JPEG")
    b.original("Pictures/Shapes/shapes_04.jpg", "shapes-04", "JPEG")
    b.original("Pictures/Shapes/shapes_05.jpg", "shapes-05", "JPEG")
    b.original("Pictures/Textures/texture_01.jpg", "texture-01", "JPEG")
    b.original("Pictures/Textures/texture_02.png", "texture-02", "PNG")
    # Other formats.
    b.original("Pictures/Textures/texture_03.webp", "texture-03", "WEBP", quality=80,
               method=4)
    b.original("Pictures/Misc/gradient_05.bmp", "gradient-05", "BMP")
    b.original("Pictures/Misc/landscape_09.tif", "landscape-09", "TIFF",
               compression="tiff_lzw")
    gif = b.image("shapes-07").convert("P", palette=Image.Palette.ADAPTIVE, colors=64,
                                       dither=Image.Dither.NONE)
    data = _encode(gif, "GIF")
    b.pictures["shapes-07"].update(original_md5=hashlib.md5(data).hexdigest(),
                                   original_format="GIF")
    b.encoded["shapes-07"] = data
    b.write("Pictures/Misc/shapes_07.gif", data, "original", picture="shapes-07", fmt="GIF",
            size=gif.size, note="palette GIF")
    # Special decoding cases.
    b.write("Pictures/Misc/depth16.png", _sixteen_bit_png(), "high_bit_depth",
            picture=None, fmt="PNG", size=(640, 480), note="16-bit greyscale PNG (I;16)")
    b.write("Pictures/Misc/overlay_rgba.png", _rgba_png(), "alpha", picture=None, fmt="PNG",
            size=(512, 512), note="RGBA PNG with transparent areas")
    b.write("Pictures/Misc/spinner.gif", _animated_gif(), "animated", picture=None, fmt="GIF",
            size=(320, 240), note="animated GIF, 6 frames")
    # Renamed to wrong extensions.
    b.original("Documents/scan_0142.jpg", "shapes-06", "PNG", role="renamed",
               extension_mismatch=True, note="PNG named .jpg")
    b.original("Documents/minutes.txt", "landscape-07", "JPEG", role="renamed",
               extension_mismatch=True, note="JPEG named .txt")
    b.original("AppData/Cache/f_000a3c.dat", "texture-04", "JPEG", role="renamed",
               extension_mismatch=True, note="JPEG named .dat")
    # A truncated JPEG: the first 60 % of a valid one.
    whole = _encode(b.image("landscape-08"), "JPEG")
    b.write(f"{cam}/IMG_0008.JPG", whole[: len(whole) * 6 // 10], "truncated",
            picture="landscape-08", fmt="JPEG", size=b.image("landscape-08").size,
            note=f"first {len(whole) * 6 // 10} of {len(whole)} bytes of a valid JPEG")
    # Byte-identical duplicates in other (nested) folders.
    for rel, picture in (
        ("Backup/2023/phone/IMG_0001.JPG", "landscape-01"),
        ("Backup/2023/phone/old/nested/IMG_0002 (copy).JPG", "landscape-02"),
        ("Downloads/shapes_03.jpg", "shapes-03"),
        ("Backup/2023/wallpapers/bg.png", "gradient-02"),
    ):
        b.write(rel, b.encoded[picture], "duplicate", picture=picture,
                fmt=b.pictures[picture]["original_format"], size=b.image(picture).size,
                note="byte-identical copy")
    # Re-encoded copies (same pixels, lower JPEG quality).
    for rel, picture, quality in (
        ("Downloads/IMG_0003_small.jpg", "landscape-03", 55),
        ("Downloads/shapes_04_q40.jpg", "shapes-04", 40),
        ("Downloads/received/photo_8812.jpg", "landscape-w1", 55),
    ):
        image = b.image(picture)
        b.write(rel, _encode(image, "JPEG", quality=quality), "reencoded", picture=picture,
                fmt="JPEG", size=image.size, note=f"JPEG quality {quality}")
    # Resized copies.
    for rel, picture, factor, fmt in (
        ("Downloads/IMG_0004_web.jpg", "landscape-04", 0.5, "JPEG"),
        ("Downloads/shapes_01_thumb.png", "shapes-01", 0.6, "PNG"),
        ("Downloads/received/photo_9120.jpg", "landscape-w2", 0.4, "JPEG"),
    ):
        image = b.image(picture)
        size = (round(image.width * factor), round(image.height * factor))
        small = image.resize(size, Image.Resampling.LANCZOS)
        b.write(rel, _encode(small, fmt), "resized", picture=picture, fmt=fmt, size=size,
                note=f"resized to {size[0]}x{size[1]}")
    # Non-media files.
    notes = _NOTES.encode("utf-8")
    b.write("Documents/notes.txt", notes, "nonmedia", fmt="text")
    b.write("Documents/report.pdf", _minimal_pdf("Demo report - synthetic evidence"),
            "nonmedia", fmt="PDF")
    b.write("Documents/archive.zip", _zip_bytes({"notes.txt": notes, "readme.txt":
                                                 b"Nothing to see: demo archive.\n"}),
            "nonmedia", fmt="ZIP")
    b.write("AppData/empty.log", b"", "nonmedia", fmt="empty", note="zero-length file")


def _sixteen_bit_png() -> bytes:
    rng = np.random.default_rng([DEMO_SEED, 41])
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ramp = (xx / w * 0.6 + yy / h * 0.4) * 60000
    ramp += _smooth_noise(rng, w, h, 40).astype(np.float64) * 5000
    rr = np.hypot(xx - w * 0.6, yy - h * 0.4)
    ramp = np.where(rr < 90, 65535 - ramp * 0.5, ramp)
    return _encode(Image.fromarray(np.clip(ramp, 0, 65535).astype(np.uint16)), "PNG")


def _rgba_png() -> bytes:
    rng = np.random.default_rng([DEMO_SEED, 42])
    image = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, x1 = sorted(int(v) for v in rng.integers(0, 512, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, 512, 2))
        r, g, bl, a = (int(v) for v in rng.integers(0, 256, 4))
        draw.ellipse((x0, y0, x1, y1), fill=(r, g, bl, max(a, 80)))
    return _encode(image, "PNG")


def _animated_gif() -> bytes:
    frames = []
    for i in range(6):
        frame = Image.new("P", (320, 240), 0)
        frame.putpalette([0, 0, 0, 240, 200, 40, 40, 120, 220, 250, 250, 250] + [0] * 756)
        draw = ImageDraw.Draw(frame)
        x = 40 + i * 40
        draw.ellipse((x, 80, x + 60, 140), fill=1)
        draw.rectangle((0, 200, 320, 240), fill=2)
        draw.line((0, 0, 319, 239), fill=3, width=3)
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=120,
                   loop=0)
    return buffer.getvalue()


# --------------------------------------------------------------------------- hash sets


# Originals whose MD5 is "known material" in the demo story (two are not in the evidence).
_KNOWN_MD5 = ["landscape-01", "shapes-03", "landscape-07", "landscape-w1", "landscape-w2"]
# Originals whose PDQ is in the demo PDQ list: their modified copies are in the evidence.
_KNOWN_PDQ = ["landscape-03", "shapes-04", "landscape-04", "shapes-01", "landscape-w1",
              "landscape-w2"]


def _label(picture: str) -> str:
    return f"{LABEL_PREFIX}/{picture}"


def _write_hashsets(b: _Builder) -> dict[str, Any]:
    folder = b.root / "hashsets"
    folder.mkdir(parents=True, exist_ok=True)
    for picture in _KNOWN_MD5:  # withheld originals: encode now, never written to evidence
        if picture not in b.encoded:
            data = _encode(b.image(picture), "JPEG")
            b.encoded[picture] = data
            b.pictures[picture].update(original_md5=hashlib.md5(data).hexdigest(),
                                       original_format="JPEG")
    md5_lines = [f"{b.pictures[p]['original_md5']}  {_label(p)}" for p in _KNOWN_MD5]
    pdq_lines = []
    for picture in _KNOWN_PDQ:
        value, quality = _pdq_hex(b.image(picture))
        b.pictures[picture].update(pdq=value, pdq_quality=quality)
        pdq_lines.append(f"{value}  {_label(picture)}")
    nsrl = [f for f in b.files if f["role"] == "nonmedia" and f["size"] > 0]
    nsrl_lines = [f"{f['md5']}  {Path(f['path']).name}" for f in nsrl]
    files = {"demo-known.md5": md5_lines, "demo-pdq.txt": pdq_lines,
             "demo-nsrl.md5": nsrl_lines}
    for name, lines in files.items():
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "md5": {"file": "hashsets/demo-known.md5", "format": "md5sum",
                "pictures": _KNOWN_MD5, "count": len(md5_lines)},
        "pdq": {"file": "hashsets/demo-pdq.txt", "format": "pdq (<64 hex>  <label>)",
                "pictures": _KNOWN_PDQ, "count": len(pdq_lines)},
        "nsrl": {"file": "hashsets/demo-nsrl.md5", "format": "md5sum",
                 "files": [f["path"] for f in nsrl], "count": len(nsrl_lines)},
    }


def _expectations(b: _Builder) -> None:
    """Annotate each file with what a scan plus matching should report for it.

    ``expected_status`` is the scan status (``error`` only for the truncated JPEG);
    ``expected_matches`` names the demo hash-set files that should match it: md5 lists by
    equal MD5, the PDQ list by distance <= 31 (0 for an original, a few bits for its copies).
    """
    known_md5 = {b.pictures[p]["original_md5"] for p in _KNOWN_MD5}
    nsrl_md5 = {f["md5"] for f in b.files if f["role"] == "nonmedia" and f["size"] > 0}
    for f in b.files:
        matches = []
        if f["md5"] in known_md5:
            matches.append("demo-known.md5")
        if f["md5"] in nsrl_md5:
            matches.append("demo-nsrl.md5")
        decodable = f["role"] != "truncated"
        if decodable and f["picture"] in _KNOWN_PDQ:
            matches.append("demo-pdq.txt")
        f["pdq_source"] = _label(f["picture"]) if f["picture"] in _KNOWN_PDQ else None
        f["expected_status"] = "done" if decodable else "error"
        f["expected_matches"] = matches


# --------------------------------------------------------------------------- entry point


def _set_times(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(Path(dirpath) / name, (DEMO_MTIME, DEMO_MTIME), follow_symlinks=False)
        os.utime(dirpath, (DEMO_MTIME, DEMO_MTIME))


def build_demo(dest: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Build the demo evidence, hash sets and manifest under ``dest``; return the manifest.

    ``dest`` may exist. If it already holds ``evidence/`` or ``hashsets/``, a
    ``FileExistsError`` is raised unless ``overwrite`` is true AND ``dest`` holds a demo
    manifest (so that an unrelated folder is never deleted). Paths in the manifest are
    relative to ``dest`` (evidence files: relative to ``dest/evidence``), POSIX style.
    """
    dest = Path(dest)
    existing = [dest / "evidence", dest / "hashsets"]
    if any(p.exists() for p in existing):
        if not (overwrite and (dest / MANIFEST_NAME).is_file()):
            raise FileExistsError(f"{dest} already holds demo output; pass overwrite=True to "
                                  f"rebuild it" if (dest / MANIFEST_NAME).is_file()
                                  else f"{dest} already has evidence/ or hashsets/ that "
                                  f"build_demo did not make")
        for p in existing:
            if p.exists():
                shutil.rmtree(p)
    dest.mkdir(parents=True, exist_ok=True)
    b = _Builder(dest)
    _plan(b)
    hashsets = _write_hashsets(b)
    _expectations(b)
    roles = Counter(f["role"] for f in b.files)
    import PIL

    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "about": "Benign synthetic demo evidence built by triage.demo.build_demo: computed "
                 "gradients, shapes, textures and landscapes only.",
        "seed": DEMO_SEED,
        "generator": {"pillow": PIL.__version__, "numpy": np.__version__},
        "mtime": DEMO_MTIME,
        "evidence_dir": "evidence",
        "hashsets": hashsets,
        "counts": {
            "files": len(b.files),
            "bytes": sum(f["size"] for f in b.files),
            "roles": dict(sorted(roles.items())),
            "with_expected_matches": sum(1 for f in b.files if f["expected_matches"]),
            "expected_errors": sum(1 for f in b.files if f["expected_status"] == "error"),
        },
        "pictures": dict(sorted(b.pictures.items())),
        "files": b.files,
    }
    (dest / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        encoding="utf-8")
    _set_times(dest / "evidence")
    _set_times(dest / "hashsets")
    os.utime(dest / MANIFEST_NAME, (DEMO_MTIME, DEMO_MTIME))
    return manifest
