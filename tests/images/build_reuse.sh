#!/bin/sh
# Build a FAT16 image in which a deleted file's clusters were reused by a newer file, for
# the block-ownership check (tests/images/test_consistency.py), into directory $1.
#
#   tests/images/build_reuse.sh OUTDIR
#
# Debian packages: dosfstools (mkfs.fat), mtools (mmd, mcopy, mdel), e2fsprogs (mkfs.ext2,
# debugfs). Content is generated
# here. OLD.BIN (20000 bytes, 40 one-sector clusters) is written into a sub-directory
# first and deleted; NEW.BIN (8000 bytes, 16 clusters) is then copied into the root, and
# mtools gives it the first free clusters: the first 16 of OLD.BIN's. KEEP.BIN, copied
# after OLD.BIN and never deleted, must not be reported.
set -eu
# shellcheck source=gen.sh
. "$(cd "$(dirname "$0")" && pwd)/gen.sh"

out=${1:?usage: build_reuse.sh OUTDIR}
for tool in mkfs.fat:dosfstools mcopy:mtools mdel:mtools mmd:mtools mkfs.ext2:e2fsprogs \
        debugfs:e2fsprogs; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || {
        echo "build_reuse.sh: ${tool%%:*} not found: apt-get install ${tool#*:}" >&2
        exit 2
    }
done
mkdir -p "$out"
cd "$out"
export SOURCE_DATE_EPOCH=1700000000 MTOOLS_SKIP_CHECK=1
gen old 20000 old.bin
gen keep 3000 keep.bin
gen new 8000 new.bin
rm -f reuse.raw
mkfs.fat -C -F 16 -s 1 -n REUSE -i 87654321 reuse.raw 8192 >/dev/null
mmd -i reuse.raw ::/DIR
mcopy -i reuse.raw -m old.bin ::/DIR/OLD.BIN
mcopy -i reuse.raw -m keep.bin ::/KEEP.BIN
mdel -i reuse.raw ::/DIR/OLD.BIN
mcopy -i reuse.raw -m new.bin ::/NEW.BIN

# ext2 (block pointers survive deletion): OLD.BIN deleted by debugfs, NEW.BIN written
# after it takes the freed blocks.
rm -rf tree && mkdir -p tree/dir && cp old.bin tree/dir/OLD.BIN && cp keep.bin tree/KEEP.BIN
rm -f reuse-ext2.raw && truncate -s 4M reuse-ext2.raw
E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext2 -q -F -b 1024 -d tree reuse-ext2.raw
debugfs -w -R "rm dir/OLD.BIN" reuse-ext2.raw >/dev/null 2>&1
# OLD.BIN's inode is held in the bitmap while NEW.BIN is written, so that only its blocks
# are reused (its inode and block pointers survive), then freed again.
ino=$(debugfs -R "ls -l dir" reuse-ext2.raw 2>/dev/null | awk '/OLD.BIN/ {print $1}')
[ -n "$ino" ] || ino=$(debugfs -R "lsdel" reuse-ext2.raw 2>/dev/null | awk '$1 ~ /^[0-9]+$/ {print $1; exit}')
debugfs -w -R "seti <$ino>" reuse-ext2.raw >/dev/null 2>&1
debugfs -w -R "write new.bin NEW.BIN" reuse-ext2.raw >/dev/null 2>&1
debugfs -w -R "freei <$ino>" reuse-ext2.raw >/dev/null 2>&1
echo "built in $out"
