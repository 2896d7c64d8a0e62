#!/usr/bin/env bash
# The bundled models' quality: teacher accuracy, the shipped classifier's confidence, FD-digits against DDIM's NFE;
# guided digits; the latent flow model's prompted digits.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-.venv/bin/python}
$py benchmarks/zoo_quality.py 2>&1 | tee experiments/zoo-quality/zoo_quality.log
$py benchmarks/latent_zoo_quality.py 2>&1 | tee experiments/zoo-quality/latent_zoo_quality.log
