# The two device jobs of 7fc0d87 on a lent H100, run as `bash gpu-jobs.sh` from the repo root
# with the diffusers wheels carried in .whl/ (for digits-ddpm); one learn_table process per cell.
# Job 1 (41 processes, stopped at its 580 s limit; finished cells in gpu-nfe3-10/ and gpu-ld3/):
# ld3 at every NFE, s4s and s4s_alt at NFE 3 and 10, s4s_alt for digits-ddpm at NFE 8.
# Job 2 (7 processes, 152 s; gpu-ld3/): the ld3 cells at NFE 4-8 that job 1 left unfinished, i.e.
# the three `for` loops and the last `run` below replaced by
#   run digits-ld3-8 digits 8 ld3; run digits-cfg2-ld3-6 digits-cfg2 6 ld3; run digits-cfg2-ld3-8 digits-cfg2 8 ld3
#   run digits-flow-ld3-8 digits-flow 8 ld3; run digits-ddpm-ld3-4 digits-ddpm 4 ld3; run digits-ddpm-ld3-5 digits-ddpm 5 ld3
#   run digits-ddpm-ld3-6 digits-ddpm 6 ld3
# and the saver's `sleep 20` by `sleep 10`.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src || exit 1
nvidia-smi --query-gpu=name,memory.used --format=csv
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"
git log --oneline -1 2>/dev/null
R=/tmp/r; mkdir -p $R
pids=""
run() {  # cell model nfe method
  mkdir -p $R/$1
  PYTHONUNBUFFERED=1 python3 benchmarks/learn_table.py --device cuda --threads 1 --models $2 --nfe $3 \
    --methods $4 --out $R/$1 --cache /tmp/cache/$1 > $R/$1/log 2>&1 &
  pids="$pids $!"
}
for m in digits digits-cfg2 digits-ddpm digits-flow; do
  for n in 10 3; do run $m-s4s_alt-$n $m $n s4s_alt; run $m-s4s-$n $m $n s4s; done
  for n in 10 8 6 5 4 3; do run $m-ld3-$n $m $n ld3; done
done
run digits-ddpm-s4s_alt-8 digits-ddpm 8 s4s_alt
( while sleep 20; do tar czf $OUT/r.tgz.tmp -C /tmp r 2>/dev/null && mv $OUT/r.tgz.tmp $OUT/r.tgz; done ) &
saver=$!
t0=$(date +%s)
wait $pids
kill $saver
echo "all learners done in $(( $(date +%s) - t0 )) s"
tar czf $OUT/r.tgz.tmp -C /tmp r && mv $OUT/r.tgz.tmp $OUT/r.tgz
grep -h "s4s_alt nfe\|ld3 nfe\|s4s nfe" $R/*/log | head -60
