"""The air-gapped bundle's parts that need no network (issue 18). The whole build, offline
install and self-test run in scripts/check_bundle.sh (.ci/run with TRIAGE_CI_BUNDLE=1)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bundle_tools


def test_extras_follow_pyproject(tmp_path: Path) -> None:
    py = tmp_path / "pyproject.toml"
    py.write_text('[project]\nname = "x"\n[project.optional-dependencies]\n'
                  'test = ["pytest"]\ncluster = ["dask"]\nvideo = ["av"]\nfaiss = ["faiss-cpu"]\n')
    assert bundle_tools.extras(py, []) == "faiss,video"
    assert bundle_tools.extras(py, ["--with-test-tools"]) == "faiss,test,video"
    assert bundle_tools.extras(py, ["--with-cluster", "--with-test-tools"]) == \
        "cluster,faiss,test,video"
    # the project's own pyproject.toml parses, and "test" stays out by default
    assert "test" not in bundle_tools.extras(ROOT / "pyproject.toml", []).split(",")


@pytest.mark.skipif(not shutil.which("apt-get"), reason="needs apt (Debian)")
def test_debian_closure_is_against_a_stock_system() -> None:
    """apt's own resolution against Debian's minimal system: libmagic1's data package and
    everything python3 needs are in, libc6 (in every Debian system) is not, even though it
    is installed here like the others."""
    rows = bundle_tools.debs(["libmagic1", "python3-venv"])
    names = {name for name, _, _ in rows}
    assert {"libmagic1", "libmagic-mgc", "python3-venv", "python3.11", "python3-pip-whl",
            "libpython3.11-stdlib"} <= names
    assert "libc6" not in names and "dpkg" not in names
    for name, version, arch in rows:  # versions and architectures apt would install
        shown = subprocess.run(["apt-cache", "show", f"{name}:{arch}={version}"],
                               capture_output=True, text=True, check=False)
        assert shown.returncode == 0 and f"Package: {name}" in shown.stdout


def _fake_bundle(tmp_path: Path) -> Path:
    b = tmp_path / "bundle"
    (b / "debs").mkdir(parents=True)
    (b / "wheels").mkdir()
    shutil.copy(ROOT / "scripts" / "bundle_install.sh", b / "install.sh")
    (b / "BUNDLE.json").write_text(json.dumps({"triage_version": "0", "extras": []}))
    (b / "debs" / "PACKAGES.tsv").write_text("package\tversion\tarch\tfile\trole\n")
    (b / "wheels" / "x.whl").write_bytes(b"not a wheel")
    lines = []
    for p in sorted(b.rglob("*")):
        if p.is_file():
            rel = p.relative_to(b).as_posix()
            lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {rel}\n")
    (b / "SHA256SUMS").write_text("".join(lines))
    return b


def _install(b: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(b / "install.sh"), "--no-debs", "--prefix",
                           str(tmp_path / "venv")], capture_output=True, text=True,
                          check=False)


def test_install_refuses_a_changed_file_before_anything_else(tmp_path: Path) -> None:
    b = _fake_bundle(tmp_path)
    (b / "wheels" / "x.whl").write_bytes(b"changed")
    proc = _install(b, tmp_path)
    assert proc.returncode == 1
    assert "wheels/x.whl: FAILED" in proc.stdout + proc.stderr
    assert "checksum mismatch" in proc.stderr
    assert not (tmp_path / "venv").exists()  # nothing installed


def test_install_refuses_a_file_not_in_sha256sums(tmp_path: Path) -> None:
    b = _fake_bundle(tmp_path)
    (b / "wheels" / "planted.whl").write_bytes(b"x")
    proc = _install(b, tmp_path)
    assert proc.returncode == 1
    assert "files not in SHA256SUMS: wheels/planted.whl" in proc.stderr
    assert not (tmp_path / "venv").exists()
