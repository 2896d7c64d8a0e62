"""What ``s4s.learn(model, nfe)`` spends with its defaults, per bundled model and NFE.

    python benchmarks/learn_cost.py [--models gmm digits ...] [--nfe 4 5 6 8] [--out experiments/learning-cost]

The unit is one row through the model: 1 without autograd, 3 with (``s4s.learn.budget``).
Teacher pairs are charged at rows x teacher NFE (1,024 x 100 = 102,400 with the defaults); the
issue's target is at most 3x that (307,200) for the whole learn, teacher included. The learner
makes its own teacher pairs, as a user's first call does (cached under --cache, which changes
no figure: cached pairs are charged the same). Results go to stdout and, as JSON, to --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

import s4s
from s4s import zoo
from s4s._atomic import write_text_atomic

MODELS = {
    "gmm": lambda: zoo.load("gmm", dim=2),
    "digits": lambda: zoo.load("digits"),
    "digits-cfg2": lambda: zoo.load("digits", guidance=2.0),
    "digits-ddpm": lambda: zoo.load("digits-ddpm"),
    "digits-flow": lambda: zoo.load("digits-flow"),
}
TARGET = 307_200  # the learner issue's bound: 3x the default teacher's 102,400 units


def labels(seeds: list[int]) -> torch.Tensor:
    return torch.tensor([s % 10 for s in seeds])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--nfe", nargs="+", type=int, default=[4, 5, 6, 8])
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--out", default="experiments/learning-cost")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models:
        model = MODELS[name]()
        for nfe in args.nfe:
            start = time.perf_counter()
            solver = s4s.learn(model, nfe, cond=labels if name == "digits-cfg2" else None,
                               config=s4s.LearnConfig(cache_dir=args.cache))
            cost = solver.meta["cost"]
            row = {"model": name, "nfe": nfe, **cost, "target": TARGET, "met": cost["units"] <= TARGET,
                   "x_teacher": round(cost["units"] / (TARGET / 3), 2), "wall_s": round(time.perf_counter() - start, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            write_text_atomic(out / "learn_cost.json", json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
