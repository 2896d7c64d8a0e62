#!/usr/bin/env bash
# The learner with the second try (learn(retry_warmup=0.1), the default since this run), on this
# 2-core machine, one thread per process, the two side by side:
# - the mixture, every method and NFE: every cell bit-identical to two-openings/gmm except `s4s`
#   at NFE 10, the one cell of the README's table where the last guard had returned the start;
# - digits-flow NFE 3, s4s_alt: a check that an image cell the guard passed is bit-identical too.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/retry
.venv/bin/python benchmarks/learn_table.py --models gmm --threads 1 --out $R/gmm > $R/gmm.log 2>&1 &
.venv/bin/python benchmarks/learn_table.py --models digits-flow --nfe 3 --methods s4s_alt --threads 1 \
  --out $R/digits-flow-3 > $R/digits-flow-3.log 2>&1
wait
