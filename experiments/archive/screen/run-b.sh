#!/usr/bin/env bash
# s4s_alt and ld3 with learn(screen=2) in cells where the screen moves the start
# (experiments/archive/screen/screen-*.txt). One thread; `s4s_alt` from the screen's start in
# digits NFE 5, digits-ddpm NFE 5 and guided digits NFE 6 is the `--start` run of
# experiments/archive/starts/ (bit for bit the same run), so those cells run `ld3` only.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/screen
run() {  # name, then learn_table arguments
  local name=$1; shift
  .venv/bin/python benchmarks/learn_table.py --threads 1 --screen 2 --out "$R/$name" "$@" > "$R/$name.log" 2>&1
}
run digits-cfg2-6-ld3 --models digits-cfg2 --nfe 6 --methods ld3
run digits-cfg2-4 --models digits-cfg2 --nfe 4 --methods s4s_alt ld3
run digits-cfg2-10 --models digits-cfg2 --nfe 10 --methods s4s_alt ld3
# stopped here for the session's time: digits-flow NFE 8 and digits-ddpm NFE 4 did not run;
# the mixture ran by itself afterwards:
# run gmm --models gmm --nfe 3 6 8 --methods s4s s4s_alt ld3 joint
