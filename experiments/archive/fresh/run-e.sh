#!/usr/bin/env bash
# run-d.sh's partner on the other core: guided digits NFE 5 (where the ld3 opening is 0.58x hand),
# then digits-ddpm NFE 10. Same settings as run-a.sh.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/fresh
run() {  # model, nfe
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --models "$1" --nfe "$2" \
    --out "$R/$1-$2" > "$R/$1-$2.log" 2>&1
}
for cell in "digits-cfg2 5" "digits-ddpm 10"; do
  run $cell
done
