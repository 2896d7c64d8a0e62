"""Our tables reproduce diffusers' schedulers on the same discrete VP eps-model and time steps.

Options that make both solve the same problem (deterministic ODE, data prediction):
DDIM: ``clip_sample=False, set_alpha_to_one=True`` and ``eta=0`` (the step to alpha=1 is
sigma=0); DPMSolverMultistep: ``algorithm_type="dpmsolver++", solver_type="midpoint"``;
UniPC: ``predict_x0=True``; DEIS: ``algorithm_type="deis", solver_type="logrho"``.
``lower_order_final`` maps to ours (diffusers applies it below 15 steps; we use fewer), and
``final_sigmas_type="zero"`` is a grid ending at 0. diffusers feeds the network integer
timesteps (rounded when stepping on Karras sigmas): ``round_time=True`` in our adapter.
"""

from __future__ import annotations

import pytest
import torch

import s4s

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    net = diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(16, 32), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    ).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def run_diffusers(scheduler, unet, noise, steps):
    scheduler.set_timesteps(steps)
    x = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = unet(scheduler.scale_model_input(x, t), t).sample
        x = scheduler.step(eps, t, x).prev_sample
    return x


def run_ours(solver, unet, scheduler, noise):
    """Same problem in the VE frame: x_VE = x_VP / alpha; the VP output is alpha_last * x_VE."""
    schedule = s4s.DiscreteVP(scheduler.alphas_cumprod)
    model = s4s.vp_denoiser(unet, schedule, "eps", round_time=True)
    s0, s_end = solver.sigmas[0], solver.sigmas[-1]
    x = solver.sample(model, (noise * torch.sqrt(1 + s0**2) / s0).to(noise.dtype))
    return x * torch.rsqrt(1 + s_end**2).to(x.dtype)


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


NOISE = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def ddim_grid(scheduler, steps):
    scheduler.set_timesteps(steps)
    ac = scheduler.alphas_cumprod.to(torch.float64)
    sig = torch.sqrt((1 - ac) / ac)[scheduler.timesteps]
    return torch.cat([sig, torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize("steps", [4, 7])
def test_ddim_matches_diffusers(unet, steps):
    sched = diffusers.DDIMScheduler(clip_sample=False, set_alpha_to_one=True)
    ref = run_diffusers(sched, unet, NOISE, steps)
    solver = s4s.make_solver("ddim", steps, schedule=ddim_grid(sched, steps))
    assert rel_err(run_ours(solver, unet, sched, NOISE), ref) < 1e-4


DPM_CASES = [
    # (our solver, our options, diffusers options)
    ("dpmpp_2m", {}, dict(solver_order=2, lower_order_final=False)),
    ("dpmpp_3m", {}, dict(solver_order=3, lower_order_final=False, final_sigmas_type="sigma_min")),
    ("dpmpp_3m", {"lower_order_final": True}, dict(solver_order=3, lower_order_final=True)),
    ("dpmpp_3m", {}, dict(solver_order=3, lower_order_final=False, use_karras_sigmas=True)),
    ("dpmpp_2m", {}, dict(solver_order=2, lower_order_final=False, use_karras_sigmas=True)),
]


@pytest.mark.parametrize("name,ours,theirs", DPM_CASES)
def test_dpmsolver_matches_diffusers(unet, name, ours, theirs):
    sched = diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_type="midpoint", **theirs)
    steps = 6
    ref = run_diffusers(sched, unet, NOISE, steps)
    solver = s4s.make_solver(name, steps, schedule=sched.sigmas.to(torch.float64), **ours)
    assert rel_err(run_ours(solver, unet, sched, NOISE), ref) < 1e-4


UNIPC_CASES = [
    ({"order": 1}, dict(solver_order=1, lower_order_final=False, final_sigmas_type="sigma_min")),
    ({"order": 2, "variant": "bh2"}, dict(solver_order=2, lower_order_final=False, final_sigmas_type="sigma_min")),
    ({"order": 3, "variant": "bh2"}, dict(solver_order=3, lower_order_final=False, final_sigmas_type="sigma_min")),
    ({"order": 3, "variant": "bh1"}, dict(solver_order=3, solver_type="bh1", lower_order_final=False, final_sigmas_type="sigma_min")),
    ({"order": 3, "lower_order_final": True}, dict(solver_order=3, lower_order_final=True)),
    ({"order": 2, "corrector": False}, dict(solver_order=2, lower_order_final=True, use_karras_sigmas=True,
                                            disable_corrector=list(range(10)))),
]


@pytest.mark.parametrize("ours,theirs", UNIPC_CASES)
def test_unipc_matches_diffusers(unet, ours, theirs):
    sched = diffusers.UniPCMultistepScheduler(predict_x0=True, **theirs)
    steps = 6
    ref = run_diffusers(sched, unet, NOISE, steps)
    if theirs.get("lower_order_final") and "order" in ours and not ours.get("lower_order_final"):
        ours = {**ours, "lower_order_final": True}
    solver = s4s.make_solver("unipc", steps, schedule=sched.sigmas.to(torch.float64), **ours)
    assert rel_err(run_ours(solver, unet, sched, NOISE), ref) < 1e-4


@pytest.mark.parametrize("order,lof", [(2, False), (3, False), (3, True)])
def test_deis_matches_diffusers(unet, order, lof):
    sched = diffusers.DEISMultistepScheduler(algorithm_type="deis", solver_type="logrho",
                                             solver_order=order, lower_order_final=lof)
    steps = 6
    ref = run_diffusers(sched, unet, NOISE, steps)
    solver = s4s.make_solver("deis", steps, schedule=sched.sigmas.to(torch.float64), order=order, lower_order_final=lof)
    assert rel_err(run_ours(solver, unet, sched, NOISE), ref) < 1e-4
