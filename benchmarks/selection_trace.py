"""How well does each selection score predict held-out error along one learning run?

    python benchmarks/selection_trace.py [--model digits] [--nfe 8] [--method s4s_alt] [--select val]
                                         [--every 50] [--out benchmarks/results/selection]

Learns once (512 teacher pairs, seed 0), keeps the solver scored at every check, then measures
each of them on the training pairs, the validation pairs and 1,000 held-out seeds (10,000 for
the mixture). Prints, per check, the three mean distances (per-sample MSE, the learner's "l2")
and the all-pairs score, then the Spearman rank correlation of each score with the held-out
distance and the held-out distance of the state each score would keep.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

import s4s
from s4s._atomic import write_text_atomic
from s4s.learn import METHODS, split_pairs
from s4s.teacher import TeacherData, TeacherSpec, generate_teacher

from learn_table import HELD_OUT, MODELS, labels

log = logging.getLogger("selection_trace")


def mse(model: s4s.Denoiser, solver: s4s.Solver, data: TeacherData) -> float:
    """Mean over samples of the per-sample mean squared error to the teacher."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(data), 500):
            cond = None if data.cond is None else data.cond[i:i + 500]
            x = solver.sample(model, data.noise[i:i + 500], cond)
            total += float(((x - data.samples[i:i + 500]) ** 2).flatten(1).mean(1).sum())
    return total / len(data)


def spearman(a: list[float], b: list[float]) -> float:
    ra = torch.tensor(a).argsort().argsort().double()
    rb = torch.tensor(b).argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits", choices=list(MODELS))
    parser.add_argument("--nfe", type=int, default=8)
    parser.add_argument("--method", default="s4s_alt", choices=list(METHODS))
    parser.add_argument("--select", default="all", choices=["all", "val"])
    parser.add_argument("--every", type=int, default=50, help="steps between checks (learn's val_every)")
    parser.add_argument("--num-samples", type=int, default=512)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/selection")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = MODELS[args.model]("cpu")
    shape = s4s.zoo.sample_shape(model)
    dtype = torch.float64 if args.model == "gmm" else torch.float32
    cond_fn = labels if args.model == "digits-cfg2" else None
    spec = TeacherSpec()

    def teacher(seeds: list[int]) -> TeacherData:
        return generate_teacher(model, seeds, shape, spec, cond=None if cond_fn is None else cond_fn(seeds),
                                dtype=dtype, cache_dir=args.cache)

    data = teacher(list(range(args.num_samples)))
    held = teacher(list(range(1_000_000, 1_000_000 + HELD_OUT.get(args.model, 1_000))))
    checks = []
    learned = s4s.learn(model, args.nfe, method=args.method, seed=0, teacher_data=data, dtype=dtype,
                        select=args.select, val_every=args.every, val_fraction=args.val_fraction,
                        callback=lambda e: checks.append(e) if e.solver is not None else None)
    train, val = split_pairs(data, args.val_fraction, torch.Generator().manual_seed(0))  # the learner's split
    if abs(mse(model, learned, val) - learned.meta["metrics"]["val_best"]) > 1e-4 * learned.meta["metrics"]["val_best"]:
        raise RuntimeError("the reconstructed validation split differs from the learner's")
    rows = []
    for e in checks:
        tr, va, ho = mse(model, e.solver, train), mse(model, e.solver, val), mse(model, e.solver, held)
        rows.append({"phase": e.phase, "step": e.iteration, "train": tr, "val": va, "held": ho,
                     "all": (tr * len(train) + va * len(val)) / len(data)})
        log.info("%-8s %5d  train %.5f  val %.5f  all %.5f  held-out %.5f", e.phase, e.iteration, tr, va,
                 rows[-1]["all"], ho)
    held_out = [r["held"] for r in rows]
    summary = {"model": args.model, "nfe": args.nfe, "method": args.method, "select": args.select,
               "checks": len(rows), "learned_held": mse(model, learned, held), "best_held": min(held_out)}
    for key in ("val", "train", "all"):
        kept = min(rows, key=lambda r: r[key])
        summary[key] = {"spearman_with_held": spearman([r[key] for r in rows], held_out),
                        "kept_step": kept["step"], "kept_held": kept["held"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.model}-nfe{args.nfe}-{args.method}-{args.select}"
    write_text_atomic(out / f"{stem}.json", json.dumps({"summary": summary, "checks": rows}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
