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
run digits-5-ld3 --models digits --nfe 5 --methods ld3
run digits-ddpm-5-ld3 --models digits-ddpm --nfe 5 --methods ld3
run digits-4 --models digits --nfe 4 --methods s4s_alt ld3
run digits-6 --models digits --nfe 6 --methods s4s_alt ld3
