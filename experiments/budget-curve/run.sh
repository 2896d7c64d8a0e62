#!/usr/bin/env bash
# Held-out RMSE against the learning budget on digits NFE 6 (one of the table's misses).
set -euo pipefail
cd "$(dirname "$0")/../.."
${PYTHON:-.venv/bin/python} benchmarks/budget_curve.py --model digits --nfe 6 --budgets 0.5 1 2 4 8 \
    --out experiments/budget-curve 2>&1 | tee experiments/budget-curve/run.log
