#!/usr/bin/env bash
# learn(starts=2) where the second start's run scored lower (guided digits NFE 6, digits-ddpm
# NFE 5): one thread per process, the two side by side.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/starts
.venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --starts 2 --models digits-cfg2 --nfe 6 \
  --out $R/two-digits-cfg2-6 > $R/two-digits-cfg2-6.log 2>&1 &
.venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --starts 2 --models digits-ddpm --nfe 5 \
  --out $R/two-digits-ddpm-5 > $R/two-digits-ddpm-5.log 2>&1
wait
