"""Solvers against closed-form solutions: exactness, convergence order, NFE, gradients, shapes."""

from __future__ import annotations

import math

import pytest
import torch

import s4s

ALL = sorted(s4s.SOLVERS)


def gaussian(dim=4, sigma_min=0.1, sigma_max=3.0):
    return s4s.zoo.gaussian(dim=dim, seed=1, sigma_min=sigma_min, sigma_max=sigma_max)


def rmse(a, b):
    return float((a - b).pow(2).mean().sqrt())


def noise(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def nfe_for(name, steps):
    return 2 * steps if name == "heun" else steps


# Observed global order = the lowest order among (a) the steady-state method and (b) its
# warm-up: a single step of local error O(h^{q+1}) costs O(h^{q+1}) globally, so a first-order
# start (DDIM step) caps a multistep method at 2.
# - ddim 1; heun 2 (EDM Alg. 1); dpmpp_2m 2.
# - dpmpp_3m 2: first step is first order. (Its steady step is also only 2nd order: the
#   published 3M update, like diffusers', weights D2 = h^2 D''/2 by h/6 where Taylor needs h/3;
#   see test_steady_state_orders.)
# - ipndm (order 2-4) 2: Euler start, and fixed Adams-Bashforth weights on a non-uniform grid.
# - deis order 2-3: 2 (Euler start).
# - unipc order p with corrector: steady p+1, first step DDIM + UniC-1 = order 2 (local
#   O(h^3)), final step predictor only (local O(h^{p+1})): p=1 -> 2, p=2 -> 3, p=3 -> 3.
# - unipc without corrector (UniP-p): p=1 -> 1, p>=2 -> 2 (Euler start).
# On Karras grids UniPC-3's warm-up constant is small and its slope nears 3 only slowly
# (3.48, 3.31, 3.18 at 512, 1024, 2048 steps), so it is checked on the log-SNR grid.
KARRAS_SLOW = {("unipc", 3)}
ORDERS = [
    ("ddim", {}, 1),
    ("heun", {}, 2),
    ("dpmpp_2m", {}, 2),
    ("dpmpp_3m", {}, 2),
    ("ipndm", {"order": 2}, 2),
    ("ipndm", {"order": 4}, 2),
    ("deis", {"order": 2}, 2),
    ("deis", {"order": 3}, 2),
    ("unipc", {"order": 1}, 2),
    ("unipc", {"order": 2}, 3),
    ("unipc", {"order": 3}, 3),
    ("unipc", {"order": 3, "variant": "bh1"}, 3),
    ("unipc", {"order": 1, "corrector": False}, 1),
    ("unipc", {"order": 3, "corrector": False}, 2),
]


@pytest.mark.parametrize("name,options,order", ORDERS, ids=lambda v: str(v))
@pytest.mark.parametrize("schedule", ["logsnr", "karras"])
def test_convergence_order(name, options, order, schedule):
    if schedule == "karras" and (name, options.get("order")) in KARRAS_SLOW and options.get("corrector", True):
        pytest.skip("pre-asymptotic on Karras grids at affordable step counts (see KARRAS_SLOW)")
    m = gaussian()
    z = noise(32, 4)
    exact = m.ode_solution(z * m.sigma_max, m.sigma_max, m.sigma_min)
    steps = (128, 256, 512)
    errs = [rmse(s4s.make_solver(name, nfe_for(name, n), schedule, m, **options).sample(m, z), exact) for n in steps]
    slope = math.log(errs[-2] / errs[-1]) / math.log(2)
    assert abs(slope - order) < 0.2, f"observed order {slope:.2f}, errors {errs}"


def _warm_grid(steps, warm, sigma_min=0.1, sigma_max=3.0):
    """A log-SNR grid whose first `warm` steps have size h^2: the warm-up error vanishes faster."""
    lam0, lam1 = -math.log(sigma_max), -math.log(sigma_min)
    h = (lam1 - lam0) / steps
    start = [lam0 + i * h * h for i in range(warm)]
    rest = torch.linspace(start[-1] + h * h, lam1, steps + 1 - warm, dtype=torch.float64)
    return torch.exp(-torch.cat([torch.tensor(start, dtype=torch.float64), rest]))


@pytest.mark.parametrize(
    "name,options,order",
    [("deis", {"order": 3}, 3), ("unipc", {"order": 3}, 4), ("unipc", {"order": 3, "corrector": False}, 3),
     ("dpmpp_3m", {}, 2)],
)
def test_steady_state_orders(name, options, order):
    """With the warm-up steps shrunk to h^2, the steady-state order shows."""
    m = gaussian()
    z = noise(32, 4)
    exact = m.ode_solution(z * m.sigma_max, m.sigma_max, m.sigma_min)
    errs = [rmse(s4s.make_solver(name, n, _warm_grid(n, order - 1 if order > 2 else 2), **options).sample(m, z), exact)
            for n in (128, 256)]
    slope = math.log(errs[0] / errs[1]) / math.log(2)
    assert abs(slope - order) < 0.3, f"observed order {slope:.2f}"


@pytest.mark.parametrize("name", ALL)
def test_many_steps_reach_closed_form(name):
    m = gaussian(dim=3, sigma_min=0.002, sigma_max=80.0)
    z = noise(16, 3)
    exact = m.ode_solution(z * m.sigma_max, m.sigma_max, m.sigma_min)
    x = s4s.make_solver(name, nfe_for(name, 800), "karras", m).sample(m, z)
    # on EDM's range and grid, 800 steps leave ~2.5e-3 for first-order DDIM, <= 1.5e-5 for the rest
    assert rmse(x, exact) < (3e-3 if name == "ddim" else 2e-5)


@pytest.mark.parametrize("name", ALL)
def test_constant_denoiser_is_integrated_exactly(name):
    """D(x, sigma) = c makes x - c proportional to sigma: every consistent method is exact."""
    c = torch.tensor([0.3, -1.2], dtype=torch.float64)
    model = s4s.Denoiser(lambda x, s: c.expand_as(x), 0.01, 20.0)
    z = noise(5, 2)
    solver = s4s.make_solver(name, nfe_for(name, 5), "karras", model)
    x = solver.sample(model, z)
    expected = c + (z * 20.0 - c) * (0.01 / 20.0)
    assert torch.allclose(x, expected, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("nfe", [1, 2, 3, 4, 6, 10])
def test_nfe_is_counted(name, nfe):
    if name == "heun" and nfe % 2:
        pytest.skip("heun cannot make an odd count on a grid ending at sigma_min")
    m = s4s.zoo.gaussian_mixture(dim=2)
    calls = []

    def counting(x, sigma):
        calls.append(x.shape[0])
        return m(x, sigma)

    model = s4s.Denoiser(counting, m.sigma_min, m.sigma_max)
    solver = s4s.make_solver(name, nfe, "karras", model)
    assert solver.nfe == nfe
    solver.sample(model, noise(7, 2))
    assert calls == [7] * nfe


def test_grid_ending_at_zero_returns_denoised_and_counts():
    m = gaussian()
    for name in ALL:
        grid = torch.tensor([3.0, 1.0, 0.3, 0.0], dtype=torch.float64)
        nfe = 5 if name == "heun" else 3
        solver = s4s.make_solver(name, nfe, grid)
        calls = []
        model = s4s.Denoiser(lambda x, s: (calls.append(1), m(x, s))[1], 0.1, 3.0)
        solver.sample(model, noise(2, 4))
        assert len(calls) == nfe, name


@pytest.mark.parametrize("name", ALL)
def test_shapes_dtypes_and_batch_independence(name):
    m = gaussian(dim=2 * 3 * 3)
    solver = s4s.make_solver(name, 6, "karras", m)
    z = noise(4, 2, 3, 3)
    x64 = solver.sample(m, z)
    assert x64.shape == z.shape and x64.dtype == torch.float64
    flat = solver.sample(m, z.reshape(4, -1))
    assert torch.allclose(flat.reshape(z.shape), x64)
    x32 = solver.sample(m, z.float())
    assert x32.dtype == torch.float32
    assert torch.allclose(x32.double(), x64, rtol=1e-4, atol=1e-4)
    one = solver.sample(m, z[1:2])
    assert torch.allclose(one, x64[1:2])


def test_sampling_is_differentiable_in_noise_grid_and_coefficients():
    m = s4s.zoo.gaussian_mixture(dim=2)
    grid = s4s.schedules.karras(m.sigma_min, m.sigma_max, 5).requires_grad_(True)
    solver = s4s.solvers.builders.dpmpp(grid, order=3)
    a = solver.a.detach().clone().requires_grad_(True)
    b = solver.b.detach().clone().requires_grad_(True)
    z = noise(3, 2).requires_grad_(True)
    solver.with_(a=a, b=b).sample(m, z).sum().backward()
    assert z.grad is not None and a.grad is not None and b.grad is not None
    assert float(b.grad.abs().sum()) > 0
    z2 = noise(3, 2)
    solver.sample(m, z2).pow(2).sum().backward()
    assert grid.grad is not None and bool(torch.isfinite(grid.grad).all()) and float(grid.grad.abs().sum()) > 0


def test_activation_checkpointing_gives_the_same_sample_and_gradients():
    m = s4s.zoo.gaussian_mixture(dim=2)
    grads, outs = [], []
    for flag in (False, True):
        grid = s4s.schedules.logsnr(m.sigma_min, m.sigma_max, 6).requires_grad_(True)
        z = noise(4, 2).requires_grad_(True)
        x = s4s.solvers.builders.unipc(grid).sample(m, z, checkpoint_steps=flag)
        x.pow(2).sum().backward()
        outs.append(x.detach())
        grads.append((grid.grad, z.grad))
    assert torch.equal(outs[0], outs[1])
    assert torch.allclose(grads[0][0], grads[1][0], rtol=1e-12, atol=0) and torch.allclose(grads[0][1], grads[1][1], rtol=1e-12, atol=0)


def test_grid_gradient_matches_finite_differences():
    m = gaussian(dim=2, sigma_min=0.05, sigma_max=5.0)
    z = noise(3, 2)

    def loss(grid):
        return s4s.solvers.builders.unipc(grid, order=3).sample(m, z).pow(2).sum()

    grid = s4s.schedules.logsnr(0.05, 5.0, 5).requires_grad_(True)
    loss(grid).backward()
    i, eps = 2, 1e-6
    up, down = grid.detach().clone(), grid.detach().clone()
    up[i] += eps
    down[i] -= eps
    fd = (loss(up) - loss(down)) / (2 * eps)
    assert math.isclose(float(grid.grad[i]), float(fd), rel_tol=1e-5, abs_tol=1e-8)


def test_callback_sees_every_evaluation():
    m = gaussian()
    seen = []
    solver = s4s.make_solver("heun", 6, "karras", m)
    solver.sample(m, noise(2, 4), callback=lambda info: seen.append((info.step, info.sigma)))
    assert [s for s, _ in seen] == list(range(6))
    assert seen[0][1] == pytest.approx(3.0)


def test_guided_model_counts_one_evaluation_per_step():
    calls = []

    def net(x, sigma, label):
        calls.append(x.shape[0])
        return x * 0 + label.to(x.dtype).reshape(-1, 1)

    base = s4s.Denoiser(net, 0.01, 10.0)
    model = s4s.guided(base, 2.0, uncond=torch.tensor(0))
    solver = s4s.make_solver("dpmpp_2m", 4, "karras", model)
    solver.sample(model, noise(3, 2), cond=torch.tensor([1, 2, 3]))
    assert calls == [6] * 4
