#!/usr/bin/env bash
# NFE 10 of the two-openings s4s_alt column, a third queue beside run.sh (one thread). Only
# digits-flow, the cell where s4s_alt had missed ld3 by 0.8%, ran: the other models' NFE 10
# cells did not fit this session's time and keep the previous learner's figures.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/two-openings
for m in digits-flow; do
  .venv/bin/python benchmarks/learn_table.py --threads 1 --out "$R/$m-10" --models $m --nfe 10 --methods s4s_alt > "$R/$m-10.log" 2>&1
done
# Then ld3 at NFE 10 on the same machine and thread count, the device of this s4s_alt (the
# earlier ld3 figure ran with two threads):
# .venv/bin/python benchmarks/learn_table.py --threads 1 --out $R/digits-flow-10-ld3 --models digits-flow --nfe 10 --methods ld3
