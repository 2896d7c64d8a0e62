#!/usr/bin/env bash
# The README's table with learn(final_pairs=...) choosing the lower mean (the README's table is
# now experiments/archive/fresh-z/merge.sh's, which starts from this one's): the s4s_alt cells
# rerun here (run-a.sh, run-b.sh, then run-a2.sh, run-b2.sh, run-c.sh; the four cells those left,
# guided digits NFE 3, 5, 10 and digits-ddpm NFE 10, in a later session: run-d.sh, run-e.sh), every
# other figure from the table before (experiments/archive/screen/merge.sh): s4s, ld3 and joint,
# whose code paths the final choice does not touch. Then final_choices.md: what the choice did in
# each rerun cell.
set -eu
cd "$(dirname "$0")/../../.."
F=experiments/archive/fresh
.venv/bin/python benchmarks/merge_tables.py "$F"/gmm-*/learn_table.json "$F"/digits-*/learn_table.json \
  experiments/archive/screen/learn_table.json --prefer-first --out "$F" > "$F/merge.log" 2>&1
.venv/bin/python benchmarks/final_choices.py "$F" --before experiments/archive/screen/learn_table.json > "$F/final_choices.md"
