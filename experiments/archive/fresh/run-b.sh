#!/usr/bin/env bash
# The s4s_alt column with the final choice on 1,024 fresh teacher pairs (learn(final_pairs=1024),
# the default since this run): one thread, one cell per learn_table run, in order of how likely
# the choice is to change the cell (s4s_alt close to ld3 in the table before). run-a.sh runs beside it on the other core.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/fresh
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
for cell in "gmm 3" "gmm 4" "gmm 5" "gmm 6" "gmm 8" "gmm 10" "digits-cfg2 6" "digits-ddpm 8" "digits-cfg2 8" \
            "digits-cfg2 10" "digits-ddpm 10" "digits-cfg2 4" "digits-cfg2 5" "digits-cfg2 3" "digits-ddpm 6"; do
  run $cell
done
