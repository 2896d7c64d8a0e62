#!/usr/bin/env bash
# What one default learn spends, counted in model-evaluation units, on the mixture at NFE 4, 5, 6, 8.
set -euo pipefail
cd "$(dirname "$0")/../.."
${PYTHON:-.venv/bin/python} benchmarks/learn_cost.py --models gmm --nfe 4 5 6 8 --out experiments/learning-cost
