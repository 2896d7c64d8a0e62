#!/usr/bin/env bash
# The table of the learner with LearnConfig(backtrack=True) (a check without a gain returns to
# the phase's best with half the step size), every bundled model, NFE 3-10, the four methods;
# otherwise the defaults of experiments/learn-table/ (commit 3c13ca2, where backtrack was on
# by default; later commits compute the cosine step in another float order, so a rerun with
# --backtrack is the same learner but its cells move by the rounding spread, see "Backtracking"
# in experiments/LOG.md). As run (2026-12-01, cache
# .cache/teacher): a, b, c, d side by side; e started when c and d had ended; b was stopped
# after digits-ddpm NFE 6 (e made NFE 8 and 10); b and b2 below are that b. Each learn runs on one thread, so how the
# cells are shared out does not change their figures.
set -eu
cd "$(dirname "$0")/../.."
out=experiments/learn-table-backtrack
export OMP_NUM_THREADS=1
python=${PYTHON:-.venv/bin/python}
run() { $python benchmarks/learn_table.py --backtrack --threads 1 --out $out/$1 "${@:2}" > $out/$1.log 2>&1; }
run a --models digits-cfg2 gmm &
run b --models digits &
run b2 --models digits-ddpm --nfe 3 4 5 6 &
run c --models digits-flow --nfe 3 4 5 6 &
run d --models digits-flow --nfe 8 10 &
run e --models digits-ddpm --nfe 8 10 &
wait
$python benchmarks/merge_tables.py $out/a/learn_table.json $out/b/learn_table.json $out/b2/learn_table.json $out/c/learn_table.json \
    $out/d/learn_table.json $out/e/learn_table.json --out $out
