"""The main job (``make demo`` / ``s4s demo``): what S4S-Alt buys on the bundled ``digits`` model.

Learns S4S-Alt at NFE 5 from the learner's default teacher pairs, then on held-out seeds prints the teacher,
the best hand-designed solver at each NFE and the learned solver, and writes:
the solver file, a PNG grid (teacher / best hand-designed / S4S-Alt on the same seeds) and a
PNG plot of RMSE to the teacher against NFE.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from . import metrics, zoo
from ._atomic import atomic_path
from ._threads import run_jobs
from .frame import Denoiser
from .learn import CANDIDATE_SOLVERS, learn
from .learn.config import NUM_SAMPLES, LearnConfig
from .solvers import Solver, make_solver
from .teacher import TeacherData, TeacherSpec, generate_teacher

log = logging.getLogger("s4s.demo")

HELD_OUT = range(1_000_000, 1_000_256)
NFES = (3, 4, 5, 6, 8, 10)
GRIDS = ("karras", "logsnr")


def run_demo(out: Path, nfe: int = 5, num_samples: int = NUM_SAMPLES, force: bool = False, cache: str | None = ".cache/teacher") -> dict:
    """Run the demo and write its files under ``out``; returns the figures it printed."""
    out.mkdir(parents=True, exist_ok=True)
    solver_path = out / f"digits-s4s_alt-nfe{nfe}.json"
    if solver_path.exists() and not force:
        raise FileExistsError(f"{solver_path} exists; pass --force to overwrite it")
    start = time.perf_counter()
    model = zoo.load("digits")
    shape = zoo.sample_shape(model)
    spec, learning = TeacherSpec(), LearnConfig().teacher  # the figures' reference; what learn learns from
    train = generate_teacher(model, range(num_samples), shape, learning, cache_dir=cache)
    log.info("teacher pairs (%s): %d to learn from in %.0f s", learning.to_dict(), len(train),
             time.perf_counter() - start)

    def learn_job() -> tuple[Solver, float]:
        t = time.perf_counter()
        solver = learn(model, nfe, method="s4s_alt", num_samples=num_samples, seed=0, teacher_data=train)
        return solver, time.perf_counter() - t

    def hand_job() -> tuple[TeacherData, dict[int, tuple[float, str, torch.Tensor]]]:
        held = generate_teacher(model, HELD_OUT, shape, spec, cache_dir=cache)
        log.info("reference (%s): %d held-out samples", spec.to_dict(), len(held))
        return held, _best_hand(model, held)

    # learning steps on minibatches of 16 barely use a second core: the reference and the
    # hand-designed solvers take it (one torch thread each)
    (solver, learn_s), (held, best) = run_jobs([learn_job, hand_job])  # type: ignore[misc]
    solver.save(solver_path)
    x_learned = _sample(solver, model, held)
    figures = {
        "nfe": nfe,
        "teacher_fd": metrics.fd_digits(held.samples),
        "hand": best[nfe][1], "hand_rmse": best[nfe][0], "hand_fd": metrics.fd_digits(best[nfe][2]),
        "s4s_alt_rmse": metrics.rmse(x_learned, held.samples), "s4s_alt_fd": metrics.fd_digits(x_learned),
        "learn_seconds": learn_s,
    }
    lines = [
        f"digits, {len(held)} held-out seeds, NFE {nfe}        RMSE to teacher   FD-digits",
        f"  teacher ({spec.solver} {spec.nfe} NFE)                        0        {figures['teacher_fd']:8.2f}",
        f"  best hand-designed ({figures['hand']:<16})  {figures['hand_rmse']:10.4f}   {figures['hand_fd']:8.2f}",
        f"  S4S-Alt (learned in {learn_s:4.0f} s)             {figures['s4s_alt_rmse']:10.4f}   {figures['s4s_alt_fd']:8.2f}",
        "best hand-designed RMSE by NFE: " + ", ".join(f"{n}: {best[n][0]:.4f} ({best[n][1]})" for n in NFES),
    ]
    log.info("\n".join(lines))

    from .viz import save_grid

    show = slice(0, 12)
    save_grid({"teacher": held.samples[show], f"best hand-designed ({best[nfe][1]})": best[nfe][2][show],
               "S4S-Alt": x_learned[show]}, out / f"demo-digits-nfe{nfe}.png")
    _plot(out / "demo-error-vs-nfe.png", {n: best[n][0] for n in NFES}, nfe, figures["s4s_alt_rmse"])
    log.info("wrote %s, %s and %s in %.0f s", solver_path, out / f"demo-digits-nfe{nfe}.png",
             out / "demo-error-vs-nfe.png", time.perf_counter() - start)
    return figures


def _best_hand(model: Denoiser, held: TeacherData) -> dict[int, tuple[float, str, torch.Tensor]]:
    """For each NFE of :data:`NFES`: the lowest RMSE to ``held``'s samples over the candidate
    solvers on :data:`GRIDS`, its ``"solver/grid"`` name and its samples."""
    best: dict[int, tuple[float, str, torch.Tensor]] = {}
    for n in NFES:
        for b in CANDIDATE_SOLVERS:
            for g in GRIDS:
                x = _sample(make_solver(b, n, g, model), model, held)
                err = metrics.rmse(x, held.samples)
                if n not in best or err < best[n][0]:
                    best[n] = (err, f"{b}/{g}", x)
    return best


def _sample(solver: Solver, model: Denoiser, held: TeacherData) -> torch.Tensor:
    with torch.no_grad():
        return solver.sample(model, held.noise)


def _plot(path: Path, hand: dict[int, float], nfe: int, learned: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    ax.plot(list(hand), list(hand.values()), "o-", label="best hand-designed")
    ax.plot([nfe], [learned], "r*", markersize=14, label=f"S4S-Alt (NFE {nfe})")
    ax.set_yscale("log")
    ax.set_xlabel("NFE")
    ax.set_ylabel("RMSE to teacher")
    ax.set_title("digits: error against NFE (held-out seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_demo(Path("docs"), force=True)


if __name__ == "__main__":
    main()
