"""Learned against hand-designed solvers, per bundled model and NFE, on held-out seeds.

    python benchmarks/learn_table.py [--models gmm digits ...] [--nfe 3 4 5 6 8 10] [--out benchmarks/results]
                                     [--plan grid:800,joint:400,coef:400] [--select all|val]

For each model and NFE: the best hand-designed solver over {DDIM, iPNDM, DPM-Solver++(2M, 3M),
UniPC, DEIS} x {Karras, log-SNR} (and, as a stronger reference, over the learner's 36 starting
candidates, which add time-uniform grids and grids ending at 0) and the learned `s4s`,
`s4s_alt`, `ld3`, `joint` solvers (512 teacher pairs, 4,096 for the Gaussian mixture; default
options) — RMSE to the teacher on
1,000 held-out seeds (100,000 for the Gaussian mixture), FD-digits for the digits models, and
learning time (teacher generation is shared and reported once).
`s4s` is also compared with the best hand-designed solver on its own (fixed) grid, and the
table gives the share of the FD-digits gap between the best hand-designed solver and the
teacher that `s4s_alt` closes. `benchmarks/merge_tables.py` joins runs split over processes
or machines into one table.
`--plan` replaces `s4s_alt`'s optimisation phases (see `s4s.learn.parse_plan`), to compare plans;
`--select val` keeps each method's best state on validation pairs alone (the learner before
the all-pairs score), to compare selections. `--start deis/logsnr` makes every method start
from that hand-designed solver instead of choosing its start, to compare starts; `--starts 2`
learns from the two leading starts and keeps the better-scoring run; `--screen K` tries the K
leading starts with a short probe each and learns from the best (`learn(screen=K)`; 2 by default,
as `learn`'s; `--screen 1` is the learner before the screen).
Results go to stdout and, as markdown and JSON, to --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

import s4s
from s4s import metrics, zoo
from s4s._atomic import write_text_atomic
from s4s.learn import CANDIDATE_SCHEDULES, CANDIDATE_SOLVERS, parse_start
from s4s.teacher import TeacherData, TeacherSpec, generate_teacher, teacher_gap

log = logging.getLogger("learn_table")

MODELS = {  # name -> loader(device)
    "gmm": lambda device: zoo.load("gmm", dim=2),  # analytic: computes on its input's device
    "digits": lambda device: zoo.load("digits", device=device),
    "digits-cfg2": lambda device: zoo.load("digits", guidance=2.0, device=device),
    "digits-ddpm": lambda device: zoo.load("digits-ddpm", device=device),
    "digits-flow": lambda device: zoo.load("digits-flow", device=device),
}
GRIDS = ("karras", "logsnr")
METHODS = ("s4s", "s4s_alt", "ld3", "joint")
PAIRS = {"gmm": 4096}  # teacher pairs to learn from; default 512. 410 training pairs of the 2-D
# mixture fit its few mode-switching samples rather than the solver (benchmarks/HISTORY.md,
# "Selection score"); 2-D pairs are cheap.
HELD_OUT = {"gmm": 100_000}  # held-out seeds from 1,000,000; default 1,000. The 2-D mixture's error
# sits on the few samples that switch modes: of ten blocks of 10,000 seeds, five ranked two
# learned solvers 1% apart the other way from all 100,000 (benchmarks/HISTORY.md, "Two openings").


def labels(seeds: list[int]) -> torch.Tensor:
    return torch.tensor([s % 10 for s in seeds])


def teacher_pairs(name: str, model: s4s.Denoiser, seeds: list[int], cache: str | None,
                  device: str = "cpu") -> TeacherData:
    """The table's teacher pairs for the bundled model ``name`` at ``seeds`` (float64 for the
    mixture, labels ``seed % 10`` for guided ``digits``), cached under ``cache``."""
    dtype = torch.float64 if name == "gmm" else torch.float32
    return generate_teacher(model, seeds, zoo.sample_shape(model), TeacherSpec(),
                            cond=labels(seeds) if name == "digits-cfg2" else None, dtype=dtype, device=device,
                            cache_dir=cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--nfe", nargs="+", type=int, default=[3, 4, 5, 6, 8, 10])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--num-samples", type=int, help="teacher pairs to learn from (default: 512, the mixture 4,096)")
    parser.add_argument("--plan", help="s4s_alt's phases instead of its own, e.g. grid:800,joint:400,coef:400")
    parser.add_argument("--select", default="all", choices=["all", "val"], help="learn(select=...) for every method")
    parser.add_argument("--warmup", type=float, default=0.0, help="learn(warmup=...) for every method")
    parser.add_argument("--retry-warmup", type=float, default=0.1,
                        help="learn(retry_warmup=...) for every method; equal to --warmup: no second try")
    parser.add_argument("--start", help="BASE/SCHEDULE every method starts from (learn(base=..., schedule=...)) "
                                        "instead of the best candidate on the teacher pairs, e.g. deis/logsnr")
    parser.add_argument("--starts", type=int, default=1,
                        help="learn(starts=...) for every method: learn from that many leading starts, keep the best")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--screen", type=int, default=2,
                        help="learn(screen=...) for every method: screen that many leading starts with a short probe")
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="where models, teacher pairs and learning run (e.g. cuda)")
    args = parser.parse_args()
    try:
        fixed = parse_start(args.start) if args.start else (None, None)
    except ValueError as e:
        parser.error(f"--start: {e}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = TeacherSpec()
    results = []
    for name in args.models:
        model = MODELS[name](args.device)
        shape = zoo.sample_shape(model)
        dtype = torch.float64 if name == "gmm" else torch.float32
        cond_fn = labels if name == "digits-cfg2" else None
        seeds = list(range(PAIRS.get(name, 512) if args.num_samples is None else args.num_samples))
        start = time.perf_counter()
        train = generate_teacher(model, seeds, shape, spec, cond=None if cond_fn is None else cond_fn(seeds),
                                 dtype=dtype, device=args.device, cache_dir=args.cache)
        held_seeds = list(range(1_000_000, 1_000_000 + HELD_OUT.get(name, 1_000)))
        held = generate_teacher(model, held_seeds, shape, spec, cond=None if cond_fn is None else cond_fn(held_seeds),
                                dtype=dtype, device=args.device, cache_dir=args.cache)
        teacher_s = time.perf_counter() - start
        gap = teacher_gap(model, held, spec)
        digits = name != "gmm"
        fd_teacher = metrics.fd_digits(held.samples.cpu()) if digits else None
        log.info("%s: teacher %s, gap to 2x-finer %.2e RMSE, %.0f s for %d pairs; FD-digits of the teacher %s",
                 name, spec.to_dict(), gap, teacher_s, len(train) + len(held), fd_teacher)

        def evaluate(solver: s4s.Solver) -> dict[str, float]:
            with torch.no_grad():
                x = torch.cat([solver.sample(model, held.noise[i:i + 500], None if held.cond is None else held.cond[i:i + 500])
                               for i in range(0, len(held), 500)])
            res = {"rmse": metrics.rmse(x, held.samples)}
            if digits:
                res["fd"] = metrics.fd_digits(x.cpu())
            return res

        for nfe in args.nfe:
            row: dict = {"model": name, "nfe": nfe, "teacher_gap": gap, "fd_teacher": fd_teacher}
            every = {f"{b}/{g}": evaluate(s4s.make_solver(b, nfe, g, model)) for b in CANDIDATE_SOLVERS
                     for g in CANDIDATE_SCHEDULES}
            hand = {k: v for k, v in every.items() if k.split("/")[1] in GRIDS}
            best = min(hand, key=lambda k: hand[k]["rmse"])
            row["hand"] = {"solver": best, **hand[best]}
            best_all = min(every, key=lambda k: every[k]["rmse"])  # also time-uniform and +zero grids
            row["hand_all"] = {"solver": best_all, **every[best_all]}
            for method in args.methods:
                t = time.perf_counter()
                solver = s4s.learn(model, nfe, method=method, seed=0, teacher_data=train, dtype=dtype,
                                   device=args.device, plan=args.plan if method == "s4s_alt" else None,
                                   select=args.select, warmup=args.warmup,
                                   retry_warmup=args.retry_warmup, base=fixed[0], schedule=fixed[1],
                                   starts=args.starts, screen=args.screen, cond=cond_fn, cache_dir=args.cache)
                res = evaluate(solver)
                res["plan"] = solver.meta["plan"]
                res["select"] = args.select
                res["warmup"] = args.warmup
                res["retried"] = solver.meta["retried"]  # the last guard rejected a first try
                if solver.meta["screen"]:
                    res["screen"] = solver.meta["screen"]  # each screened start's probe score
                if "starts" in solver.meta:
                    res["starts"] = solver.meta["starts"]  # each start's run and its score
                res["seconds"] = time.perf_counter() - t
                res["start"] = f"{solver.meta['base']}/{solver.meta['schedule']}"
                if method == "s4s":  # the best hand-designed solver on s4s's own grid
                    grid = solver.meta["schedule"]
                    same = {k: v for k, v in hand.items() if k.endswith("/" + grid)} or {
                        res["start"]: evaluate(s4s.make_solver(solver.meta["base"], nfe, grid, model))}
                    res["hand_same_grid"] = min(v["rmse"] for v in same.values())
                row[method] = res
            results.append(row)
            log.info("%s", json.dumps(row))
            write_text_atomic(out / "learn_table.json", json.dumps(results, indent=1))
            write_text_atomic(out / "learn_table.md", render(results))
    print(render(results))


def render(results: list[dict]) -> str:
    lines = ["| model | NFE | best hand-designed | RMSE | " + " | ".join(f"{m} RMSE" for m in METHODS)
             + " | s4s_alt / hand | s4s / same-grid hand | FD teacher | FD hand | FD s4s_alt | FD gap closed"
             " | s4s_alt s | best of all 36 hand | s4s_alt / it |",
             "|---|---|---|---|" + "---|" * len(METHODS) + "---|---|---|---|---|---|---|---|---|"]
    for r in results:
        h, alt, ha = r["hand"], r.get("s4s_alt", {}), r.get("hand_all")
        cells = [f"{r[m]['rmse']:.4f}" if m in r else "—" for m in METHODS]
        ratio = f"{alt['rmse'] / h['rmse']:.2f}" if alt else "—"
        fd = lambda d: f"{d['fd']:.2f}" if "fd" in d else "—"  # noqa: E731
        fdt = f"{r['fd_teacher']:.2f}" if r.get("fd_teacher") is not None else "—"
        same = r.get("s4s", {}).get("hand_same_grid")
        s4s_same = f"{r['s4s']['rmse'] / same:.2f}" if same else "—"
        closed = (f"{(h['fd'] - alt['fd']) / (h['fd'] - r['fd_teacher']):.0%}"
                  if "fd" in alt and "fd" in h and r.get("fd_teacher") is not None and h["fd"] > r["fd_teacher"] else "—")
        secs = f"{alt['seconds']:.0f}" if alt else "—"
        all_cells = f"{ha['solver']} {ha['rmse']:.4f}" if ha else "—"
        ratio_all = f"{alt['rmse'] / ha['rmse']:.2f}" if ha and alt else "—"
        lines.append(f"| {r['model']} | {r['nfe']} | {h['solver']} | {h['rmse']:.4f} | " + " | ".join(cells)
                     + f" | {ratio} | {s4s_same} | {fdt} | {fd(h)} | {fd(alt)} | {closed} | {secs} | {all_cells}"
                     f" | {ratio_all} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
