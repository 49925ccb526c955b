#!/usr/bin/env bash
# The GPU check of the CUDA backend, packed here and run on a GPU machine (docs/cuda.md, "The GPU check").
#
#   bash eng/gpu-check.sh pack [DIR]   here (.NET SDK, NVRTC 11.8 from Debian): builds DIR (default artifacts/gpu-check,
#                                      git-ignored), everything the run needs: the NativeAOT check program and main job
#                                      (x86-64-v3), NVRTC 11.8 (xz), and a kernel cache holding every sm_90 module the
#                                      run loads. Prints the command to run there, the folder to carry, the time limit.
#   bash eng/gpu-check.sh run [DIR]    there (NVIDIA driver, python3 with torch; no .NET, nothing compiled): PyTorch's
#                                      reference first, then the check, then the main job training on the GPU (also
#                                      --distributed over NCCL, one rank, with the machine's libnccl.so.2). Writes
#                                      the full log and results.json to $OUT (when set, else a temporary folder) and
#                                      prints a summary. Stops itself within GPU_CHECK_TOTAL_S seconds (420).
#
# Each part of run has its own time limit (seconds; GPU_CHECK_LIMITS="torch=100,check=170,..." overrides any), runs
# whatever the parts before it did, and a part that fails or overruns is recorded and the next one still runs.
# For the CUDA emulator the tests also set GPU_CHECK_PARTS (which parts), GPU_CHECK_ARGS (options of the check)
# and GPU_CHECK_TRAIN_ARGS (options of the main job's train runs).
set -uo pipefail
script=$(realpath "$0")
cd "$(dirname "$0")/.."

pack_dir=$(realpath -m "${2:-artifacts/gpu-check}")
# Kept in step with the run's total below: what `pack` tells the caller to allow for the whole command.
total_s=${GPU_CHECK_TOTAL_S:-420}
command_limit_s=$((total_s + 60))

pack() {
  set -e
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  rm -rf "$pack_dir"
  mkdir -p "$pack_dir/bin" "$pack_dir/nvrtc"

  echo "== Publishing the check program and the main job (NativeAOT, x86-64-v3)"
  dotnet publish eng/GpuCheck/GpuCheck.csproj -c Release -r linux-x64 -p:AlexNetNativeAot=true -o "$work/gpucheck" -nologo -v quiet
  dotnet publish examples/FashionMnist/FashionMnist.csproj -c Release -r linux-x64 -p:AlexNetNativeAot=true -o "$work/fashion" -nologo -v quiet
  cp "$work/gpucheck/GpuCheck" "$pack_dir/bin/"
  cp "$work/fashion/alexnet-fashion" "$work/fashion"/*.so "$pack_dir/bin/"

  echo "== NVRTC 11.8 (Debian's libnvrtc11.2 and libnvrtc-builtins11.8)"
  local nvrtc builtins
  nvrtc=$(readlink -f "$(ldconfig -p | awk '/libnvrtc\.so\.11\.2 .*x86-64/ { print $NF; exit }')")
  builtins=$(readlink -f "$(ldconfig -p | awk '/libnvrtc-builtins\.so\.11\.8 .*x86-64/ { print $NF; exit }')")
  [ -f "$nvrtc" ] && [ -f "$builtins" ] || { echo "NVRTC 11.8 is not installed: apt-get install libnvrtc11.2 libnvrtc-builtins11.8 (Debian non-free; see .ci/run)." >&2; return 1; }
  cp "$nvrtc" "$pack_dir/nvrtc/libnvrtc.so.11.2"
  cp "$builtins" "$pack_dir/nvrtc/libnvrtc-builtins.so.11.8"

  echo "== Kernel cache: every sm_90 module of the run, compiled by the packed program with the packed NVRTC"
  ALEXNET_NVRTC_PATH="$pack_dir/nvrtc/libnvrtc.so.11.2" LD_LIBRARY_PATH="$pack_dir/nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$pack_dir/bin/GpuCheck" prebuild --cache="$pack_dir/kernel-cache" --arch=sm_90

  # The large files travel compressed; run unpacks every *.xz. xz, not gzip: NVRTC alone is 54 MB, 16 MB as xz.
  find "$pack_dir" -type f -size +1M -print0 | xargs -0 -r xz -6 -T2
  local bytes limit=$((48 * 1024 * 1024))
  bytes=$(du -sb "$pack_dir" | cut -f1)
  echo
  echo "Packed $pack_dir: $((bytes / 1024 / 1024)) MiB in $(find "$pack_dir" -type f | wc -l) files"
  [ "$bytes" -le "$limit" ] || { echo "The pack is larger than 48 MiB." >&2; return 1; }
  echo
  echo "On the GPU machine, from the repository root of a copy of this working tree that includes $pack_dir:"
  echo "  bash eng/gpu-check.sh run"
  echo "Carry: $pack_dir (git-ignored). Give the command a time limit of $command_limit_s s: it stops itself after $total_s s."
  echo "What comes back: \$OUT/results.json (every figure) and \$OUT/gpu-check.log (the whole output); see docs/cuda.md."
}

run() {
  local start out work log
  start=$(date +%s)
  out=${OUT:-$(mktemp -d)}
  mkdir -p "$out"
  work=$(mktemp -d)
  log="$out/gpu-check.log"
  : > "$log"
  declare -A limit=([unpack]=40 [export]=40 [torch]=100 [check]=170 [train-fashionnet]=50 [train-alexnet]=80 [train-fashionnet-cpu]=60
    [train-distributed-nccl]=40)
  local pair
  for pair in ${GPU_CHECK_LIMITS//,/ }; do limit[${pair%%=*}]=${pair#*=}; done
  local parts=${GPU_CHECK_PARTS:-unpack,export,torch,check,train-fashionnet,train-distributed-nccl,train-alexnet,train-fashionnet-cpu}
  local status_file="$work/parts.tsv"
  : > "$status_file"

  # Runs one part with its own limit, never past the total; its output goes to the log, one line here.
  part() {
    local name=$1; shift
    if [[ ",$parts," != *",$name,"* ]]; then printf '%s\tnot asked\t0\t0\n' "$name" >> "$status_file"; return 0; fi
    local left=$((start + total_s - $(date +%s)))
    local allowed=${limit[$name]:-60}
    [ "$allowed" -gt "$left" ] && allowed=$left
    if [ "$allowed" -lt 5 ]; then
      printf '%s\tskipped: the run reached its total of %s s\t0\t0\n' "$name" "$total_s" >> "$status_file"
      echo "-- $name: skipped (time)"
      return 0
    fi
    # "{deadline}" in the command: the seconds after which the program itself starts no new piece of work,
    # leaving a sixth of the part's time to finish the piece under way and write its results.
    local arguments=() argument
    for argument in "$@"; do arguments+=("${argument//\{deadline\}/$((allowed * 5 / 6))}"); done
    local t0 code
    t0=$(date +%s)
    { echo; echo "======== $name (limit ${allowed} s) ========"; } >> "$log"
    timeout --kill-after=5 "$allowed" "${arguments[@]}" >> "$log" 2>&1
    code=$?
    local took=$(($(date +%s) - t0))
    local state=ok
    [ "$code" -ne 0 ] && state="exit $code"
    [ "$code" -eq 124 ] || [ "$code" -eq 137 ] && state="stopped at its limit of ${allowed} s"
    printf '%s\t%s\t%s\t%s\n' "$name" "$state" "$took" "$allowed" >> "$status_file"
    echo "-- $name: $state (${took} s)"
  }

  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu,memory.total \
    --format=csv > "$work/nvidia-smi.csv" 2>&1 || echo "nvidia-smi not available" > "$work/nvidia-smi.csv"

  # The pack, unpacked into the work folder: programs, the carried NVRTC, and a writable copy of the kernel cache.
  part unpack bash "$script" _unpack "$pack_dir" "$work/pack"
  local bin="$work/pack/bin"
  # The carried NVRTC (the kernel cache is keyed by its version); NVRTC 13 of the machine only if it does not load.
  if [ -f "$work/pack/nvrtc/libnvrtc.so.11.2" ]; then
    export ALEXNET_NVRTC_PATH="$work/pack/nvrtc/libnvrtc.so.11.2"
    export LD_LIBRARY_PATH="$work/pack/nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  else
    echo "The carried NVRTC is missing; falling back to the machine's (every kernel compiles there)." | tee -a "$log"
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
      [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
    done
  fi
  export ALEXNET_KERNEL_CACHE="$work/pack/kernel-cache"

  part export "$bin/GpuCheck" export --dir="$work/check-inputs"
  part torch python3 eng/pytorch_reference.py --batch 128 --out "$work/torch.json" --check-dir "$work/check-inputs" \
    --deadline-s "{deadline}"
  # shellcheck disable=SC2086 # GPU_CHECK_ARGS is a list of options
  part check "$bin/GpuCheck" check --results="$work/check.json" --torch="$work/torch.json" \
    --deadline-s="{deadline}" ${GPU_CHECK_ARGS:-}
  # The main job as a user runs it, on the embedded subset: FashionNet, then the canonical AlexNet (upscaled), on
  # the GPU; then FashionNet on the CPU, the accuracy the GPU run should match.
  local train_args=${GPU_CHECK_TRAIN_ARGS:---data embedded --epochs 2 --test-views 1}
  # shellcheck disable=SC2086
  part train-fashionnet "$bin/alexnet-fashion" train --device cuda $train_args -o "$work/train-fashionnet"
  # The data-parallel GPU path over NCCL, one rank (no MPI: the NCCL id goes through a file), the same run as
  # train-fashionnet otherwise (right after it, so that the total leaves it time); the report compares the two (results.json: distributed_nccl).
  # shellcheck disable=SC2086
  part train-distributed-nccl bash "$script" _train-nccl "$bin" "$work/train-distributed-nccl" $train_args
  # shellcheck disable=SC2086
  part train-alexnet "$bin/alexnet-fashion" train --network alexnet --device cuda $train_args -o "$work/train-alexnet"
  # shellcheck disable=SC2086
  part train-fashionnet-cpu "$bin/alexnet-fashion" train --device cpu $train_args -o "$work/train-fashionnet-cpu"

  python3 eng/gpu_check_report.py --work "$work" --out "$out" --total-s "$total_s" --elapsed-s $(($(date +%s) - start))
  local code=$?
  rm -rf "$work"
  return "$code"
}

# The machine's libnccl.so.2: ALEXNET_NCCL_PATH when it names a file; else the NCCL wheel of python3's environment
# (nvidia-nccl-cu13 or -cu12, which put it in site-packages/nvidia/nccl/lib, also for CUDA 13 where the other libraries
# moved to nvidia/cu13/lib); else any libnccl.so.2 under a site-packages' nvidia folder; else the system's (ldconfig).
locate_nccl() {
  if [ -n "${ALEXNET_NCCL_PATH:-}" ] && [ -f "$ALEXNET_NCCL_PATH" ]; then echo "$ALEXNET_NCCL_PATH"; return 0; fi
  python3 - <<'PY' && return 0
import glob, os, site, sys
candidates = []
try:
    import nvidia.nccl as nccl  # a namespace package in the wheels: no __file__, its folders in __path__
    folders = list(getattr(nccl, "__path__", []))
    if getattr(nccl, "__file__", None):
        folders.append(os.path.dirname(nccl.__file__))
    candidates += [os.path.join(folder, "lib", "libnccl.so.2") for folder in folders]
except Exception:
    pass
roots = list(site.getsitepackages()) + [site.getusersitepackages()] + [p for p in sys.path if p.endswith("-packages")]
for root in dict.fromkeys(roots):
    candidates += sorted(glob.glob(os.path.join(root, "nvidia", "**", "libnccl.so.2*"), recursive=True))
for candidate in candidates:
    if os.path.isfile(candidate):
        print(os.path.realpath(candidate))
        sys.exit(0)
sys.exit(1)
PY
  local system
  system=$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 .*x86-64/ { print $NF; exit }')
  [ -n "$system" ] && { echo "$system"; return 0; }
  return 1
}

# The train-distributed-nccl part: BIN OUTPUT [train options...]. Exit 3 when the machine has no NCCL.
train_nccl() {
  local bin=$1 output=$2 nccl
  shift 2
  nccl=$(locate_nccl) || { echo "No libnccl.so.2: neither ALEXNET_NCCL_PATH, python3's nvidia.nccl (pip install nvidia-nccl-cu13), nor the system has one."; return 3; }
  echo "NCCL: $nccl"
  ALEXNET_NCCL_PATH="$nccl" "$bin/alexnet-fashion" train --distributed --device cuda "$@" -o "$output"
}

# Copies the pack to DEST and decompresses every *.xz there (Python's lzma: the GPU machine may have no xz).
unpack() {
  local from=$1 to=$2
  [ -d "$from/bin" ] || { echo "No $from: run 'bash eng/gpu-check.sh pack' on a machine with .NET and carry $from along."; return 2; }
  cp -r "$from" "$to" || return 1
  python3 - "$to" <<'PY' || return 1
import lzma, os, sys
for folder, _, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith(".xz"):
            path = os.path.join(folder, name)
            with lzma.open(path) as packed, open(path[:-3], "wb") as plain:
                while chunk := packed.read(1 << 20):
                    plain.write(chunk)
            os.remove(path)
PY
  chmod +x "$to/bin/GpuCheck" "$to/bin/alexnet-fashion" || return 1
  ls -la "$to/bin" "$to/nvrtc"
  # The NativeAOT programs need glibc 2.34 or newer (objdump -T shows GLIBC_2.34 as their newest symbol version).
  ldd --version 2>&1 | head -1
  echo "kernel cache: $(ls "$to/kernel-cache" | wc -l) entries"
}

case "${1:-}" in
  pack) pack ;;
  _unpack) unpack "$2" "$3" ;;
  _train-nccl) shift; train_nccl "$@" ;;
  run) run ;;
  *)
    echo "usage: bash eng/gpu-check.sh pack [DIR] | run [DIR]   (see docs/cuda.md, \"The GPU check\")" >&2
    exit 2
    ;;
esac
