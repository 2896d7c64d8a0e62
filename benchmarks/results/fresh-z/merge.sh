#!/usr/bin/env bash
# The README's table with the final choice that needs an opening ahead by more than two paired
# standard errors (learner.FINAL_Z): the two cells rerun here (run.sh), every other figure from
# benchmarks/results/fresh/learn_table.json (benchmarks/results/fresh/merge.sh), whose s4s_alt
# cells kept their end, as this choice does, and the joint cells of the image models that
# benchmarks/results/joint/run-a.sh and run-b.sh filled in. Then final_choices.md: these two
# cells, before (the choice of the lower mean) and now.
set -eu
cd "$(dirname "$0")/../../.."
Z=benchmarks/results/fresh-z
.venv/bin/python benchmarks/merge_tables.py "$Z"/digits*/learn_table.json benchmarks/results/fresh/learn_table.json \
  benchmarks/results/joint/*/learn_table.json --prefer-first --out "$Z" > "$Z/merge.log" 2>&1
.venv/bin/python benchmarks/final_choices.py "$Z" --before benchmarks/results/fresh/learn_table.json > "$Z/final_choices.md"
