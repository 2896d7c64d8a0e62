"""Ecosystem: S4SScheduler in diffusers pipelines, from_diffusers with guidance and latents,
and the k-diffusion-style sampler."""

from __future__ import annotations

import math

import pytest
import torch

import s4s
from s4s.integrations.diffusers import S4SScheduler, load_pipeline
from s4s.k_diffusion import sample_s4s
from s4s.learn.params import SolverParams

pytest.importorskip("diffusers")


def _learned_form(model: s4s.Denoiser, base: str, nfe: int, seed: int = 0) -> s4s.Solver:
    """A solver shaped like a learned one: moved grid, decoupled levels, corrected coefficients."""
    params = SolverParams(base, s4s.make_solver(base, nfe, "logsnr", model).grid)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        params.grid_logits.add_(0.2 * torch.randn(params.grid_logits.shape, generator=g, dtype=torch.float64))
        params.decouple.add_(torch.randn(params.decouple.shape, generator=g, dtype=torch.float64))
        params.coef.add_(0.1 * torch.randn(params.coef.shape, generator=g, dtype=torch.float64))
        return params.solver()


def _pipeline_noise(solver: s4s.Solver, latents: torch.Tensor) -> torch.Tensor:
    """The solver noise equivalent to a VP pipeline's starting latents (S4SScheduler's docs)."""
    s0 = float(solver.sigmas[0])
    return latents.double() * (math.sqrt(1 + s0**2) / s0)


@pytest.fixture(scope="module")
def ddpm():
    pipe = load_pipeline(s4s.zoo.path("digits-ddpm"))
    pipe.set_progress_bar_config(disable=True)
    return pipe, s4s.from_diffusers(pipe)


def _run_ddpm(pipe, scheduler, n=16, seed=0):
    pipe.scheduler = scheduler
    return pipe(batch_size=n, generator=torch.Generator().manual_seed(seed), num_inference_steps=scheduler.solver.nfe,
                output_type="pt").images


def test_ddpm_pipeline_through_s4s_scheduler_gives_solver_sample(ddpm):
    pipe, model = ddpm
    config = dict(pipe.scheduler.config)
    solver = _learned_form(model, "unipc", 5)
    images = _run_ddpm(pipe, S4SScheduler.from_solver(solver, **config))
    latents = torch.randn((16, 1, 8, 8), generator=torch.Generator().manual_seed(0))  # DDPMPipeline's noise
    with torch.no_grad():
        exact = solver.sample(model, _pipeline_noise(solver, latents))
        plain = solver.sample(model, latents)  # float32, the user's everyday call
    to_image = lambda x: (x.float() / 2 + 0.5).clamp(0, 1)  # noqa: E731 - DDPMPipeline's post-processing
    assert (images - to_image(exact)).abs().max() <= 1e-5
    assert (images - to_image(plain)).abs().max() <= 1e-3  # float32 rounding at sigma_max = 157
    pipe.scheduler = S4SScheduler.from_solver(solver, **config)
    with pytest.raises(ValueError, match="exactly 5 steps; num_inference_steps=6"):
        pipe(batch_size=1, num_inference_steps=6)


def test_scheduler_config_round_trip_and_diffusers_conventions(ddpm, tmp_path):
    from diffusers import DDPMScheduler

    pipe, model = ddpm
    solver = _learned_form(model, "dpmpp_2m", 4, seed=1)
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    before = _run_ddpm(pipe, scheduler)
    scheduler.save_pretrained(tmp_path / "sched")
    again = S4SScheduler.from_pretrained(tmp_path / "sched")
    assert torch.equal(_run_ddpm(pipe, again), before)
    path = solver.save(tmp_path / "solver.json")
    assert torch.equal(_run_ddpm(pipe, S4SScheduler.from_config(pipe.scheduler.config, solver=str(path))), before)

    ddpm_scheduler = DDPMScheduler(**{k: v for k, v in pipe.scheduler.config.items() if k in ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")})
    x0, noise, t = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8), torch.tensor([0, 10, 500, 999])
    assert torch.allclose(again.add_noise(x0, noise, t), ddpm_scheduler.add_noise(x0, noise, t), atol=1e-5)
    assert again.init_noise_sigma == 1.0 and again.scale_model_input(x0, t[0]) is x0
    with pytest.raises(ValueError, match="outside this schedule"):
        S4SScheduler.from_solver(solver, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    with pytest.raises(ValueError, match="not a valid s4s solver file"):
        S4SScheduler(solver={**scheduler.config.solver, "sha256": "0" * 64})


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from tiny_sd import tiny_stable_diffusion

    return tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


def test_stable_diffusion_guided_sampling_and_learning_with_decode(tiny_sd):
    pipe = tiny_sd
    prompts = ["a red digit", "seven"]
    model = s4s.from_diffusers(pipe, guidance_scale=3.0, prompts=prompts)
    assert model.sample_shape == (4, 8, 8)
    config = s4s.LearnConfig(iters=6, shape=model.sample_shape, decode=model.decode,
                             teacher=s4s.TeacherSpec("dpmpp_2m", 20, "logsnr"))
    solver = s4s.learn(model, nfe=3, num_samples=8, seed=0, cond=model.conditions, config=config)
    assert solver.nfe == 3 and solver.meta["metrics"]["val_best"] <= solver.meta["metrics"]["val_start"]

    pipe.scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    latents = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(3))
    images = pipe(prompts, num_inference_steps=3, guidance_scale=3.0, latents=latents, height=16, width=16,
                  output_type="pt").images
    with torch.no_grad():
        x = solver.sample(model, _pipeline_noise(solver, latents), model.conditions([0, 1]))
        expected = (model.decode(x).float() / 2 + 0.5).clamp(0, 1)
    assert images.shape == (2, 3, 16, 16)
    assert (images - expected).abs().max() <= 1e-4


def test_from_diffusers_refuses_unclear_conditions(ddpm, tiny_sd):
    with pytest.raises(ValueError, match="guidance needs prompts"):
        s4s.from_diffusers(ddpm[0], guidance_scale=2.0)
    with pytest.raises(ValueError, match="non-empty list of strings"):
        s4s.from_diffusers(tiny_sd, prompts="a single string")


GMM = s4s.zoo.load("gmm", dim=2)


def _k_model(x, sigma, scale=1.0):  # k-diffusion's denoiser signature, with an extra arg
    return GMM(x, sigma) * scale


def test_sample_s4s_runs_a_learned_solver_like_solver_sample():
    solver = _learned_form(GMM, "dpmpp_3m", 5)
    noise = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sigmas = torch.cat([solver.sigmas[:-1], torch.zeros(1, dtype=torch.float64)])  # a host grid ending at 0
    seen = []
    out = sample_s4s(_k_model, noise * sigmas[0], sigmas, extra_args={"scale": 1.0}, callback=seen.append,
                     disable=True, solver=solver)
    assert torch.allclose(out, solver.sample(GMM, noise), rtol=0, atol=1e-12)
    assert [d["i"] for d in seen] == list(range(5)) and set(seen[0]) == {"x", "i", "sigma", "sigma_hat", "denoised"}


def test_sample_s4s_with_ddim_is_k_diffusions_euler():
    sigmas = s4s.schedules.karras(GMM.sigma_min, GMM.sigma_max, 6)
    solver = s4s.make_solver("ddim", 6, sigmas, GMM)
    x = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * sigmas[0]
    euler = x.clone()  # k-diffusion's sample_euler (no churn), written out
    for i in range(6):
        d = (euler - _k_model(euler, sigmas[i] * euler.new_ones(32))) / sigmas[i]
        euler = euler + d * (sigmas[i + 1] - sigmas[i])
    assert torch.allclose(sample_s4s(_k_model, x, sigmas, solver=solver), euler, rtol=1e-10, atol=1e-10)


def test_sample_s4s_explains_mismatched_hosts(tmp_path):
    solver = s4s.make_solver("dpmpp_2m", 4, "karras", GMM)
    x = torch.randn(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="makes 4 model calls but sigmas has 6 steps"):
        sample_s4s(_k_model, x, torch.linspace(80, 0, 7), solver=solver)
    with pytest.raises(ValueError, match="starts at 14 but the solver starts at sigma_max=80"):
        sample_s4s(_k_model, x, torch.tensor([14.0, 5.0, 1.0, 0.5, 0.0]), solver=solver)
    path = solver.save(tmp_path / "s.json")
    out = sample_s4s(_k_model, x * solver.sigmas[0], torch.cat([solver.sigmas[:-1], torch.zeros(1)]), solver=str(path))
    assert out.shape == x.shape
