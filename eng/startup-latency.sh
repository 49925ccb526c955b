#!/usr/bin/env bash
# Startup and one-image predict latency of alexnet-fashion, NativeAOT against JIT (framework-dependent), each run in a
# process of its own, the two alternating, N runs each (default 15) after one warm-up run of each; prints min, median
# and max wall-clock milliseconds. Usage: bash eng/startup-latency.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== Publishing (NativeAOT and JIT)" >&2
dotnet publish examples/FashionMnist/FashionMnist.csproj -c Release -r linux-x64 -p:AlexNetNativeAot=true -o "$work/aot" -nologo -v quiet >&2
dotnet publish examples/FashionMnist/FashionMnist.csproj -c Release -o "$work/jit" -nologo -v quiet >&2

echo "== A checkpoint to predict with (one epoch on the embedded subset)" >&2
"$work/aot/alexnet-fashion" train --data embedded --epochs 1 --test-views 1 -o "$work/run" >/dev/null
checkpoint="$work/run/best.safetensors"
python3 - "$work/shirt.png" <<'PY'
import struct, sys, zlib
# A 64x48 grey PNG, written without any image library.
width, height = 64, 48
raw = b"".join(b"\x00" + bytes([128]) * width for _ in range(height))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY

time_ms() { local start end; start=$(date +%s%N); "$@" >/dev/null; end=$(date +%s%N); echo $(( (end - start) / 1000000 )); }
aot=("$work/aot/alexnet-fashion" predict "$work/shirt.png" --checkpoint "$checkpoint")
jit=(dotnet "$work/jit/alexnet-fashion.dll" predict "$work/shirt.png" --checkpoint "$checkpoint")
time_ms "${aot[@]}" >/dev/null; time_ms "${jit[@]}" >/dev/null   # warm the file cache
: > "$work/aot.ms"; : > "$work/jit.ms"
for ((i = 0; i < runs; i++)); do
  if ((i % 2 == 0)); then time_ms "${aot[@]}" >> "$work/aot.ms"; time_ms "${jit[@]}" >> "$work/jit.ms"
  else time_ms "${jit[@]}" >> "$work/jit.ms"; time_ms "${aot[@]}" >> "$work/aot.ms"; fi
done
python3 - "$work/aot.ms" "$work/jit.ms" <<'PY'
import statistics, sys
rows = {}
for name, path in (("NativeAOT", sys.argv[1]), ("JIT", sys.argv[2])):
    values = [int(line) for line in open(path)]
    rows[name] = (min(values), statistics.median(values), max(values), len(values))
for name, (lo, median, hi, n) in rows.items():
    print(f"{name:9}  predict one image, whole process: min {lo} ms, median {median:.0f} ms, max {hi} ms ({n} runs)")
print(f"JIT / NativeAOT median: {rows['JIT'][1] / rows['NativeAOT'][1]:.1f}x")
PY
