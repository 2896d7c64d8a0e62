#!/usr/bin/env bash
# The s4s_alt column with the final choice on 1,024 fresh teacher pairs (learn(final_pairs=1024),
# the default since this run): one thread, one cell per learn_table run, in order of how likely
# the choice is to change the cell (s4s_alt close to ld3 in the table before), digits-flow NFE 10
# (the s4s_alt <= ld3 miss) first. run-b.sh runs beside it on the other core.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/fresh
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
for cell in "digits-flow 10" "digits-flow 8" "digits 8" "digits 10" "digits-flow 3" "digits-flow 4" "digits 4" \
            "digits 5" "digits 6" "digits-flow 5" "digits-flow 6" "digits 3" "digits-ddpm 3" "digits-ddpm 4" \
            "digits-ddpm 5"; do
  run $cell
done
