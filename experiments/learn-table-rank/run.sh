#!/usr/bin/env bash
# S4S-Alt alone over the whole table (every bundled model, NFE 3-10) with the hand-designed
# starts ranked on 128 validation pairs (every one of the 102 at 512 teacher pairs) instead of
# the default 64, split over four processes as the README's table is. As run (2026-12-02,
# cache .cache/teacher).
set -eu
cd "$(dirname "$0")/../.."
OUT=experiments/learn-table-rank bash experiments/learn-table/run.sh --methods s4s_alt --config '{"rank": 128}'
