#!/usr/bin/env bash
# learn(warmup=0.1) on the cells the two-openings learner missed, one thread, beside the
# run10-rest.sh queue on this 2-core machine. Guided digits NFE 6 ran first, by hand:
#   .venv/bin/python benchmarks/learn_table.py --threads 1 --warmup 0.1 --out $R/digits-cfg2-6 --models digits-cfg2 --nfe 6 --methods s4s_alt
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/warmup
run() {  # name, then learn_table arguments
  local name=$1; shift
  .venv/bin/python benchmarks/learn_table.py --threads 1 --warmup 0.1 --out "$R/$name" "$@" > "$R/$name.log" 2>&1
}
run digits-flow-10 --models digits-flow --nfe 10 --methods s4s_alt ld3
run gmm --models gmm --methods s4s s4s_alt ld3 joint
