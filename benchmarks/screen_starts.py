"""Which start `s4s.learn`'s screen picks in each cell, and by how much.

    python benchmarks/screen_starts.py [--models digits digits-cfg2 ...] [--nfe 5 6 10]

For each model and NFE (`learn_table.py`'s teacher pairs) this runs the learner's screen as
`learn(method="ld3", plan="grid:1")` does before its one step, and prints the screened starts
with their probe scores (the hand-designed leader first) and whether the screen moves the start
off the leader: only those cells' grid-learning runs (`s4s_alt`, `ld3`, `joint`) change when
`learn(screen=2)` replaces `screen=1` (`benchmarks/HISTORY.md`, "Screening starts").
"""

from __future__ import annotations

import argparse
import logging

import torch

import s4s
from learn_table import MODELS, PAIRS, teacher_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--nfe", nargs="+", type=int, default=[3, 4, 5, 6, 8, 10])
    parser.add_argument("--screen", type=int, default=2, help="learn(screen=...)")
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(args.threads)
    for name in args.models:
        model = MODELS[name]("cpu")
        data = teacher_pairs(name, model, list(range(PAIRS.get(name, 512))), args.cache)
        for nfe in args.nfe:
            solver = s4s.learn(model, nfe, "ld3", seed=0, teacher_data=data, dtype=data.noise.dtype, plan="grid:1",
                               screen=args.screen)
            probes = solver.meta["screen"]
            leader, picked = next(iter(probes)), f"{solver.meta['base']}/{solver.meta['schedule']}"
            print(f"{name} NFE {nfe}: " + "; ".join(f"{k} {v:.4g}" for k, v in probes.items())
                  + (f" -> moves to {picked}" if picked != leader else " -> keeps the leader"), flush=True)


if __name__ == "__main__":
    main()
