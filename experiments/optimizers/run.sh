#!/usr/bin/env bash
# Optimisers against the cost on one cell: L-BFGS (full batch and 128 pairs) and minibatch Adam.
set -euo pipefail
cd "$(dirname "$0")/../.."
${PYTHON:-.venv/bin/python} benchmarks/optimizers.py --model digits --nfe 5 \
    --runs lbfgs-128:60 lbfgs-410:25 adam-32:300 adam-16:600 adam-64:150 --out experiments/optimizers
