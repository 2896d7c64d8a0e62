#!/usr/bin/env bash
# s4s_alt over the table with LearnConfig(backtrack=True, tolerance=2.0): a check goes back to the
# phase's best with half the step size only when it is worse than the best by more than two paired
# standard errors on the validation pairs. Every bundled model, NFE 3-10; the defaults of
# experiments/learn-table/ otherwise. As run (2026-12-01, commit 43da6a9, cache .cache/teacher):
# a and b side by side, one thread each.
set -eu
cd "$(dirname "$0")/../.."
out=experiments/learn-table-tolerance
export OMP_NUM_THREADS=1
python=${PYTHON:-.venv/bin/python}
config='{"backtrack": true, "tolerance": 2.0}'
run() { $python benchmarks/learn_table.py --threads 1 --methods s4s_alt --config "$config" --out $out/$1 "${@:2}" > $out/$1.log 2>&1; }
run a --models gmm digits-cfg2 digits-flow &
run b --models digits digits-ddpm &
wait
$python benchmarks/merge_tables.py $out/a/learn_table.json $out/b/learn_table.json --out $out
