"""The directory source: links, special files, hostile names, deep paths, atime, changes."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from PIL import Image

from tests.support import rows, scan_json
from triage.sources import open_source
from triage.sources.base import ContentChangedError


def _jpeg(path: Path, color: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    Image.new("RGB", (64, 48), color).save(path, "JPEG", quality=90)
    return path.read_bytes()


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "a").mkdir()
    _jpeg(root / "a" / "photo.jpg")
    (root / "a" / "notes.txt").write_bytes(b"hello\n")
    os.symlink("../a", root / "a" / "loop")            # a directory cycle through a link
    os.symlink("/etc/passwd", root / "outside")        # a link out of the evidence
    os.symlink("missing", root / "dangling")
    os.mkfifo(root / "fifo")                           # reading would block forever
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "sock"))
    s.close()
    (root / "empty.bin").write_bytes(b"")
    return root


def _names(case: Path) -> dict[bytes, dict]:
    return {bytes(r["path"]): dict(r) for r in rows(case, "SELECT * FROM files")}


def test_links_and_special_files_are_listed_never_followed_or_read(tree: Path,
                                                                    tmp_path: Path) -> None:
    case = tmp_path / "case"
    summary = scan_json(tree, case)
    assert summary["by_status"].get("error", 0) == 0
    files = _names(case)
    for link, target in ((b"a/loop", b"../a"), (b"outside", b"/etc/passwd"),
                         (b"dangling", b"missing")):
        r = files[link]
        assert r["kind"] == "symlink" and r["status"] == "skipped"
        assert bytes(r["link_target"]) == target
    assert files[b"fifo"]["kind"] == "fifo" and files[b"fifo"]["status"] == "skipped"
    assert files[b"sock"]["kind"] == "socket" and files[b"sock"]["status"] == "skipped"
    assert files[b"a/photo.jpg"]["status"] == "done"
    assert not any(p.startswith(b"a/loop/") for p in files)  # the cycle was not entered
    assert not rows(case, "SELECT * FROM hashes h JOIN files f ON f.id=h.file_id "
                          "WHERE f.kind != 'file'")
    empty = rows(case, "SELECT h.value FROM hashes h JOIN files f ON f.id=h.file_id "
                       "WHERE f.path=? AND h.algorithm='md5'", (b"empty.bin",))
    assert [r["value"] for r in empty] == ["d41d8cd98f00b204e9800998ecf8427e"]


def test_hostile_names_are_kept_as_exact_bytes(tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    root.mkdir()
    names = [
        b"caf\xe9-latin1.jpg",                 # not UTF-8
        b"new\nline.jpg", b"tab\there.jpg", b"\x1b[31mred.jpg",
        "rtl-\u202egpj.exe".encode(),           # right-to-left override
        b"=cmd|' -C calc'!A0.jpg",
        b"x" * 251 + b".jpg",                  # 255-byte name
        "日本語の名前.jpg".encode(),
        b"back\\slash.jpg",
    ]
    for n in names:
        with open(os.path.join(bytes(root), n), "wb") as f:
            f.write(b"content of " + n)
    case = tmp_path / "case"
    scan_json(root, case)
    files = _names(case)
    assert set(files) == set(names)
    display = {p: r["display_path"] for p, r in files.items()}
    assert display[b"caf\xe9-latin1.jpg"] == "caf\\xe9-latin1.jpg"
    assert display[b"new\nline.jpg"] == "new\\x0aline.jpg"
    assert display["rtl-\u202egpj.exe".encode()] == "rtl-\\u202egpj.exe"
    assert display[b"back\\slash.jpg"] == "back\\\\slash.jpg"
    assert display[b"=cmd|' -C calc'!A0.jpg"] == "=cmd|' -C calc'\\x21A0.jpg"
    assert display["日本語の名前.jpg".encode()] == "日本語の名前.jpg"
    for d in display.values():
        assert d.isprintable()
    for p, r in files.items():
        assert r["status"] == "done"
        import hashlib
        md5 = rows(case, "SELECT value FROM hashes WHERE file_id=? AND algorithm='md5'",
                   (r["id"],))[0]["value"]
        assert md5 == hashlib.md5(b"content of " + p).hexdigest()


def test_paths_deeper_than_path_max(tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    depth = 0
    try:
        while depth * 201 < 5000:                      # > PATH_MAX (4096) in total
            name = ("d" * 200).encode()
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            depth += 1
        leaf = os.open(b"deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"deep")
        os.close(leaf)
    finally:
        os.close(fd)
    case = tmp_path / "case"
    scan_json(root, case)
    deep = [r for r in rows(case, "SELECT * FROM files") if bytes(r["path"]).endswith(
        b"/deep.txt")]
    assert len(deep) == 1 and deep[0]["status"] == "done"
    assert len(bytes(deep[0]["path"])) > 4096


def test_access_times_do_not_change(tree: Path, tmp_path: Path) -> None:
    photo = tree / "a" / "photo.jpg"
    old = 1_000_000_000
    os.utime(photo, (old, old))   # atime <= mtime: relatime would update it on a read
    before = os.stat(photo, follow_symlinks=False)
    scan_json(tree, tmp_path / "case")
    after = os.stat(photo, follow_symlinks=False)
    assert after.st_atime_ns == before.st_atime_ns
    assert after.st_mtime_ns == before.st_mtime_ns


def test_writable_mount_is_warned_about(tree: Path, tmp_path: Path) -> None:
    from tests.support import run_triage

    proc = run_triage("scan", str(tree), "--case", str(tmp_path / "case"), "--no-match",
                      "-q")
    assert "writable mount" in proc.stderr
    warn = rows(tmp_path / "case", "SELECT * FROM errors WHERE stage='evidence'")
    assert warn and "writable mount" in warn[0]["message"]


def test_file_replaced_or_changed_during_read_is_detected(tree: Path) -> None:
    source = open_source(str(tree))
    entries = {e.path: e for e in source.entries()}
    entry = entries[b"a/notes.txt"]
    (tree / "a" / "notes.txt").unlink()
    (tree / "a" / "notes.txt").write_bytes(b"something else")
    with pytest.raises(ContentChangedError, match="modified since enumeration"):
        source.open_entry(entry)
    photo = entries[b"a/photo.jpg"]
    stream = source.open_entry(photo)
    stream.read(10)
    with open(tree / "a" / "photo.jpg", "ab") as f:
        f.write(b"appended while reading")
    with pytest.raises(ContentChangedError, match="changed while it was read"):
        stream.close()


def test_entries_are_deterministic_and_sorted_by_bytes(tree: Path) -> None:
    a = [e.path for e in open_source(str(tree)).entries()]
    b = [e.path for e in open_source(str(tree)).entries()]
    assert a == b
    top = [p for p in a if b"/" not in p]
    assert top == sorted(top)


def test_directories_are_recorded(tree: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    scan_json(tree, case)
    d = _names(case)[b"a"]
    assert d["kind"] == "directory" and d["status"] == "skipped"
    assert stat.S_ISDIR(os.stat(tree / "a").st_mode)


def test_a_tree_deeper_than_the_depth_cap_is_recorded_not_fatal(tmp_path: Path) -> None:
    """1,100 nested folders (2.2 KB of path): no recursion limit is hit; entries down to the
    cap are listed and the folder beyond it is an error entry with its reason."""
    from triage.sources.directory import MAX_DEPTH

    root = tmp_path / "evidence"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(MAX_DEPTH + 76):
            os.mkdir(b"a", dir_fd=fd)
            nfd = os.open(b"a", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)
    case = tmp_path / "case"
    try:
        summary = scan_json(root, case, expect=(3,))
        errors = rows(case, "SELECT * FROM files WHERE status='error'")
        assert len(errors) == 1 and "deeper than" in errors[0]["status_reason"]
        assert summary["entries"] == MAX_DEPTH
    finally:
        _remove_chain(root, MAX_DEPTH + 76)


def _remove_chain(root: Path, depth: int) -> None:
    """Remove a chain of nested folders named ``a`` bottom-up without recursion
    (shutil.rmtree recurses and would hit Python's limit, also in pytest's own clean-up)."""
    fds = [os.open(root, os.O_RDONLY)]
    try:
        for _ in range(depth - 1):
            fds.append(os.open(b"a", os.O_RDONLY, dir_fd=fds[-1]))
        for fd in reversed(fds):
            os.rmdir(b"a", dir_fd=fd)
    finally:
        for fd in fds:
            os.close(fd)
