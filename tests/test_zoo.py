"""The zoo: shipped weights load without pickle and sample; recipes are deterministic; metrics rank quality."""

from __future__ import annotations

import pytest
import torch

import s4s
from s4s import metrics, zoo
from s4s.noise import seeded_noise
from s4s.zoo.data import digits_split
from s4s.zoo.neural import load_module, save_module

NEURAL = ["digits", "digits-ddpm", "digits-flow"]


def sample(model, name="unipc", nfe=40, n=200, cond=None):
    noise = seeded_noise(range(n), zoo.sample_shape(model))
    with torch.no_grad():
        return s4s.make_solver(name, nfe, "karras", model).sample(model, noise, cond)


@pytest.mark.parametrize("name", NEURAL)
def test_neural_models_load_and_make_digits(name):
    model = zoo.load(name)
    assert isinstance(model, s4s.Denoiser)
    x = sample(model)
    assert x.shape == (200, 1, 8, 8) and bool(torch.isfinite(x).all())
    # a light version of benchmarks/zoo_quality.py: the shipped classifier is confident on teacher samples
    assert float(metrics.classify_digits(x).max(1).values.mean()) > 0.85


def test_guided_digits_follow_the_label():
    model = zoo.load("digits", guidance=2.0)
    labels = torch.arange(200) % 10
    x = sample(model, cond=labels)
    assert float((metrics.classify_digits(x).argmax(1) == labels).float().mean()) > 0.85


def test_classifier_is_accurate_on_held_out_digits():
    _, (x, y) = digits_split()
    assert float((metrics.classify_digits(x).argmax(1) == y).float().mean()) >= 0.97


def test_fd_digits_ranks_sampling_quality():
    model = zoo.load("digits")
    teacher = metrics.fd_digits(sample(model, nfe=60, n=600))
    ddim = [metrics.fd_digits(sample(model, "ddim", nfe, n=600)) for nfe in (3, 5, 10)]
    assert teacher < 0.5 * ddim[0]
    assert ddim[0] > ddim[1] > ddim[2]


def test_ddpm_is_a_diffusers_pipeline_folder():
    diffusers = pytest.importorskip("diffusers")
    pipe = diffusers.DDPMPipeline.from_pretrained(zoo.path("digits-ddpm"), low_cpu_mem_usage=False)
    assert pipe.unet.config.sample_size == 8
    assert (zoo.path("digits-ddpm") / "unet" / "diffusion_pytorch_model.safetensors").exists()


def test_weights_are_safetensors_and_checked(tmp_path):
    for name in ("digits", "digits-flow", "classifier"):
        with open(zoo.path(name), "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            assert f.read(1) == b"{" and header_len < 100_000  # a safetensors JSON header, not a pickle
    with pytest.raises(ValueError, match="holds 'edm-unet' weights, expected 'flow-unet'"):
        load_module(zoo.path("digits"), "flow-unet")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(Exception):
        load_module(bad, "classifier")
    with pytest.raises(FileNotFoundError, match="s4s zoo train"):
        load_module(tmp_path / "missing.safetensors", "classifier")


def test_training_is_deterministic(tmp_path):
    from s4s.zoo.train import train

    first = train("digits", tmp_path / "a", seed=3, steps=100)
    second = train("digits", tmp_path / "b", seed=3, steps=100)
    assert len(first) == 100 and first == second
    assert train("classifier", tmp_path / "c", seed=3, steps=100) == train("classifier", tmp_path / "d", seed=3, steps=100)


def test_save_and_load_module_round_trip(tmp_path):
    net = torch.nn.Linear(3, 2)
    save_module(net, tmp_path / "m.safetensors", "linear", {"in": 3}, note="x")
    state, config, info = load_module(tmp_path / "m.safetensors", "linear")
    assert config == {"in": 3} and info == {"note": "x"}
    assert torch.equal(state["weight"], net.weight)


def test_mixture_metrics():
    gmm = zoo.load("gmm", dim=2)
    g = torch.Generator().manual_seed(0)
    data, other = gmm.sample_data(2000, g), gmm.sample_data(2000, g)
    noise = seeded_noise(range(2000), (2,), dtype=torch.float64)
    rough = s4s.make_solver("ddim", 3, "karras", gmm).sample(gmm, noise)
    assert metrics.sliced_wasserstein(data, other) < 0.5 * metrics.sliced_wasserstein(data, rough)
    assert metrics.mean_log_likelihood(gmm, data) > metrics.mean_log_likelihood(gmm, rough)
    with pytest.raises(TypeError, match="no exact density"):
        metrics.mean_log_likelihood(object(), data)


def test_inception_fid_explains_what_is_missing():
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install torch-fidelity"):
            metrics.inception_fid(images, images)
    else:  # pragma: no cover - only where torch-fidelity is installed
        with pytest.raises(RuntimeError, match="Inception weights"):
            metrics.inception_fid(images, images)


def test_sample_grid_png(tmp_path):
    from PIL import Image

    from s4s.viz import save_grid

    x = torch.rand(5, 1, 8, 8) * 2 - 1
    path = save_grid({"teacher": x, "ddim 4 NFE": x.flip(0)}, tmp_path / "g.png", scale=4, pad=2)
    img = Image.open(path)
    assert img.size[1] == 2 * (8 * 4 + 2) + 2
    with pytest.raises(ValueError, match="same number and shape"):
        save_grid({"a": x, "b": x[:3]}, tmp_path / "h.png")
    many = torch.rand(70, 1, 8, 8) * 2 - 1  # 70 images wrap onto three lines of 32
    wide = Image.open(save_grid({"s4s_alt": many}, tmp_path / "w.png", scale=1, pad=2))
    assert wide.size[1] == 3 * (8 + 2) + 2 and wide.size[0] < 32 * 10 + 200
    assert tuple(wide.getpixel((wide.size[0] - 3, 2 * 10 + 4))) == (255, 255, 255)  # the last line holds 6


def test_latent_flow_model_is_an_sd3_pipeline_that_makes_the_prompted_digits():
    pytest.importorskip("diffusers")
    from diffusers import StableDiffusion3Pipeline

    folder = zoo.path("digits-sd3")
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= 10 * 2**20, f"digits-sd3 is {size / 2**20:.1f} MB"
    model = zoo.load("digits-sd3", guidance=2.0)
    assert isinstance(model.pipeline, StableDiffusion3Pipeline) and model.sample_shape == (4, 4, 4)
    assert model.host["frame"] == "flow" and model.host["guidance_scale"] == 2.0
    seeds = list(range(60))
    latents = sample(model, nfe=16, n=60, cond=model.conditions(seeds))
    with torch.no_grad():
        images = model.decode(latents)
    assert images.shape == (60, 1, 8, 8)
    labels = torch.tensor(seeds) % 10  # seed s draws the prompt str(s % 10)
    assert float((metrics.classify_digits(images).argmax(1) == labels).float().mean()) > 0.85


def test_latent_flow_training_is_deterministic_and_writes_a_pipeline(tmp_path):
    pytest.importorskip("diffusers")
    from s4s.zoo.train import train

    first = train("digits-sd3", tmp_path / "a", seed=3, steps=6)
    assert first == train("digits-sd3", tmp_path / "b", seed=3, steps=6) and len(first) == 6
    model = zoo.load("digits-sd3", path=tmp_path / "a" / "digits-sd3")
    vae = model.pipeline.vae.config
    assert vae.scaling_factor != 1.0 and vae.shift_factor != 0.0  # measured from the latents, as SD3's are
    assert model.sample_shape == (4, 4, 4)
