#!/usr/bin/env bash
# The offline installer of a triage bundle (copied into the bundle as install.sh by
# scripts/bundle.sh). On the air-gapped workstation, from the unpacked bundle:
#
#   sudo bash install.sh [--prefix DIR] [--no-debs] [--validation-out DIR]
#
# 1. checks the SHA-256 of every file against SHA256SUMS (and that no file is unlisted);
# 2. installs with dpkg -i the bundled Debian packages that are not installed yet (root
#    needed only then; --no-debs skips this step);
# 3. creates a virtual environment in DIR (default /opt/triage) with Debian's python3 and
#    installs triage from the bundled wheels only (pip --no-index --find-links; no pip
#    configuration or PIP_* variable is read);
# 4. runs `triage selftest`, writing the validation record to --validation-out (default
#    DIR/validation/<UTC time>), and exits with its code (0 passed, 7 a check failed).
# Nothing here uses the network. Exit 1 when a step fails, with the reason.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/triage debs=1 record=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix DIR}; shift 2 ;;
    --no-debs) debs=0; shift ;;
    --validation-out) record=${2:?--validation-out DIR}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "install.sh: $*" >&2; exit 1; }
prefix=$(realpath -m "$prefix")

# --- 1. checksums -----------------------------------------------------------------------
cd "$here"
[ -f SHA256SUMS ] || die "no SHA256SUMS in $here: not a triage bundle"
if ! sha256sum --check --strict --quiet SHA256SUMS; then
  die "checksum mismatch (the files named above): the bundle is damaged or was changed"
fi
unlisted=$(comm -23 <(find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort) \
                    <(sed 's/^[0-9a-f]*  //' SHA256SUMS | LC_ALL=C sort))
[ -z "$unlisted" ] || die "files not in SHA256SUMS: $unlisted"
echo "install.sh: every file's SHA-256 matches SHA256SUMS" >&2

# --- 2. Debian packages (only the missing ones) -------------------------------------------
if [ "$debs" = 1 ]; then
  missing=()
  while IFS=$'\t' read -r name version arch file role; do
    [ "$name" = package ] && continue
    status=$(dpkg-query -W -f='${Status}' "$name:$arch" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("debs/$file")
  done < debs/PACKAGES.tsv
  if ((${#missing[@]})); then
    [ "$(id -u)" = 0 ] || die "${#missing[@]} Debian packages to install: run as root" \
      "(sudo bash install.sh), or install them yourself and give --no-debs"
    echo "install.sh: dpkg -i ${#missing[@]} missing Debian packages" >&2
    dpkg -i "${missing[@]}" || die "dpkg -i failed (above); nothing else was changed"
  else
    echo "install.sh: every bundled Debian package is installed already" >&2
  fi
fi

# --- 3. virtual environment, wheels only --------------------------------------------------
version=$(sed -n 's/.*"triage_version": "\(.*\)".*/\1/p' BUNDLE.json)
extras=$(tr -d '\n ' < BUNDLE.json | sed -n 's/.*"extras":\[\([^]]*\)\].*/\1/p' | tr -d '"')
spec="triage==$version"
[ -n "$extras" ] && spec="triage[$extras]==$version"
if [ -e "$prefix" ] && [ ! -x "$prefix/bin/python" ] && [ -n "$(ls -A "$prefix")" ]; then
  die "$prefix exists and is not a virtual environment; choose --prefix"
fi
/usr/bin/python3 -m venv "$prefix" || die "cannot create the virtual environment $prefix"
for v in $(compgen -e | grep '^PIP_' || true); do unset "$v"; done
PIP_CONFIG_FILE=/dev/null "$prefix/bin/python" -m pip install -q --no-index \
  --no-cache-dir --disable-pip-version-check --find-links "$here/wheels" "$spec" \
  || die "pip could not install $spec from $here/wheels"
echo "install.sh: installed $spec into $prefix (run $prefix/bin/triage)" >&2

# --- 4. self-test ---------------------------------------------------------------------------
record=${record:-$prefix/validation/$(date -u +%Y%m%dT%H%M%SZ)}
cd /
set +e
"$prefix/bin/triage" selftest --out "$record"
rc=$?
set -e
if [ "$rc" = 0 ]; then
  echo "install.sh: done; the validation record is in $record" >&2
else
  echo "install.sh: triage selftest FAILED (exit $rc); see $record" >&2
fi
exit "$rc"
