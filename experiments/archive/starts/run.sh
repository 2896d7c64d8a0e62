#!/usr/bin/env bash
# Does the starting solver decide the two cells the table misses? One thread per process, the
# two side by side (learn_table.py --start fixes learn(base=..., schedule=...)):
set -u
cd "$(dirname "$0")/../../.."
R=experiments/archive/starts
.venv/bin/python benchmarks/learn_table.py --models digits-cfg2 --nfe 6 --methods s4s_alt --start deis/logsnr \
  --threads 1 --out $R/digits-cfg2-6-deis-logsnr > $R/digits-cfg2-6-deis-logsnr.log 2>&1 &
.venv/bin/python benchmarks/learn_table.py --models digits-flow --nfe 10 --methods s4s_alt ld3 --start ipndm/logsnr \
  --threads 1 --out $R/digits-flow-10-ipndm-logsnr > $R/digits-flow-10-ipndm-logsnr.log 2>&1
wait
