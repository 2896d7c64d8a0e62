#!/bin/bash
# The guidance range (issue 31) with the range learn's step size set by the geometric mean of each
# training scale's relative error (s4s.learn.learner.relative_error with groups): range learns only,
# at NFE 4, 5, 6 (seed 0) and NFE 6 (seeds 1, 2), two at a time; the single-scale and hand-designed
# figures are reused from ../guidance-range-levels-pairs/ (a single-scale learn has one group, so
# its step, and its result, are unchanged). Then seed 0 merged into guidance_range.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=${OUT:-experiments/guidance-range-scale-error}
P=experiments/guidance-range-levels-pairs
run() {  # seed nfe
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/guidance_range.py --threads 1 --nfe $2 --seed $1 \
      --reuse $P/nfe$2/guidance_range.json --out $R/seed$1-nfe$2 > $R/seed$1-nfe$2.log 2>&1
}
export -f run; export R P
printf '%s\n' "0 6" "1 6" "2 6" "0 4" "0 5" | xargs -P 2 -L 1 bash -c 'run $0 $1'
.venv/bin/python benchmarks/guidance_range.py --merge $R/seed0-nfe4/guidance_range.json \
    $R/seed0-nfe5/guidance_range.json $R/seed0-nfe6/guidance_range.json --out $R
