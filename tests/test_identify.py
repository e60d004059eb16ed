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


#: The two places where triage's MIME type knowingly differs from ``file --mime-type`` on
#: the same bytes: an empty file (``file`` looks at the inode, libmagic's buffer call says
#: application/x-empty) and WebM/Matroska (libmagic 5.44 names them only in its
#: description; :class:`Identifier` reads it from there).
_FILE_DIFFERS = {("application/x-empty", "inode/x-empty"),
                 ("video/webm", "application/octet-stream"),
                 ("video/x-matroska", "application/octet-stream")}


def test_every_mime_type_is_what_file_says(tmp_path: Path) -> None:
    """Any row's MIME type can be checked with one command of the independent ``file``
    tool on the same bytes: ``file --mime-type`` reads the same 1 MiB head with the same
    magic database (issue 13 kept libmagic for every file, text included, for this)."""
    import shutil
    import subprocess

    if shutil.which("file") is None:
        pytest.skip("file(1) is not installed")
    ev = tmp_path / "ev"
    shutil.copytree(TESTDATA / "media" / "small", ev / "small")
    texts = {
        "script": b"#!/bin/sh\nset -e\necho hello\n",
        "prog.c": b"#include <stdio.h>\nint main(void) { return 0; }\n",
        "page.html": b"<!DOCTYPE html>\n<html><head><title>t</title></head><body></body></html>\n",
        "data.json": b'{"a": [1, 2, 3], "b": {"c": null}}\n',
        "table.csv": b"name,size,kind\na,1,x\nb,2,y\nc,3,z\n",
        "doc.xml": b'<?xml version="1.0"?>\n<root><item/></root>\n',
        "latin1.txt": "caf\u00e9 cr\u00e8me\n".encode("latin-1"),
        "utf16.txt": "plain text\n".encode("utf-16"),
        "empty.conf": b"",
        # A binary byte past the 1 MiB head: both look at the head only.
        "long.txt": b"line of text\n" * (MAGIC_HEAD_BYTES // 13 + 10) + b"\x00\x01\x02",
    }
    for name, data in texts.items():
        (ev / name).write_bytes(data)
    scan_json(ev, tmp_path / "case", "--no-perceptual", "--no-containers")
    recorded = {r["path"]: r["mime"] for r in rows(
        tmp_path / "case", "SELECT path, mime FROM files WHERE kind='file' "
        "AND parent_id IS NULL AND mime IS NOT NULL")}
    assert len(recorded) == len(list(ev.rglob("*"))) - 1  # every file but the folder
    paths = sorted(recorded)
    said = subprocess.run(["file", "--mime-type", "-b", "--", *paths], cwd=ev,
                          capture_output=True, check=True).stdout.decode().splitlines()
    differ = {p: (recorded[p], f) for p, f in zip(paths, said, strict=True)
              if recorded[p] != f and (recorded[p], f) not in _FILE_DIFFERS}
    assert not differ
    assert {recorded[n] for n in (b"script", b"prog.c", b"data.json", b"table.csv")} == {
        "text/x-shellscript", "text/x-c", "application/json", "text/csv"}
