#!/usr/bin/env bash
# The joint column for the image models at NFE 4, 5 (then 6), which the table had left empty:
# learn_table.py --methods joint, one thread, one cell per run; run-b.sh beside it on the other
# core. The same settings as experiments/archive/fresh/run-a.sh. joint has no @fresh phase: the
# final choice does not touch it.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/joint
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods joint --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
for cell in "digits 4" "digits 5" "digits-cfg2 4" "digits-cfg2 5" "digits 6" "digits-cfg2 6"; do
  run $cell
done
