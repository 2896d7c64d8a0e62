#!/bin/bash
# One solver for guidance scales [1, 8] on guided digits (issue 31), as run on this machine:
# first one run per NFE side by side (single-scale and hand-designed figures, and the range
# learner before its per-scale weights), then the committed range learner reusing those figures.
set -euo pipefail
R=benchmarks/results/guidance-range
for n in 4 5 6; do
  OMP_NUM_THREADS=1 python benchmarks/guidance_range.py --threads 1 --nfe $n --out $R/nfe$n &
done; wait
for n in 4 5 6; do
  cp $R/nfe$n/guidance_range.json $R/first-nfe$n.json
  OMP_NUM_THREADS=1 python benchmarks/guidance_range.py --threads 1 --nfe $n --reuse $R/first-nfe$n.json --out $R/final-nfe$n &
done; wait
python benchmarks/guidance_range.py --merge $R/final-nfe4/guidance_range.json $R/final-nfe5/guidance_range.json \
    $R/final-nfe6/guidance_range.json --out $R
