"""A learned solver in a diffusers pipeline against diffusers' own multistep schedulers.

    python benchmarks/diffusers_schedulers.py [--nfe 4 5] [--samples 500] [--out experiments/diffusers-schedulers]

On the bundled `digits-ddpm` pipeline (a diffusers `DDPMPipeline`): for each NFE, images from
`DPMSolverMultistepScheduler` and `UniPCMultistepScheduler` (pipeline defaults, and with
Karras sigmas) and from `S4SScheduler` running `s4s.learn(..., method="s4s_alt")` (the
learner's default teacher pairs and options), all from the same starting latents.
RMSE (on the pipeline's [0, 1] images) to the teacher (UniPC-3, 200 NFE, Karras grid) from
those latents, and FD-digits. Markdown and JSON go to --out.
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
from s4s import metrics
from s4s._atomic import write_text_atomic
from s4s.integrations.diffusers import S4SScheduler, load_pipeline
from s4s.teacher import TeacherSpec

log = logging.getLogger("diffusers_schedulers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfe", nargs="+", type=int, default=[4, 5])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--out", default="experiments/diffusers-schedulers")
    parser.add_argument("--cache", default=".cache/teacher")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--iters", type=int, help="learning steps (default: what s4s.learn's budget buys)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

    pipe = load_pipeline(s4s.zoo.path("digits-ddpm"))
    pipe.set_progress_bar_config(disable=True)
    config = dict(pipe.scheduler.config)
    model = s4s.from_diffusers(pipe)
    seed = 20_261_125
    latents = torch.randn((args.samples, *model.sample_shape), generator=torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def images(scheduler, nfe: int) -> torch.Tensor:
        """DDPMPipeline.__call__'s loop (which passes `generator=` to step(), which UniPC's step
        does not take), from the shared latents, with the pipeline's post-processing."""
        scheduler.set_timesteps(nfe)
        x = latents.clone()
        for t in scheduler.timesteps:
            x = scheduler.step(pipe.unet(x, t).sample, t, x).prev_sample
        return to_image(x)

    to_image = lambda x: (x / 2 + 0.5).clamp(0, 1)  # noqa: E731 - DDPMPipeline's post-processing
    s0 = model.sigma_max  # the pipeline's latents n start the VE state at n / alpha(sigma_max)
    start = time.perf_counter()
    with torch.no_grad():
        teacher = to_image(TeacherSpec().sampler(model)(latents * (math.sqrt(1 + s0**2) / s0), None))
    log.info("teacher for %d latents in %.0f s", args.samples, time.perf_counter() - start)

    def score(x: torch.Tensor) -> dict[str, float]:
        return {"rmse": metrics.rmse(x, teacher), "fd": metrics.fd_digits(x * 2 - 1)}

    hand = {
        "DPMSolverMultistep": lambda: DPMSolverMultistepScheduler.from_config(config),
        "DPMSolverMultistep+karras": lambda: DPMSolverMultistepScheduler.from_config(config, use_karras_sigmas=True),
        "UniPCMultistep": lambda: UniPCMultistepScheduler.from_config(config),
        "UniPCMultistep+karras": lambda: UniPCMultistepScheduler.from_config(config, use_karras_sigmas=True),
    }
    rows = []
    out = Path(args.out)
    for nfe in args.nfe:
        row: dict = {"nfe": nfe, "fd_teacher": metrics.fd_digits(teacher * 2 - 1)}
        for name, make in hand.items():
            row[name] = score(images(make(), nfe))
        t = time.perf_counter()
        solver = s4s.learn(model, nfe, method="s4s_alt", seed=0,
                           config=s4s.LearnConfig(iters=args.iters, cache_dir=args.cache))
        row["learn_seconds"] = time.perf_counter() - t
        row["S4SScheduler(s4s_alt)"] = score(images(S4SScheduler.from_solver(solver, **config), nfe))
        solver.save(out / f"digits-ddpm-s4s_alt-nfe{nfe}.json")
        rows.append(row)
        log.info("%s", json.dumps(row))
        write_text_atomic(out / "diffusers_schedulers.json", json.dumps(rows, indent=1))
        write_text_atomic(out / "diffusers_schedulers.md", render(rows, list(hand)))
    print(render(rows, list(hand)))


def render(rows: list[dict], hand: list[str]) -> str:
    names = [*hand, "S4SScheduler(s4s_alt)"]
    lines = ["| NFE | " + " | ".join(f"{n} RMSE / FD" for n in names) + " | learned / best diffusers RMSE |",
             "|---|" + "---|" * len(names) + "---|"]
    for r in rows:
        best = min(r[n]["rmse"] for n in hand)
        cells = [f"{r[n]['rmse']:.4f} / {r[n]['fd']:.1f}" for n in names]
        lines.append(f"| {r['nfe']} | " + " | ".join(cells) + f" | {r['S4SScheduler(s4s_alt)']['rmse'] / best:.2f} |")
    return "\n".join(lines) + f"\n\nFD-digits of the teacher: {rows[0]['fd_teacher']:.2f}\n" if rows else ""


if __name__ == "__main__":
    main()
