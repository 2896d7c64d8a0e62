from __future__ import annotations

import math

import pytest
import torch

import s4s
from s4s import schedules


def test_karras_matches_edm_formula():
    g = schedules.karras(0.002, 80.0, 4, rho=7.0)
    i = torch.arange(5, dtype=torch.float64)
    ref = (80 ** (1 / 7) + i / 4 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert torch.allclose(g, ref, rtol=1e-12)
    assert float(g[0]) == 80.0 and float(g[-1]) == 0.002


def test_logsnr_is_uniform_in_log_sigma():
    g = schedules.logsnr(0.01, 100.0, 8)
    d = torch.diff(torch.log(g))
    assert torch.allclose(d, d[0].expand_as(d))
    assert float(g[0]) == pytest.approx(100.0) and float(g[-1]) == pytest.approx(0.01)


def test_time_grids_use_the_model_time():
    sched = s4s.DiscreteVP.linear()
    model = s4s.vp_denoiser(lambda x, t: x, sched, "eps")
    g = schedules.time_uniform(model, model.sigma_min, model.sigma_max, 10)
    t = sched.sigma_to_t(g)
    assert torch.allclose(t, torch.linspace(999, 0, 11, dtype=torch.float64), atol=1e-8)
    q = sched.sigma_to_t(schedules.time_quadratic(model, model.sigma_min, model.sigma_max, 4))
    u = torch.linspace(0, 1, 5, dtype=torch.float64)
    assert torch.allclose(q, 999 * (1 - u) ** 2, atol=1e-8)
    edm = s4s.Denoiser(lambda x, s: x, 0.5, 4.5)
    assert torch.allclose(schedules.time_uniform(edm, 0.5, 4.5, 4), torch.tensor([4.5, 3.5, 2.5, 1.5, 0.5], dtype=torch.float64))


def test_flow_shift_gives_sd3_time_grid():
    model = s4s.flow_denoiser(lambda x, t: x, shift=3.0)
    g = schedules.time_uniform(model, model.sigma_min, model.sigma_max, 5)
    t = g / (1 + g)
    lo, hi = 1e-3, 0.999
    tau_lo, tau_hi = lo / (3 - 2 * lo), hi / (3 - 2 * hi)
    tau = torch.linspace(tau_hi, tau_lo, 6, dtype=torch.float64)
    assert torch.allclose(t, 3 * tau / (1 + 2 * tau), atol=1e-9)


@pytest.mark.parametrize(
    "grid,match",
    [([1.0, 2.0], "strictly decreasing"), ([3.0, 3.0, 1.0], "strictly decreasing"), ([2.0, 0.0, -1.0], "positive"),
     ([2.0, -1.0], "positive"), ([1.0], "at least 2"), ([float("nan"), 1.0], "non-finite"), ([2.0, 1.0, 0.0, 0.0], "strictly")],
)
def test_bad_grids_are_refused(grid, match):
    with pytest.raises(ValueError, match=match):
        schedules.validate_grid(grid)


def test_grid_ending_at_zero_is_accepted():
    assert schedules.validate_grid([2.0, 1.0, 0.0]).tolist() == [2.0, 1.0, 0.0]


def test_schedule_argument_errors():
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        schedules.karras(1.0, 1.0, 3)
    with pytest.raises(ValueError, match="at least 1 step"):
        schedules.logsnr(0.1, 1.0, 0)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedules.get_schedule("cosine", 3, sigma_min=0.1, sigma_max=1.0)
    with pytest.raises(ValueError, match="needs a model"):
        schedules.get_schedule("time_uniform", 3, sigma_min=0.1, sigma_max=1.0)
    assert math.isclose(float(schedules.get_schedule("karras", 3, sigma_min=0.1, sigma_max=1.0)[0]), 1.0)


def test_zero_suffix_ends_the_named_grid_at_zero():
    model = s4s.zoo.load("gmm", dim=2)
    plain = s4s.schedules.get_schedule("time_uniform", 4, model)
    zero = s4s.schedules.get_schedule("time_uniform+zero", 4, model)
    assert torch.equal(zero[:-1], plain[:-1]) and float(zero[-1]) == 0.0
    solver = s4s.make_solver("dpmpp_2m", 4, "karras+zero", model)
    assert solver.nfe == 4 and float(solver.sigmas[-1]) == 0.0
    assert s4s.make_solver("heun", 5, "logsnr+zero", model).nfe == 5  # the final step to 0 is Euler
    with pytest.raises(ValueError, match="one less than a multiple of 2"):
        s4s.make_solver("heun", 4, "logsnr+zero", model)
    with pytest.raises(ValueError, match="optionally \\+zero"):
        s4s.make_solver("ddim", 4, "karras+one", model)


def test_learned_zero_ending_grid_moves_its_lowest_level_within_the_model_range():
    from s4s.learn.params import SolverParams

    model = s4s.zoo.load("gmm", dim=2)
    start = s4s.make_solver("unipc", 4, "logsnr+zero", model)
    params = SolverParams("unipc", start.grid, sigma_floor=model.sigma_min)
    assert torch.allclose(params.grid(), start.grid, rtol=1e-12)
    assert [p is params.low_shift for p in params.groups()["grid"]].count(True) == 1
    with torch.no_grad():
        params.low_shift.fill_(-100.0)  # far below the model's sigma_min: clamped to it
        grid = params.grid()
    assert abs(float(grid[-2]) - model.sigma_min) < 1e-12 and float(grid[-1]) == 0.0
