#!/usr/bin/env bash
# The table of the current learner: every bundled model, NFE 3-10, the four methods,
# in four processes side by side (one thread each; models and NFEs split so that they end at
# about the same time), then joined, with the learner issue's checks (checks.md).
# As run for this folder (2026-12-01, commit d98c13a, cache .cache/teacher; the README's table until the
# defaults of ../learn-table-levels-pairs, whose table it is now): all four side by
# side from the start (a, b, c, d as below). Arguments are passed to every process, e.g.
# `OUT=experiments/NAME bash experiments/learn-table/run.sh --methods s4s_alt --plan P`.
set -eu
cd "$(dirname "$0")/../.."
out=${OUT:-experiments/learn-table}  # OUT=experiments/NAME writes another folder
export OMP_NUM_THREADS=1
python=${PYTHON:-.venv/bin/python}
extra=("$@")
run() { $python benchmarks/learn_table.py --threads 1 --out $out/$1 "${@:2}" ${extra[@]+"${extra[@]}"} > $out/$1.log 2>&1; }
run a --models digits-cfg2 gmm &
run b --models digits digits-ddpm &
run c --models digits-flow --nfe 3 4 5 6 &
run d --models digits-flow --nfe 8 10 &
wait
$python benchmarks/merge_tables.py $out/a/learn_table.json $out/b/learn_table.json $out/c/learn_table.json \
    $out/d/learn_table.json --out $out
