"""The main job on a bundled model: hand-designed solvers against an accurate teacher.

Run as ``python -m s4s.demo`` (``make demo``). Prints, for a range of NFE, each solver's
RMSE to the teacher on held-out seeds, and the best one per NFE.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from . import zoo
from .metrics import rmse
from .noise import seeded_noise
from .solvers import make_solver

log = logging.getLogger("s4s.demo")

SOLVERS = [("ddim", {}), ("ipndm", {}), ("dpmpp_2m", {}), ("dpmpp_3m", {}), ("unipc", {}), ("deis", {}), ("heun", {})]
SCHEDULES = ["karras", "logsnr"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m s4s.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gmm", choices=zoo.names())
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--nfe", type=int, nargs="+", default=[3, 4, 5, 6, 8, 10])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    model = zoo.load(args.model, dim=args.dim)
    noise = seeded_noise(range(10_000, 10_000 + args.samples), (args.dim,), dtype=torch.float64)
    start = time.perf_counter()
    teacher = make_solver("unipc", 500, "logsnr", model).sample(model, noise)
    finer = make_solver("unipc", 1000, "logsnr", model).sample(model, noise)
    log.info("model %s (dim %d), %d held-out seeds; teacher UniPC-3 500 NFE on a log-SNR grid "
             "(distance to a 1000-NFE teacher: %.1e RMSE)", args.model, args.dim, args.samples, rmse(teacher, finer))

    header = f"{'solver':>10} {'grid':>7} " + " ".join(f"{'NFE ' + str(n):>9}" for n in args.nfe)
    lines = [header, "-" * len(header)]
    best: dict[int, tuple[float, str]] = {}
    for name, options in SOLVERS:
        for schedule in SCHEDULES:
            cells = []
            for nfe in args.nfe:
                if name == "heun" and nfe % 2:
                    cells.append(f"{'-':>9}")
                    continue
                err = rmse(make_solver(name, nfe, schedule, model, **options).sample(model, noise), teacher)
                cells.append(f"{err:9.4f}")
                if err < best.get(nfe, (float("inf"), ""))[0]:
                    best[nfe] = (err, f"{name}/{schedule}")
            lines.append(f"{name:>10} {schedule:>7} " + " ".join(cells))
    lines.append("-" * len(header))
    lines.append(f"{'best':>18} " + " ".join(f"{best[n][0]:9.4f}" for n in args.nfe))
    for n in args.nfe:
        lines.append(f"  NFE {n:>2}: {best[n][1]}")
    log.info("RMSE to the teacher (lower is better):\n%s", "\n".join(lines))
    log.info("done in %.1f s", time.perf_counter() - start)


if __name__ == "__main__":
    main()
