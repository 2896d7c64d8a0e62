"""Teacher generation and learning on the Gaussian mixture, run by tests/test_distributed.py
under torchrun (or in one process): python dist_worker.py CACHE_DIR SOLVER_OUT"""

import sys

import torch

import s4s
from s4s import distributed

SPEC = s4s.TeacherSpec("unipc", 100, "logsnr")


def run(cache: str, out: str) -> s4s.Solver:
    model = s4s.zoo.load("gmm", dim=2)
    data = s4s.generate_teacher(model, range(96), (2,), SPEC, batch_size=16, dtype=torch.float64, cache_dir=cache)
    config = s4s.LearnConfig(teacher=SPEC, iters=20, checks=4, batch_size=16, radius=0.05, dtype=torch.float64)
    solver = s4s.learn(model, nfe=4, method="s4s_alt", teacher_data=data, config=config, seed=0)
    if distributed.is_main():
        solver.save(out)
    return solver


if __name__ == "__main__":
    distributed.init("cpu")
    run(sys.argv[1], sys.argv[2])
