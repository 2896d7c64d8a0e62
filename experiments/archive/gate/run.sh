#!/usr/bin/env bash
# What the learner's 102 validation pairs can see of the held-out difference between s4s_alt and
# ld3: digits-flow NFE 10 (the s4s_alt <= ld3 miss: the coefficient phase after ld3's opening)
# and guided digits NFE 8 (where that phase gains 11% held out). One thread each, side by side.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/gate
.venv/bin/python benchmarks/paired_heldout.py --model digits-flow --nfe 10 --held-out 1000 --blocks 5 > $R/digits-flow-10.txt 2> $R/digits-flow-10.log &
.venv/bin/python benchmarks/paired_heldout.py --model digits-cfg2 --nfe 8 --held-out 1000 --blocks 5 > $R/digits-cfg2-8.txt 2> $R/digits-cfg2-8.log &
wait
