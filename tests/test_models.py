"""Adapters: one model written in every parametrization gives the same denoiser."""

from __future__ import annotations

import pytest
import torch

import s4s

GMM = s4s.zoo.gaussian_mixture(dim=3, seed=2)
SIGMAS = torch.tensor([0.02, 0.3, 1.0, 4.0, 40.0], dtype=torch.float64)
X = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * (1 + SIGMAS[:, None])


def col(v):
    return v.reshape(-1, 1)


def vp_nets(schedule):
    """The exact GMM denoiser written as eps-, v- and x0-prediction networks on ``schedule``."""

    def parts(x_t, t):
        sigma = schedule.t_to_sigma(t)
        alpha = torch.rsqrt(1 + sigma**2)
        x = x_t / col(alpha)
        return x, sigma, alpha, GMM(x, sigma)

    def eps(x_t, t):
        x, sigma, _, x0 = parts(x_t, t)
        return (x - x0) / col(sigma)

    def v(x_t, t):
        x, sigma, alpha, x0 = parts(x_t, t)
        e = (x - x0) / col(sigma)
        return col(alpha) * e - col(alpha * sigma) * x0

    def sample(x_t, t):
        return parts(x_t, t)[3]

    return {"eps": eps, "v": v, "sample": sample}


@pytest.mark.parametrize("schedule", [s4s.DiscreteVP.linear(), s4s.DiscreteVP.scaled_linear(), s4s.ContinuousVP.linear()],
                         ids=["ddpm-linear", "sd-scaled-linear", "vp-sde"])
@pytest.mark.parametrize("prediction", ["eps", "v", "sample"])
def test_vp_predictions_give_the_same_denoiser(schedule, prediction):
    model = s4s.vp_denoiser(vp_nets(schedule)[prediction], schedule, prediction)
    s = SIGMAS.clamp(model.sigma_min, model.sigma_max)
    assert torch.allclose(model(X, s), GMM(X, s), atol=1e-9)


def test_flow_velocity_gives_the_same_denoiser():
    def velocity(x_t, t):
        sigma = t / (1 - t)
        x = x_t * col(1 + sigma)
        x0 = GMM(x, sigma)
        eps = (x - x0) / col(sigma)
        return eps - x0

    model = s4s.flow_denoiser(velocity)
    assert torch.allclose(model(X, SIGMAS), GMM(X, SIGMAS), atol=1e-9)


def test_time_scale_and_rounding_reach_the_network():
    seen = []
    sched = s4s.DiscreteVP.linear()
    model = s4s.vp_denoiser(lambda x, t: (seen.append(t), x)[1], sched, "sample", round_time=True)
    sigma = sched.t_to_sigma(torch.tensor([10.4, 500.6]))
    model(torch.zeros(2, 1, dtype=torch.float64), sigma)
    assert seen[-1].tolist() == [10.0, 501.0]
    flow = s4s.flow_denoiser(lambda x, t: (seen.append(t), x)[1], time_scale=1000.0)
    flow(torch.zeros(1, 1, dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64))
    assert seen[-1].tolist() == [500.0]


def test_discrete_time_interpolates_in_log_sigma_and_round_trips():
    sched = s4s.DiscreteVP.linear()
    ac = sched.alphas_cumprod
    sig = torch.sqrt((1 - ac) / ac)
    assert torch.allclose(sched.sigma_to_t(sig[[0, 17, 999]]), torch.tensor([0.0, 17.0, 999.0], dtype=torch.float64))
    mid = torch.exp(0.5 * (sig[17].log() + sig[18].log()))
    assert float(sched.sigma_to_t(mid)) == pytest.approx(17.5)
    t = torch.linspace(0, 999, 37, dtype=torch.float64)
    assert torch.allclose(sched.sigma_to_t(sched.t_to_sigma(t)), t, atol=1e-9)


def test_continuous_vp_inverse_by_bisection_matches_closed_form_with_gradient():
    closed = s4s.ContinuousVP.linear()
    generic = s4s.ContinuousVP(closed.log_alpha_bar, closed.t_min, closed.t_max)
    sigma = torch.tensor([0.05, 1.0, 10.0], dtype=torch.float64, requires_grad=True)  # sigma_max is 12.4
    t_generic = generic.sigma_to_t(sigma)
    assert torch.allclose(t_generic, closed.sigma_to_t(sigma), atol=1e-10)
    (g1,) = torch.autograd.grad(t_generic.sum(), sigma)
    (g2,) = torch.autograd.grad(closed.sigma_to_t(sigma).sum(), sigma)
    assert torch.allclose(g1, g2, rtol=1e-6)


def test_guidance_is_one_batched_call_with_the_cfg_formula():
    calls = []

    def net(x, sigma, label):
        calls.append(tuple(label.tolist()))
        return x * (1 + label.to(x.dtype).reshape(-1, 1))

    base = s4s.Denoiser(net, 0.01, 10.0)
    model = s4s.guided(base, 3.0, uncond=torch.tensor(0))
    x = torch.ones(2, 2, dtype=torch.float64)
    out = model(x, 1.0, torch.tensor([1, 2]))
    assert calls == [(1, 2, 0, 0)]
    d_u, d_c = x, x * torch.tensor([[2.0], [3.0]], dtype=torch.float64)
    assert torch.allclose(out, d_u + 3.0 * (d_c - d_u))
    with pytest.raises(ValueError, match="needs a condition"):
        model(x, 1.0)


def test_dict_conditions_pass_through_untouched():
    seen = {}

    def net(x, sigma, cond):
        seen.update(cond)
        return x

    base = s4s.Denoiser(net, 0.01, 10.0)
    model = s4s.guided(base, 2.0, uncond={"emb": torch.zeros(4, 8)})
    model(torch.ones(3, 5), 1.0, {"emb": torch.ones(3, 4, 8)})
    assert seen["emb"].shape == (6, 4, 8)
    assert bool((seen["emb"][:3] == 1).all()) and bool((seen["emb"][3:] == 0).all())


def test_guidance_may_come_with_each_samples_condition():
    calls = []

    def fn(x, sigma, cond):
        calls.append(len(x))
        return x * 0 + cond[:, None].to(x.dtype)

    model = s4s.Denoiser(fn, 0.01, 10.0)
    per_sample = s4s.models.guided(model, None, torch.tensor(0.0))
    cond = s4s.models.with_guidance(torch.tensor([1.0, 1.0, 2.0]), torch.tensor([1.5, 3.0, 7.5]))
    out = per_sample(torch.zeros(3, 2), torch.ones(3), cond)
    assert calls == [6]  # one batched call for the three scales
    assert torch.allclose(out, torch.tensor([[1.5, 1.5], [3.0, 3.0], [15.0, 15.0]]))
    fixed = s4s.models.guided(model, 3.0, torch.tensor(0.0))
    plain = torch.tensor([1.0, 1.0, 2.0])
    assert torch.allclose(per_sample(torch.zeros(3, 2), torch.ones(3), s4s.models.with_guidance(plain, 3.0)),
                          fixed(torch.zeros(3, 2), torch.ones(3), plain))
    with pytest.raises(ValueError, match="scale=None takes cond"):
        per_sample(torch.zeros(3, 2), torch.ones(3), plain)
    with pytest.raises(ValueError, match="one per sample"):
        s4s.models.with_guidance(plain, torch.ones(2))
    # a teacher over several scales: the pairs' conditions carry them, through the cache key too
    data = s4s.generate_teacher(per_sample, range(3), (2,), s4s.TeacherSpec("unipc", 12, "logsnr"), cond=cond)
    assert torch.equal(data.subset([2]).cond["guidance"], torch.tensor([7.5], dtype=torch.float64))
