"""The fit engine (full-batch L-BFGS with explicit state) on problems with known answers, and
the pairs objective against a direct computation: no learning run needed."""

from __future__ import annotations

import math

import pytest
import torch

import s4s
from s4s.learn.engine import FitConfig, fit, flat, init_state, unflat
from s4s.learn.objectives import get_distance
from s4s.learn.pairs import Pairs
from s4s.learn.params import SolverParams


def least_squares(a: torch.Tensor, b: torch.Tensor):
    def objective(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        r = a @ x - b
        return float(r @ r), 2 * a.T @ r
    return objective


def rosenbrock(x: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    (g,) = torch.autograd.grad(f, x)
    return float(f.detach()), g


def test_least_squares_reaches_the_solution():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(40, 8, dtype=torch.float64, generator=gen) * torch.logspace(0, 2, 8, dtype=torch.float64)
    b = torch.randn(40, dtype=torch.float64, generator=gen)
    objective = least_squares(a, b)
    res = fit(objective, init_state(torch.zeros(8, dtype=torch.float64), objective, math.inf),
              FitConfig(steps=200, tol=1e-14, patience=5))
    exact = torch.linalg.lstsq(a, b).solution
    assert torch.allclose(res.x, exact, atol=1e-6)


def test_rosenbrock_reaches_its_minimum():
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    res = fit(rosenbrock, init_state(x0, rosenbrock, math.inf), FitConfig(steps=300, tol=1e-14, patience=5))
    assert torch.allclose(res.x, torch.ones(2, dtype=torch.float64), atol=1e-4)


def test_a_saved_state_goes_on_exactly_where_it_stopped():
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    start = init_state(x0, rosenbrock, math.inf)
    straight = fit(rosenbrock, start, FitConfig(steps=12))
    first = fit(rosenbrock, start, FitConfig(steps=5))
    again = fit(rosenbrock, first.state, FitConfig(steps=12))
    assert torch.equal(again.x, straight.x) and again.state.evals == straight.state.evals
    assert torch.equal(start.x, x0)  # the input state is not changed


def test_the_line_search_never_accepts_a_non_finite_value():
    def walled(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        if float(x[0]) > 0.5:  # beyond the wall the objective is undefined
            return math.inf, torch.zeros_like(x)
        return float((x[0] - 2) ** 2), 2 * (x - torch.tensor([2.0], dtype=torch.float64))

    seen = []
    res = fit(walled, init_state(torch.zeros(1, dtype=torch.float64), walled, math.inf),
              FitConfig(steps=30, first_step=1.0), on_step=lambda st: seen.append(st.value))
    assert all(math.isfinite(v) for v in seen) and float(res.x[0]) <= 0.5


def test_the_best_by_score_is_returned_and_the_start_is_a_candidate():
    objective = least_squares(torch.eye(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    near_start = lambda x, value: float(x.abs().sum())  # noqa: E731 - the start (0) scores best; the minimum is 1
    res = fit(objective, init_state(torch.zeros(2, dtype=torch.float64), objective, 0.0),
              FitConfig(steps=10, check_every=1), score=near_start)
    assert torch.equal(res.x, torch.zeros(2, dtype=torch.float64)) and res.score == 0.0
    assert torch.allclose(res.state.x, torch.ones(2, dtype=torch.float64))  # the iterate went on to the minimum


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="FitConfig.steps"):
        FitConfig(steps=0)
    with pytest.raises(ValueError, match="FitConfig.first_step"):
        FitConfig(first_step=-1.0)


def test_pairs_value_and_gradient_match_a_direct_computation():
    gmm = s4s.zoo.load("gmm", dim=2)
    spec = s4s.TeacherSpec("unipc", 40, "logsnr")
    data = s4s.generate_teacher(gmm, range(10), (2,), spec, dtype=torch.float64)
    params = SolverParams("dpmpp_2m", s4s.make_solver("dpmpp_2m", 4, "logsnr", gmm).grid, sigma_floor=gmm.sigma_min)
    with torch.no_grad():
        params.coef.add_(0.05)
    ps = [params.grid_logits, params.coef]
    pairs = Pairs(gmm, data, get_distance("l2"), chunk=3)  # chunks of 3, 3, 3, 1
    value, grads = pairs.value_and_grad(params.solver, ps)
    direct = get_distance("l2")(params.solver().sample(gmm, data.noise), data.samples).mean()
    expected = torch.autograd.grad(direct, ps)
    assert value == pytest.approx(float(direct.detach()), rel=1e-12)
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, rtol=1e-9, atol=1e-12)
    assert pairs.mean(params.solver()) == pytest.approx(float(direct.detach()), rel=1e-12)
    x = flat(ps)
    assert all(torch.equal(a, b) for a, b in zip(unflat(x, ps), ps))
