#!/usr/bin/env bash
# Accepts the generator snapshots that the last test run wrote as *.received.cs, after a person has reviewed them
# (e.g. `git diff --no-index` against the verified files). Tests never accept snapshots themselves.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/AlexNetCompiler.Generators.Tests/Snapshots"
shopt -s nullglob
received=("$dir"/*.received.cs)
if [ ${#received[@]} -eq 0 ]; then
  echo "No received snapshots in $dir."
  exit 0
fi
for file in "${received[@]}"; do
  verified="${file%.received.cs}.verified.cs"
  mv "$file" "$verified"
  echo "accepted $(basename "$verified")"
done
