"""A learned solver inside a flow-matching pipeline against diffusers' flow schedulers.

    python benchmarks/latent_flow_pipeline.py [--nfe 4 5] [--samples 500] [--guidance 2]
        [--out experiments/latent-flow-pipeline]

On the bundled `digits-sd3` (a diffusers `StableDiffusion3Pipeline`: VAE latents 4x4x4, an
SD3 transformer, prompts "0"-"9", classifier-free guidance at `--guidance`), for each NFE and
from the same starting latents: `pipe(...)` with each of diffusers' flow-matching schedulers
(the pipeline's `FlowMatchEulerDiscreteScheduler` with its sigma options, Heun, and the
multistep solvers in their flow modes), and with `S4SScheduler` running
`s4s.learn(model, nfe, method="s4s_alt")` (defaults: the learner's teacher pairs from seeds 0, 1, ...).
The network calls of every run are counted (a scheduler whose counted NFE exceeds the target
is run at fewer steps). Figures: RMSE of the pipeline's latents to the teacher's (UniPC-3,
200 NFE, Karras grid, from those latents), FD-digits of the decoded images against the digits
data, and FD-digits against the teacher's decoded images (the "gap to the teacher closed" is
``1 - FD(s4s, teacher) / FD(best diffusers, teacher)``, the teacher's own being 0). With
``--solvers DIR`` the solvers a previous run saved there are measured instead of learned (their
learning time and cost are read from their files). Markdown and JSON go to --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import torch

import s4s
from s4s import metrics
from s4s._atomic import write_text_atomic
from s4s.integrations.diffusers import S4SScheduler
from s4s.teacher import TeacherSpec
from s4s.zoo.latent import PROMPTS

log = logging.getLogger("latent_flow_pipeline")


def flow_schedulers(config: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """diffusers' schedulers that run flow-matching pipelines, configured from the pipeline's."""
    from diffusers import (DEISMultistepScheduler, DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler,
                           FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler, UniPCMultistepScheduler)

    flow = dict(use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=config.get("shift", 1.0))
    made: dict[str, Callable[[], Any]] = {
        "FlowMatchEuler": lambda: FlowMatchEulerDiscreteScheduler.from_config(config),
        "FlowMatchEuler+karras": lambda: FlowMatchEulerDiscreteScheduler.from_config(config, use_karras_sigmas=True),
        "FlowMatchEuler+exponential": lambda: FlowMatchEulerDiscreteScheduler.from_config(
            config, use_exponential_sigmas=True),
        "FlowMatchEuler+beta": lambda: FlowMatchEulerDiscreteScheduler.from_config(config, use_beta_sigmas=True),
        "FlowMatchHeun": lambda: FlowMatchHeunDiscreteScheduler.from_config(config),
    }
    for order in (2, 3):
        made[f"DPMSolverMultistep-{order}"] = lambda o=order: DPMSolverMultistepScheduler(solver_order=o, **flow)
        made[f"DPMSolverSinglestep-{order}"] = lambda o=order: DPMSolverSinglestepScheduler(solver_order=o, **flow)
        made[f"UniPCMultistep-{order}"] = lambda o=order: UniPCMultistepScheduler(solver_order=o, **flow)
        made[f"DEISMultistep-{order}"] = lambda o=order: DEISMultistepScheduler(solver_order=o, **flow)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfe", nargs="+", type=int, default=[4, 5])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--out", default="experiments/latent-flow-pipeline")
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--solvers", default=None, help="measure the solvers saved in this folder instead of learning")
    parser.add_argument("--decode", action="store_true",
                        help="learn through the VAE decoder: the distance on decoded images (LearnConfig(decode=...))")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    model = s4s.zoo.load("digits-sd3", guidance=args.guidance)
    pipe = model.pipeline
    config = dict(pipe.scheduler.config)
    calls = {"n": 0}
    forward = pipe.transformer.forward

    def counted(*a: Any, **k: Any) -> Any:
        calls["n"] += 1
        return forward(*a, **k)

    pipe.transformer.forward = counted
    latents = torch.randn((args.samples, *model.sample_shape), generator=torch.Generator().manual_seed(20_261_201))
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.samples)]
    cond = model.conditions(list(range(args.samples)))

    @torch.no_grad()
    def run(scheduler: Any, steps: int) -> tuple[torch.Tensor, int]:
        """The pipeline's latents (``output_type="latent"``) and its counted network calls."""
        pipe.scheduler = scheduler
        calls["n"] = 0
        x = pipe(prompt=prompts, num_inference_steps=steps, guidance_scale=args.guidance, latents=latents.clone(),
                 output_type="latent").images
        return x, calls["n"]

    # the pipeline's latents are the model's state at its first level: x = sigma_max * noise in the VE frame
    s0 = model.sigma_max
    start = time.perf_counter()
    with torch.no_grad():
        teacher = TeacherSpec().sampler(model)(latents * ((1 + s0) / s0), cond)
    log.info("teacher for %d latents in %.0f s", args.samples, time.perf_counter() - start)
    with torch.no_grad():
        decoded_teacher = model.decode(teacher)
        fd_teacher = metrics.fd_digits(decoded_teacher)

    def score(x: torch.Tensor, nfe: int) -> dict[str, float]:
        with torch.no_grad():
            images = model.decode(x)
        return {"nfe": nfe, "rmse": metrics.rmse(x, teacher), "rmse_se": metrics.rmse_se(x, teacher),
                "image_rmse": metrics.rmse(images, decoded_teacher), "fd": metrics.fd_digits(images),
                "fd_to_teacher": metrics.fd_digits(images, reference=decoded_teacher)}

    rows, out = [], Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for nfe in args.nfe:
        row: dict[str, Any] = {"nfe": nfe, "fd_teacher": fd_teacher, "hand": {}}
        for name, make in flow_schedulers(config).items():
            for steps in range(nfe, 0, -1):  # the most steps whose counted calls fit the NFE
                x, used = run(make(), steps)
                if used <= nfe:
                    row["hand"][name] = score(x, used)
                    break
        start = time.perf_counter()
        if args.solvers:
            solver = s4s.load_solver(Path(args.solvers) / f"digits-sd3-s4s_alt-nfe{nfe}.json")
            row["learn_seconds"] = solver.meta["cost"]["seconds"]
        else:
            solver = s4s.learn(model, nfe, method="s4s_alt", seed=0, cond=model.conditions,
                               config=s4s.LearnConfig(cache_dir=args.cache, decode=model.decode if args.decode else None))
            row["learn_seconds"] = time.perf_counter() - start
        row["learn_cost"] = solver.meta.get("cost")
        x, used = run(S4SScheduler.from_solver(solver, **config), nfe)
        with torch.no_grad():
            direct = solver.sample(model, latents * ((1 + s0) / s0), cond)
        row["s4s_alt"] = {**score(x, used), "pipeline_vs_solver_sample": float((x - direct).abs().max())}
        if not args.solvers or Path(args.solvers).resolve() != out.resolve():
            solver.save(out / f"digits-sd3-s4s_alt-nfe{nfe}.json")
        rows.append(row)
        log.info("%s", json.dumps(row))
        write_text_atomic(out / "latent_flow_pipeline.json", json.dumps(rows, indent=1))
        write_text_atomic(out / "latent_flow_pipeline.md", render(rows, args.guidance, args.samples))
    print(render(rows, args.guidance, args.samples))


def render(rows: list[dict[str, Any]], guidance: float, samples: int) -> str:
    lines = [f"`digits-sd3`, guidance {guidance:g}, {samples} held-out latents; RMSE of the latents to the teacher's "
             "(± standard error), FD-digits of the decoded images to the digits data and to the teacher's decoded "
             "images.", "",
             "| NFE | scheduler | counted NFE | RMSE | image RMSE | FD | FD to teacher |", "|---|---|---|---|---|---|---|"]
    summary = ["", "| NFE | best diffusers | its RMSE | s4s_alt RMSE | s4s_alt / best | FD teacher | FD best diffusers "
               "| FD s4s_alt | FD gap closed | FD to teacher: best diffusers | s4s_alt | gap to the teacher closed "
               "| learn s | learn units |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name, s in [*sorted(r["hand"].items(), key=lambda kv: kv[1]["rmse"]), ("S4SScheduler(s4s_alt)", r["s4s_alt"])]:
            lines.append(f"| {r['nfe']} | {name} | {s['nfe']} | {s['rmse']:.4f} ± {s['rmse_se']:.4f} | "
                         f"{s['image_rmse']:.4f} | {s['fd']:.2f} | {s['fd_to_teacher']:.2f} |")
        best_name, best = min(r["hand"].items(), key=lambda kv: kv[1]["rmse"])
        ours = r["s4s_alt"]
        closed = (best["fd"] - ours["fd"]) / (best["fd"] - r["fd_teacher"])
        units = (r.get("learn_cost") or {}).get("units", float("nan"))
        summary.append(f"| {r['nfe']} | {best_name} | {best['rmse']:.4f} | {ours['rmse']:.4f} | "
                       f"{ours['rmse'] / best['rmse']:.2f} | {r['fd_teacher']:.2f} | {best['fd']:.2f} | {ours['fd']:.2f} | "
                       f"{100 * closed:.0f}% | {best['fd_to_teacher']:.2f} | {ours['fd_to_teacher']:.2f} | "
                       f"{100 * (1 - ours['fd_to_teacher'] / best['fd_to_teacher']):.0f}% | "
                       f"{r['learn_seconds']:.0f} | {units:,.0f} |")
    return "\n".join(lines + summary) + "\n"


if __name__ == "__main__":
    main()
