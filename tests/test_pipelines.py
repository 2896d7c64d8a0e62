"""The pipelines people run, as tiny random pipelines built offline (StableDiffusion3, Flux, SDXL,
Wan 2.1 text-to-video, Sana, Qwen-Image, an unconditional Stable Diffusion): learning through ``from_diffusers``, and ``S4SScheduler``
inside the pipeline equal to the decoded ``solver.sample``, in ``nfe`` network calls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import s4s
from s4s.integrations.diffusers import S4SScheduler
from s4s.integrations.diffusers_flow import flow_shift

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from tiny_sd import tiny_flux, tiny_qwen_image, tiny_sana, tiny_sd3, tiny_sdxl, tiny_stable_diffusion, tiny_wan  # noqa: E402

PROMPTS = ["a handwritten digit 7", "a handwritten digit 3"]
TOKENS = 8  # the pipeline's max_sequence_length (T5 positions; zeros without a T5 encoder)


@pytest.fixture(scope="module")
def sd3(tmp_path_factory):
    return tiny_sd3(tmp_path_factory.mktemp("sd3"))


def counting(network):
    """Record the batch of every call of ``network`` (a transformer or a UNet)."""
    calls = []
    forward = network.forward

    def wrapped(*args, **kwargs):
        calls.append(int((args[0] if args else kwargs.get("hidden_states", kwargs.get("sample"))).shape[0]))
        return forward(*args, **kwargs)

    network.forward = wrapped
    return calls, lambda: setattr(network, "forward", forward)


def quick_flow_solver(model, nfe, method, base):
    """A few steps of ``method`` from ``base`` on a time-uniform grid ending at 0, on 8 pairs of a
    small teacher (UniPC-3, 24 NFE): a solver to run in a pipeline, not a good one."""
    teacher = s4s.TeacherSpec("unipc", 24, "time_uniform")
    data = s4s.generate_teacher(model, range(8), model.sample_shape, teacher, cond=model.conditions(list(range(8))))
    return s4s.learn(model, nfe=nfe, method=method, teacher_data=data, config=s4s.LearnConfig(
        teacher=teacher, iters=4, base=base, schedule="time_uniform+zero"))


def run_with(pipe, scheduler, network, **kwargs):
    """``pipe(**kwargs).images`` (a video pipeline's ``.frames``) with ``scheduler`` in place, and
    the network's calls."""
    original = pipe.scheduler
    pipe.scheduler = scheduler
    calls, restore = counting(network)
    try:
        out = pipe(output_type="np", **kwargs)
        return (out.frames if hasattr(out, "frames") else out.images), calls
    finally:
        restore()
        pipe.scheduler = original


def img2img(cls, text):
    """The image-to-image pipeline ``cls`` on a text pipeline's components."""
    pipe = cls(**text.components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def recording_starts(scheduler, name):
    """The noised latents an img2img pipeline starts from, recorded as its call of the scheduler's
    ``name`` (``add_noise`` for VP pipelines, ``scale_noise`` for flow ones) returns them."""
    starts, original = [], getattr(scheduler, name)
    setattr(scheduler, name, lambda *args: starts.append(original(*args)) or starts[-1])
    return starts


def learned_at_strength(model, method, start, teacher_grid, cond="model"):
    """A 3-step solver learned (4 steps, 8 pairs) for image-to-image at strength 0.6 from
    ``start`` (BASE/SCHEDULE), its teacher UniPC at 24 NFE on ``teacher_grid``."""
    base, schedule = start.split("/")
    return s4s.learn(model, nfe=3, method=method, num_samples=8, cond=model.conditions if cond == "model" else cond,
                     config=s4s.LearnConfig(teacher=s4s.TeacherSpec("unipc", 24, teacher_grid), iters=4, base=base,
                                            schedule=schedule, strength=0.6))


def decoded(model, x):
    with torch.no_grad():
        return (model.decode(x) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def test_the_wrapped_transformer_is_the_pipelines_own_velocity(sd3):
    model = s4s.from_diffusers(sd3, prompts=PROMPTS, max_sequence_length=TOKENS)
    assert model.sample_shape == (4, 8, 8) and model.host["shift"] == 3.0 and model.host["frame"] == "flow"
    cond = model.conditions([0, 1])
    x0 = torch.randn(2, 4, 8, 8)
    n = torch.randn(2, 4, 8, 8)
    t = torch.tensor([0.3, 0.8])
    x_t = (1 - t)[:, None, None, None] * x0 + t[:, None, None, None] * n
    with torch.no_grad():
        v = sd3.transformer(hidden_states=x_t, timestep=t * 1000, encoder_hidden_states=cond["encoder_hidden_states"],
                            pooled_projections=cond["pooled_projections"], return_dict=False)[0]
        sigma = t / (1 - t)
        denoised = model(x_t * (1 + sigma)[:, None, None, None], sigma, cond)
    assert torch.allclose(denoised, x_t - t[:, None, None, None] * v, atol=1e-5)


def test_sd3_pipeline_with_s4s_scheduler_is_solver_sample_in_nfe_calls(sd3):
    model = s4s.from_diffusers(sd3, prompts=PROMPTS[:1], guidance_scale=3.0, max_sequence_length=TOKENS)
    teacher = s4s.generate_teacher(model, range(16), model.sample_shape, s4s.TeacherSpec("unipc", 24, "time_uniform"),
                                   cond=model.conditions(list(range(16))))
    solver = s4s.learn(model, nfe=4, method="s4s_alt", teacher_data=teacher, config=s4s.LearnConfig(
        teacher=s4s.TeacherSpec("unipc", 24, "time_uniform"), iters=6, base="dpmpp_2m", schedule="time_uniform+zero"))
    assert solver.meta["model"]["host"]["shift"] == 3.0
    scheduler = S4SScheduler.from_solver(solver, **sd3.scheduler.config)
    assert scheduler.config.frame == "flow"
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    images, calls = run_with(sd3, scheduler, sd3.transformer, prompt=PROMPTS[:1], num_inference_steps=4,
                             guidance_scale=3.0, latents=latents, max_sequence_length=TOKENS)
    assert calls == [2] * 4  # guidance: one batched call a step
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(latents), model.conditions([0]))
    assert np.abs(images - decoded(model, x)).max() < 1e-3


def test_one_solver_for_a_range_of_guidance_scales_runs_in_the_pipeline_at_its_guidance_scale(sd3):
    model = s4s.from_diffusers(sd3, prompts=PROMPTS, guidance_scale=(1.0, 8.0), max_sequence_length=TOKENS)
    assert model.host["guidance_scale"] == (1.0, 8.0)
    teacher = s4s.TeacherSpec("unipc", 24, "time_uniform")
    ranged = s4s.learn(model, nfe=3, num_samples=16, cond=model.conditions, config=s4s.LearnConfig(
        guidance=(1.0, 8.0), teacher=teacher, iters=4, base="dpmpp_2m", schedule="time_uniform+zero"))
    assert isinstance(ranged, s4s.GuidanceSolver)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    for w in (1.5, 6.0):
        scheduler = S4SScheduler.from_solver(ranged, guidance=w, **sd3.scheduler.config)
        images, calls = run_with(sd3, scheduler, sd3.transformer, prompt=PROMPTS[1:], num_inference_steps=3,
                                 guidance_scale=w, latents=latents, max_sequence_length=TOKENS)
        assert calls == [2] * 3
        with torch.no_grad():
            x = ranged.sample(model, scheduler.solver_noise(latents), model.conditions([1]), guidance=w)
        assert np.abs(images - decoded(model, x)).max() < 1e-3
    with pytest.raises(ValueError, match="a guidance range must be"):
        s4s.from_diffusers(sd3, prompts=PROMPTS, guidance_scale=(8.0, 1.0), max_sequence_length=TOKENS)


def test_flux_pipeline_with_s4s_scheduler_is_solver_sample_at_its_resolution_shift(tmp_path):
    pipe = tiny_flux(tmp_path)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS, guidance_scale=3.5, height=16, width=16,
                               max_sequence_length=TOKENS)
    assert model.sample_shape == (16, 16)  # packed: 4 x 4 tokens of 2 x 2 x 4 channels
    shift, mu = flow_shift(pipe.scheduler.config, 8, 8, 2)
    assert model.host["mu"] == pytest.approx(mu) and model.host["shift"] == pytest.approx(shift)
    solver = quick_flow_solver(model, nfe=4, method="ld3", base="ipndm")
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    latents = torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(4))
    # the pipeline passes its own sigmas (linspace(1, 1/N, N)) and mu; the solver's levels replace them
    images, calls = run_with(pipe, scheduler, pipe.transformer, prompt=PROMPTS[:1], num_inference_steps=4,
                             guidance_scale=3.5, latents=latents, height=16, width=16, max_sequence_length=TOKENS)
    assert calls == [1] * 4  # the guidance embedding: one pass a step
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(latents), model.conditions([0]))
    assert np.abs(images - decoded(model, x)).max() < 1e-3
    with pytest.raises(ValueError, match="learned at shift"):  # another resolution: another shift
        run_with(pipe, scheduler, pipe.transformer, prompt=PROMPTS[:1], num_inference_steps=4, guidance_scale=3.5,
                 height=32, width=32, max_sequence_length=TOKENS)


def test_wan_video_pipeline_with_s4s_scheduler_is_solver_sample_on_5d_latents(tmp_path):
    pipe = tiny_wan(tmp_path)  # Wan's UniPCMultistepScheduler in its flow mode, not FlowMatchEuler
    video = dict(height=32, width=32, num_frames=5, max_sequence_length=TOKENS)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS[:1], guidance_scale=3.0, **video)
    assert model.sample_shape == (16, 2, 4, 4) and model.host["shift"] == 3.0 and model.host["num_frames"] == 5
    solver = quick_flow_solver(model, nfe=3, method="s4s_alt", base="dpmpp_2m")
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    assert scheduler.config.frame == "flow"  # from use_flow_sigmas
    latents = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    frames, calls = run_with(pipe, scheduler, pipe.transformer, prompt=PROMPTS[:1], num_inference_steps=3,
                             guidance_scale=3.0, latents=latents, **video)
    assert calls == [1, 1] * 3  # WanPipeline makes its guided and unguided calls one after the other
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(latents), model.conditions([0]))
        ours = (model.decode(x) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1).numpy()  # [B, frames, H, W, 3]
    assert frames.shape == ours.shape == (1, 5, 32, 32, 3)
    assert np.abs(frames - ours).max() < 1e-3
    with pytest.raises(ValueError, match="num_frames must be 1 \\+ a multiple of 4"):
        s4s.from_diffusers(pipe, prompts=PROMPTS[:1], height=32, width=32, num_frames=6)


def test_sana_pipeline_with_s4s_scheduler_is_solver_sample_with_its_text_mask(tmp_path):
    pipe = tiny_sana(tmp_path)  # Sana's DPMSolverMultistepScheduler in its flow mode
    size = dict(height=32, width=32, max_sequence_length=TOKENS)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS, guidance_scale=4.5, **size)
    assert model.sample_shape == (4, 16, 16) and model.host["shift"] == 3.0
    cond = model.conditions([0, 1])
    assert set(cond) == {"encoder_hidden_states", "encoder_attention_mask"}
    solver = quick_flow_solver(model, nfe=3, method="ld3", base="ipndm")
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    images, calls = run_with(pipe, scheduler, pipe.transformer, prompt=PROMPTS[1:], num_inference_steps=3,
                             guidance_scale=4.5, latents=latents, use_resolution_binning=False, **size)
    assert calls == [2] * 3
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(latents), model.conditions([1]))
    assert np.abs(images - decoded(model, x)).max() < 1e-3


def test_qwen_image_pipeline_with_s4s_scheduler_is_solver_sample_with_its_rescaled_true_cfg(tmp_path):
    pipe = tiny_qwen_image(tmp_path)  # Qwen-Image's scheduler: dynamic shift, shift_terminal
    size = dict(height=16, width=16, max_sequence_length=TOKENS)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS, negative_prompt=" ", true_cfg_scale=4.0, **size)
    assert model.sample_shape == (16, 16)  # packed: 4 x 4 tokens of 2 x 2 x 4 channels
    shift, mu = flow_shift(pipe.scheduler.config, 8, 8, 2)
    assert model.host["mu"] == pytest.approx(mu) and model.host["true_cfg_scale"] == 4.0
    cond = model.conditions([0, 1])
    assert set(cond) == {"encoder_hidden_states", "encoder_hidden_states_mask"}
    solver = quick_flow_solver(model, nfe=3, method="ld3", base="ipndm")
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    latents = torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(6))
    images, calls = run_with(pipe, scheduler, pipe.transformer, prompt=PROMPTS[1:], negative_prompt=" ",
                             true_cfg_scale=4.0, num_inference_steps=3, latents=latents, **size)
    assert calls == [1, 1] * 3  # the pipeline's two passes a step; the model makes one batched call
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(latents), model.conditions([1]))
    assert np.abs(images - decoded(model, x)).max() < 1e-3
    with pytest.raises(ValueError, match="true_cfg_scale .* with a negative_prompt"):
        s4s.from_diffusers(pipe, prompts=PROMPTS, guidance_scale=4.0, **size)


def test_sdxl_pipeline_with_s4s_scheduler_is_solver_sample_with_its_added_conditions(tmp_path):
    pipe = tiny_sdxl(tmp_path)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS, guidance_scale=4.0)
    cond = model.conditions([1])
    assert set(cond) == {"encoder_hidden_states", "text_embeds", "time_ids"}
    assert cond["time_ids"].tolist() == [[16.0, 16.0, 0.0, 0.0, 16.0, 16.0]]
    teacher = s4s.TeacherSpec("unipc", 24, "karras")
    data = s4s.generate_teacher(model, range(8), model.sample_shape, teacher, cond=model.conditions(list(range(8))))
    solver = s4s.learn(model, nfe=3, method="s4s", teacher_data=data, config=s4s.LearnConfig(
        teacher=teacher, iters=4, base="dpmpp_2m", schedule="karras"))
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    # no negative prompt: the pipeline zeroes the negative embeddings (force_zeros_for_empty_prompt), as we do
    images, calls = run_with(pipe, scheduler, pipe.unet, prompt=PROMPTS[1:], num_inference_steps=3,
                             guidance_scale=4.0, latents=latents)
    assert calls == [2] * 3
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(latents), cond)
    assert np.abs(images - decoded(model, x)).max() < 1e-3


def test_an_unconditional_text_pipeline_samples_the_empty_prompt(tmp_path):
    pipe = tiny_stable_diffusion(tmp_path)
    model = s4s.from_diffusers(pipe)  # no prompts: pipe(prompt="") without guidance
    solver = s4s.make_solver("dpmpp_2m", 4, "karras", model)
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    images, calls = run_with(pipe, scheduler, pipe.unet, prompt="", num_inference_steps=4, guidance_scale=1.0,
                             latents=latents)
    assert calls == [1] * 4
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(latents))  # no cond needed
    assert np.abs(images - decoded(model, x)).max() < 1e-3


def test_the_flow_scheduler_takes_the_pipelines_sigmas_and_refuses_another_shift(sd3):
    model = s4s.from_diffusers(sd3, prompts=PROMPTS, max_sequence_length=TOKENS)
    solver = s4s.make_solver("dpmpp_2m", 5, "time_uniform+zero", model)
    solver = solver.with_(meta={"model": {"host": dict(model.host)}})
    scheduler = S4SScheduler.from_solver(solver, **sd3.scheduler.config)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.2, 5), device="cpu")  # Flux passes its spacing
    assert len(scheduler.timesteps) == 5 and scheduler.sigmas[-1] == 0 and scheduler.step_index is None
    t = scheduler.timesteps / 1000
    assert torch.allclose(t.double(), (solver.model_sigmas / (1 + solver.model_sigmas)), atol=1e-6)
    scheduler.set_timesteps(5, mu=math.log(3.0))  # the same shift: accepted
    with pytest.raises(ValueError, match=r"shift exp\(mu\) = 2.*learned at shift 3"):
        scheduler.set_timesteps(5, mu=math.log(2.0))
    with pytest.raises(ValueError, match="exactly 5 steps"):
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.2, 4))
    scheduler.set_timesteps(5)
    with pytest.raises(ValueError, match=r"latents of shape \(4, 8, 8\)"):
        scheduler.step(torch.zeros(1, 4, 16, 16), scheduler.timesteps[0], torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match="begin_index=2"):
        scheduler.set_begin_index(2)
    x0, n = torch.randn(2, 4), torch.randn(2, 4)
    assert torch.allclose(scheduler.scale_noise(x0, torch.tensor([250.0]), n), 0.75 * x0 + 0.25 * n)


def test_dynamic_shifting_computes_mu_as_the_pipelines_do():
    config = {"use_dynamic_shifting": True, "base_image_seq_len": 256, "max_image_seq_len": 4096, "base_shift": 0.5,
              "max_shift": 1.15}
    shift, mu = flow_shift(config, 128, 128, 2)  # Flux at 1024x1024: 4096 tokens
    assert mu == pytest.approx(1.15) and shift == pytest.approx(math.exp(1.15))
    assert flow_shift(config, 32, 32, 2)[1] == pytest.approx(0.5)  # 256 tokens
    assert flow_shift({"shift": 3.0}, 64, 64, 2) == (3.0, None)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_a_zero_terminal_snr_v_prediction_pipeline_under_every_timestep_spacing(tmp_path, spacing):
    from diffusers import DDIMScheduler

    pipe = tiny_stable_diffusion(tmp_path)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, rescale_betas_zero_snr=True,
                                               prediction_type="v_prediction", timestep_spacing=spacing)
    assert float(pipe.scheduler.alphas_cumprod[-1]) == 0  # the terminal level is pure noise
    model = s4s.from_diffusers(pipe, prompts=PROMPTS[:1])
    assert model.sigma_max == pytest.approx(2**12, rel=1e-6)  # the final 0 read as 2**-24
    solver = s4s.make_solver("dpmpp_2m", 4, "karras", model)
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(6))
    images, calls = run_with(pipe, scheduler, pipe.unet, prompt=PROMPTS[0], num_inference_steps=4, guidance_scale=1.0,
                             latents=latents)
    assert calls == [1] * 4
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(latents), model.conditions([0]))
    assert np.abs(images - decoded(model, x)).max() < 1e-3


def test_the_command_line_learns_and_samples_a_saved_sd3_pipeline(sd3, tmp_path):
    from s4s.cli import main

    folder = tmp_path / "sd3"
    sd3.save_pretrained(folder, safe_serialization=True)
    out = tmp_path / "sd3-s4s.json"
    assert main(["learn", "--model", f"diffusers:{folder}", "--nfe", "3", "--num-samples", "8", "--iters", "2",
                 "--teacher", "unipc:12", "--teacher-schedule", "time_uniform", "--cache", str(tmp_path / "cache"),
                 "--out", str(out)]) == 0
    solver = s4s.load_solver(out)
    assert solver.meta["model"]["host"]["pipeline"] == "StableDiffusion3Pipeline"
    assert main(["sample", "--model", f"diffusers:{folder}", "--solver", str(out), "--seeds", "0-1", "--out",
                 str(tmp_path / "x.safetensors")]) == 0


def test_image_to_image_at_strength_0_6_with_a_solver_learned_for_that_start(tmp_path):
    from diffusers import StableDiffusionImg2ImgPipeline

    text = tiny_stable_diffusion(tmp_path)
    pipe = img2img(StableDiffusionImg2ImgPipeline, text)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS[:1], guidance_scale=3.0)
    solver = learned_at_strength(model, "s4s_alt", "dpmpp_2m/karras", "karras")
    start = s4s.models.strength_level(model, 0.6)
    assert solver.meta["strength"] == 0.6 and float(solver.sigmas[0]) == pytest.approx(start)
    assert 0.5 < float(s4s.models.DiscreteVP(pipe.scheduler.alphas_cumprod).sigma_to_t(torch.tensor(start))) / 999 < 0.7
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    steps = scheduler.img2img_steps()["int"]
    assert int(steps * 0.6) == 3
    starts = recording_starts(scheduler, "add_noise")
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    images, calls = run_with(pipe, scheduler, pipe.unet, prompt=PROMPTS[0], image=image, strength=0.6,
                             num_inference_steps=steps, guidance_scale=3.0, generator=torch.Generator().manual_seed(9))
    assert calls == [2] * 3  # three solver steps, guided in one batched call each
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(starts[0]), model.conditions([0]))
    assert np.abs(images - decoded(model, x)).max() < 1e-3
    with pytest.raises(ValueError, match=f"strength 0.6 with 3 steps, not for num_inference_steps=3: give "
                                         f"strength=0.6 and num_inference_steps={steps}"):
        scheduler.set_timesteps(3)  # text-to-image from noise: not what it was learned for
    with pytest.raises(ValueError, match="would run 4 of 5 steps; this solver .strength 0.6. runs 3"):
        run_with(pipe, scheduler, pipe.unet, prompt=PROMPTS[0], image=image, strength=0.8, num_inference_steps=steps,
                 guidance_scale=3.0)


def test_sd3_image_to_image_with_a_solver_learned_for_that_start(sd3):
    from diffusers import StableDiffusion3Img2ImgPipeline

    pipe = img2img(StableDiffusion3Img2ImgPipeline, sd3)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS[:1], guidance_scale=3.0, max_sequence_length=TOKENS)
    solver = learned_at_strength(model, "s4s", "dpmpp_2m/time_uniform+zero", "time_uniform")
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    steps = scheduler.img2img_steps()["skip"]  # SD3 skips int(steps - steps * strength)
    starts = recording_starts(scheduler, "scale_noise")
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    images, calls = run_with(pipe, scheduler, pipe.transformer, prompt=PROMPTS[0], image=image, strength=0.6,
                             num_inference_steps=steps, guidance_scale=3.0, max_sequence_length=TOKENS,
                             generator=torch.Generator().manual_seed(9))
    assert calls == [2] * 3
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(starts[0]), model.conditions([0]))
    assert np.abs(images - decoded(model, x)).max() < 1e-3


def test_sdxl_image_to_image_with_a_solver_learned_for_that_start(tmp_path):
    from diffusers import StableDiffusionXLImg2ImgPipeline

    text = tiny_sdxl(tmp_path)
    pipe = img2img(StableDiffusionXLImg2ImgPipeline, text)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS[:1], guidance_scale=4.0)
    solver = learned_at_strength(model, "ld3", "dpmpp_2m/karras", "karras")
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    starts = recording_starts(scheduler, "add_noise")
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    images, calls = run_with(pipe, scheduler, pipe.unet, prompt=PROMPTS[0], image=image, strength=0.6,
                             num_inference_steps=scheduler.img2img_steps()["int"], guidance_scale=4.0,
                             generator=torch.Generator().manual_seed(9))
    assert calls == [2] * 3
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(starts[0]), model.conditions([0]))
    assert np.abs(images - decoded(model, x)).max() < 1e-3


def test_the_command_line_takes_a_pipelines_prompts_and_guidance(sd3, tmp_path):
    from s4s.cli import main

    folder = tmp_path / "sd3"
    sd3.save_pretrained(folder, safe_serialization=True)
    out = tmp_path / "sd3-guided.json"
    assert main(["learn", "--model", f"diffusers:{folder}", "--prompt", PROMPTS[0], "--prompt", PROMPTS[1],
                 "--guidance", "3", "--nfe", "3", "--num-samples", "8", "--iters", "2", "--teacher", "unipc:12",
                 "--teacher-schedule", "time_uniform", "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    host = s4s.load_solver(out).meta["model"]["host"]
    assert host["guidance_scale"] == 3.0
    samples = tmp_path / "x.safetensors"
    assert main(["sample", "--model", f"diffusers:{folder}", "--prompt", PROMPTS[1], "--guidance", "3", "--solver",
                 str(out), "--seeds", "0-1", "--out", str(samples)]) == 0
    assert main(["learn", "--model", "gmm", "--prompt", "a cat", "--nfe", "3", "--out", str(tmp_path / "y.json")]) == 2


def test_flux_image_to_image_with_a_solver_learned_for_that_start(tmp_path):
    from diffusers import FluxImg2ImgPipeline

    text = tiny_flux(tmp_path)
    pipe = img2img(FluxImg2ImgPipeline, text)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS[:1], guidance_scale=3.5, height=16, width=16,
                               max_sequence_length=TOKENS)
    solver = learned_at_strength(model, "s4s", "ipndm/time_uniform+zero", "time_uniform", cond=None)
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    starts = recording_starts(scheduler, "scale_noise")
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    images, calls = run_with(pipe, scheduler, pipe.transformer, prompt=PROMPTS[0], image=image, strength=0.6,
                             num_inference_steps=scheduler.img2img_steps()["skip"], guidance_scale=3.5, height=16,
                             width=16, max_sequence_length=TOKENS, generator=torch.Generator().manual_seed(9))
    assert calls == [1] * 3
    packed = pipe._pack_latents(starts[0], 1, 4, 8, 8)  # the pipeline packs the noised latents
    with torch.no_grad():
        x = solver.sample(model, scheduler.solver_noise(packed))
    assert np.abs(images - decoded(model, x)).max() < 1e-3


def test_flux_true_cfg_against_a_negative_prompt_in_one_batched_call(tmp_path):
    pipe = tiny_flux(tmp_path)
    model = s4s.from_diffusers(pipe, prompts=PROMPTS[:1], guidance_scale=3.5, true_cfg_scale=2.0,
                               negative_prompt="a blurry digit", height=16, width=16, max_sequence_length=TOKENS)
    solver = s4s.make_solver("ipndm", 4, "time_uniform+zero", model)
    scheduler = S4SScheduler.from_solver(solver, **pipe.scheduler.config)
    latents = torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(4))
    images, calls = run_with(pipe, scheduler, pipe.transformer, prompt=PROMPTS[0], negative_prompt="a blurry digit",
                             true_cfg_scale=2.0, num_inference_steps=4, guidance_scale=3.5, latents=latents,
                             height=16, width=16, max_sequence_length=TOKENS)
    assert calls == [1, 1] * 4  # the pipeline: the prompt, then the negative prompt, each step
    ours, restore = counting(pipe.transformer)
    try:
        with torch.no_grad():
            x = solver.sample(model, scheduler.solver_noise(latents), model.conditions([0]))
    finally:
        restore()
    assert ours == [2] * 4  # s4s: both in one batched call
    assert np.abs(images - decoded(model, x)).max() < 1e-3
    with pytest.raises(ValueError, match="true_cfg_scale needs"):
        s4s.from_diffusers(pipe, prompts=PROMPTS[:1], true_cfg_scale=2.0, height=16, width=16)
