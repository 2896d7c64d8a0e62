"""One solver learned over a range of guidance scales against solvers learned at each scale.

    python benchmarks/guidance_range.py [--nfe 4 5 6] [--scales 1.5 2 3 5 7.5] [--range 1 8]
        [--samples 500] [--out experiments/guidance-range]
    (or one run per NFE side by side, then --merge their guidance_range.json files)

On class-conditional `digits` with classifier-free guidance (labels `seed % 10`), for each NFE:
`s4s.learn(guided(digits, None), nfe, config=LearnConfig(guidance=RANGE))` (defaults: the
learner's teacher pairs, spread over the range's training scales) and, at each
evaluation scale `w`, `s4s.learn(digits guided at w, nfe)` (defaults, at `w`) and the
best of the 36 hand-designed (solver, grid) candidates. Figures on held-out seeds
(1,000,000 + i) against that scale's teacher (UniPC-3, 200 NFE, Karras grid): RMSE of
`range_solver.at(guidance=w)`, of the single-scale solver and of the best hand-designed one,
and each learn's counted cost (model-evaluation units). Markdown and JSON go to --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

import s4s
from s4s import metrics, zoo
from s4s._atomic import write_text_atomic
from s4s.learn.guidance import GuidanceRange
from s4s.learn.learner import CANDIDATE_SCHEDULES, CANDIDATE_SOLVERS, parse_start
from s4s.models import guided
from s4s.teacher import TeacherSpec, generate_teacher

log = logging.getLogger("guidance_range")


def labels(seeds: list[int]) -> torch.Tensor:
    return torch.tensor([s % 10 for s in seeds])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfe", nargs="+", type=int, default=[4, 5, 6])
    parser.add_argument("--scales", nargs="+", type=float, default=[1.5, 2.0, 3.0, 5.0, 7.5])
    parser.add_argument("--range", nargs=2, type=float, default=[1.0, 8.0], metavar=("LO", "HI"))
    parser.add_argument("--samples", type=int, default=500, help="held-out seeds per scale")
    parser.add_argument("--degree", type=int, default=None, help="the polynomial degree in log scale "
                        "(GuidanceRange's default when left out)")
    parser.add_argument("--out", default="experiments/guidance-range")
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--coef-lr", type=float, default=None, help="the range learn's LearnConfig(coef_lr=) "
                        "(the coefficients' and levels' step size; the default when left out)")
    parser.add_argument("--seed", type=int, default=0, help="the range learn's seed (s4s.learn(seed=): the split "
                        "into training and validation pairs and the minibatch order)")
    parser.add_argument("--start", help="BASE/SCHEDULE the range learn starts from (LearnConfig(base=, schedule=)) "
                                        "instead of the candidate ranked best over the range, e.g. deis/logsnr")
    parser.add_argument("--reuse", nargs="+", metavar="JSON", default=[],
                        help="take the single-scale and hand-designed figures of (NFE, scale) from these earlier "
                             "runs (they do not depend on the range learner) and learn only the range solvers")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="only render these runs' guidance_range.json together (e.g. one run per NFE) into --out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.merge:
        rows = sorted((r for f in args.merge for r in json.loads(Path(f).read_text())), key=lambda r: r["nfe"])
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(args.out) / "guidance_range.json", json.dumps(rows, indent=1))
        write_text_atomic(Path(args.out) / "guidance_range.md", render(rows, args.samples))
        print(render(rows, args.samples))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = zoo.load("digits")
    free = guided(base, None, uncond=torch.tensor(zoo.NULL_LABEL))
    shape = zoo.sample_shape(base)
    held_seeds = list(range(1_000_000, 1_000_000 + args.samples))
    fixed = {w: zoo.load("digits", guidance=w) for w in args.scales}
    held = {w: generate_teacher(fixed[w], held_seeds, shape, TeacherSpec(), cond=labels(held_seeds),
                                cache_dir=args.cache) for w in args.scales}

    def rmse(solver: s4s.Solver, w: float) -> float:
        with torch.no_grad():
            x = solver.sample(fixed[w], held[w].noise, held[w].cond)
        return metrics.rmse(x, held[w].samples)

    earlier = {(r["nfe"], w): v for f in args.reuse for r in json.loads(Path(f).read_text())
               for w, v in r["scales"].items()}
    rows: list[dict[str, Any]] = []
    for nfe in args.nfe:
        start = time.perf_counter()
        base, schedule = parse_start(args.start) if args.start else (None, None)
        span = GuidanceRange(*args.range, **({} if args.degree is None else {"degree": args.degree}))
        ranged = s4s.learn(free, nfe, seed=args.seed, cond=labels, config=s4s.LearnConfig(
            guidance=span, base=base, schedule=schedule, cache_dir=args.cache,
            **({} if args.coef_lr is None else {"coef_lr": args.coef_lr})))
        ranged_seconds = time.perf_counter() - start
        ranged.save(out / f"digits-cfg{args.range[0]:g}-{args.range[1]:g}-s4s_alt-nfe{nfe}.json")
        row: dict[str, Any] = {"nfe": nfe, "range": args.range, "range_cost": ranged.meta["cost"],
                               "range_seconds": ranged_seconds, "scales": {}}
        for w in args.scales:
            if (nfe, str(w)) in earlier:
                row["scales"][str(w)] = {**earlier[nfe, str(w)], "range": rmse(ranged.at(guidance=w), w)}
                continue
            start = time.perf_counter()
            single = s4s.learn(fixed[w], nfe, cond=labels, config=s4s.LearnConfig(cache_dir=args.cache))
            single_seconds = time.perf_counter() - start
            hand = {f"{b}/{g}": rmse(s4s.make_solver(b, nfe, g, fixed[w]), w) for b in CANDIDATE_SOLVERS
                    for g in CANDIDATE_SCHEDULES}
            best = min(hand, key=hand.__getitem__)
            row["scales"][str(w)] = {"range": rmse(ranged.at(guidance=w), w), "single": rmse(single, w),
                                     "hand": hand[best], "hand_solver": best, "single_cost": single.meta["cost"],
                                     "single_seconds": single_seconds}
            log.info("nfe %d scale %g: %s", nfe, w, json.dumps(row["scales"][str(w)]))
        rows.append(row)
        write_text_atomic(out / "guidance_range.json", json.dumps(rows, indent=1))
        write_text_atomic(out / "guidance_range.md", render(rows, args.samples))
    print(render(rows, args.samples))


def render(rows: list[dict[str, Any]], samples: int) -> str:
    lines = [f"Guided `digits`, {samples} held-out seeds per scale; RMSE to that scale's teacher.", "",
             "| NFE | scale | best hand-designed | its RMSE | single-scale s4s_alt | range s4s_alt | range / single "
             "| range / hand |", "|---|---|---|---|---|---|---|---|"]
    costs = ["", "| NFE | range learn units | mean single-scale learn units | ratio | range learn s | mean single s |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        for w, s in r["scales"].items():
            lines.append(f"| {r['nfe']} | {float(w):g} | {s['hand_solver']} | {s['hand']:.4f} | {s['single']:.4f} | "
                         f"{s['range']:.4f} | {s['range'] / s['single']:.2f} | {s['range'] / s['hand']:.2f} |")
        singles = [s["single_cost"]["units"] for s in r["scales"].values()]
        mean = sum(singles) / len(singles)
        secs = sum(s["single_seconds"] for s in r["scales"].values()) / len(singles)
        costs.append(f"| {r['nfe']} | {r['range_cost']['units']:,} | {mean:,.0f} | {r['range_cost']['units'] / mean:.2f} "
                     f"| {r['range_seconds']:.0f} | {secs:.0f} |")
    worst = [s["range"] / s["single"] for r in rows for s in r["scales"].values()]
    hand = [s["range"] / s["hand"] for r in rows for s in r["scales"].values()]
    summary = ["", f"Worst range / single: {max(worst):.2f} (geometric mean "
               f"{math.exp(sum(map(math.log, worst)) / len(worst)):.2f}); worst range / hand: {max(hand):.2f}."]
    return "\n".join(lines + costs + summary) + "\n"


if __name__ == "__main__":
    main()
