#!/usr/bin/env bash
# digits-flow NFE 10 with 1,024 teacher pairs (default 512): does the s4s_alt-above-ld3 miss
# come from too few pairs? Two one-thread processes side by side on this 2-core machine.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/pairs1024
for m in s4s_alt ld3; do
  .venv/bin/python benchmarks/learn_table.py --threads 1 --num-samples 1024 --out "$R/digits-flow-10-$m" --models digits-flow --nfe 10 --methods $m > "$R/digits-flow-10-$m.log" 2>&1 &
done
wait
