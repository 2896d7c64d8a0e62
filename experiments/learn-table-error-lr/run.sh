#!/usr/bin/env bash
# The four methods over the table with every step size in proportion to the start's relative
# error (the learner of commit fb0d9d9: LearnConfig(lr=0.25) per unit of it for the grid and
# levels, coef_lr=0.3 of that for the coefficients; not adopted, so run it at that commit).
# As run (2026-12-02, commit fb0d9d9, cache .cache/teacher): a, b, c, d side by side, one
# thread each, as experiments/learn-table/run.sh.
set -eu
cd "$(dirname "$0")/../.."
out=experiments/learn-table-error-lr
export OMP_NUM_THREADS=1
python=${PYTHON:-.venv/bin/python}
run() { $python benchmarks/learn_table.py --threads 1 --out $out/$1 "${@:2}" > $out/$1.log 2>&1; }
run a --models digits-cfg2 gmm &
run b --models digits digits-ddpm &
run c --models digits-flow --nfe 3 4 5 6 &
run d --models digits-flow --nfe 8 10 &
wait
$python benchmarks/merge_tables.py $out/a/learn_table.json $out/b/learn_table.json $out/c/learn_table.json \
    $out/d/learn_table.json --out $out
