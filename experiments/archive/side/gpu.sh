#!/usr/bin/env bash
# On a lent GPU machine, from the repo root: the CUDA tests and the side-by-side tests, then the
# cost cell (s4s_alt, NFE 5, digits, 512 teacher pairs made afresh, teacher included) learned
# on the GPU in turn (the default there) and side by side (parallel=True), timed alone.
export PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c "import torch, safetensors; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'threads', torch.get_num_threads())" || exit 1
git log --oneline -1 2>/dev/null
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_threads.py 2>&1 | tail -4
python3 - <<'PY'
import logging, time, torch, s4s
logging.basicConfig(level=logging.WARNING)
model = s4s.zoo.load("digits", device="cuda")
runs = {}
for parallel in (False, True):
    torch.cuda.synchronize(); start = time.perf_counter()
    runs[parallel] = s = s4s.learn(model, 5, device="cuda", parallel=parallel)
    torch.cuda.synchronize()
    print(f"parallel={parallel}: {time.perf_counter() - start:.1f} s teacher and learning, score "
          f"{s.meta['metrics']['score_best']:.6g}, from {s.meta['base']}/{s.meta['schedule']}", flush=True)
same = all(torch.equal(getattr(runs[True], k), getattr(runs[False], k)) for k in ("sigmas", "model_sigmas", "a", "b"))
print("side by side gives the in-turn solver bit for bit:", same)
PY
