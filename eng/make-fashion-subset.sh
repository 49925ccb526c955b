#!/usr/bin/env bash
# Rebuilds the embedded Fashion-MNIST subset (examples/FashionMnist/Data) from the full set.
# Needs the full Fashion-MNIST IDX files: Debian's dataset-fashion-mnist package installs them in
# /usr/share/datasets/fashion-mnist, or pass another folder as the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
source_folder="${1:-/usr/share/datasets/fashion-mnist}"
dotnet run --project examples/FashionMnist/FashionMnist.csproj -c Release -- \
  make-subset --source "$source_folder" --output examples/FashionMnist/Data \
  --train-per-class 600 --test-per-class 100 --seed 2017
