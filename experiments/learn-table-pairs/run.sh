#!/usr/bin/env bash
# The whole table (every bundled model, NFE 3-10, the four methods) with the learner's teacher
# pairs at 1,024 from UniPC-3 at 100 NFE (the mixture 8,192), the same teacher cost as 512 at
# 200: `experiments/learn-table/run.sh` into this folder. As run (2026-12-02, at commit 8dadf1e,
# where those were the defaults; cache .cache/teacher).
set -eu
cd "$(dirname "$0")/../.."
OUT=experiments/learn-table-pairs bash experiments/learn-table/run.sh
