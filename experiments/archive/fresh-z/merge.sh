#!/usr/bin/env bash
# The README's table with the final choice that needs an opening ahead by more than two paired
# standard errors (learner.FINAL_Z): the two cells rerun here (run.sh), every other figure from
# experiments/archive/fresh/learn_table.json (experiments/archive/fresh/merge.sh), whose s4s_alt
# cells kept their end, as this choice does, and the joint cells of the image models that
# experiments/archive/joint/run-a.sh and run-b.sh filled in. Then final_choices.md: these two
# cells, before (the choice of the lower mean) and now.
set -eu
cd "$(dirname "$0")/../../.."
Z=experiments/archive/fresh-z
.venv/bin/python benchmarks/merge_tables.py "$Z"/digits*/learn_table.json experiments/archive/fresh/learn_table.json \
  experiments/archive/joint/*/learn_table.json --prefer-first --out "$Z" > "$Z/merge.log" 2>&1
.venv/bin/python benchmarks/final_choices.py "$Z" --before experiments/archive/fresh/learn_table.json > "$Z/final_choices.md"
