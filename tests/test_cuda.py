"""CUDA paths: sampling, teacher generation, learning and the diffusers scheduler on a GPU agree
with the CPU. Skipped where no GPU is present (CI); run on a lent GPU machine."""

from __future__ import annotations

import pytest
import torch

import s4s
from s4s import metrics
from s4s.learn.params import SolverParams
from s4s.noise import seeded_noise
from s4s.teacher import teacher_gap

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def digits():
    return s4s.zoo.load("digits"), s4s.zoo.load("digits", device="cuda")


def test_sampling_on_cuda_matches_cpu(digits):
    cpu, gpu = digits
    solver = s4s.make_solver("dpmpp_3m", 6, "logsnr", cpu)
    noise = seeded_noise(range(64), SHAPE)
    with torch.no_grad():
        x_cpu = solver.sample(cpu, noise)
        x_gpu = solver.sample(gpu, noise.cuda())
    assert x_gpu.device.type == "cuda"
    assert metrics.rmse(x_gpu.cpu(), x_cpu) < 5e-3  # float32 (and TF32 convolutions) on the GPU


def test_teacher_on_cuda_matches_cpu(digits, tmp_path):
    cpu, gpu = digits
    spec = s4s.TeacherSpec("unipc", 40, "karras")
    on_cpu = s4s.generate_teacher(cpu, list(range(16)), SHAPE, spec)
    on_gpu = s4s.generate_teacher(gpu, list(range(16)), SHAPE, spec, device="cuda", cache_dir=str(tmp_path))
    assert on_gpu.samples.device.type == "cuda"
    assert torch.equal(on_gpu.noise.cpu(), on_cpu.noise)  # per-seed CPU generators: device-independent
    assert metrics.rmse(on_gpu.samples.cpu(), on_cpu.samples) < 5e-3
    again = s4s.generate_teacher(gpu, list(range(16)), SHAPE, spec, device="cuda", cache_dir=str(tmp_path))
    assert torch.equal(again.samples, on_gpu.samples)  # read back from the cache onto the GPU


def test_guided_teacher_on_cuda_keeps_conditions_on_the_gpu():
    gpu = s4s.zoo.load("digits", guidance=2.0, device="cuda")
    spec = s4s.TeacherSpec("unipc", 20, "karras")
    data = s4s.generate_teacher(gpu, list(range(8)), SHAPE, spec, cond=torch.arange(8) % 10, device="cuda")
    assert data.cond.device.type == "cuda" and data.samples.device.type == "cuda"
    assert teacher_gap(gpu, data, spec) < 0.05  # the 2x-finer teacher runs with the same conditions


def test_learn_on_cuda(digits, tmp_path):
    _, gpu = digits
    solver = s4s.learn(gpu, nfe=4, method="s4s_alt", num_samples=64, seed=0,
                       config=s4s.LearnConfig(iters=20, device="cuda", teacher=s4s.TeacherSpec("unipc", 40, "karras")))
    m = solver.meta["metrics"]
    assert m["val_best"] <= m["val_start"]
    calls = []
    counting = s4s.Denoiser(lambda x, s: (calls.append(x.device.type), gpu(x, s))[1], gpu.sigma_min, gpu.sigma_max)
    noise = seeded_noise(range(1000, 1032), SHAPE, device="cuda")
    with torch.no_grad():
        x = solver.sample(counting, noise)
        again = s4s.load_solver(solver.save(tmp_path / "cuda.json")).sample(gpu, noise)
    assert calls == ["cuda"] * 4 and x.device.type == "cuda"
    assert torch.equal(again, x)  # a reloaded solver gives bit-identical samples on the GPU too


def test_activation_checkpointing_lowers_gpu_memory(digits):
    _, gpu = digits
    params = SolverParams("unipc", s4s.make_solver("unipc", 10, "logsnr", gpu).grid)
    noise = seeded_noise(range(256), SHAPE, device="cuda")
    peaks, grads = [], []
    for checkpointing in (False, True):
        params.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        x = params.solver().sample(gpu, noise, checkpoint_steps=checkpointing)
        x.pow(2).mean().backward()
        torch.cuda.synchronize()
        peaks.append(torch.cuda.max_memory_allocated() - base)
        grads.append(params.coef.grad.clone())
    assert peaks[1] < 0.5 * peaks[0], peaks
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-6)  # the same gradient either way


def test_diffusers_scheduler_on_cuda():
    pytest.importorskip("diffusers")
    from s4s.integrations.diffusers import S4SScheduler, load_pipeline

    pipe = load_pipeline(s4s.zoo.path("digits-ddpm")).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    model = s4s.from_diffusers(pipe)
    solver = s4s.make_solver("unipc", 5, "logsnr", model)
    pipe.scheduler = S4SScheduler.from_solver(solver, **dict(pipe.scheduler.config))
    images = pipe(batch_size=8, generator=torch.Generator("cuda").manual_seed(0), num_inference_steps=5,
                  output_type="pt").images
    assert images.shape == (8, 1, 8, 8) and torch.isfinite(images).all()
    latents = torch.randn((8, 1, 8, 8), generator=torch.Generator("cuda").manual_seed(0), device="cuda")
    with torch.no_grad():
        direct = solver.sample(model, latents)
    # float32 solver states and TF32 convolutions on the GPU: measured 0.009 at most on an H200
    # (a wrong time mapping or step would be off by tenths)
    diff = (images.cpu() - (direct.float().cpu() / 2 + 0.5).clamp(0, 1)).abs()
    assert diff.max() < 2e-2 and diff.mean() < 2e-3


def test_cli_learns_and_samples_on_cuda(tmp_path):
    from safetensors.torch import load_file

    from s4s.cli import main

    solver = tmp_path / "digits.json"
    assert main(["learn", "--model", "digits", "--device", "cuda", "--teacher", "unipc:20", "--nfe", "3",
                 "--num-samples", "16", "--iters", "4", "--out", str(solver)]) == 0
    x = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.safetensors"
        assert main(["sample", "--model", "digits", "--solver", str(solver), "--seeds", "0-7", "--device", device,
                     "--out", str(out)]) == 0
        x[device] = load_file(str(out))["samples"]
    assert metrics.rmse(x["cuda"], x["cpu"]) < 5e-3
