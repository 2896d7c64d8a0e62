#!/usr/bin/env bash
# The joint column for the image models at NFE 4, 5 (then 6), which the table had left empty:
# learn_table.py --methods joint, one thread, one cell per run; run-a.sh beside it on the other
# core. The same settings as experiments/archive/fresh/run-a.sh. joint has no @fresh phase: the
# final choice does not touch it.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/joint
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods joint --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
for cell in "digits-ddpm 4" "digits-ddpm 5" "digits-flow 4" "digits-flow 5" "digits-ddpm 6" "digits-flow 6"; do
  run $cell
done
