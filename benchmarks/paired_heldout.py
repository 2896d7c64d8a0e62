"""How precisely held-out seeds compare two learned solvers: a paired difference with its error.

    python benchmarks/paired_heldout.py --model gmm --nfe 8 --held-out 100000 --blocks 10

Learns `s4s_alt` and `ld3` (default options, the teacher pairs of `learn_table.py`), samples
both on the same held-out seeds and prints their RMSE to the teacher on the first block of
seeds and on all of them, the mean paired difference of per-sample squared errors with its
standard error, and that difference on each block: the blocks show how often a held-out set
of one block's size would rank the two the other way.
"""

from __future__ import annotations

import argparse
import logging

import torch

import s4s
from learn_table import MODELS, PAIRS, labels
from s4s import zoo
from s4s.teacher import TeacherSpec, generate_teacher

log = logging.getLogger("paired_heldout")


def paired(errors: dict[str, torch.Tensor], blocks: int) -> dict:
    """RMSEs and the paired difference of two methods' per-sample squared errors ``[N]``."""
    (a, ea), (b, eb) = errors.items()
    d = (ea - eb).double()
    size = len(d) // blocks
    return {
        "rmse_first_block": {a: float(ea[:size].mean().sqrt()), b: float(eb[:size].mean().sqrt())},
        "rmse_all": {a: float(ea.mean().sqrt()), b: float(eb.mean().sqrt())},
        "mse_diff": float(d.mean()), "mse_diff_se": float(d.std() / len(d) ** 0.5),
        "block_diffs": [float(d[i * size:(i + 1) * size].mean()) for i in range(blocks)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gmm", choices=list(MODELS))
    parser.add_argument("--nfe", type=int, default=8)
    parser.add_argument("--held-out", type=int, default=100_000)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--methods", nargs=2, default=["s4s_alt", "ld3"])
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.blocks < 1 or args.held_out < 2 * args.blocks:
        parser.error("--held-out must be at least twice --blocks")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    model = MODELS[args.model]("cpu")
    shape, spec = zoo.sample_shape(model), TeacherSpec()
    dtype = torch.float64 if args.model == "gmm" else torch.float32
    cond = labels if args.model == "digits-cfg2" else (lambda seeds: None)
    seeds = list(range(PAIRS.get(args.model, 512)))
    held_seeds = list(range(1_000_000, 1_000_000 + args.held_out))
    train = generate_teacher(model, seeds, shape, spec, cond=cond(seeds), dtype=dtype, cache_dir=args.cache)
    held = generate_teacher(model, held_seeds, shape, spec, cond=cond(held_seeds), dtype=dtype, cache_dir=args.cache)
    errors = {}
    for method in args.methods:
        solver = s4s.learn(model, args.nfe, method=method, seed=0, teacher_data=train, dtype=dtype)
        with torch.no_grad():
            x = torch.cat([solver.sample(model, held.noise[i:i + 1000], None if held.cond is None else held.cond[i:i + 1000])
                           for i in range(0, len(held), 1000)])
        errors[method] = (x - held.samples).double().pow(2).flatten(1).mean(1)
    res = paired(errors, args.blocks)
    a, b = args.methods
    print(f"{args.model} NFE {args.nfe}: RMSE on the first {args.held_out // args.blocks:,} seeds "
          f"{a} {res['rmse_first_block'][a]:.4f}, {b} {res['rmse_first_block'][b]:.4f}; on all {args.held_out:,} "
          f"{a} {res['rmse_all'][a]:.4f}, {b} {res['rmse_all'][b]:.4f}")
    print(f"paired MSE difference {a} - {b}: {res['mse_diff']:.3g} (standard error {res['mse_diff_se']:.2g}); "
          f"per block: {', '.join(f'{v:.2g}' for v in res['block_diffs'])}")


if __name__ == "__main__":
    main()
