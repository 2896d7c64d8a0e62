#!/usr/bin/env bash
# run-a.sh's remaining cells, rebalanced with run-b2.sh so that both cores end together: run-a.sh
# was stopped (its runner only) during digits-flow NFE 8, which ran to its end; this script waits
# for it, then runs its list. Same settings as run-a.sh.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/fresh
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
while pgrep -f "learn_table.py .*--out $R/digits-flow-8\$" > /dev/null; do sleep 5; done
for cell in "digits 8" "digits 10" "digits-flow 3" "digits-flow 4" "digits-flow 5" "digits-flow 6" "digits 4" \
            "digits 5" "digits 6" "digits 3" "digits-cfg2 4" "digits-cfg2 3" "digits-cfg2 10"; do
  run $cell
done
