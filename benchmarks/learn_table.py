"""Learned against hand-designed solvers, per bundled model and NFE, on held-out seeds: the table.

    python benchmarks/learn_table.py [--models gmm digits ...] [--nfe 3 4 5 6 8 10] [--out experiments/learn-table]
                                     [--plan joint:3,coef:1] [--budget 2] [--start deis/logsnr]

For each model and NFE: the best hand-designed solver over {DDIM, iPNDM, DPM-Solver++(2M, 3M),
UniPC, DEIS} x {Karras, log-SNR} (and, as a stronger reference, over the learner's 36 starting
candidates, which add time-uniform grids and grids ending at 0) and the learned `s4s`,
`s4s_alt`, `ld3`, `joint` solvers (the learner's default teacher pairs, 8,192 for the Gaussian
mixture; default options; a method whose recipe is another's, as `joint`'s is `s4s_alt`'s, is
not learned twice: its cell is that method's, marked `same_as`): RMSE to the teacher on 1,000 held-out seeds (100,000 for the Gaussian mixture),
FD-digits for the digits models, learning time and the learning cost in model-evaluation units
(`solver.meta["cost"]`, teacher included). `s4s` is also compared with the best hand-designed
solver on its own (fixed) grid, and the table gives the share of the FD-digits gap between the
best hand-designed solver and the teacher that `s4s_alt` closes.

After the table, the learner issue's checks, each with its figure: `s4s_alt` at most 0.5x the
best hand-designed solver at NFE 4, 5, 6 and 8; its geometric-mean RMSE over the cells against
a reference table (`--reference`, default the README's table of the learner before); `s4s`
below the best hand-designed solver on its own grid; `s4s_alt` at most `ld3`; the cost of each
learn at most 3x its teacher pairs' cost.
`benchmarks/merge_tables.py` joins runs split over processes or machines into one table.
Results go to stdout and, as markdown and JSON, to --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch

import s4s
from s4s import metrics, zoo
from s4s._atomic import write_text_atomic
from s4s.learn import CANDIDATE_SCHEDULES, CANDIDATE_SOLVERS, RECIPES, LearnConfig, StepBudget, parse_start
from s4s.learn.policies import RankStarts
from s4s.learn.config import NUM_SAMPLES
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
PAIRS = {"gmm": 8192}  # teacher pairs to learn from; default the learner's (NUM_SAMPLES). 819 training pairs of the 2-D
# mixture fit its few mode-switching samples rather than the solver (experiments/LOG.md,
# "Selection score"); 2-D pairs are cheap.
HELD_OUT = {"gmm": 100_000}  # held-out seeds from 1,000,000; default 1,000. The 2-D mixture's error
# sits on the few samples that switch modes: of ten blocks of 10,000 seeds, five ranked two
# learned solvers 1% apart the other way from all 100,000 (experiments/LOG.md, "Two openings").


def config_fields(options: dict) -> dict:
    """LearnConfig fields from JSON options: ``"rank": N`` stands for ``RankStarts(pairs=N)``."""
    out = dict(options)
    if "rank" in out:
        out["rank"] = RankStarts(pairs=int(out["rank"]))
    return out


def labels(seeds: list[int]) -> torch.Tensor:
    return torch.tensor([s % 10 for s in seeds])


def teacher_pairs(name: str, model: s4s.Denoiser, seeds: list[int], cache: str | None,
                  device: str = "cpu", spec: TeacherSpec | None = None) -> TeacherData:
    """Teacher pairs for the bundled model ``name`` at ``seeds`` (float64 for the mixture, labels
    ``seed % 10`` for guided ``digits``), cached under ``cache``: the reference teacher
    (``TeacherSpec()``, what held-out figures are measured against) unless ``spec`` is given
    (the pairs to learn from are the learner's own, ``LearnConfig().teacher``)."""
    dtype = torch.float64 if name == "gmm" else torch.float32
    return generate_teacher(model, seeds, zoo.sample_shape(model), spec or TeacherSpec(),
                            cond=labels(seeds) if name == "digits-cfg2" else None, dtype=dtype, device=device,
                            cache_dir=cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--nfe", nargs="+", type=int, default=[3, 4, 5, 6, 8, 10])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--num-samples", type=int, help="teacher pairs to learn from (default: 1,024, the mixture 8,192)")
    parser.add_argument("--plan", help="s4s_alt's phases instead of its recipe, e.g. grid:1,coef:1")
    parser.add_argument("--budget", type=float, default=2.0, help="LearnConfig(budget=StepBudget(X)) for every method")
    parser.add_argument("--lr", type=float, help="LearnConfig(lr=...) for every method (default: the learner's)")
    parser.add_argument("--backtrack", action="store_true", help="LearnConfig(backtrack=True) for every method")
    parser.add_argument("--config", type=json.loads, default={},
                        help='more LearnConfig fields for every method, as JSON, e.g. \'{"tolerance": 2}\' '
                             '("rank": N ranks the starts on N validation pairs)')
    parser.add_argument("--seed", type=int, default=0, help="the learner's seed (its split and minibatch order)")
    parser.add_argument("--start", help="BASE/SCHEDULE every method starts from (LearnConfig(base=..., schedule=...)) "
                                        "instead of the best candidate on the teacher pairs, e.g. deis/logsnr")
    parser.add_argument("--reference", default="experiments/archive/fresh-z/learn_table.json",
                        help="the table the geometric mean is compared with (the README's table of the learner before)")
    parser.add_argument("--out", default="experiments/learn-table")
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
        seeds = list(range(PAIRS.get(name, NUM_SAMPLES) if args.num_samples is None else args.num_samples))
        start = time.perf_counter()
        learning = LearnConfig().teacher
        train = teacher_pairs(name, model, seeds, args.cache, args.device, learning)
        held = teacher_pairs(name, model, list(range(1_000_000, 1_000_000 + HELD_OUT.get(name, 1_000))), args.cache,
                             args.device)
        teacher_s = time.perf_counter() - start
        gap = teacher_gap(model, held, spec)
        digits = name != "gmm"
        fd_teacher = metrics.fd_digits(held.samples.cpu()) if digits else None
        log.info("%s: reference teacher %s, gap to 2x-finer %.2e RMSE; %d pairs to learn from (%s); %.0f s for %d "
                 "pairs; FD-digits of the teacher %s", name, spec.to_dict(), gap, len(train), learning.to_dict(),
                 teacher_s, len(train) + len(held), fd_teacher)

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
            learned: dict[str, str] = {}  # plan -> the method learned with it in this row
            for method in args.methods:
                plan = args.plan if method == "s4s_alt" and args.plan else RECIPES[method].plan()
                if plan in learned:  # the same phases and options are the same learn, bit for bit
                    row[method] = {**row[learned[plan]], "same_as": learned[plan]}
                    continue
                learned[plan] = method
                t = time.perf_counter()
                config = LearnConfig(dtype=dtype, device=args.device, plan=args.plan if method == "s4s_alt" else None,
                                     base=fixed[0], schedule=fixed[1], budget=StepBudget(args.budget),
                                     **{"backtrack": args.backtrack, **({} if args.lr is None else {"lr": args.lr}),
                                        **config_fields(args.config)})
                solver = s4s.learn(model, nfe, method=method, seed=args.seed, teacher_data=train, cond=cond_fn, config=config)
                res = evaluate(solver)
                res["plan"] = solver.meta["plan"]
                res["accepted"] = solver.meta["accepted"]  # the guard let the learned solver replace its start
                res["cost"] = solver.meta["cost"]
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
    reference = json.loads(Path(args.reference).read_text()) if Path(args.reference).exists() else None
    summary = checks(results, reference)
    write_text_atomic(out / "checks.md", summary)
    print(summary)


def checks(results: list[dict], reference: list[dict] | None) -> str:
    """The learner issue's checks on ``results`` (rows of this table), each with its figure."""
    lines = []
    key = lambda r: (r["model"], r["nfe"])  # noqa: E731
    alt = [r for r in results if "s4s_alt" in r]
    core = [r for r in alt if r["nfe"] in (4, 5, 6, 8)]
    ratios = {key(r): r["s4s_alt"]["rmse"] / r["hand"]["rmse"] for r in core}
    worst = max(ratios, key=ratios.get) if ratios else None
    if worst:
        bad = sum(v > 0.5 for v in ratios.values())
        lines.append(f"- s4s_alt <= 0.5x the best hand-designed at NFE 4, 5, 6, 8: {len(ratios) - bad} of {len(ratios)} "
                     f"cells; worst {ratios[worst]:.2f} ({worst[0]} NFE {worst[1]})")
    if reference and alt:
        ref = {key(r): r["s4s_alt"]["rmse"] for r in reference if "s4s_alt" in r}
        both = [r for r in alt if key(r) in ref]
        if both:
            geo = math.exp(sum(math.log(r["s4s_alt"]["rmse"] / ref[key(r)]) for r in both) / len(both))
            lines.append(f"- s4s_alt geometric-mean RMSE against the reference table over {len(both)} cells: {geo:.3f}x")
    same = [r for r in results if "s4s" in r and r["s4s"].get("hand_same_grid")]
    if same:
        below = sum(r["s4s"]["rmse"] < r["s4s"]["hand_same_grid"] for r in same)
        lines.append(f"- s4s below the best hand-designed on its own grid: {below} of {len(same)} cells")
    pair = [r for r in alt if "ld3" in r]
    if pair:
        ok = [r for r in pair if r["s4s_alt"]["rmse"] <= r["ld3"]["rmse"]]
        over = max(pair, key=lambda r: r["s4s_alt"]["rmse"] / r["ld3"]["rmse"])
        lines.append(f"- s4s_alt <= ld3: {len(ok)} of {len(pair)} cells; worst {over['s4s_alt']['rmse'] / over['ld3']['rmse']:.2f}x "
                     f"({over['model']} NFE {over['nfe']})")
    costs = [(r["model"], r["nfe"], m, r[m]["cost"]) for r in results for m in METHODS
             if m in r and "cost" in r[m] and "same_as" not in r[m]]  # a copied cell is no learn of its own
    if costs:
        top = max(costs, key=lambda c: c[3]["units"] / max(c[3]["teacher_units"], 1))
        over = sum(c[3]["units"] > 3 * c[3]["teacher_units"] for c in costs)
        lines.append(f"- cost at most 3x the teacher's: {len(costs) - over} of {len(costs)} learns; highest "
                     f"{top[3]['units']:,} units = {top[3]['units'] / top[3]['teacher_units']:.2f}x the teacher's "
                     f"{top[3]['teacher_units']:,} ({top[0]} NFE {top[1]} {top[2]})")
    return "\n".join(lines) + "\n"


def render(results: list[dict]) -> str:
    lines = ["| model | NFE | best hand-designed | RMSE | " + " | ".join(f"{m} RMSE" for m in METHODS)
             + " | s4s_alt / hand | s4s / same-grid hand | FD teacher | FD hand | FD s4s_alt | FD gap closed"
             " | s4s_alt s | s4s_alt units | best of all 36 hand | s4s_alt / it |",
             "|---|---|---|---|" + "---|" * len(METHODS) + "---|---|---|---|---|---|---|---|---|---|"]
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
        units = f"{alt['cost']['units']:,}" if alt and "cost" in alt else "—"
        all_cells = f"{ha['solver']} {ha['rmse']:.4f}" if ha else "—"
        ratio_all = f"{alt['rmse'] / ha['rmse']:.2f}" if ha and alt else "—"
        lines.append(f"| {r['model']} | {r['nfe']} | {h['solver']} | {h['rmse']:.4f} | " + " | ".join(cells)
                     + f" | {ratio} | {s4s_same} | {fdt} | {fd(h)} | {fd(alt)} | {closed} | {secs} | {units} | {all_cells}"
                     f" | {ratio_all} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
