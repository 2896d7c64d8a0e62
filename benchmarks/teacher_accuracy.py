"""How far a teacher of fewer NFE lies from a finer one, per bundled model.

    python benchmarks/teacher_accuracy.py [--models digits gmm ...] [--nfe 50 100 200] [--fine 400] [--seeds 200]

For each model: UniPC-3 on the Karras grid (``TeacherSpec``) at each ``--nfe`` against the same
teacher at ``--fine`` NFE, from the same held-out noise (seeds 1,000,000 + i; labels ``seed % 10``
for guided ``digits``). Prints one line per model and NFE: the RMSE between the two.
"""

from __future__ import annotations

import argparse

from learn_table import MODELS, teacher_pairs
from s4s import metrics
from s4s.teacher import TeacherSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--nfe", nargs="+", type=int, default=[50, 100, 200])
    parser.add_argument("--fine", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    seeds = list(range(1_000_000, 1_000_000 + args.seeds))
    for name in args.models:
        model = MODELS[name]("cpu")
        fine = teacher_pairs(name, model, seeds, None, spec=TeacherSpec(nfe=args.fine))
        for nfe in args.nfe:
            coarse = teacher_pairs(name, model, seeds, None, spec=TeacherSpec(nfe=nfe))
            print(f"{name} {nfe} NFE: RMSE {metrics.rmse(coarse.samples, fine.samples):.2e} to {args.fine} NFE", flush=True)


if __name__ == "__main__":
    main()
