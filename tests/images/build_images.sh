#!/bin/sh
# Build the small disk images the image-source tests use, into directory $1.
#
#   tests/images/build_images.sh OUTDIR
#
# Debian packages: e2fsprogs (mkfs.ext4, debugfs), dosfstools (mkfs.fat), mtools (mcopy,
# mdel), ewf-tools (ewfacquire), fdisk (sfdisk), coreutils. Content is benign and generated
# here (no evidence, no pictures). OUTDIR/expected.tsv lists every file the tests must find:
#   volume<TAB>path<TAB>size<TAB>sha256<TAB>deleted(0/1)
# with hashes computed by sha256sum from the source tree (an independent oracle).
set -eu
# shellcheck source=gen.sh
. "$(cd "$(dirname "$0")" && pwd)/gen.sh"

out=${1:?usage: build_images.sh OUTDIR}
need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "build_images.sh: $1 not found: apt-get install $2" >&2
        exit 2
    }
}
need mkfs.ext4 e2fsprogs
need debugfs e2fsprogs
need mkfs.fat dosfstools
need mcopy mtools
need mdel mtools
need ewfacquire ewf-tools
need sfdisk fdisk
need sha256sum coreutils

mkdir -p "$out"
cd "$out"
export SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000 MTOOLS_SKIP_CHECK=1

# --- the tree -------------------------------------------------------------------------
rm -rf tree && mkdir -p tree/photos/2023 tree/docs "tree/odd names"
printf '\377\330\377\340\000\020JFIF\000' > tree/photos/2023/img_0001.jpg
gen jpeg1 300000 /dev/stdout >> tree/photos/2023/img_0001.jpg
printf '\377\331' >> tree/photos/2023/img_0001.jpg
gen big 2500000 tree/docs/big.bin
printf 'hello, world\n' > tree/docs/readme.txt
: > tree/docs/empty.txt
printf 'x' > "tree/odd names/one byte"
printf 'tab\tname' > "tree/odd names/tab	in name.txt"
gen deleted 70000 tree/deleted.bin
gen wiped 9000 tree/wiped.bin

# --- ext4 with one file deleted by debugfs -------------------------------------------------
rm -f ext4.raw && truncate -s 16M ext4.raw
mkfs.ext4 -q -F -b 1024 -L triage-ext4 -U 2f3c5a16-1111-4a4a-9c9c-000000000001 \
    -E root_owner=0:0,hash_seed=2f3c5a16-1111-4a4a-9c9c-000000000002 -d tree ext4.raw
debugfs -w -R "rm deleted.bin" ext4.raw >/dev/null 2>&1
# wiped.bin: deleted the way the ext4 kernel driver does it: the inode keeps its size but
# the extent header is left with zero entries (no data runs). 0xf30a = extent magic.
debugfs -w -R "rm wiped.bin" ext4.raw >/dev/null 2>&1
debugfs -w -R "sif <23> block[0] 0xf30a" ext4.raw >/dev/null 2>&1
debugfs -w -R "sif <23> size 9000" ext4.raw >/dev/null 2>&1

# --- FAT16 with one file deleted by mdel -----------------------------------------------
rm -f fat.raw
mkfs.fat -C -F 16 -s 1 -n TRIAGEFAT -i 12345678 fat.raw 8192 >/dev/null
mmd -i fat.raw ::/photos ::/docs
mcopy -i fat.raw -m tree/photos/2023/img_0001.jpg ::/photos/IMG_0001.JPG
mcopy -i fat.raw -m tree/docs/readme.txt ::/docs/README.TXT
mcopy -i fat.raw -m tree/deleted.bin ::/DELETED.BIN
mdel -i fat.raw ::/DELETED.BIN

# --- a GPT disk holding both file systems ----------------------------------------------
rm -f gpt.raw && truncate -s 28M gpt.raw
printf 'label: gpt\nunit: sectors\nstart=2048, size=32768, type=L\nstart=34816, size=16384, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' \
    | sfdisk -q --no-reread --no-tell-kernel gpt.raw >/dev/null
dd if=ext4.raw of=gpt.raw bs=512 seek=2048 conv=notrunc status=none
dd if=fat.raw of=gpt.raw bs=512 seek=34816 conv=notrunc status=none

# --- E01 of the ext4 image: one segment, and split into 1 MiB segments --------------
rm -f ext4.E01 ext4split.E0*
ewfacquire -u -q -t ext4 -c deflate:fast -d sha1 -C case-7 -D "triage test" -e tester \
    -E ev-1 -N "built by build_images.sh" ext4.raw >/dev/null
ewfacquire -u -q -t ext4split -c none -S 1048576 -d sha1 ext4.raw >/dev/null

# --- expected listing ---------------------------------------------------------------------
h() { sha256sum "$1" | cut -d' ' -f1; }
s() { wc -c < "$1" | tr -d ' '; }
{
    for f in photos/2023/img_0001.jpg docs/big.bin docs/readme.txt docs/empty.txt \
             "odd names/one byte" "odd names/tab	in name.txt"; do
        printf 'ext4\t%s\t%s\t%s\t0\n' "$f" "$(s "tree/$f")" "$(h "tree/$f")"
    done
    printf 'ext4\tdeleted.bin\t%s\t%s\t1\n' "$(s tree/deleted.bin)" "$(h tree/deleted.bin)"
    printf 'ext4\twiped.bin\t%s\t-\t1\n' "$(s tree/wiped.bin)"
    printf 'fat\tphotos/IMG_0001.JPG\t%s\t%s\t0\n' "$(s tree/photos/2023/img_0001.jpg)" \
        "$(h tree/photos/2023/img_0001.jpg)"
    printf 'fat\tdocs/README.TXT\t%s\t%s\t0\n' "$(s tree/docs/readme.txt)" "$(h tree/docs/readme.txt)"
    printf 'fat\t_ELETED.BIN\t%s\t%s\t1\n' "$(s tree/deleted.bin)" "$(h tree/deleted.bin)"
} > expected.tsv
echo "built in $out"
