#!/usr/bin/env bash
# S4S-Alt alone over the whole table (every bundled model, NFE 3-10) with its last phase, the one
# that goes on from the better opening, at 0.4 times the step size (a plan's `*0.4`), split over
# four processes as the README's table is. As run (2026-12-02, cache .cache/teacher).
set -eu
cd "$(dirname "$0")/../.."
OUT=experiments/learn-table-main-lr bash experiments/learn-table/run.sh --methods s4s_alt \
    --plan 'grid:1@start,joint:1@start,joint:6*0.4'
