"""Bad input gets a clear ValueError/TypeError naming the problem."""

from __future__ import annotations

import pytest
import torch

import s4s

MODEL = s4s.zoo.gaussian(dim=2)


@pytest.mark.parametrize("nfe,exc,match", [(0, ValueError, "at least 1"), (-3, ValueError, "at least 1"),
                                           (2.5, TypeError, "must be an int"), (True, TypeError, "must be an int")])
def test_bad_nfe(nfe, exc, match):
    with pytest.raises(exc, match=match):
        s4s.make_solver("ddim", nfe, "karras", MODEL)


def test_heun_cannot_make_an_odd_count_on_a_sigma_min_grid():
    with pytest.raises(ValueError, match="heun makes 2 evaluations per step.*multiple of 2.*nfe=5"):
        s4s.make_solver("heun", 5, "karras", MODEL)
    assert s4s.make_solver("heun", 5, [80.0, 10.0, 1.0, 0.0]).nfe == 5


def test_custom_grid_must_fit_nfe():
    with pytest.raises(ValueError, match="makes 3 evaluations on a grid of 4 levels, not the nfe=5"):
        s4s.make_solver("dpmpp_2m", 5, [80.0, 10.0, 1.0, 0.1])


@pytest.mark.parametrize("grid", [[1.0, 2.0, 0.5], [2.0, -1.0], [2.0, 1.0, 1.0]])
def test_bad_custom_grids(grid):
    with pytest.raises(ValueError, match="grid"):
        s4s.make_solver("ddim", len(grid) - 1, grid)


def test_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown solver 'euler'"):
        s4s.make_solver("euler", 4, "karras", MODEL)
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        s4s.make_solver("ddim", 4, "cosine", MODEL)
    with pytest.raises(ValueError, match="order must be between 1 and 4"):
        s4s.make_solver("ipndm", 4, "karras", MODEL, order=5)
    with pytest.raises(ValueError, match="variant"):
        s4s.make_solver("unipc", 4, "karras", MODEL, variant="bh3")
    with pytest.raises(TypeError, match="ddim"):
        s4s.make_solver("ddim", 4, "karras", MODEL, order=2)
    with pytest.raises(ValueError, match="needs a model"):
        s4s.make_solver("ddim", 4, "karras")


@pytest.mark.parametrize("lo,hi", [(1.0, 1.0), (2.0, 1.0), (0.0, 1.0), (-1.0, 1.0), (float("nan"), 1.0), (0.1, float("inf"))])
def test_bad_sigma_range(lo, hi):
    with pytest.raises(ValueError, match="sigma_m"):
        s4s.Denoiser(lambda x, s: x, lo, hi)


def test_non_callable_model():
    with pytest.raises(TypeError, match="callable"):
        s4s.Denoiser("not a model", 0.1, 1.0)


def test_wrong_output_shape_is_caught_at_the_first_call():
    model = s4s.Denoiser(lambda x, s: x[:, :1], 0.1, 10.0, name="half")
    solver = s4s.make_solver("ddim", 3, "karras", model)
    with pytest.raises(ValueError, match=r"model 'half' returned shape \(2, 1\) for input shape \(2, 3\)"):
        solver.sample(model, torch.randn(2, 3))


def test_wrong_output_dtype_is_caught_at_the_first_call():
    calls = []
    model = s4s.Denoiser(lambda x, s: calls.append(1) or x.half(), 0.1, 10.0, name="half-precision")
    solver = s4s.make_solver("dpmpp_2m", 4, "karras", model)
    with pytest.raises(ValueError, match=r"returned dtype torch.float16 for input dtype torch.float32"):
        solver.sample(model, torch.randn(2, 3))
    assert len(calls) == 1


def test_non_tensor_output():
    model = s4s.Denoiser(lambda x, s: x.tolist(), 0.1, 10.0)
    with pytest.raises(TypeError, match="expected a Tensor"):
        model(torch.randn(2, 3), 1.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_from_the_model_names_the_step_and_sigma(bad):
    def net(x, sigma):
        return torch.where(sigma.reshape(-1, 1) < 1.0, torch.full_like(x, bad), x * 0)

    model = s4s.Denoiser(net, 0.1, 10.0)
    solver = s4s.make_solver("dpmpp_2m", 4, "logsnr", model)
    # log-SNR grid 10, 3.16, 1, 0.316: the first level below 1 is at step 3
    with pytest.raises(ValueError, match=r"NaN/Inf at step 3 of 4 \(sigma=0.316228\)"):
        solver.sample(model, torch.randn(2, 3))


def test_bad_noise():
    solver = s4s.make_solver("ddim", 2, "karras", MODEL)
    with pytest.raises(TypeError, match="floating-point"):
        solver.sample(MODEL, torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        solver.sample(MODEL, [[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"shape \[B, ...\]"):
        solver.sample(MODEL, torch.ones(0, 2))


def test_bad_solver_tables():
    good = s4s.make_solver("ddim", 3, "karras", MODEL)
    with pytest.raises(ValueError, match="lower-triangular"):
        good.with_(a=good.a + torch.triu(torch.ones(3, 3, dtype=torch.float64), 1))
    with pytest.raises(ValueError, match="shape"):
        good.with_(b=good.b[:2])
    with pytest.raises(ValueError, match="non-finite"):
        good.with_(a=good.a * float("nan"))
    with pytest.raises(ValueError, match="non-increasing"):
        good.with_(sigmas=good.sigmas.flip(0))
