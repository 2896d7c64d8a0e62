"""Held-out quality against the learning budget: ``s4s.learn`` at several ``StepBudget`` multiples.

    python benchmarks/budget_curve.py [--model digits] [--nfe 6] [--budgets 0.5 1 2 4 8] [--out experiments/budget-curve]

One learn per budget (the default method and options otherwise; the table's teacher pairs),
scored on the table's held-out seeds. Writes ``budget-<model>-nfe<N>.json`` and a plot of
held-out RMSE against the learn's cost (model-evaluation units, teacher included), with the best
hand-designed solver as a line.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

import s4s
from learn_table import GRIDS, HELD_OUT, MODELS, PAIRS, labels, teacher_pairs
from s4s import metrics
from s4s._atomic import atomic_path, write_text_atomic
from s4s.learn import CANDIDATE_SOLVERS, LearnConfig, StepBudget
from s4s.learn.config import NUM_SAMPLES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits", choices=list(MODELS))
    parser.add_argument("--nfe", type=int, default=6)
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.5, 1, 2, 4, 8])
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--out", default="experiments/budget-curve")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = MODELS[args.model]("cpu")
    data = teacher_pairs(args.model, model, list(range(PAIRS.get(args.model, NUM_SAMPLES))), args.cache,
                         spec=LearnConfig().teacher)
    held = teacher_pairs(args.model, model, list(range(1_000_000, 1_000_000 + HELD_OUT.get(args.model, 1_000))),
                         args.cache)

    def heldout(solver: s4s.Solver) -> float:
        with torch.no_grad():
            x = torch.cat([solver.sample(model, held.noise[i:i + 5000], None if held.cond is None else held.cond[i:i + 5000])
                           for i in range(0, len(held), 5000)])
        return metrics.rmse(x, held.samples)

    hand = min((heldout(s4s.make_solver(b, args.nfe, g, model)), f"{b}/{g}") for b in CANDIDATE_SOLVERS for g in GRIDS)
    rows = []
    for budget in args.budgets:
        solver = s4s.learn(model, args.nfe, teacher_data=data, cond=labels if data.cond is not None else None,
                           config=LearnConfig(dtype=data.noise.dtype, budget=StepBudget(budget)))
        rows.append({"budget": budget, "units": solver.meta["cost"]["units"], "steps": solver.meta["steps"],
                     "rmse": heldout(solver), "seconds": solver.meta["seconds"]})
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"budget-{args.model}-nfe{args.nfe}"
    write_text_atomic(out / f"{stem}.json", json.dumps({"hand": {"solver": hand[1], "rmse": hand[0]}, "runs": rows},
                                                       indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    ax.plot([r["units"] for r in rows], [r["rmse"] for r in rows], "o-", label="s4s_alt")
    for r in rows:
        ax.annotate(f"{r['budget']:g}x", (r["units"], r["rmse"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(hand[0], color="gray", ls="--", label=f"best hand-designed ({hand[1]})")
    ax.set_xscale("log")
    ax.set_xlabel("learning cost, teacher included (model-evaluation units)")
    ax.set_ylabel("held-out RMSE to teacher")
    ax.set_title(f"{args.model}, NFE {args.nfe}: quality against budget")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out / f"{stem}.png", suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


if __name__ == "__main__":
    main()
