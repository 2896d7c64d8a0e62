"""How clearly the teacher pairs pick the learner's start: the leading hand-designed candidates
and their paired differences from the best.

    python benchmarks/start_ties.py [--models digits digits-cfg2 ...] [--nfe 5 6 10] [--leaders 4]

`s4s.learn` starts from the (solver, grid) candidate with the lowest mean distance (`l2`) to
the teacher over its pairs (`learn_table.py`'s: 512, the mixture 4,096). For each model and NFE
this prints the best `--leaders` candidates over all pairs with their mean distance, the mean
paired difference of per-pair distances from the best, its standard error and their ratio z:
a z below 2 means the pairs cannot tell that candidate from the best (`benchmarks/HISTORY.md`,
"Starting points").
"""

from __future__ import annotations

import argparse
import logging

import torch
from torch import Tensor

import s4s
from learn_table import MODELS, PAIRS, teacher_pairs
from s4s.learn import CANDIDATE_SCHEDULES, CANDIDATE_SOLVERS
from s4s.learn.objectives import l2


def leaders(distances: dict[str, Tensor], k: int) -> list[dict]:
    """The ``k`` candidates of lowest mean per-pair distance ``[N]``, best first, each with its
    mean, and its paired difference from the best with that difference's standard error."""
    ranked = sorted(distances, key=lambda name: float(distances[name].double().mean()))[:k]
    best = distances[ranked[0]].double()
    out = []
    for name in ranked:
        d = distances[name].double() - best
        se = float(d.std() / len(d) ** 0.5) if name != ranked[0] else 0.0
        out.append({"candidate": name, "mean": float(distances[name].double().mean()), "diff": float(d.mean()),
                    "se": se, "z": float(d.mean()) / se if se > 0 else 0.0})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--nfe", nargs="+", type=int, default=[3, 4, 5, 6, 8, 10])
    parser.add_argument("--leaders", type=int, default=4)
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(args.threads)
    for name in args.models:
        model = MODELS[name]("cpu")
        data = teacher_pairs(name, model, list(range(PAIRS.get(name, 512))), args.cache)
        for nfe in args.nfe:
            distances = {}
            for base in CANDIDATE_SOLVERS:
                for schedule in CANDIDATE_SCHEDULES:
                    try:
                        solver = s4s.make_solver(base, nfe, schedule, model)
                    except ValueError:  # a pair this NFE does not allow; learn() skips it too
                        continue
                    with torch.no_grad():
                        x = torch.cat([solver.sample(model, data.noise[i:i + 512],
                                                     None if data.cond is None else data.cond[i:i + 512])
                                       for i in range(0, len(data), 512)])
                    distances[f"{base}/{schedule}"] = l2(x, data.samples)
            ranked = leaders(distances, args.leaders)
            print(f"{name} NFE {nfe}: {ranked[0]['candidate']} {ranked[0]['mean']:.4g}; " + "; ".join(
                f"{r['candidate']} {r['mean']:.4g} " + (f"(+{r['diff']:.2g}, z {r['z']:.1f})" if r["se"] else "(the same samples)")
                for r in ranked[1:]), flush=True)


if __name__ == "__main__":
    main()
