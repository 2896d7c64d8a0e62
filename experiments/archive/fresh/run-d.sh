#!/usr/bin/env bash
# The four s4s_alt cells the runs before left (see merge.sh), on one core: guided digits NFE 10,
# then NFE 3. run-e.sh runs beside it on the other core. Same settings as run-a.sh.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/fresh
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
for cell in "digits-cfg2 10" "digits-cfg2 3"; do
  run $cell
done
