"""Identification rules that do not need a scan."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import pytest
from PIL import Image

from tests.support import TESTDATA, rows, scan_json
from triage.identify import (
    MAGIC_HEAD_BYTES,
    Identifier,
    allowed_extensions,
    extension_mismatch,
)


@pytest.mark.parametrize(("mime", "kind", "ext", "expected"), [
    ("image/jpeg", "image", "jpg", 0),
    ("image/jpeg", "image", "txt", 1),          # a picture hiding under another name
    ("image/jpeg", "image", None, 1),
    ("image/png", "image", "jpg", 1),
    ("application/zip", "other", "jpg", 1),     # a media name on something else
    ("text/plain", "other", "ts", None),        # TypeScript, not an MPEG transport stream
    ("video/mp2t", "video", "ts", 0),
    ("text/plain", "other", "txt", 0),
    ("application/octet-stream", "other", "dat", None),
])
def test_extension_mismatch(mime: str, kind: str, ext: str | None,
                            expected: int | None) -> None:
    assert extension_mismatch(mime, kind, ext) == expected


def test_extension_table_does_not_depend_on_the_machine(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """A machine-wide mime.types must not change the flag (same evidence, same rows)."""
    extra = tmp_path / "mime.types"
    extra.write_text("image/jpeg zzz\n")
    before = allowed_extensions("image/jpeg")
    monkeypatch.setattr(mimetypes, "knownfiles", [str(extra)])
    mimetypes.init([str(extra)])
    try:
        assert allowed_extensions("image/jpeg") == before
        assert "zzz" not in before
    finally:
        mimetypes.init()


def test_identification_keeps_no_libmagic_description() -> None:
    """libmagic's description of a script is its shebang line: text from inside the file.
    Identification keeps the MIME type only (issue 11, defect 8)."""
    ident = Identifier().identify(b"#!/usr/bin/CANARY_SHEBANG_SECRET\necho hi\n", "sh")
    assert "CANARY" not in repr(ident)
    assert ident.mime.startswith("text/")
    webm = (TESTDATA / "media" / "small" / "webm.webm").read_bytes()[:MAGIC_HEAD_BYTES]
    assert Identifier().identify(webm, "webm").mime == "video/webm"


def test_max_pixels_is_the_limit_given(tmp_path: Path) -> None:
    """--max-pixels N accepts an image of N or fewer pixels and refuses a larger one."""
    root = tmp_path / "ev"
    root.mkdir()
    Image.new("L", (150, 100), 7).save(root / "p.png")          # 15,000 pixels
    ok = tmp_path / "ok"
    scan_json(root, ok, "--max-pixels", "20000", expect=(0,))
    assert rows(ok, "SELECT status FROM files")[0]["status"] == "done"
    refused = tmp_path / "refused"
    scan_json(root, refused, "--max-pixels", "10000", expect=(3,))
    r = rows(refused, "SELECT status, status_reason FROM files")[0]
    assert r["status"] == "error" and "decompression bomb" in r["status_reason"]
