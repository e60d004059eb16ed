#!/bin/sh
# Build the small disk images of the carving tests (issue 17) into directory $1.
#
#   tests/carving/build_carve.sh OUTDIR
#
# Debian packages: dosfstools (mkfs.fat), mtools (mcopy, mdel), e2fsprogs (mke2fs, debugfs),
# fdisk (sfdisk), ntfs-3g (mkntfs),
# ffmpeg, libtiff-tools (tiffcp), coreutils. Pictures and videos are generated here
# (ffmpeg test patterns: benign). OUTDIR/expected.tsv lists what carving must
# recover:  image<TAB>name<TAB>md5 (from md5sum, an independent oracle).
set -eu
out=${1:?usage: build_carve.sh OUTDIR}
for tool in mkfs.fat mcopy mdel mke2fs debugfs ffmpeg md5sum dd sfdisk mkntfs tiffcp; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build_carve.sh: $tool not found" >&2; exit 2; }
done
mkdir -p "$out"
cd "$out"
export MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000
rm -rf media tree && mkdir -p media tree
pic() {  # pic SOURCE SIZE OUT [ffmpeg options]: one frame of an ffmpeg test source
    src=$1; size=$2; o=$3; shift 3
    case $src in *=*) src="$src:size=$size" ;; *) src="$src=size=$size" ;; esac
    ffmpeg -nostdin -loglevel error -y -f lavfi -i "$src" -frames:v 1 \
        -fflags +bitexact -flags +bitexact -map_metadata -1 "$@" "$o"
}
pic mandelbrot 240x180 media/p1.jpg -q:v 3
pic testsrc2 160x120 media/p2.png
pic smptebars 96x64 media/p3.gif
pic rgbtestsrc 64x48 media/p4.bmp
pic "cellauto=seed=5:rule=30" 200x150 media/p5.jpg -q:v 2
pic "life=seed=6:mold=10" 48x32 media/tiny.jpg -q:v 5 -pix_fmt yuvj420p
ff() { ffmpeg -nostdin -loglevel error -y -f lavfi -i "testsrc=duration=1:size=96x64:rate=5" \
       -pix_fmt yuv420p -fflags +bitexact -flags +bitexact -map_metadata -1 "$@"; }
ff -c:v mpeg4 media/v1.mp4
ff -c:v mjpeg media/v2.avi
ff -c:v mpeg4 media/v3.mkv
head -c 20000 /dev/zero | tr '\0' 'k' > media/keep.txt
printf 'small file whose slack holds a picture\n' > media/small.txt
md5() { md5sum "$1" | cut -d' ' -f1; }
: > expected.tsv

# --- FAT32: pictures and videos copied, some deleted (contiguous clusters) ---------------
fat() {
    rm -f "$1" && truncate -s 34M "$1"
    mkfs.fat -F 32 -s 1 -S 512 -i 12345678 "$1" >/dev/null
}
fat fat32.raw
for f in keep.txt p1.jpg p2.png v1.mp4 p3.gif p4.bmp v2.avi p5.jpg v3.mkv; do
    mcopy -i fat32.raw "media/$f" "::$f"
done
for f in p1.jpg p2.png v1.mp4 p4.bmp v2.avi v3.mkv; do
    mdel -i fat32.raw "::$f"
    printf 'fat32.raw\t%s\t%s\n' "$f" "$(md5 "media/$f")" >> expected.tsv
done

# --- FAT32 re-formatted: every file's clusters are unallocated -------------------------
fat fat32re.raw
for f in p1.jpg p2.png p3.gif v1.mp4 p5.jpg; do
    mcopy -i fat32re.raw "media/$f" "::$f"
    printf 'fat32re.raw\t%s\t%s\n' "$f" "$(md5 "media/$f")" >> expected.tsv
done
mkfs.fat -F 32 -s 1 -S 512 -i 87654321 fat32re.raw >/dev/null

# --- ext4 (4 KiB blocks): deleted pictures; a picture in a file's slack ----------------
cp media/keep.txt media/small.txt media/p1.jpg media/p2.png media/v1.mp4 media/p5.jpg tree/
rm -f ext4.raw && truncate -s 8M ext4.raw
mke2fs -q -t ext4 -b 4096 -E nodiscard -O ^has_journal -U 2f3c5a16-1111-4a4a-9c9c-00000000c017 \
    -d tree ext4.raw
for f in p1.jpg v1.mp4; do
    debugfs -w -R "rm $f" ext4.raw >/dev/null 2>&1
    printf 'ext4.raw\t%s\t%s\n' "$f" "$(md5 "media/$f")" >> expected.tsv
done
# tiny.jpg (under 3 KiB) written 512 bytes into small.txt's only block: its slack.
blk=$(debugfs -R "bmap small.txt 0" ext4.raw 2>/dev/null)
dd if=media/tiny.jpg of=ext4.raw bs=512 seek=$((blk * 8 + 1)) conv=notrunc status=none
printf 'ext4.raw\tslack:tiny.jpg\t%s\n' "$(md5 media/tiny.jpg)" >> expected.tsv

# --- ext4 re-formatted without discarding ------------------------------------------
rm -f ext4re.raw && truncate -s 8M ext4re.raw
mke2fs -q -t ext4 -b 4096 -E nodiscard -O ^has_journal -d tree ext4re.raw
mke2fs -q -F -t ext4 -b 4096 -E nodiscard -O ^has_journal ext4re.raw
for f in p1.jpg p2.png v1.mp4 p5.jpg; do
    printf 'ext4re.raw\t%s\t%s\n' "$f" "$(md5 "media/$f")" >> expected.tsv
done

# --- hostile unallocated space on FAT32: random data, lying headers, a JPEG that never ends
fat hostile.raw
mcopy -i hostile.raw media/keep.txt ::keep.txt
data=$((32 + 2 * 536))   # first data sector: reserved + 2 FATs (see fsstat)
at=$((data + 200))
head -c 1048576 /dev/urandom | dd of=hostile.raw bs=512 seek=$at conv=notrunc status=none
# A JPEG whose header parses through SOS, then random bytes without 0xFF: never ends.
{ head -c 623 media/p5.jpg; head -c 2000000 /dev/urandom | tr -d '\377'; } |
    dd of=hostile.raw bs=512 seek=$((at + 2048)) conv=notrunc status=none
# A BMP whose header claims 60 MB, a PNG whose first chunk claims 2 GB.
printf 'BM\000\000\200\003\000\000\000\000\066\000\000\000\050\000\000\000' |
    dd of=hostile.raw bs=512 seek=$((at + 8000)) conv=notrunc status=none
{ head -c 33 media/p2.png; printf '\177\377\377\377IDAT'; } |
    dd of=hostile.raw bs=512 seek=$((at + 8001)) conv=notrunc status=none
# Many JPEG starts: one per sector for 4000 sectors (bounds must hold).
i=0; while [ $i -lt 40 ]; do head -c 623 media/p5.jpg; head -c $((512 * 100 - 623)) /dev/zero; i=$((i + 1)); done |
    dd of=hostile.raw bs=512 seek=$((at + 9000)) conv=notrunc status=none
# A JPEG cut short and closed with an EOI: its end parses, strict decoding refuses it.
{ head -c 700 media/p5.jpg; printf '\377\331'; } |
    dd of=hostile.raw bs=512 seek=$((at + 30000)) conv=notrunc status=none
# and one intact picture after all that
dd if=media/p3.gif of=hostile.raw bs=512 seek=$((at + 20000)) conv=notrunc status=none
printf 'hostile.raw\tp3.gif\t%s\n' "$(md5 media/p3.gif)" >> expected.tsv

# --- ext4: a known file deleted, then the second half of its blocks overwritten ------------
rm -rf known fragtree && mkdir -p known fragtree
head -c 131072 /dev/urandom > known/k.bin
head -c 40000 /dev/urandom > known/other.bin
cp media/keep.txt known/k.bin fragtree/
rm -f frag.raw && truncate -s 4M frag.raw
mke2fs -q -t ext4 -b 4096 -E nodiscard -O ^has_journal -d fragtree frag.raw
# Logical blocks 16-31 (the second half), wherever the allocator put them.
blocks=""
i=16; while [ $i -lt 32 ]; do
    blocks="$blocks $(debugfs -R "bmap k.bin $i" frag.raw 2>/dev/null)"; i=$((i + 1))
done
debugfs -w -R "rm k.bin" frag.raw >/dev/null 2>&1
for b in $blocks; do
    head -c 4096 /dev/urandom | dd of=frag.raw bs=4096 seek="$b" conv=notrunc status=none
done

# --- MBR disk: an unformatted partition and unpartitioned space, a picture in each -------
rm -f mbr.raw && truncate -s 8M mbr.raw
printf 'start=2048, size=8192, type=83\n' | sfdisk -q mbr.raw >/dev/null
dd if=media/p3.gif of=mbr.raw bs=512 seek=$((2048 + 100)) conv=notrunc status=none
dd if=media/p1.jpg of=mbr.raw bs=512 seek=12288 conv=notrunc status=none
printf 'mbr.raw\tp1/$Unallocated:p3.gif\t%s\n' "$(md5 media/p3.gif)" >> expected.tsv
printf 'mbr.raw\t$Unpartitioned:p1.jpg\t%s\n' "$(md5 media/p1.jpg)" >> expected.tsv

# --- NTFS (4 KiB clusters), for the unallocated-blocks check against blkls ---------------
rm -f ntfs.raw && truncate -s 8M ntfs.raw
mkntfs -q -F -f -s 512 -c 4096 ntfs.raw >/dev/null 2>&1

# --- TIFF (FAT32, deleted): strips and tiles, both byte orders, several compressions, two
# pages; written by ffmpeg's own TIFF encoder and by libtiff's tiffcp ----------------------
tif() {  # tif SOURCE COMPRESSION OUT: one RGB frame, ffmpeg's TIFF encoder (little-endian)
    ffmpeg -nostdin -loglevel error -y -f lavfi -i "$1" -frames:v 1 -pix_fmt rgb24 \
        -fflags +bitexact -flags +bitexact -map_metadata -1 -c:v tiff \
        -compression_algo "$2" "$3"
}
tif testsrc2=size=96x60 raw media/t1.tif
tif mandelbrot=size=120x90 lzw media/t2.tif
tif smptebars=size=64x48 deflate media/t3.tif
tif rgbtestsrc=size=80x40 packbits media/t4.tif
tiffcp -t -w 16 -l 16 -B media/t2.tif media/t5.tif     # tiles, big-endian, LZW
tiffcp -r 3 -c zip media/t1.tif media/t6.tif           # 20 strips, Deflate
tiffcp media/t1.tif media/t3.tif media/t7.tif          # two pages (an IFD chain)
tiffcp -c jpeg -r 16 media/t1.tif media/t8.tif         # JPEG strips, JPEGTables
fat tiff.raw
mcopy -i tiff.raw media/keep.txt ::keep.txt
for f in t1 t2 t3 t4 t5 t6 t7 t8; do
    mcopy -i tiff.raw "media/$f.tif" "::$f.tif"
done
for f in t1 t2 t3 t4 t5 t6 t7 t8; do
    mdel -i tiff.raw "::$f.tif"
    printf 'tiff.raw\t%s\t%s\n' "$f.tif" "$(md5 "media/$f.tif")" >> expected.tsv
done
# Lying TIFF headers in the unallocated space after them, one per sector (little-endian):
# none is carved, one is a partial candidate.
b() { for v; do printf "\\$(printf %03o "$v")"; done; }              # bytes
w() { for v; do b $((v & 255)) $((v >> 8 & 255)); done; }             # 16-bit
l() { for v; do w $((v & 65535)) $((v >> 16 & 65535)); done; }        # 32-bit
ent() { w "$1" "$2"; l "$3" "$4"; }                  # IFD entry: tag type count value
pic4() { ent 256 3 1 1; ent 257 3 1 1; }             # width 1, length 1
hostile() {  # hostile SECTOR: the bytes on stdin at that sector of the data area
    dd of=tiff.raw bs=512 seek=$((data + 40000 + $1)) conv=notrunc status=none
}
{ printf 'II*\000'; l 2147483632; } | hostile 0                    # IFD past the data
{ printf 'II*\000'; l 8; w 4; pic4; ent 273 4 1 100; ent 279 4 1 10; l 8; } |
    hostile 1                                                          # IFD loop
{ printf 'II*\000'; l 8; w 5; pic4; ent 270 2 4294967295 200; ent 273 4 1 100
  ent 279 4 1 10; l 0; } | hostile 2                                   # huge ASCII count
{ printf 'II*\000'; l 8; w 4; pic4; ent 273 4 2147483647 200
  ent 279 4 2147483647 300; l 0; } | hostile 3                         # huge strip count
{ printf 'II*\000'; l 8; w 65535; } | hostile 4                       # 65535 entries
{ printf 'II*\000'; l 8; w 4; pic4; ent 273 16 1 100; ent 279 4 1 10; l 0; } |
    hostile 5                                                          # unknown type
{ printf 'II*\000'; l 0; } | hostile 6                                # no IFD
{ printf 'II*\000'; l 8; w 4; pic4; ent 273 4 1 1073741824; ent 279 4 1 1000; l 0; } |
    hostile 7                                   # a strip 1 GiB on: a partial candidate
