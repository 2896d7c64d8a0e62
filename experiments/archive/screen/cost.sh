#!/usr/bin/env bash
# The cost must-show with and without a screen: s4s_alt, NFE 5, digits, 512 teacher pairs made
# afresh (an empty cache), the CLI's default threads, run alone. Output: cost.txt.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/screen
for k in 2 1; do
  cache=$(mktemp -d)
  start=$(date +%s.%N)
  .venv/bin/s4s learn --model digits --nfe 5 --screen $k --cache "$cache" --out "$cache/solver.json" 2>/dev/null | tail -1
  echo "screen $k: $(echo "$(date +%s.%N) - $start" | bc) s, teacher and learning"
  rm -rf "$cache"
done > "$R/cost.txt"
