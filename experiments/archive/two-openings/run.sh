#!/usr/bin/env bash
# The s4s_alt column with two openings (joint probes and ld3's run), on this 2-core machine:
# two queues of one-thread processes, one learn_table.py run per model. The figures of guided
# digits at NFE 6 and 8 come from experiments/archive/plans/both-cfg2-{6,8} (the same phases,
# written as --plan before they became the default).
# As run on 2026-11-26, to end in the session's time: the digits-flow process was stopped after
# its NFE 8 row and the digits-ddpm one after its NFE 6 row (so NFE 3 of both was not reached),
# and digits-ddpm NFE 8 ran as a third process beside these queues:
#   .venv/bin/python benchmarks/learn_table.py --threads 1 --out $R/digits-ddpm-8 --models digits-ddpm --nfe 8 --methods s4s_alt
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/two-openings
run() {  # name, then learn_table arguments
  local name=$1; shift
  .venv/bin/python benchmarks/learn_table.py --threads 1 --out "$R/$name" "$@" > "$R/$name.log" 2>&1
}
(
  run gmm --models gmm --methods s4s s4s_alt ld3 joint
  run digits-cfg2 --models digits-cfg2 --nfe 4 5 3 --methods s4s_alt
  run digits-ddpm --models digits-ddpm --nfe 4 5 6 8 3 --methods s4s_alt
) &
(
  run digits --models digits --nfe 4 5 6 8 3 --methods s4s_alt
  run digits-flow --models digits-flow --nfe 4 5 6 8 3 --methods s4s_alt
) &
wait
