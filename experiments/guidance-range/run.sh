#!/bin/bash
# One solver for guidance scales [1, 8] on guided digits (issue 31), as run on this machine:
# 1. one run per NFE side by side (single-scale and hand-designed figures, and the range learner
#    of its first form: the plain mean distance, the start ranked over the whole range): nfeN/
# 2. the range learner with per-scale weights and the start ranked relative to the best at each
#    scale (final-nfeN/), and with a forced multistep start (start-deis-logsnr-nfeN/)
# 3. the learner with the start best at the range's middle, quadratic in log scale: middle-nfeN/,
#    merged into quadratic-guidance_range.md;
# 4. the committed learner, the same with cubic polynomials (GuidanceRange's default degree 3):
#    cubic-nfeN/, merged into guidance_range.md. Steps 2-4 reuse step 1's single-scale and hand figures.
set -euo pipefail
R=experiments/guidance-range
for n in 4 5 6; do
  OMP_NUM_THREADS=1 python benchmarks/guidance_range.py --threads 1 --nfe $n --out $R/nfe$n &
done; wait
for n in 4 5 6; do cp $R/nfe$n/guidance_range.json $R/first-nfe$n.json; done
for n in 4 5 6; do
  OMP_NUM_THREADS=1 python benchmarks/guidance_range.py --threads 1 --nfe $n --degree 2 --reuse $R/first-nfe$n.json \
      --out $R/middle-nfe$n &
done; wait
for n in 4 5 6; do
  OMP_NUM_THREADS=1 python benchmarks/guidance_range.py --threads 1 --nfe $n --reuse $R/first-nfe$n.json --out $R/cubic-nfe$n &
done; wait
python benchmarks/guidance_range.py --merge $R/cubic-nfe4/guidance_range.json $R/cubic-nfe5/guidance_range.json \
    $R/cubic-nfe6/guidance_range.json --out $R
