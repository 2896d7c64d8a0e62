"""Zoo quality: teacher samples of each neural digits model, judged by the shipped classifier.

    python benchmarks/zoo_quality.py [--samples 2000] [--docs docs]

Prints per model: the teacher's convergence (RMSE to a 2x-finer teacher), the classifier's
mean max-probability on teacher samples, FD-digits of the teacher and of DDIM at several
NFE, and for `digits` with guidance 2 the fraction classified as the requested class.
Writes sample grids (same seeds in every row) to the docs folder.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

import s4s
from s4s import metrics, zoo
from s4s.noise import seeded_noise
from s4s.viz import save_grid

log = logging.getLogger("zoo_quality")

TEACHER = dict(name="unipc", nfe=200, schedule="karras")


def sample(model, solver, noise, cond=None, batch=500):
    with torch.no_grad():
        outs = [solver.sample(model, noise[i:i + batch], None if cond is None else cond[i:i + batch])
                for i in range(0, noise.shape[0], batch)]
    return torch.cat(outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--docs", default="docs")
    parser.add_argument("--models", nargs="*", default=["digits", "digits-ddpm", "digits-flow"],
                        help="unconditional models to report (the guided digits check always runs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    noise = seeded_noise(range(args.samples), (1, 8, 8))
    show = slice(0, 16)
    for name in args.models:
        start = time.perf_counter()
        model = zoo.load(name)
        teacher_solver = s4s.make_solver(TEACHER["name"], TEACHER["nfe"], TEACHER["schedule"], model)
        teacher = sample(model, teacher_solver, noise)
        finer = sample(model, s4s.make_solver(TEACHER["name"], 2 * TEACHER["nfe"], TEACHER["schedule"], model), noise[:200])
        conf = metrics.classify_digits(teacher).max(1).values.mean()
        rows = {f"teacher {TEACHER['nfe']} NFE": teacher[show]}
        fds = {"teacher": metrics.fd_digits(teacher)}
        for nfe in (3, 4, 6, 10, 20):
            x = sample(model, s4s.make_solver("ddim", nfe, "karras", model), noise)
            fds[f"ddim {nfe}"] = metrics.fd_digits(x)
            if nfe in (4, 10):
                rows[f"ddim {nfe} NFE"] = x[show]
        save_grid(rows, Path(args.docs) / f"zoo-{name}.png")
        log.info("%s: teacher %s %d NFE, RMSE to %d-NFE teacher %.1e; classifier mean max-prob %.3f; "
                 "FD-digits %s (%.0f s)", name, TEACHER["name"], TEACHER["nfe"], 2 * TEACHER["nfe"],
                 metrics.rmse(teacher[:200], finer), conf,
                 ", ".join(f"{k}: {v:.2f}" for k, v in fds.items()), time.perf_counter() - start)

    guided = zoo.load("digits", guidance=2.0)
    labels = torch.arange(args.samples) % 10
    x = sample(guided, s4s.make_solver(TEACHER["name"], TEACHER["nfe"], TEACHER["schedule"], guided), noise, labels)
    acc = (metrics.classify_digits(x).argmax(1) == labels).float().mean()
    log.info("digits, guidance 2: %.3f of %d samples classified as the requested class", acc, args.samples)
    grid = {f"class {c}": x[labels == c][:10] for c in range(10)}
    save_grid(grid, Path(args.docs) / "zoo-digits-guided.png")


if __name__ == "__main__":
    main()
