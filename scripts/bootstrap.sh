#!/usr/bin/env bash
# Install everything triage and its test suite need, on Debian 12+ with Python 3.11+.
# Idempotent: Debian packages are installed only when missing, the venv only when absent.
# Needs root or sudo for apt-get the first time. No other network access than the package
# registries (Debian and PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages:
#   libmagic1                 libmagic, for python-magic (identification by content)
#   python3-venv              venv + ensurepip on Debian's python3
#   coreutils, hashdeep       independent digests in tests and benchmarks
#   sleuthkit                 fls/icat/mmls: independent oracle in disk-image tests
#   ewf-tools                 ewfacquire/ewfverify: build and verify E01 test images
#   e2fsprogs, dosfstools, mtools, ntfs-3g, fdisk   build ext4/FAT/NTFS/GPT test images
#                             (mkfs, debugfs, mcopy, mkntfs, sfdisk)
#   python3-libewf            zlib-backed libewf (8x faster E01 decompression than the wheel)
#   xz-utils, unzip           unpack the compressed public test images
#   fonts-dejavu-core         the Unicode font of the PDF report
#   chromium, poppler-utils   report tests: load the HTML headless, extract the PDF's text
#   zip, bzip2                tests/contracts: archives made and read by independent tools
#   ffmpeg                    tests/carving: generates the pictures and videos carved
#                             (the PhotoRec benchmark also needs testdisk, not installed here)
#   libtiff-tools             tests/carving: tiffcp writes the tiled, big-endian, JPEG and
#                             two-page TIFFs carved (a second TIFF writer beside ffmpeg's)
#   libimage-exiftool-perl    tests: independent metadata oracle (tests/test_metadata.py)
#                             and reader of picture sizes and HEIF properties (test_heif.py)
#   libarchive-zip-perl       exiftool's reader of ZIP-based files (CaptureOne .eip among the
#                             shared samples); only recommended by exiftool, so not pulled in
#                             with --no-install-recommends
# What triage needs at run time (scripts/bundle.sh ships these with their dependencies; the
# other DEBS only with --with-test-tools). A new run-time package goes in both lists.
RUNTIME_DEBS=(libmagic1 python3-venv python3-libewf fonts-dejavu-core)
DEBS=(libmagic1 python3-venv coreutils hashdeep sleuthkit ewf-tools e2fsprogs dosfstools
      mtools ntfs-3g fdisk python3-libewf xz-utils unzip fonts-dejavu-core chromium
      poppler-utils zip bzip2 ffmpeg libtiff-tools
      libimage-exiftool-perl libarchive-zip-perl)
DEBS+=(${TRIAGE_EXTRA_DEBS:-})

missing=()
for pkg in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c \
        'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "bootstrap: Python 3.11 or newer is required (apt-get install python3)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PY" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.triage-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing triage and its Python dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,cluster]' \
    2>/dev/null || .venv/bin/python -m pip install --disable-pip-version-check \
    -e '.[test,cluster]'
  touch "$stamp"
fi
