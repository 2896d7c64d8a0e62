#!/usr/bin/env bash
# benchmarks/side_by_side.py at the cost must-show's settings (digits, NFE 5, 512 teacher pairs,
# the default iters), run alone. Output: side_by_side.txt.
set -u
cd "$(dirname "$0")/../../.."
.venv/bin/python benchmarks/side_by_side.py --num-samples 512 --iters 800 > experiments/archive/side/side_by_side.txt 2>&1
