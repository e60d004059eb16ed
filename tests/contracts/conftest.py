"""Shared samples of the contract suites (built once per session, in temporary folders)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.support import TESTDATA

#: One ext2 file system in seven containers (testdata/MANIFEST.md, disk/).
DFVFS = TESTDATA / "disk" / "dfvfs"
#: MD5 of the decompressed ext2.raw.gz, also stored in both E01 sets (MANIFEST.md).
EXT2_MD5 = "196066add11fb71c4c49cf1bb50d6d24"


@pytest.fixture(scope="session")
def ext2_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ext2.raw.gz`` decompressed by gzip(1) (an independent tool), checked against the
    MD5 the manifest documents."""
    out = tmp_path_factory.mktemp("ext2") / "ext2.raw"
    with open(out, "wb") as f:
        subprocess.run(["gzip", "-dc", str(DFVFS / "ext2.raw.gz")], stdout=f, check=True)
    assert hashlib.md5(out.read_bytes()).hexdigest() == EXT2_MD5
    return out
