"""One learn on one bundled model and NFE, scored on held-out seeds: for comparing recipes and options.

    python benchmarks/learn_cell.py MODEL NFE [METHOD] ['{"plan": "joint", "lr": 0.1}']

The teacher pairs are the table's (the learner's default teacher, 1,024 pairs, the mixture 8,192;
`benchmarks/learn_table.py`), the held-out figures against the reference teacher; the
optional JSON object is passed to `s4s.LearnConfig`, but for these keys: "seed" goes to
`s4s.learn`, "pairs" is the number of teacher pairs and "teacher_nfe" the learning teacher's NFE
(`'{"pairs": 512, "teacher_nfe": 200}'`: half the pairs at the same teacher cost), and "rank": N
ranks the starts on N validation pairs (`RankStarts(pairs=N)`).
Logs every selection check (phase@step: validation distance / mean training minibatch distance
since the check before) and prints one line: held-out RMSE to the teacher (1,000 seeds, the
mixture 100,000), the learn's cost in model-evaluation units, its time and its start.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import torch

import s4s
from learn_table import HELD_OUT, MODELS, PAIRS, config_fields, teacher_pairs
from s4s.learn import LearnEvent
from s4s.learn.config import NUM_SAMPLES, TEACHER_NFE
from s4s.teacher import TeacherSpec
from s4s import metrics


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    name, nfe = sys.argv[1], int(sys.argv[2])
    method = sys.argv[3] if len(sys.argv) > 3 else "s4s_alt"
    options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    shown = dict(options)
    seed = int(options.pop("seed", 0))  # the learner's seed (split and minibatch order), not a LearnConfig field
    pairs = int(options.pop("pairs", PAIRS.get(name, NUM_SAMPLES)))
    teacher = TeacherSpec(nfe=int(options.pop("teacher_nfe", TEACHER_NFE)))
    model = MODELS[name]("cpu")
    data = teacher_pairs(name, model, list(range(pairs)), ".cache/teacher", spec=teacher)
    held = teacher_pairs(name, model, list(range(1_000_000, 1_000_000 + HELD_OUT.get(name, 1_000))), ".cache/teacher")
    dtype = data.noise.dtype
    start = time.perf_counter()
    config = s4s.LearnConfig(dtype=dtype, teacher=teacher, **config_fields(options))
    losses: list[float] = []

    def report(event: LearnEvent) -> None:
        losses.append(event.loss if event.loss is not None else float("nan"))
        if event.val is not None:
            logging.info("check %s@%d: %.4g / %.4g", event.phase, event.iteration, event.val, sum(losses) / len(losses))
            losses.clear()

    solver = s4s.learn(model, nfe, method, seed=seed, teacher_data=data, config=config, callback=report,
                       cond=None if data.cond is None else (lambda seeds: torch.tensor([s % 10 for s in seeds])))
    with torch.no_grad():
        x = torch.cat([solver.sample(model, held.noise[i:i + 5000], None if held.cond is None else held.cond[i:i + 5000])
                       for i in range(0, len(held), 5000)])
    print(f"RESULT {name} nfe={nfe} {method} {json.dumps(shown)} heldout={metrics.rmse(x, held.samples):.4f} "
          f"cost={solver.meta['cost']['units']} secs={time.perf_counter() - start:.0f} "
          f"start={solver.meta['base']}/{solver.meta['schedule']}")


if __name__ == "__main__":
    main()
