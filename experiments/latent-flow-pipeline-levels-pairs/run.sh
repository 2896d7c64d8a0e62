#!/usr/bin/env bash
# The latent flow pipeline's measurement (experiments/latent-flow-pipeline) with the learner's defaults of
# experiments/learn-table-levels-pairs: the decoupled levels at the coefficients' step size and 1,024 teacher
# pairs at 100 NFE (levels_pairs.patch, applied to a temporary worktree of HEAD), writing here.
# As run: 2026-12-03, HEAD 13e6946 with levels_pairs.patch, two threads, cache .cache/teacher.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/experiments/latent-flow-pipeline-levels-pairs
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/s4s"; rm -rf "$tmp"' EXIT
git -C "$root" worktree add -q --detach "$tmp/s4s" HEAD
git -C "$tmp/s4s" apply "$root/experiments/learn-table-levels-pairs/levels_pairs.patch"
mkdir -p "$root/.cache" && ln -s "$root/.cache" "$tmp/s4s/.cache"
(cd "$tmp/s4s" && PYTHONPATH="$tmp/s4s/src" "$root/.venv/bin/python" benchmarks/latent_flow_pipeline.py \
    --nfe 4 5 --out "$here" "$@")
