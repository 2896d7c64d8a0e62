#!/usr/bin/env bash
# The four methods over the table with every step size in proportion to the start's relative
# error (the learner of commit fb0d9d9: LearnConfig(lr=0.25) per unit of it for the grid and
# levels, coef_lr=0.3 of that for the coefficients; not adopted, so run it at that commit).
# As run (2026-12-02, commit fb0d9d9, cache .cache/teacher): experiments/learn-table/run.sh's
# four processes, written here.
set -eu
cd "$(dirname "$0")/../.."
OUT=experiments/learn-table-error-lr exec bash experiments/learn-table/run.sh
