#!/bin/sh
# Build the tiny disk image `triage selftest` reads (package data, committed):
#
#   scripts/build_selftest_image.sh [OUTDIR]     (default: triage/selftest/data)
#
# writes OUTDIR/disk.img.gz (gzip -n of a raw disk: an MBR partition table holding a FAT12
# partition and an ext2 partition, each with a few files and one deleted file) and
# OUTDIR/disk-expected.tsv, the files a scan must find:
#   path<TAB>size<TAB>sha256<TAB>deleted(0/1)
# with sizes and digests computed by wc and sha256sum from the source files (an
# independent oracle, not triage). Content is benign and generated here: short text, a
# deterministic pseudo-random block, and one synthetic 64x64 grey gradient PNG (Pillow).
#
# Debian packages: e2fsprogs (mkfs.ext2, debugfs), dosfstools (mkfs.fat), mtools (mcopy,
# mdel), fdisk (sfdisk), coreutils, gzip; Python 3 with Pillow (PYTHON, default python3).
# Re-running it gives an image with the same files, sizes and digests (ids and most times
# are fixed; a few inode and label times are the current time, so the bytes differ): the
# committed image is the reference, and tests/test_selftest.py checks it with fls/icat.
# When OUTDIR holds a reference.json (the package data folder), scripts/selftest_reference.py
# then records the new image's full scan listing in it (disk.scan_entries; PYTHON must be
# able to import triage): review the diff before committing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../triage/selftest/data}
py=${PYTHON:-python3}
for tool in mkfs.ext2 debugfs mkfs.fat mcopy mdel sfdisk sha256sum gzip; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "build_selftest_image.sh: $tool not found (bash scripts/bootstrap.sh)" >&2
        exit 2
    }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000 MTOOLS_SKIP_CHECK=1 TZ=UTC

# --- the files ----------------------------------------------------------------------------
mkdir -p tree/docs tree/pictures
printf 'triage selftest: known-answer disk image\n' > tree/docs/readme.txt
printf '' > tree/docs/empty.txt
"$py" - <<'EOF'
import hashlib
from PIL import Image

# 1024 bytes of SHA-256 output chained from a fixed seed: the same on every machine.
block, h = b"", b"triage-selftest"
while len(block) < 1024:
    h = hashlib.sha256(h).digest()
    block += h
open("tree/random.bin", "wb").write(block[:1024])
open("tree/deleted.bin", "wb").write(block[:1000][::-1])
# A synthetic grey gradient (no evidence): Pillow's radial gradient reduced to 64x64.
Image.radial_gradient("L").resize((64, 64), Image.Resampling.BILINEAR).save(
    "tree/pictures/gradient.png", optimize=False, compress_level=9)
EOF
# Fixed times (mcopy -m and mkfs.ext2 -d keep the source files' times): the same bytes on
# every run.
find tree -exec touch -h -d @1700000000 {} +

# --- FAT12, 128 KiB, one file deleted by mdel -----------------------------------------------
mkfs.fat -C -F 12 -s 1 -n SELFTEST -i 5e1f7e57 fat.raw 128 >/dev/null
# (files in the root folder only: mmd stamps a new folder with the current time)
mcopy -i fat.raw -m tree/docs/readme.txt ::/README.TXT
mcopy -i fat.raw -m tree/pictures/gradient.png ::/GRADIENT.PNG
mcopy -i fat.raw -m tree/deleted.bin ::/DELETED.BIN
mdel -i fat.raw ::/DELETED.BIN

# --- ext2, 256 KiB (1 KiB blocks), one file deleted by debugfs ------------------------------
truncate -s 256K ext2.raw
mkfs.ext2 -q -F -b 1024 -N 32 -m 0 -L selftest -U 5e1f7e57-0000-4000-8000-000000000001 \
    -E root_owner=0:0,hash_seed=5e1f7e57-0000-4000-8000-000000000002 -d tree ext2.raw
debugfs -w -R "rm deleted.bin" ext2.raw >/dev/null 2>&1

# --- an MBR disk holding both: p1 FAT12 at sector 64, p2 ext2 after it -------------------------
truncate -s 448K disk.img
printf 'label: dos\nlabel-id: 0x5e1f7e57\nunit: sectors\nstart=64, size=256, type=1\nstart=320, size=512, type=83\n' \
    | sfdisk -q --no-reread --no-tell-kernel disk.img >/dev/null
dd if=fat.raw of=disk.img bs=512 seek=64 conv=notrunc status=none
dd if=ext2.raw of=disk.img bs=512 seek=320 conv=notrunc status=none
gzip -n -9 -c disk.img > "$out/disk.img.gz"

# --- expected listing (wc and sha256sum of the source files) --------------------------------
h() { sha256sum "$1" | cut -d' ' -f1; }
s() { wc -c < "$1" | tr -d ' '; }
{
    printf 'p1/README.TXT\t%s\t%s\t0\n' "$(s tree/docs/readme.txt)" "$(h tree/docs/readme.txt)"
    printf 'p1/GRADIENT.PNG\t%s\t%s\t0\n' "$(s tree/pictures/gradient.png)" \
        "$(h tree/pictures/gradient.png)"
    printf 'p1/_ELETED.BIN\t%s\t%s\t1\n' "$(s tree/deleted.bin)" "$(h tree/deleted.bin)"
    for f in docs/readme.txt docs/empty.txt pictures/gradient.png random.bin; do
        printf 'p2/%s\t%s\t%s\t0\n' "$f" "$(s "tree/$f")" "$(h "tree/$f")"
    done
    printf 'p2/deleted.bin\t%s\t%s\t1\n' "$(s tree/deleted.bin)" "$(h tree/deleted.bin)"
} > "$out/disk-expected.tsv"
echo "build_selftest_image.sh: wrote $out/disk.img.gz ($(s "$out/disk.img.gz") bytes) and" \
     "$out/disk-expected.tsv" >&2
if [ -f "$out/reference.json" ]; then
    "$py" "$here/selftest_reference.py" "$out"
fi
