#!/usr/bin/env bash
# The latent flow pipeline's measurement (../latent-flow-pipeline/) with the learner's distance on
# the VAE's decoded images (`--decode`: LearnConfig(decode=model.decode), the paper's latent
# setting) instead of on the latents: NFE 4 and NFE 5 side by side, one thread each, writing nfe4/
# and nfe5/ here. As run: 2026-12-04, on a3b8967, cache .cache/teacher.
set -eu
cd "$(dirname "$0")/../.."
here=experiments/latent-flow-pipeline-decode
for n in 4 5; do
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latent_flow_pipeline.py --threads 1 --decode --nfe $n \
      --out $here/nfe$n > $here/nfe$n.log 2>&1 &
done
wait
