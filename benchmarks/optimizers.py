"""Quality against learning cost for the optimisers tried for the learner (issue 28, item 2).

    python benchmarks/optimizers.py [--model digits] [--nfe 5] [--out experiments/optimizers]

From one start (the best hand-designed solver on the validation pairs, as the learner picks
it), every run fits the joint parametrisation (grid, decoupled levels and coefficients:
``s4s.learn.params.SolverParams``) and reports, at points along the way, the units spent (one
model row: 1 without autograd, 3 with; ranking the starts included, teacher not) and the RMSE
to the teacher on 1,000 held-out seeds:

* ``lbfgs-P``: the fit engine (``s4s.learn.lbfgs``: full-batch L-BFGS) on ``P`` training pairs;
* ``adam-B``: Adam at step size 0.05 on minibatches of ``B`` training pairs, half-cosine decay
  over the run's steps (the optimiser of ``s4s.learn`` today, without its other layers).

Writes ``optimizers-<model>-nfe<N>.json`` and a plot of held-out RMSE against units.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch

from s4s import metrics, zoo
from s4s._atomic import write_text_atomic
from s4s.learn.budget import Cost, counted
from s4s.learn.engine import flat, unflat
from s4s.learn.lbfgs import FitConfig, fit, init_state
from s4s.learn.learner import CANDIDATE_SCHEDULES, CANDIDATE_SOLVERS
from s4s.learn.objectives import get_distance
from s4s.learn.pairs import Pairs, split_pairs
from s4s.learn.params import SolverParams
from s4s.solvers import make_solver
from s4s.teacher import TeacherSpec, generate_teacher

MODELS = {"gmm": lambda: zoo.load("gmm", dim=2), "digits": lambda: zoo.load("digits"),
          "digits-flow": lambda: zoo.load("digits-flow"), "digits-ddpm": lambda: zoo.load("digits-ddpm")}
log = logging.getLogger("optimizers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits", choices=list(MODELS))
    parser.add_argument("--nfe", type=int, default=5)
    parser.add_argument("--runs", nargs="+", default=["lbfgs-128:150", "lbfgs-410:60", "adam-32:800", "adam-64:600"],
                        help="NAME-PAIRS:STEPS for each run")
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--out", default="experiments/optimizers")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raw = MODELS[args.model]()
    shape = zoo.sample_shape(raw)
    dtype = torch.float64 if args.model == "gmm" else torch.float32
    data = generate_teacher(raw, range(512), shape, TeacherSpec(), dtype=dtype, cache_dir=args.cache)
    held = generate_teacher(raw, range(1_000_000, 1_001_000), shape, TeacherSpec(), dtype=dtype, cache_dir=args.cache)
    train, val = split_pairs(data, 0.2, torch.Generator().manual_seed(0))
    dist = get_distance("l2")

    def heldout(solver) -> float:  # type: ignore[no-untyped-def]
        with torch.no_grad():
            return metrics.rmse(solver.sample(raw, held.noise), held.samples)

    results = {}
    for run in args.runs:
        name, _, steps = run.partition(":")
        kind, _, size = name.partition("-")
        cost = Cost()
        model = counted(raw, cost)
        ranks = {}
        for b in CANDIDATE_SOLVERS:
            for s in CANDIDATE_SCHEDULES:
                try:
                    ranks[f"{b}/{s}"] = Pairs(model, val, dist).mean(make_solver(b, args.nfe, s, model))
                except ValueError:
                    pass
        start = min(ranks, key=ranks.get)
        base, sched = start.split("/")
        params = SolverParams(base, make_solver(base, args.nfe, sched, model).grid, sigma_floor=model.sigma_min)
        ps = [p for g in ("grid", "coef") for p in params.groups()[g]]
        curve = [(cost.learn_units, heldout(params.solver()))]
        began = time.perf_counter()
        if kind == "lbfgs":
            pairs = Pairs(model, train.subset(range(min(int(size), len(train)))), dist)

            def load(x: torch.Tensor) -> None:
                with torch.no_grad():
                    for p, v in zip(ps, unflat(x, ps)):
                        p.copy_(v)

            def objective(x: torch.Tensor) -> tuple[float, torch.Tensor]:
                load(x)
                value, grads = pairs.value_and_grad(params.solver, ps)
                return value, flat(grads)

            def record(state) -> None:  # type: ignore[no-untyped-def]
                if state.step % 10 == 0:
                    load(state.x)
                    curve.append((cost.learn_units, heldout(params.solver())))

            state = init_state(flat(ps), objective, math.inf)
            res = fit(objective, state, FitConfig(steps=int(steps), patience=10**6), on_step=record)
            load(res.state.x)
        else:
            opt = torch.optim.Adam(ps, lr=0.05)
            gen = torch.Generator().manual_seed(0)
            total = int(steps)
            for i in range(total):
                for group in opt.param_groups:
                    group["lr"] = 0.05 * 0.5 * (1 + math.cos(math.pi * i / total))
                idx = torch.randint(0, len(train), (int(size),), generator=gen)
                _, grads = Pairs(model, train.subset(idx), dist).value_and_grad(params.solver, ps)
                for p, g in zip(ps, grads):
                    p.grad = g
                opt.step()
                if (i + 1) % 50 == 0:
                    curve.append((cost.learn_units, heldout(params.solver())))
        curve.append((cost.learn_units, heldout(params.solver())))
        results[run] = {"start": start, "curve": curve, "seconds": round(time.perf_counter() - began, 1)}
        log.info("%s from %s: held-out RMSE %.4f -> %.4f at %d units (%.0f s)", run, start, curve[0][1],
                 curve[-1][1], curve[-1][0], time.perf_counter() - began)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"optimizers-{args.model}-nfe{args.nfe}"
    write_text_atomic(out / f"{stem}.json", json.dumps(results, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for run, r in results.items():
        ax.plot([u for u, _ in r["curve"]], [e for _, e in r["curve"]], ".-", label=run)
    ax.axvline(3 * 512 * 200 - 512 * 200, color="k", ls="--", lw=0.8, label="307,200 target less the teacher")
    ax.set_xlabel("learning cost (model-evaluation units)")
    ax.set_ylabel("held-out RMSE to the teacher")
    ax.set_yscale("log")
    ax.set_title(f"{args.model}, NFE {args.nfe}: quality against cost")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png")


if __name__ == "__main__":
    main()
