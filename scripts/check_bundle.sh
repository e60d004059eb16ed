#!/usr/bin/env bash
# CI proof of the air-gapped install (issue 18), as far as a CI machine can go:
#
#   bash scripts/check_bundle.sh [BUNDLE.tar]
#
# 1. builds the bundle (scripts/bundle.sh) into a temporary folder, or takes a built
#    BUNDLE.tar;
# 2. unpacks the .tar into a fresh folder and checks that every .deb that debs/PACKAGES.tsv
#    lists is there with its line in SHA256SUMS, and that `dpkg -i --dry-run` accepts the
#    whole set (dpkg's own dependency and conflict checks against this system);
# 3. inside an empty network namespace (`unshare -n`: no interface but a down loopback)
#    runs the bundle's install.sh with --no-debs into a fresh folder: checksums, a venv,
#    pip from the bundled wheels only, `triage selftest`;
# 4. checks the validation record says PASS.
# Not exercised here: install.sh's `dpkg -i` of missing packages (CI runs as root with the
# packages already installed; README "Installing on an air-gapped workstation").
# Needs root (dpkg --dry-run, unshare -n). .ci/run runs it when CI=true or TRIAGE_CI_BUNDLE=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/triage-check-bundle.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_bundle: FAIL: $*" >&2; exit 1; }

if [ $# -ge 1 ]; then
  tarball=$(realpath "$1")
else
  t0=$(date +%s)
  bash "$root/scripts/bundle.sh" "$work/build/triage-bundle"
  echo "check_bundle: bundle built in $(($(date +%s) - t0)) s," \
       "$(stat -c %s "$work/build/triage-bundle.tar") bytes" >&2
  tarball=$work/build/triage-bundle.tar
fi

# --- 2. the .tar unpacked into a fresh folder; every listed .deb present and checksummed ----
mkdir "$work/target"
tar -xf "$tarball" -C "$work/target"
bundle=$(find "$work/target" -mindepth 1 -maxdepth 1 -type d)
[ -f "$bundle/install.sh" ] || fail "no install.sh in $tarball"
n=0
while IFS=$'\t' read -r name version arch file role; do
  [ "$name" = package ] && continue
  [ -f "$bundle/debs/$file" ] || fail "$name $version: debs/$file missing"
  grep -q "^[0-9a-f]\{64\}  debs/$file\$" "$bundle/SHA256SUMS" \
    || fail "debs/$file has no line in SHA256SUMS"
  [ "$(dpkg-deb -f "$bundle/debs/$file" Package)" = "$name" ] || fail "debs/$file is not $name"
  n=$((n + 1))
done < "$bundle/debs/PACKAGES.tsv"
[ "$n" -gt 0 ] || fail "debs/PACKAGES.tsv lists no package"
[ "$(find "$bundle/debs" -name '*.deb' | wc -l)" = "$n" ] || fail "unlisted .deb files in debs/"
(cd "$bundle" && sha256sum --check --strict --quiet SHA256SUMS) || fail "SHA256SUMS"
dpkg -i --dry-run "$bundle"/debs/*.deb > "$work/dpkg.log" 2>&1 \
  || { cat "$work/dpkg.log" >&2; fail "dpkg -i --dry-run refuses the bundled packages"; }
echo "check_bundle: $n Debian packages present, checksummed, accepted by dpkg --dry-run" >&2

# --- 3. offline install and self-test in an empty network namespace --------------------------
# Where the CI container may not create namespaces (no CAP_SYS_ADMIN), the same install
# runs without one: pip is still held to --no-index and the bundled wheels (install.sh), so
# a missing wheel still fails; the log says which of the two proofs ran.
isolate=(unshare -n --)
if ! unshare -n -- true 2>/dev/null; then
  echo "check_bundle: WARNING: unshare -n is not permitted here; installing without a" \
       "network namespace (pip --no-index from the bundled wheels only)" >&2
  isolate=()
fi
"${isolate[@]}" bash -c '
  set -e
  if [ "$3" = isolated ] && python3 -c "import socket; socket.create_connection((\"1.1.1.1\", 53), timeout=2)" \
      2>/dev/null; then echo "check_bundle: the namespace has network" >&2; exit 99; fi
  exec bash "$1/install.sh" --no-debs --prefix "$2/venv" --validation-out "$2/record"
' _ "$bundle" "$work" "${isolate:+isolated}" || fail "offline install or self-test failed (exit $?)"
grep -q '"verdict": "PASS"' "$work/record/validation.json" || fail "validation record not PASS"
echo "check_bundle: offline install and triage selftest passed" \
     "${isolate:+inside unshare -n}" >&2
