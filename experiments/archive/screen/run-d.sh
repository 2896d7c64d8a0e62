#!/usr/bin/env bash
# (the cells run-b.sh and run-c.sh left) s4s_alt and ld3 with learn(screen=2) in cells where the screen moves the start
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
(
  run digits-8 --models digits --nfe 8 --methods s4s_alt ld3
  run digits-ddpm-4 --models digits-ddpm --nfe 4 --methods s4s_alt ld3
) &
while pgrep -f "screen/digits-cfg2-10 " > /dev/null; do sleep 20; done  # after run-b.sh's last cell
run digits-flow-8 --models digits-flow --nfe 8 --methods s4s_alt ld3
# stopped here for the session's time: digits-ddpm NFE 8 did not run
# run digits-ddpm-8 --models digits-ddpm --nfe 8 --methods s4s_alt ld3
wait
