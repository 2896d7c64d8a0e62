#!/bin/bash
# One solver for guidance scales [1, 8] on guided digits (issue 31) with the learner's defaults
# since 2026-12-03 (the levels' step size, 1,024 teacher pairs at 100 NFE): one run per NFE side by
# side (the range learner, the single-scale learners and the hand-designed figures), then merged
# into guidance_range.md. Log: run.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=experiments/guidance-range-levels-pairs
for n in 4 5 6; do
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/guidance_range.py --threads 1 --nfe $n --out $R/nfe$n \
      > $R/nfe$n.log 2>&1 &
done; wait
.venv/bin/python benchmarks/guidance_range.py --merge $R/nfe4/guidance_range.json $R/nfe5/guidance_range.json \
    $R/nfe6/guidance_range.json --out $R
