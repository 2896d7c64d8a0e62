#!/usr/bin/env bash
# NFE 10 of the two-openings s4s_alt column for the three models run10.sh left at the previous
# learner's figures: one queue, one thread, beside other work on this 2-core machine.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/two-openings
for m in digits digits-cfg2 digits-ddpm; do
  .venv/bin/python benchmarks/learn_table.py --threads 1 --out "$R/$m-10" --models $m --nfe 10 --methods s4s_alt > "$R/$m-10.log" 2>&1
done
