# Sourced by the image-building scripts beside it.
# gen SEED BYTES FILE: deterministic pseudo-random (incompressible) content, the same on
# every machine: SHA-256 of SEED and a counter, concatenated and cut to BYTES.
gen() {
    python3 -c 'import hashlib,sys
seed, n = sys.argv[1].encode(), int(sys.argv[2])
out = bytearray(); i = 0
while len(out) < n:
    out += hashlib.sha256(seed + i.to_bytes(8, "big")).digest(); i += 1
sys.stdout.buffer.write(bytes(out[:n]))' "$1" "$2" > "$3"
}
