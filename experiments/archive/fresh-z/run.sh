#!/usr/bin/env bash
# The two s4s_alt cells where the final choice kept the ld3 opening (experiments/archive/fresh/),
# rerun with the choice that needs the opening ahead by more than two paired standard errors
# (learner.FINAL_Z): digits-flow NFE 10 and digits NFE 10, side by side, one thread each, as
# experiments/archive/fresh/run-a.sh. Every other cell kept its end, which the stricter choice keeps too.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/fresh-z
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
run digits-flow 10 &
run digits 10 &
wait
