#!/usr/bin/env bash
# Guided digits NFE 4 on the core run-a2.sh left idle once stopped (same settings as run-a.sh).
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/fresh
.venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --models digits-cfg2 --nfe 4 \
  --out "$R/digits-cfg2-4" > "$R/digits-cfg2-4.log" 2>&1
