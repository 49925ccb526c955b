#!/usr/bin/env bash
# GPU check for the CUDA backend (see docs/cuda.md).
#   bash eng/gpu-check.sh publish   here (with .NET): publishes eng/GpuCheck as a NativeAOT binary into
#                                   artifacts/gpu-check (git-ignored) and prints the command to run on the GPU machine.
#   bash eng/gpu-check.sh run       on the GPU machine (NVIDIA driver, NVRTC, PyTorch; no .NET): runs the check
#                                   program, then eng/pytorch_reference.py, and prints our/PyTorch ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
out=artifacts/gpu-check

case "${1:-publish}" in
  publish)
    rm -rf "$out"
    if ! dotnet publish eng/GpuCheck/GpuCheck.csproj -c Release -r linux-x64 -p:GpuCheckNativeAot=true -o "$out"; then
      echo "NativeAOT publish failed; publishing self-contained and trimmed instead." >&2
      dotnet publish eng/GpuCheck/GpuCheck.csproj -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -o "$out"
    fi
    rm -f "$out"/*.dbg "$out"/*.pdb
    du -sh "$out"
    echo
    echo "Next, on the GPU machine, from a copy of this repository that includes $out:"
    echo "  bash eng/gpu-check.sh run"
    echo "It takes a few minutes: NVRTC compiles the FP32 and TF32 kernels of three networks for four GEMM tiles, each is"
    echo "checked against the CPU backend, AlexNet and FashionNet are timed with the tiles tuned per kernel, then PyTorch."
    ;;
  run)
    [ -x "$out/GpuCheck" ] || { echo "No $out/GpuCheck: run 'bash eng/gpu-check.sh publish' first and copy $out here." >&2; exit 2; }
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null || true
    # NVRTC of the installed CUDA toolkit, when it is not on the loader path.
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
      [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
    done
    ours=$(mktemp); torch=$(mktemp)
    set +e
    "$out/GpuCheck" "${@:2}" | tee "$ours"
    check_status=${PIPESTATUS[0]}
    python3 eng/pytorch_reference.py --batch 128 | tee "$torch"
    torch_status=${PIPESTATUS[0]}
    set -e
    value() { { grep -h "^RESULT .*$1=" "$2" || true; } | tail -1 | sed -E "s/.*$1=([^ ]+).*/\1/"; }
    echo
    echo "== Ours vs PyTorch eager (cuDNN), canonical AlexNet, batch 128, same GPU"
    for mode in fp32 tf32; do
      for pass in train forward; do
        a=$(value "${mode}_${pass}_images_per_s" "$ours"); b=$(value "torch_${mode}_${pass}_images_per_s" "$torch")
        if [ -n "$a" ] && [ -n "$b" ]; then
          awk -v m="$mode" -v p="$pass" -v a="$a" -v b="$b" 'BEGIN { printf "%s %-7s ours %9.1f images/s, PyTorch %9.1f images/s, ratio %.2fx\n", m, p, a, b, a / b }'
        else
          echo "$mode $pass: missing figure (ours '${a}', PyTorch '${b}')"
        fi
      done
    done
    grep -h "^RESULT correctness=" "$ours" || echo "correctness: no result"
    [ "$check_status" -eq 0 ] && [ "$torch_status" -eq 0 ]
    ;;
  *)
    echo "usage: bash eng/gpu-check.sh publish|run" >&2
    exit 2
    ;;
esac
