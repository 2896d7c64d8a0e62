#!/usr/bin/env bash
# s4s_alt from the second candidate in three cells where the teacher pairs cannot tell the two
# leading starts apart (experiments/archive/starts/ties.txt: z 1.0, 0.6, 0.6). One thread per
# process, two queues side by side.
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/starts
run() {  # name, then learn_table arguments
  local name=$1; shift
  .venv/bin/python benchmarks/learn_table.py --threads 1 --methods s4s_alt --out "$R/$name" "$@" > "$R/$name.log" 2>&1
}
(
  run digits-5-deis-logsnr --models digits --nfe 5 --start deis/logsnr
  run digits-flow-6-unipc-time_uniform+zero --models digits-flow --nfe 6 --start unipc/time_uniform+zero
) &
run digits-ddpm-5-deis-time_uniform+zero --models digits-ddpm --nfe 5 --start deis/time_uniform+zero
wait
