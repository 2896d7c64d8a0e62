"""Cost on `digits`: learning memory against NFE, sampler and teacher overhead against bare
model calls.

    python benchmarks/scale.py [--out experiments/scale] [--device cpu|cuda]

1. Peak memory of one learning step (batch 64, the learner's loss and backward pass) for
   NFE 3..10, with and without activation checkpointing per solver step. On CPU each case
   runs in a fresh process and reports the growth of its peak resident memory over the
   same process's state before the step; on CUDA, torch.cuda.max_memory_allocated.
2. Sampling time of a learned solver (NFE 5) against `nfe` bare calls of the network
   function on the same batch (no s4s code around them): medians of alternating runs.
3. Teacher generation (`generate_teacher`, UniPC-3 at 200 NFE, no cache) against the same
   number of bare batched network calls.
Ratios near 1 mean s4s adds nothing noticeable to the model's own cost.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import s4s
from s4s import zoo
from s4s._atomic import write_text_atomic
from s4s.learn.params import SolverParams
from s4s.noise import seeded_noise
from s4s.teacher import TeacherSpec, generate_teacher

log = logging.getLogger("scale")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_case(nfe: int, checkpointing: bool, device: torch.device) -> float:
    """MiB added at the peak of one learning step (run in a fresh process on CPU)."""
    model = zoo.load("digits", device=device)
    noise = seeded_noise(range(64), (1, 8, 8), device=device)
    target = torch.zeros_like(noise)
    params = SolverParams("dpmpp_2m", s4s.make_solver("dpmpp_2m", nfe, "logsnr", model).grid)
    with torch.no_grad():  # warm-up: allocator and kernels
        params.solver().sample(model, noise)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    x = params.solver().sample(model, noise, checkpoint_steps=checkpointing)
    ((x - target) ** 2).mean().backward()
    if device.type == "cuda":
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # ru_maxrss is KiB on Linux


def compare(bare, ours, repeats: int, device: torch.device) -> dict[str, float]:
    """Median times of ``bare`` and ``ours``, run alternately (order swapped every round) so
    that drifts in machine speed hit both; ``noise`` compares two halves of the bare runs."""
    times: dict[str, list[float]] = {"bare": [], "ours": []}
    for i in range(repeats):
        order = [("bare", bare), ("ours", ours)]
        for key, fn in order if i % 2 == 0 else order[::-1]:
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times[key].append(time.perf_counter() - t)
    b, o = statistics.median(times["bare"]), statistics.median(times["ours"])
    noise = statistics.median(times["bare"][1::2]) / statistics.median(times["bare"][0::2])
    return {"bare_s": b, "ours_s": o, "ratio": o / b, "bare_noise": noise}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="experiments/scale")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--teacher-samples", type=int, default=512)
    parser.add_argument("--memory-case", nargs=2, type=int, help=argparse.SUPPRESS)  # NFE CHECKPOINTING (child)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    if args.memory_case:
        print(json.dumps({"mib": memory_case(args.memory_case[0], bool(args.memory_case[1]), device)}))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    results: dict = {"device": str(device), "threads": torch.get_num_threads(), "memory": [], "sampling": {}, "teacher": {}}

    for nfe in range(3, 11):
        row = {"nfe": nfe}
        for flag in (0, 1):
            child = subprocess.run([sys.executable, __file__, "--device", args.device, "--memory-case", str(nfe), str(flag)],
                                   capture_output=True, text=True, check=True)
            row["checkpointing" if flag else "plain"] = json.loads(child.stdout.strip().splitlines()[-1])["mib"]
        log.info("memory %s", row)
        results["memory"].append(row)

    model = zoo.load("digits", device=device)
    net = model.fn  # the bare network function: preconditioning and U-Net, no s4s checks
    solver = s4s.load_solver(Path(__file__).resolve().parent.parent / "docs" / "digits-s4s_alt-nfe5.json")
    noise = seeded_noise(range(args.batch), (1, 8, 8), device=device)
    sigma = solver.model_sigmas.to(device=device, dtype=torch.float32)
    with torch.no_grad():
        bare = lambda: [net(noise, sigma[k].expand(args.batch)) for k in range(solver.nfe)]  # noqa: E731
        full = lambda: solver.sample(model, noise)  # noqa: E731
        for _ in range(3):  # warm-up
            bare(), full()
        results["sampling"] = {"batch": args.batch, "nfe": solver.nfe, **compare(bare, full, args.repeats, device)}
    log.info("sampling %s", results["sampling"])

    spec = TeacherSpec()
    seeds = list(range(args.teacher_samples))
    teacher_batch = 256
    levels = s4s.make_solver(spec.solver, spec.nfe, spec.schedule, model).model_sigmas.to(device=device, dtype=torch.float32)
    x = seeded_noise(range(teacher_batch), (1, 8, 8), device=device)
    with torch.no_grad():
        def bare_teacher() -> None:
            for _ in range(0, len(seeds), teacher_batch):
                for k in range(spec.nfe):
                    net(x, levels[k].expand(teacher_batch))

        teacher = lambda: generate_teacher(model, seeds, (1, 8, 8), spec, batch_size=teacher_batch, device=device)  # noqa: E731
        results["teacher"] = {"samples": len(seeds), "batch": teacher_batch, "nfe": spec.nfe,
                              **compare(bare_teacher, teacher, 4, device)}
    log.info("teacher %s", results["teacher"])
    write_text_atomic(out / "scale.json", json.dumps(results, indent=1))
    write_text_atomic(out / "scale.md", render(results))
    print(render(results))


def render(r: dict) -> str:
    lines = [f"Device: {r['device']}, {r['threads']} threads.", "",
             "| NFE | " + " | ".join(str(m["nfe"]) for m in r["memory"]) + " |",
             "|---|" + "---|" * len(r["memory"]),
             "| learning step, MiB | " + " | ".join(f"{m['plain']:.0f}" for m in r["memory"]) + " |",
             "| with checkpointing, MiB | " + " | ".join(f"{m['checkpointing']:.0f}" for m in r["memory"]) + " |", ""]
    s, t = r["sampling"], r["teacher"]
    lines += ["| what | s4s | bare model calls | ratio | bare vs bare |", "|---|---|---|---|---|",
              f"| learned solver, NFE {s['nfe']}, batch {s['batch']} | {1e3 * s['ours_s']:.1f} ms | "
              f"{1e3 * s['bare_s']:.1f} ms | {s['ratio']:.3f} | {s['bare_noise']:.3f} |",
              f"| teacher, {t['samples']} samples x {t['nfe']} NFE, batch {t['batch']} | {t['ours_s']:.2f} s | "
              f"{t['bare_s']:.2f} s | {t['ratio']:.3f} | {t['bare_noise']:.3f} |"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
