"""HEIC/HEIF pictures (issue 16, item 1): decoded by pillow-heif (libheif with libde265),
as a Pillow plugin, in the decoding worker only.

* **Registered lazily.** Importing pillow-heif loads libheif, libde265 and x265 (its wheel
  bundles them): the opener is registered the first time a worker process asks which
  formats Pillow decodes (:func:`register`, called by ``worker._pillow_formats``), never at
  start-up (``tests/test_startup.py``) and never in the supervisor, which only reads the
  versions for the run record (:func:`versions`).
* **Options.** ``thumbnails=False``: pillow-heif's ``draft()`` would otherwise decode an
  embedded thumbnail instead of the picture (the worker calls ``draft`` for JPEG only, but
  a thumbnail is never hashed as the picture, whatever calls it); ``depth_images=False``,
  ``aux_images=False``: depth maps and auxiliary images (alpha planes stay: they are part
  of the picture) are not listed; ``decode_threads=1``: a worker per core is the scan's
  parallelism, and each decoding thread would add its stack and allocator arena to the
  worker's address-space limit.
* **AVIF** stays with Pillow's own decoder (Pillow 11.3 and later decode AVIF; pillow-heif
  1.x has no AVIF support at all, so nothing is registered twice). Pillow tries the formats
  in the order the worker gives them, AVIF before HEIF, so an AVIF with the generic
  ``mif1`` brand goes to Pillow's AVIF decoder first.
* **Which image.** A HEIF file can hold several images: the primary one (the ``pitm``
  item, what every reader shows) is decoded and hashed; the others are counted as the
  picture's frames. libheif applies the HEIF transformation properties (``irot``
  rotation, ``imir`` mirror, ``clap`` clean-aperture crop), which are part of the HEIF
  image as every reader decodes it; EXIF orientation is not applied, as for every picture.
* **Bounds.** The same as every picture: pillow-heif reads the size from the header
  (``ispe``) on open without decoding, so Pillow's pixel limit (``--max-pixels``) and the
  memory grant (:mod:`triage.membudget`) are decided before any pixel is decoded; there is
  no reduced (draft) decoding. libheif's own security limits stay on.
* **Outcomes.** libheif's message decides (:func:`classify`): a feature or codec this build
  does not decode, or one of libheif's security limits, is a coverage gap; anything else
  (invalid input, data cut short, a picture that decodes larger than its header says) is
  damage, an error. Both reasons name the decoder. libde265 conceals damage inside the
  HEVC data itself (bytes changed in the middle of a picture decode without complaint),
  as libjpeg does: that is not detected.
"""

from __future__ import annotations

import io
import re
from functools import cache
from typing import Any

#: ftyp major brands that pillow-heif's opener accepts (``pillow_heif.as_plugin``).
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm",
                         b"hevs", b"mif1", b"msf1"})

#: libheif messages that say "not decodable here" (a coverage gap) rather than "damaged"
#: (libheif's error category is the message's first words: heif_error_Unsupported_filetype,
#: heif_error_Unsupported_feature; heif_suberror_Security_limit_exceeded).
_GAP_MARKERS = ("Unsupported file-type", "Unsupported feature", "Security limit exceeded")
#: libheif's default ``max_image_size_pixels`` (32768 x 32768). A smaller "maximum image
#: size" in its message is the one libheif derives from the file's own declared size
#: (``ispe``): the coded picture is larger than its header says, which is damage (an
#: error), not a bound (measured with libheif 1.23.6 on a HEIC whose ispe was lowered).
LIBHEIF_MAX_IMAGE_PIXELS = 32768 * 32768
_SIZE_LIMIT = re.compile(r"exceeds the maximum image size (\d+)")


class HeifDecodeError(ValueError):
    """A HEIF picture libheif cannot decode because its data is invalid or cut short."""


@cache
def register() -> str | None:
    """Register pillow-heif's Pillow opener in this process (once) and return the decoder's
    description for the preprocessing record, None when pillow-heif is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return None
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False,
                                     decode_threads=1)
    return describe(versions())


def versions() -> dict[str, Any]:
    """pillow-heif's version, libheif's and the HEVC decoder's (``libheif_info``), for the
    run record; raises ImportError when pillow-heif is not installed. Registers nothing."""
    import pillow_heif

    info = pillow_heif.libheif_info()
    return {"pillow_heif": pillow_heif.__version__,
            "libheif": pillow_heif.libheif_version(),
            "decoders": dict(sorted((info.get("decoders") or {}).items()))}


def describe(v: dict[str, Any]) -> str:
    """``pillow-heif 1.8.1 (libheif 1.23.6; libde265 HEVC decoder, version 1.1.3)``."""
    decoders = "; ".join(str(d) for d in v["decoders"].values()) or "no decoder plugin"
    return f"pillow-heif {v['pillow_heif']} (libheif {v['libheif']}; {decoders})"


def is_heif(data: bytes) -> bool:
    """Whether ``data`` starts like a file pillow-heif's opener takes (its ftyp brand)."""
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def open_error(data: bytes) -> BaseException | None:
    """Why libheif refuses to open ``data`` (a HEIF by its brand that Pillow could not
    identify: pillow-heif turns libheif's error into a SyntaxError that Pillow swallows):
    the exception, or None when it opens. Reads the header only, decodes nothing."""
    import pillow_heif

    try:
        pillow_heif.open_heif(io.BytesIO(data))
    except Exception as e:
        return e
    return None


def classify(e: BaseException, decoder: str) -> tuple[bool, str]:
    """``(gap, reason)`` for libheif's exception ``e``: ``gap`` when the file uses what this
    build does not decode or exceeds one of libheif's security limits, else damage. The
    reason names the decoder (``decoder``: :func:`describe`'s text)."""
    message = " ".join(str(e).split()) or e.__class__.__name__
    size_limit = _SIZE_LIMIT.search(message)
    gap = any(marker in message for marker in _GAP_MARKERS) and not (
        size_limit is not None and int(size_limit.group(1)) < LIBHEIF_MAX_IMAGE_PIXELS)
    return gap, f"HEIF decoder {decoder}: {message}"
