#!/usr/bin/env bash
# The learned solver in the bundled digits-ddpm DDPMPipeline against diffusers' schedulers.
set -euo pipefail
cd "$(dirname "$0")/../.."
${PYTHON:-.venv/bin/python} benchmarks/diffusers_schedulers.py --nfe 4 5 --threads 1 --out experiments/diffusers-schedulers \
    2>&1 | tee experiments/diffusers-schedulers/run.log
