"""ComfyUI's sampling calls, replayed for tests (ComfyUI is not on the package registries).

What is replayed, from ComfyUI's source (``comfy/samplers.py``: ``KSAMPLER.sample``,
``KSamplerX0Inpaint``, ``CFGGuider``; ``comfy/model_sampling.py``: ``EPS``, ``CONST``, the
discrete and flow sampling objects; ``comfy/utils.py``: ``ProgressBar``), as modules
``comfy.samplers``, ``comfy.model_sampling`` and ``comfy.utils`` put in ``sys.modules`` by
:func:`installed` only when the real ComfyUI is not importable. The models are real: the zoo's
digits networks behind k-diffusion's own ``external`` wrappers (``CompVisDenoiser``,
``CompVisVDenoiser``), quantised or not.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import sys
import types
from typing import Any, Iterator

import torch
from torch import Tensor, nn


def k_diffusion_external() -> Any:
    """k-diffusion's ``external`` module. The package's ``__init__`` imports its training code
    (CLIP, clean-fid, kornia, wandb, ...), so only ``external`` and what it imports (``sampling``,
    ``utils``) are loaded; ``utils`` imports torchvision for image helpers ``external`` never
    calls, and PyPI's torchvision does not load beside the CPU torch here, so an empty
    ``torchvision.transforms.functional`` stands in when the real one is missing."""
    with contextlib.suppress(ImportError):
        import k_diffusion.external as external  # a full k-diffusion install

        return external
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed (make install installs it with --no-deps)")
    try:
        import torchvision.transforms.functional  # noqa: F401
    except Exception:  # noqa: BLE001 - absent, or PyPI's build failing beside the CPU torch
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            sys.modules[name] = types.ModuleType(name)
    package = types.ModuleType("k_diffusion")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["k_diffusion"] = package
    return importlib.import_module("k_diffusion.external")


# --- comfy/model_sampling.py ---------------------------------------------------------------

class EPS:
    sigma_data = 1.0

    def calculate_input(self, sigma: Tensor, noise: Tensor) -> Tensor:
        sigma = sigma.view(sigma.shape[:1] + (1,) * (noise.ndim - 1))
        return noise / (sigma ** 2 + self.sigma_data ** 2) ** 0.5

    def noise_scaling(self, sigma: Tensor, noise: Tensor, latent_image: Tensor, max_denoise: bool = False) -> Tensor:
        noise = noise * torch.sqrt(1.0 + sigma ** 2.0) if max_denoise else noise * sigma
        return noise + latent_image

    def inverse_noise_scaling(self, sigma: Tensor, latent: Tensor) -> Tensor:
        return latent


class V_PREDICTION(EPS):
    pass


class CONST:
    def calculate_input(self, sigma: Tensor, noise: Tensor) -> Tensor:
        return noise

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, model_input: Tensor) -> Tensor:
        sigma = sigma.view(sigma.shape[:1] + (1,) * (model_output.ndim - 1))
        return model_input - model_output * sigma

    def noise_scaling(self, sigma: Tensor, noise: Tensor, latent_image: Tensor, max_denoise: bool = False) -> Tensor:
        return sigma * noise + (1.0 - sigma) * latent_image

    def inverse_noise_scaling(self, sigma: Tensor, latent: Tensor) -> Tensor:
        return latent / (1.0 - sigma)


class KDiscreteSampling(EPS, nn.Module):
    """A discrete model's sampling object whose levels and timesteps are those of a k-diffusion
    wrapper (``quantize`` as the wrapper's: ComfyUI's own discrete models always round)."""

    def __init__(self, wrapper: Any) -> None:
        nn.Module.__init__(self)
        self.wrapper = wrapper

    @property
    def sigma_min(self) -> Tensor:
        return self.wrapper.sigma_min

    @property
    def sigma_max(self) -> Tensor:
        return self.wrapper.sigma_max

    def timestep(self, sigma: Tensor) -> Tensor:
        return self.wrapper.sigma_to_t(sigma)


class ModelSamplingDiscreteFlow(CONST, nn.Module):
    def __init__(self, shift: float = 1.0, multiplier: float = 1000.0, timesteps: int = 1000) -> None:
        nn.Module.__init__(self)
        self.shift, self.multiplier = shift, multiplier
        self.register_buffer("sigmas", self.sigma(torch.arange(1, timesteps + 1, 1) * multiplier / timesteps))

    @property
    def sigma_min(self) -> Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> Tensor:
        return self.sigmas[-1]

    def timestep(self, sigma: Tensor) -> Tensor:
        return sigma * self.multiplier

    def sigma(self, timestep: Tensor) -> Tensor:
        t = timestep / self.multiplier
        return t if self.shift == 1.0 else self.shift * t / (1 + (self.shift - 1) * t)


# --- comfy/samplers.py -----------------------------------------------------------------------

class KSamplerX0Inpaint:
    def __init__(self, model: Any, sigmas: Tensor) -> None:
        self.inner_model, self.sigmas = model, sigmas

    def __call__(self, x: Tensor, sigma: Tensor, denoise_mask: Tensor | None, model_options: dict = {}, seed: int | None = None) -> Tensor:  # noqa: B006
        assert denoise_mask is None, "inpainting is not replayed"
        return self.inner_model(x, sigma, model_options=model_options, seed=seed)


class Sampler:
    def max_denoise(self, model_wrap: Any, sigmas: Tensor) -> bool:
        max_sigma = float(model_wrap.inner_model.model_sampling.sigma_max)
        sigma = float(sigmas[0])
        return math.isclose(max_sigma, sigma, rel_tol=1e-05) or sigma > max_sigma


class KSAMPLER(Sampler):
    def __init__(self, sampler_function: Any, extra_options: dict = {}, inpaint_options: dict = {}) -> None:  # noqa: B006
        self.sampler_function, self.extra_options, self.inpaint_options = sampler_function, extra_options, inpaint_options

    def sample(self, model_wrap: Any, sigmas: Tensor, extra_args: dict, callback: Any, noise: Tensor,
               latent_image: Tensor | None = None, denoise_mask: Tensor | None = None, disable_pbar: bool = False) -> Tensor:
        extra_args["denoise_mask"] = denoise_mask
        model_k = KSamplerX0Inpaint(model_wrap, sigmas)
        model_k.latent_image, model_k.noise = latent_image, noise
        sampling = model_wrap.inner_model.model_sampling
        noise = sampling.noise_scaling(sigmas[0], noise, latent_image, self.max_denoise(model_wrap, sigmas))
        total_steps = len(sigmas) - 1
        k_callback = None if callback is None else (lambda x: callback(x["i"], x["denoised"], x["x"], total_steps))
        samples = self.sampler_function(model_k, noise, sigmas, extra_args=extra_args, callback=k_callback,
                                        disable=disable_pbar, **self.extra_options)
        return sampling.inverse_noise_scaling(sigmas[-1], samples)


class CFGGuider:
    """``CFGGuider`` without ComfyUI's condition processing: a condition here is what the base
    model's ``apply_model`` takes (``None`` for an unconditional model); at cfg 1 the negative
    is not evaluated, as in ComfyUI."""

    def __init__(self, model_patcher: "ModelPatcher") -> None:
        self.model_patcher, self.inner_model, self.cfg = model_patcher, model_patcher.model, 1.0

    def set_conds(self, positive: Any, negative: Any) -> None:
        self.conds = {"positive": positive, "negative": negative}

    def set_cfg(self, cfg: float) -> None:
        self.cfg = cfg

    def __call__(self, x: Tensor, sigma: Tensor, model_options: dict = {}, seed: int | None = None) -> Tensor:  # noqa: B006
        cond = self.inner_model.apply_model(x, sigma, self.conds["positive"])
        if self.cfg == 1.0:
            return cond
        uncond = self.inner_model.apply_model(x, sigma, self.conds["negative"])
        return uncond + (cond - uncond) * self.cfg

    def sample(self, noise: Tensor, latent_image: Tensor, sampler: Sampler, sigmas: Tensor, denoise_mask: Tensor | None = None,
               callback: Any = None, disable_pbar: bool = False, seed: int | None = None) -> Tensor:
        extra_args = {"model_options": {}, "seed": seed}
        return sampler.sample(self, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)


# --- comfy/utils.py ----------------------------------------------------------------------------

class ProgressBar:
    seen: list[tuple[int, int]] = []

    def __init__(self, total: int) -> None:
        self.total, self.current = total, 0

    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
        self.total = self.total if total is None else total
        self.current = value
        ProgressBar.seen.append((value, self.total))


# --- models, wrapped the way ComfyUI wraps them -------------------------------------------------

class BaseModel(nn.Module):
    """ComfyUI's ``BaseModel`` role: ``model_sampling`` and ``apply_model(x, sigma, cond) -> x0``."""

    def __init__(self, denoise: Any, model_sampling: Any, net: nn.Module) -> None:
        super().__init__()
        self.denoise, self.model_sampling, self.net = denoise, model_sampling, net

    def apply_model(self, x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
        return self.denoise(x, sigma, cond)


class ModelPatcher:
    def __init__(self, model: BaseModel) -> None:
        self.model = model

    def get_model_object(self, name: str) -> Any:
        return getattr(self.model, name)


class CompVisDigits(nn.Module):
    """The zoo's diffusers DDPM digits network as a CompVis model (``apply_model``,
    ``alphas_cumprod``), predicting eps, or v computed exactly from its eps."""

    def __init__(self, unet: nn.Module, alphas_cumprod: Tensor, prediction: str = "eps") -> None:
        super().__init__()
        self.unet, self.prediction = unet, prediction
        self.register_buffer("alphas_cumprod", alphas_cumprod.float())

    def apply_model(self, x: Tensor, t: Tensor, cond: Any = None) -> Tensor:
        eps = self.unet(x.float(), t.float()).sample.to(x.dtype)
        if self.prediction == "eps":
            return eps
        log_sigmas = (((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5).log()
        low, w = t.float().floor().long(), t.float().frac()
        sigma = ((1 - w) * log_sigmas[low] + w * log_sigmas[(low + 1).clamp(max=len(log_sigmas) - 1)]).exp()
        a = (1 / (1 + sigma ** 2)).sqrt().view(-1, *[1] * (x.dim() - 1))
        s = (1 - a ** 2).sqrt()
        return a * eps - s * (x - s * eps) / a


def digits_ddpm_patcher(prediction: str = "eps", quantize: bool = True) -> tuple[ModelPatcher, Any]:
    """The zoo's ``digits-ddpm`` as a ComfyUI MODEL behind k-diffusion's ``CompVisDenoiser``
    (or ``CompVisVDenoiser`` for ``prediction="v"``); also returns the k-diffusion wrapper."""
    from diffusers import DDPMScheduler, UNet2DModel

    from s4s import zoo

    folder = zoo.path("digits-ddpm")
    unet = UNet2DModel.from_pretrained(folder / "unet", use_safetensors=True, low_cpu_mem_usage=False).eval()
    unet.requires_grad_(False)
    compvis = CompVisDigits(unet, DDPMScheduler.from_pretrained(folder / "scheduler").alphas_cumprod, prediction)
    external = k_diffusion_external()
    wrapper = (external.CompVisDenoiser if prediction == "eps" else external.CompVisVDenoiser)(compvis, quantize=quantize)

    def denoise(x: Tensor, sigma: Tensor, cond: Any) -> Tensor:
        return wrapper(x, sigma) if prediction == "eps" else wrapper(x, sigma, cond=cond)

    return ModelPatcher(BaseModel(denoise, KDiscreteSampling(wrapper), compvis)), wrapper


def digits_flow_patcher() -> ModelPatcher:
    """The zoo's ``digits-flow`` velocity network as a ComfyUI flow MODEL (``CONST`` sampling,
    timesteps ``1000 t``, the network fed ``t``)."""
    from s4s.zoo.neural import WEIGHTS, _unet

    net, _ = _unet(WEIGHTS / "digits-flow.safetensors", "flow-unet")
    sampling = ModelSamplingDiscreteFlow(shift=1.0)

    def denoise(x: Tensor, sigma: Tensor, cond: Any) -> Tensor:
        t = sampling.timestep(sigma) / sampling.multiplier
        v = net(sampling.calculate_input(sigma, x).float(), t.float()).to(x.dtype)
        return sampling.calculate_denoised(sigma, v, x)

    return ModelPatcher(BaseModel(denoise, sampling, net))


@contextlib.contextmanager
def installed() -> Iterator[types.ModuleType]:
    """``comfy.samplers``, ``comfy.model_sampling`` and ``comfy.utils`` as replayed here, in
    ``sys.modules`` for the duration (the real ComfyUI's tests use the real modules instead)."""
    names = ("comfy", "comfy.samplers", "comfy.model_sampling", "comfy.utils")
    saved = {n: sys.modules.get(n) for n in names}
    comfy = types.ModuleType("comfy")
    samplers, sampling, utils = (types.ModuleType(n) for n in names[1:])
    for k in ("KSAMPLER", "KSamplerX0Inpaint", "Sampler", "CFGGuider"):
        setattr(samplers, k, globals()[k])
    for k in ("EPS", "V_PREDICTION", "CONST", "ModelSamplingDiscreteFlow"):
        setattr(sampling, k, globals()[k])
    utils.ProgressBar = ProgressBar
    comfy.samplers, comfy.model_sampling, comfy.utils = samplers, sampling, utils
    sys.modules.update(dict(zip(names, (comfy, samplers, sampling, utils))))
    try:
        yield comfy
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
