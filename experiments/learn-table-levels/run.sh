#!/usr/bin/env bash
# The whole table (every bundled model, NFE 3-10, the four methods) with the decoupled
# model-input levels stepping like the coefficients: `experiments/learn-table/run.sh` into this
# folder. As run (2026-12-02, commit in README.md, cache .cache/teacher).
set -eu
cd "$(dirname "$0")/../.."
OUT=experiments/learn-table-levels bash experiments/learn-table/run.sh
