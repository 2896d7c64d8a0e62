"""Learning side by side on CPU threads (`learn(parallel=...)`): its speed and that it changes nothing.

    python benchmarks/side_by_side.py [--model digits] [--nfe 5] [--num-samples 128] [--iters 64]

Part 1 times learning steps (`s4s_alt`'s: the solver's samples of a batch of 64 and the
backward pass) at one torch thread, at all of them, and as two runs of steps at once on two
threads of one torch thread each: how well the model spreads over intra-op threads, and what
two lanes side by side gain. Part 2 learns `s4s_alt` three ways, from one teacher set: in turn at one
thread, in turn at all threads, and side by side (the default on a CPU), and prints the time
of each and whether its solver is the one-thread run's, bit for bit.
"""

from __future__ import annotations

import argparse
import logging
import time
from functools import partial

import torch

import s4s
from s4s._threads import run_jobs
from s4s.learn.params import SolverParams
from s4s.noise import seeded_noise
from s4s.teacher import TeacherSpec, generate_teacher


def _steps(model: s4s.Denoiser, nfe: int, batch: int, steps: int) -> None:
    """``steps`` learning steps of a solver on a fixed batch (the target is a stand-in)."""
    noise = seeded_noise(range(batch), s4s.zoo.sample_shape(model)) * model.sigma_max
    params = SolverParams("deis", s4s.make_solver("deis", nfe, "logsnr", model).grid, sigma_floor=model.sigma_min)
    for _ in range(steps):
        params.zero_grad(set_to_none=True)
        params.solver().sample(model, noise, check_finite=False).pow(2).mean().backward()


def _seconds_per_step(jobs: int, model: s4s.Denoiser, nfe: int, batch: int, steps: int) -> float:
    """Wall seconds per step, with ``jobs`` jobs of ``steps`` steps each side by side."""
    run_jobs([partial(_steps, model, nfe, batch, 2)] * jobs)  # warm-up
    start = time.perf_counter()
    run_jobs([partial(_steps, model, nfe, batch, steps)] * jobs)
    return (time.perf_counter() - start) / (steps * jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits")
    parser.add_argument("--nfe", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed steps in part 1")
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--iters", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    model = s4s.zoo.load(args.model)
    threads = torch.get_num_threads()

    torch.set_num_threads(1)
    one = _seconds_per_step(1, model, args.nfe, args.batch, args.steps)
    torch.set_num_threads(threads)
    every = _seconds_per_step(1, model, args.nfe, args.batch, args.steps)
    side = _seconds_per_step(threads, model, args.nfe, args.batch, args.steps)
    print(f"{args.model}, NFE {args.nfe}, batch {args.batch}, one learning step:")
    print(f"  1 thread: {1e3 * one:.1f} ms; {threads} threads: {1e3 * every:.1f} ms ({one / every:.2f}x faster); "
          f"{threads} runs side by side at 1 thread each: {1e3 * side:.1f} ms a step ({every / side:.2f}x the "
          f"throughput of {threads} threads)")

    data = generate_teacher(model, list(range(args.num_samples)), s4s.zoo.sample_shape(model), TeacherSpec())
    runs = {}
    for name, n, parallel in (("in turn, 1 thread", 1, False), (f"in turn, {threads} threads", threads, False),
                              (f"side by side, {threads} threads", threads, True)):
        torch.set_num_threads(n)
        start = time.perf_counter()
        runs[name] = s4s.learn(model, args.nfe, "s4s_alt", teacher_data=data, iters=args.iters, parallel=parallel)
        runs[name].meta["wall"] = time.perf_counter() - start
    torch.set_num_threads(threads)
    ref = runs["in turn, 1 thread"]
    print(f"s4s_alt, NFE {args.nfe}, {args.num_samples} teacher pairs, iters={args.iters} "
          f"({ref.meta['plan']}), the teacher made beforehand:")
    for name, solver in runs.items():
        same = all(torch.equal(getattr(solver, k), getattr(ref, k)) for k in ("sigmas", "model_sigmas", "a", "b"))
        print(f"  {name}: {solver.meta['wall']:.1f} s, score {solver.meta['metrics']['score_best']:.7g}, "
              f"the 1-thread solver bit for bit: {same}")


if __name__ == "__main__":
    main()
