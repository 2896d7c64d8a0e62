#!/usr/bin/env bash
# run-b.sh's remaining cells, rebalanced with run-a2.sh so that both cores end together: run-b.sh
# was stopped (its runner only) during guided digits NFE 6, which ran to its end; this script waits
# for it, then runs its list. Same settings as run-b.sh.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/fresh
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
while pgrep -f "learn_table.py .*--out $R/digits-cfg2-6\$" > /dev/null; do sleep 5; done
for cell in "digits-ddpm 8" "digits-cfg2 8" "digits-ddpm 3" "digits-ddpm 4" "digits-ddpm 5" "digits-ddpm 6" \
            "digits-cfg2 5" "digits-ddpm 10"; do
  run $cell
done
