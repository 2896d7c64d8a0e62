#!/usr/bin/env bash
# The README's table with learn(screen=2), the default since this run: the screened cells
# (run-a.sh .. run-e.sh; `s4s_alt` at digits NFE 5, guided digits NFE 6 and digits-ddpm NFE 5 is
# the `--start` run of experiments/archive/starts/, bit for bit the screened run), then the
# table before the screen for the 21 cells where the screen keeps the start (there a screened run
# is the unscreened run, bit for bit) and for `s4s`, which is not screened.
set -eu
cd "$(dirname "$0")/../../.."
S=experiments/archive/screen; A=experiments/archive/starts
F=experiments/archive/final; T=experiments/archive/two-openings; P=experiments/archive/plans; R=experiments/archive/retry
.venv/bin/python benchmarks/merge_tables.py \
  $S/gmm/learn_table.json $S/digits-4/learn_table.json $S/digits-5-ld3/learn_table.json \
  $A/digits-5-deis-logsnr/learn_table.json $S/digits-6/learn_table.json $S/digits-8/learn_table.json \
  $S/digits-10/learn_table.json $S/digits-cfg2-4/learn_table.json $S/digits-cfg2-6-ld3/learn_table.json \
  $A/digits-cfg2-6-deis-logsnr/learn_table.json $S/digits-cfg2-10/learn_table.json \
  $S/digits-ddpm-4/learn_table.json $S/digits-ddpm-5-ld3/learn_table.json \
  "$A/digits-ddpm-5-deis-time_uniform+zero/learn_table.json" $S/digits-ddpm-8/learn_table.json \
  $S/digits-ddpm-8-ld3/learn_table.json $S/digits-flow-8/learn_table.json \
  $R/gmm/learn_table.json $T/digits/learn_table.json $T/digits-10/learn_table.json $T/digits-cfg2/learn_table.json \
  $P/both-cfg2-6/learn_table.json $P/both-cfg2-8/learn_table.json $T/digits-cfg2-10/learn_table.json \
  $T/digits-ddpm/learn_table.json $T/digits-ddpm-8/learn_table.json $T/digits-ddpm-10/learn_table.json \
  $T/digits-flow/learn_table.json $T/digits-flow-10/learn_table.json $T/digits-flow-10-ld3/learn_table.json \
  $T/digits-flow-3/learn_table.json $T/digits-ddpm-3/learn_table.json $F/cpu-*/learn_table.json \
  $F/cpu-nfe3-10/*/learn_table.json --prefer-first --out $S
