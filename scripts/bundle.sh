#!/usr/bin/env bash
# Build the air-gapped install bundle (README "Installing on an air-gapped workstation"):
#
#   bash scripts/bundle.sh [--with-test-tools] [--with-cluster] OUT
#
# Run on a connected machine with the same OS (Debian 12), architecture and Python (Debian's
# python3, 3.11) as the workstation. Writes the folder OUT and OUT.tar holding:
#   wheels/          every wheel triage needs: pip builds the project's own wheel and a
#                    wheel for each dependency published only as a source distribution
#                    (pdqhash), downloads the rest; the dependencies are those of
#                    pyproject.toml, all runtime ones and every extra (bundle_tools.py
#                    extras), except "test" (--with-test-tools) and "cluster" (--with-cluster)
#   debs/            the Debian packages triage needs at run time (RUNTIME_DEBS in
#                    scripts/bootstrap.sh; with --with-test-tools every DEBS there) and
#                    everything they need that a stock Debian 12 lacks, as apt resolves it
#                    (bundle_tools.py debs); debs/PACKAGES.tsv lists name, version, arch,
#                    file, role
#   licences/        each wheel's licence files and each package's copyright file
#   install.sh       the offline installer (scripts/bundle_install.sh)
#   BUNDLE.json      what was built: triage version, git commit, extras, Python, OS, time
#   SHA256SUMS       SHA-256 of every other file (sha256sum --check format)
# Needs network access to PyPI and the Debian mirror, apt-get, dpkg-deb, a C/C++ compiler
# and python3-dev (for the wheels built from source). Takes a few minutes (README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

with_test=0 with_cluster=0 out=""
for arg in "$@"; do
  case "$arg" in
    --with-test-tools) with_test=1 ;;
    --with-cluster) with_cluster=1 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    -*) echo "bundle.sh: unknown option $arg" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "bundle.sh: one OUT only" >&2; exit 2; }; out=$arg ;;
  esac
done
[ -n "$out" ] || { echo "usage: bash scripts/bundle.sh [--with-test-tools] [--with-cluster] OUT" >&2; exit 2; }
out=$(realpath -m "$out")
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ] || [ -e "$out.tar" ]; then
  echo "bundle.sh: $out or $out.tar exists; choose a new OUT" >&2
  exit 2
fi

PY=${PYTHON:-/usr/bin/python3}  # Debian's: the workstation's venv is made from the same
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "bundle.sh: $PY is not Python 3.11 (Debian 12's python3); set PYTHON" >&2; exit 2; }
for tool in apt-get apt-cache dpkg-deb sha256sum tar git; do
  command -v "$tool" >/dev/null || { echo "bundle.sh: $tool not found" >&2; exit 2; }
done
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/wheels" "$out/debs" "$out/licences"
flags=()
[ "$with_test" = 1 ] && flags+=(--with-test-tools)
[ "$with_cluster" = 1 ] && flags+=(--with-cluster)

# --- the project's tracked files (no build folders or caches left in the worktree) ---------
mkdir "$work/src"
(cd "$root" && git ls-files -z | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$work/src"
extras=$("$PY" "$root/scripts/bundle_tools.py" extras "$root/pyproject.toml" "${flags[@]}")
spec="$work/src"
[ -n "$extras" ] && spec="$work/src[$extras]"

# --- wheels: pip wheel builds what has no wheel, downloads the rest ------------------------
echo "bundle.sh: wheels (extras: ${extras:-none})" >&2
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-cache-dir \
  --wheel-dir "$out/wheels" "$spec"
version=$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
  "$root/pyproject.toml")
ls "$out/wheels"/triage-"$version"-*.whl >/dev/null

# --- Debian packages and what a stock Debian 12 lacks of their dependencies -----------------
# The arrays RUNTIME_DEBS and DEBS of bootstrap.sh (their assignments only, not its code).
lists=$(awk '/^(RUNTIME_DEBS|DEBS)\+?=\(/ && !/TRIAGE_EXTRA_DEBS/ {p=1} p {print}
             p && /\)/ {p=0}' "$root/scripts/bootstrap.sh")
RUNTIME_DEBS=() DEBS=()
eval "$lists"
echo "bundle.sh: Debian packages for: ${RUNTIME_DEBS[*]}" >&2
"$PY" "$root/scripts/bundle_tools.py" debs "${RUNTIME_DEBS[@]}" > "$work/debs.tsv"
runtime=" $(cut -f1 "$work/debs.tsv" | tr '\n' ' ') "
if [ "$with_test" = 1 ]; then
  echo "bundle.sh: and test tools: ${DEBS[*]}" >&2
  "$PY" "$root/scripts/bundle_tools.py" debs "${RUNTIME_DEBS[@]}" "${DEBS[@]}" > "$work/debs.tsv"
fi
(cd "$out/debs" && cut -f1,2,3 "$work/debs.tsv" | awk -F'\t' '{print $1 ":" $3 "=" $2}' \
  | xargs apt-get download -q=2 2>&1 | grep -v 'unsandboxed as root' >&2 || true)
printf 'package\tversion\tarch\tfile\trole\n' > "$out/debs/PACKAGES.tsv"
while IFS=$'\t' read -r name ver arch; do
  file=$(cd "$out/debs" && ls "${name}_"*"_${arch}.deb" 2>/dev/null | head -1)
  [ -n "$file" ] || { echo "bundle.sh: apt-get download did not fetch $name $ver" >&2; exit 1; }
  got=$(dpkg-deb -f "$out/debs/$file" Version)
  [ "$got" = "$ver" ] || { echo "bundle.sh: $file is $got, not $ver" >&2; exit 1; }
  role=test
  case "$runtime" in *" $name "*) role=runtime ;; esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$ver" "$arch" "$file" "$role" >> "$out/debs/PACKAGES.tsv"
done < "$work/debs.tsv"

# --- licences, installer, description, checksums, tar ------------------------------------
"$PY" "$root/scripts/bundle_tools.py" licences "$out/wheels" "$out/debs" "$out/licences"
install -m 0755 "$root/scripts/bundle_install.sh" "$out/install.sh"
commit=$(cd "$root" && git describe --always --dirty --abbrev=12)
"$PY" - "$out/BUNDLE.json" "$version" "$commit" "$extras" "$with_test" "$with_cluster" <<'EOF'
import json, platform, sys
from datetime import UTC, datetime
path, version, commit, extras, with_test, with_cluster = sys.argv[1:]
osr = dict(l.rstrip("\n").split("=", 1) for l in open("/etc/os-release") if "=" in l)
json.dump({"triage_version": version, "git_commit": commit,
           "extras": [e for e in extras.split(",") if e],
           "with_test_tools": with_test == "1", "with_cluster": with_cluster == "1",
           "python": platform.python_version(), "machine": platform.machine(),
           "os": osr.get("PRETTY_NAME", "").strip('"'),
           "built_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
          open(path, "w"), indent=2, sort_keys=True)
print(file=open(path, "a"))
EOF
(cd "$out" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort \
  | xargs -d '\n' sha256sum > SHA256SUMS)
tar --sort=name --owner=0 --group=0 --numeric-owner -cf "$out.tar" -C "$(dirname "$out")" \
  "$(basename "$out")"
end=$(date +%s)
echo "bundle.sh: $out and $out.tar ($(du -sh "$out.tar" | cut -f1)):" \
  "$(ls "$out/wheels" | wc -l) wheels, $(($(wc -l < "$out/debs/PACKAGES.tsv") - 1)) Debian" \
  "packages, built in $((end - start)) s" >&2
