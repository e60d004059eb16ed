"""Shared fixtures. Test evidence lives in ../shared/testdata (read-only, never copied)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import triage  # noqa: F401  (installs the offline guard in this process too)
from tests.support import TESTDATA


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.fail(f"shared test data not found at {TESTDATA}")
    return TESTDATA


@pytest.fixture(scope="session")
def built_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small disk images of tests/images/build_images.sh, built once per session (once
    per xdist worker) and shared by tests/images/test_image_source.py and
    tests/test_nested_evidence.py. Read-only: a test that changes an image copies it first."""
    from tests.images.helpers import build_images

    return build_images(tmp_path_factory.mktemp("images"))




@pytest.fixture
def scan_tmpdir() -> Iterator[Path]:
    """An empty private folder to give a scan as its TMPDIR, with a SHORT path.
    multiprocessing puts its forkserver socket in TMPDIR (pymp-XXXXXXXX/listener-XXXXXXXX,
    34 bytes) and a Unix socket path holds at most 107 bytes: ``tmp_path`` is too long for
    that under pytest-xdist (/tmp/pytest-of-USER/pytest-N/popen-gwN/<test name, 30>0/tmp:
    73 bytes and more), and the scan then moves its socket to a short folder under /tmp,
    with a warning (triage.isolation.short_socket_dir; docs/testing.md)."""
    path = Path(tempfile.mkdtemp(prefix="triage-t-"))
    assert len(str(path / "pymp-XXXXXXXX" / "listener-XXXXXXXX")) <= 107, path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
