"""Helpers of scripts/bundle.sh (standard library only; run with Debian's python3).

  bundle_tools.py extras PYPROJECT [--with-test-tools] [--with-cluster]
      the extras to install, comma-separated: every optional-dependency group of
      pyproject.toml except "test" (only with --with-test-tools) and "cluster" (only with
      --with-cluster), so the bundle follows pyproject.toml as dependencies are added.
  bundle_tools.py debs PACKAGE...
      the Debian packages (name, version, architecture; one a line, tab-separated) that
      installing PACKAGE... with apt (no recommends) adds to a stock Debian system, as apt
      itself resolves it: virtual packages, alternatives and versions included.
  bundle_tools.py licences WHEELS_DIR DEBS_DIR OUT_DIR
      copies each wheel's licence files and each .deb's /usr/share/doc/PKG/copyright.

"Stock Debian" is the smallest system Debian installs (debootstrap --variant=minbase, the
debian:12 container image): every package of Priority "required" or Essential "yes" and
what they depend on, resolved by apt from an empty system. Each package outside it that
PACKAGE... needs is listed, even when this build machine happens to have it installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

#: Extras that are left out unless asked for (flag -> extra).
OPTIONAL_EXTRAS = {"--with-test-tools": "test", "--with-cluster": "cluster"}
#: apt options that make it resolve against a given dpkg status file, in memory only
#: (no cache files written, no lock taken: simulation).
APT_SIM = ["-o", "Dir::Cache::pkgcache=",
           "-o", "Debug::NoLocking=1", "-o", "APT::Get::Show-Versions=1", "-s", "-q",
           "--no-install-recommends", "install"]
#: "Inst NAME [OLD] (VERSION ARCHIVE [ARCH]) [BROKEN ...]": the first bracket inside the
#: parentheses is the architecture.
_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[\S+\] )?\((?P<version>\S+) [^)\[]*"
                   r"\[(?P<arch>[^\]]+)\]\)")
#: Licence files inside a wheel's .dist-info (PEP 639 puts them under licenses/).
_LICENCE = re.compile(r"(^|/)(LICEN[CS]E|COPYING|NOTICE|AUTHORS|COPYRIGHT)[^/]*$|"
                      r"\.dist-info/licenses/", re.IGNORECASE)


def extras(pyproject: Path, flags: list[str]) -> str:
    groups = tomllib.loads(pyproject.read_text())["project"].get("optional-dependencies", {})
    skip = {extra for flag, extra in OPTIONAL_EXTRAS.items() if flag not in flags}
    return ",".join(sorted(g for g in groups if g not in skip))


#: apt's parsed package lists, kept for the runs of one process (apt parses ~50 MB of lists
#: otherwise each time; the system's own cache is off in Debian's container images).
_SRCCACHE = tempfile.TemporaryDirectory(prefix="bundle-apt-")


def _apt(status: Path, packages: list[str]) -> list[tuple[str, str, str]]:
    cache = f"Dir::Cache::srcpkgcache={_SRCCACHE.name}/srcpkgcache.bin"
    proc = subprocess.run(["apt-get", "-o", f"Dir::State::status={status}", "-o", cache,
                           *APT_SIM, *packages], capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C"})
    if proc.returncode != 0:
        sys.exit(f"bundle_tools: apt cannot resolve {' '.join(packages)}:\n{proc.stdout}"
                 f"{proc.stderr}")
    out = []
    for line in proc.stdout.splitlines():
        if m := _INST.match(line):
            out.append((m["name"], m["version"], m["arch"]))
    return out


def _status(packages: list[tuple[str, str, str]]) -> str:
    """A dpkg status file in which ``packages`` (name, version, arch) are installed: their
    Packages stanzas (one ``apt-cache show`` for all) with a Status line."""
    proc = subprocess.run(["apt-cache", "show", *(f"{n}:{a}={v}" for n, v, a in packages)],
                          capture_output=True, text=True, check=True)
    wanted = set(packages)
    out = []
    for para in proc.stdout.split("\n\n"):
        fields = dict(ln.split(": ", 1) for ln in para.splitlines() if ": " in ln
                      and not ln.startswith(" "))
        key = (fields.get("Package"), fields.get("Version"), fields.get("Architecture"))
        if key not in wanted:
            continue
        wanted.discard(key)  # type: ignore[arg-type]
        keep = [ln for ln in para.splitlines()
                if not ln.startswith(("Filename:", "Size:", "MD5sum:", "SHA256:", "SHA1:",
                                      "Description-md5:"))]
        keep.insert(1, "Status: install ok installed")
        out.append("\n".join(keep) + "\n")
    if wanted:
        sys.exit(f"bundle_tools: apt-cache shows no stanza for {sorted(wanted)}")
    return "\n".join(out)


def stock_packages() -> list[tuple[str, str, str]]:
    """Debian's minimal system: Priority required and Essential packages and their
    dependencies, as apt installs them on an empty system."""
    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True,
                          check=True).stdout
    base: set[str] = set()
    for para in dump.split("\n\n"):  # 60,000 stanzas: substring tests first (fast)
        para = "\n" + para + "\n"
        if "\nPriority: required\n" in para or "\nEssential: yes\n" in para:
            base.add(para.split("\nPackage: ", 1)[1].split("\n", 1)[0])
    with tempfile.NamedTemporaryFile("w", suffix=".status") as empty:
        return _apt(Path(empty.name), sorted(base))


def debs(packages: list[str]) -> list[tuple[str, str, str]]:
    stock = stock_packages()
    with tempfile.NamedTemporaryFile("w", suffix=".status") as status:
        status.write(_status(stock))
        status.flush()
        return _apt(Path(status.name), packages)


def licences(wheels: Path, debs_dir: Path, out: Path) -> None:
    for whl in sorted(wheels.glob("*.whl")):
        target = out / "python" / whl.name.removesuffix(".whl")
        with zipfile.ZipFile(whl) as z:
            names = [n for n in z.namelist() if ".dist-info/" in n and _LICENCE.search(n)
                     and not n.endswith("/")]
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            for n in [*names, meta]:
                dest = target / n.split(".dist-info/", 1)[1]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(z.read(n))
            if not names:  # the licence is only named in METADATA: say so beside it
                (target / "NO-LICENCE-FILE").write_text(
                    "This wheel ships no licence file; see the License fields of METADATA.\n")
    for deb in sorted(debs_dir.glob("*.deb")):
        name = deb.name.split("_", 1)[0]
        target = out / "debian" / name
        target.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True,
                             check=True).stdout
        with tempfile.TemporaryFile() as f:
            f.write(tar)
            f.seek(0)
            with tarfile.open(fileobj=f) as t:
                member = next((m for m in t.getmembers()
                               if m.name == f"./usr/share/doc/{name}/copyright"), None)
                link = next((m for m in t.getmembers()
                             if m.name == f"./usr/share/doc/{name}" and m.issym()), None)
                if member is not None and member.isfile():
                    src = t.extractfile(member)
                    assert src is not None
                    (target / "copyright").write_bytes(src.read())
                elif link is not None:  # the doc folder is another package's
                    (target / "copyright-see").write_text(
                        f"/usr/share/doc/{name} is a link to {link.linkname}: the copyright "
                        f"file of that package applies (licences/debian/"
                        f"{Path(link.linkname).name}).\n")
                else:
                    (target / "NO-COPYRIGHT-FILE").write_text(
                        f"{deb.name} ships no /usr/share/doc/{name}/copyright.\n")


def main(argv: list[str]) -> None:
    if argv[:1] == ["extras"] and len(argv) >= 2:
        print(extras(Path(argv[1]), argv[2:]))
    elif argv[:1] == ["debs"] and len(argv) >= 2:
        for row in debs(argv[1:]):
            print("\t".join(row))
    elif argv[:1] == ["licences"] and len(argv) == 4:
        licences(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
