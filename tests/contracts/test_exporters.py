"""Contract of every registered report exporter (``triage.report``), parametrised over the
registry: a new exporter fails until its file type has a validator here.

Every exporter renders an empty case (no evidence) and a small scanned-and-matched case
into output its declared extension's parser accepts; the same case and generation time give
the same bytes; the small case's hit is in the output; no picture bytes are (raw, base64 or
as a data: URI), and a PDF holds no image objects.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.contracts import registries as reg
from tests.support import run_triage

GENERATED = "2026-01-02T03:04:05Z"
OTHER_TIME = "2027-06-07T08:09:10Z"


def _png(seed: int) -> bytes:
    """A small benign noise picture (PNG)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.resize((64, 64), Image.Resampling.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def _pdf_text(data: bytes) -> bytes:
    """The PDF's text as poppler's pdftotext extracts it (an independent reader)."""
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext not found: apt-get install poppler-utils")
    return subprocess.run([tool, "-", "-"], input=data, capture_output=True,
                          check=True).stdout


def _pdf_images(data: bytes) -> int:
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        return sum(1 for o in pdf.objects if isinstance(o, pikepdf.Stream)
                   and o.get("/Subtype") == pikepdf.Name.Image)


def _html(data: bytes) -> bytes:
    text = data.decode("utf-8")
    assert re.match(r"\s*<!DOCTYPE html>", text, re.I) and text.rstrip().endswith("</html>")
    return data


def _csv(data: bytes) -> bytes:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows and all(len(r) == len(rows[0]) for r in rows)
    return data


def _json(data: bytes) -> bytes:
    json.loads(data)
    return data


def _jsonl(data: bytes) -> bytes:
    lines = data.decode("utf-8").splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    return data


def _pdf(data: bytes) -> bytes:
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert _pdf_images(data) == 0, "a PDF report must not embed pictures"
    return _pdf_text(data)


#: Declared extension -> a parser that accepts the output and returns its searchable text.
VALIDATORS: dict[str, Callable[[bytes], bytes]] = {
    "html": _html, "csv": _csv, "json": _json, "jsonl": _jsonl, "pdf": _pdf,
}


def test_every_exporter_declares_a_validated_extension() -> None:
    for name, exporter in reg.exporters().items():
        ext = exporter.extension
        assert re.fullmatch(r"[a-z0-9]+", ext), (name, ext)
        assert ext in VALIDATORS, f"{name}: add a validator for .{ext} to VALIDATORS"
        assert exporter.name == name and exporter.description


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("export")
    empty = tmp / "empty"
    reg.create_empty_case(empty)
    evidence = tmp / "evidence"
    (evidence / "pics").mkdir(parents=True)
    pictures = {"pics/hit.png": _png(1), "pics/other.png": _png(2)}
    for rel, data in pictures.items():
        (evidence / rel).write_bytes(data)
    (evidence / "readme.txt").write_text("nothing to see\n")
    small = tmp / "small"
    proc = run_triage("scan", str(evidence), "--case", str(small), "--no-match", "-q")
    assert proc.returncode == 0, proc.stderr
    hit_md5 = hashlib.md5(pictures["pics/hit.png"]).hexdigest()
    (tmp / "known.md5").write_text(f"{hit_md5}  known picture\n")
    store = tmp / "store.sqlite"
    proc = run_triage("hashset", "import", str(tmp / "known.md5"), "--name", "contract set",
                      "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    proc = run_triage("match", str(small), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    return {"empty": empty, "small": small, "pictures": pictures, "hit_md5": hit_md5}


@pytest.mark.parametrize("name", sorted(reg.exporters()))
def test_renders_an_empty_case_deterministically(name: str, cases: dict[str, Any]) -> None:
    data = reg.render(name, cases["empty"], GENERATED)
    VALIDATORS[reg.exporters()[name].extension](data)
    assert reg.render(name, cases["empty"], GENERATED) == data


@pytest.mark.parametrize("name", sorted(reg.exporters()))
def test_renders_a_small_case(name: str, cases: dict[str, Any]) -> None:
    validate = VALIDATORS[reg.exporters()[name].extension]
    data = reg.render(name, cases["small"], GENERATED)
    text = validate(data)
    assert reg.render(name, cases["small"], GENERATED) == data, "not deterministic"
    later = reg.render(name, cases["small"], OTHER_TIME)
    validate(later)
    # the hit is reported (by its MD5, any case)
    assert cases["hit_md5"].encode() in text.lower(), "the hit is missing"
    # no picture content, in any encoding
    assert b"data:image" not in data
    for picture in cases["pictures"].values():
        for needle in (picture[len(picture) // 2:len(picture) // 2 + 32],
                       base64.b64encode(picture)[40:80]):
            assert needle not in data and needle not in text
