#!/usr/bin/env bash
# Learning memory against NFE (with and without activation checkpointing) and s4s's overhead over bare model calls.
set -euo pipefail
cd "$(dirname "$0")/../.."
${PYTHON:-.venv/bin/python} benchmarks/scale.py --out experiments/scale
