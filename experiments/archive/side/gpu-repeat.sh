#!/usr/bin/env bash
# On a lent GPU machine, from the repo root: does a learn on the GPU repeat bit for bit, in turn
# and side by side? s4s_alt, NFE 5, digits, 256 teacher pairs (made once), iters=200, twice each.
export PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name --format=csv,noheader
python3 - <<'PY'
import logging, time, torch, s4s
from s4s.teacher import TeacherSpec, generate_teacher
logging.basicConfig(level=logging.WARNING)
model = s4s.zoo.load("digits", device="cuda")
data = generate_teacher(model, list(range(256)), (1, 8, 8), TeacherSpec(), device="cuda")
runs = []
for parallel in (False, False, True, True):
    torch.cuda.synchronize(); start = time.perf_counter()
    s = s4s.learn(model, 5, teacher_data=data, iters=200, device="cuda", parallel=parallel)
    torch.cuda.synchronize()
    runs.append(s)
    print(f"parallel={parallel}: {time.perf_counter() - start:.1f} s, score {s.meta['metrics']['score_best']:.8g}", flush=True)
same = lambda a, b: all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("sigmas", "model_sigmas", "a", "b"))
print("in turn twice, the same bits:", same(runs[0], runs[1]), "| side by side twice:", same(runs[2], runs[3]),
      "| in turn vs side by side:", same(runs[0], runs[2]))
PY
