"""How precisely held-out seeds compare two learned solvers: a paired difference with its error.

    python benchmarks/paired_heldout.py --model gmm --nfe 8 --held-out 100000 --blocks 10 [--num-samples N]

Learns `s4s_alt` and `ld3` (default options, the teacher pairs of `learn_table.py`), samples
both on the same held-out seeds and prints their RMSE to the teacher on the first block of
seeds and on all of them, the mean paired difference of per-sample squared errors with its
standard error, and that difference on each block: the blocks show how often a held-out set
of one block's size would rank the two the other way. It also prints the share of each
method's squared error that its worst 1% of seeds carry: how far a few outliers decide the RMSE.
Last, the same paired difference on the learner's own validation pairs (the split `learn` makes
with seed 0): what the learner could have seen of the held-out difference.
"""

from __future__ import annotations

import argparse
import logging

import torch

import s4s
from learn_table import MODELS, PAIRS, teacher_pairs
from s4s.learn import split_pairs
from s4s.learn.config import NUM_SAMPLES

def worst_share(e: torch.Tensor) -> float:
    """The share of the summed squared error ``e`` ``[N]`` that its worst 1% of samples (at least
    one) carry: near 0.01 when errors are even, near 1 when a few outliers decide the RMSE."""
    k = max(1, len(e) // 100)
    return float(e.double().topk(k).values.sum() / e.double().sum().clamp_min(1e-300))


def paired(errors: dict[str, torch.Tensor], blocks: int) -> dict:
    """RMSEs and the paired difference of two methods' per-sample squared errors ``[N]``."""
    (a, ea), (b, eb) = errors.items()
    d = (ea - eb).double()
    size = len(d) // blocks
    return {
        "worst_share": {a: worst_share(ea), b: worst_share(eb)},
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
    parser.add_argument("--num-samples", type=int, help="teacher pairs to learn from (default: learn_table.py's)")
    args = parser.parse_args()
    if args.blocks < 1 or args.held_out < 2 * args.blocks:
        parser.error("--held-out must be at least twice --blocks")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    model = MODELS[args.model]("cpu")
    dtype = torch.float64 if args.model == "gmm" else torch.float32
    seeds = list(range(args.num_samples or PAIRS.get(args.model, NUM_SAMPLES)))
    held_seeds = list(range(1_000_000, 1_000_000 + args.held_out))
    train = teacher_pairs(args.model, model, seeds, args.cache, spec=s4s.LearnConfig().teacher)
    held = teacher_pairs(args.model, model, held_seeds, args.cache)  # against the reference teacher
    _, val = split_pairs(train, 0.2, torch.Generator().manual_seed(0))  # learn's split (seed 0, val_fraction 0.2)
    errors, val_errors = {}, {}
    for method in args.methods:
        solver = s4s.learn(model, args.nfe, method=method, seed=0, teacher_data=train, config=s4s.LearnConfig(dtype=dtype))
        with torch.no_grad():
            x = torch.cat([solver.sample(model, held.noise[i:i + 1000], None if held.cond is None else held.cond[i:i + 1000])
                           for i in range(0, len(held), 1000)])
        errors[method] = (x - held.samples).double().pow(2).flatten(1).mean(1)
        with torch.no_grad():
            v = solver.sample(model, val.noise, val.cond)
        val_errors[method] = (v - val.samples).double().pow(2).flatten(1).mean(1)
    res = paired(errors, args.blocks)
    a, b = args.methods
    print(f"{args.model} NFE {args.nfe}: RMSE on the first {args.held_out // args.blocks:,} seeds "
          f"{a} {res['rmse_first_block'][a]:.4f}, {b} {res['rmse_first_block'][b]:.4f}; on all {args.held_out:,} "
          f"{a} {res['rmse_all'][a]:.4f}, {b} {res['rmse_all'][b]:.4f}")
    print(f"paired MSE difference {a} - {b}: {res['mse_diff']:.3g} (standard error {res['mse_diff_se']:.2g}); "
          f"per block: {', '.join(f'{v:.2g}' for v in res['block_diffs'])}")
    print(f"share of the squared error on the worst 1% of seeds: {a} {res['worst_share'][a]:.2f}, "
          f"{b} {res['worst_share'][b]:.2f}")
    on_val = paired(val_errors, 1)
    print(f"on the learner's {len(val)} validation pairs: RMSE {a} {on_val['rmse_all'][a]:.4f}, {b} "
          f"{on_val['rmse_all'][b]:.4f}; paired MSE difference {on_val['mse_diff']:.3g} (standard error "
          f"{on_val['mse_diff_se']:.2g}, z {on_val['mse_diff'] / max(on_val['mse_diff_se'], 1e-300):.2f})")


if __name__ == "__main__":
    main()
