"""diffusers flow-matching pipelines as :class:`s4s.Denoiser`s: ``StableDiffusion3Pipeline`` and
``FluxPipeline`` (a ``transformer`` taking ``encoder_hidden_states`` and ``pooled_projections``,
with a ``FlowMatchEulerDiscreteScheduler``).

The network sees ``x_t = (1 - t) x0 + t n`` and ``t * num_train_timesteps`` and predicts the
velocity ``n - x0`` (:func:`s4s.models.flow_denoiser`). The scheduler's shift (SD3: the
config's ``shift``; with ``use_dynamic_shifting``, ``exp(mu)`` with ``mu`` computed from the
latent size as the pipeline computes it) sets the model's time-uniform grid, and is recorded in
``model.host`` so that solvers learned on it carry it (:class:`S4SScheduler` refuses another).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Sequence

import torch
from torch import Tensor

from ..frame import Denoiser
from ..models import flow_denoiser, guided
from .diffusers import freeze, vae_decoder, with_fixed_condition

__all__ = ["is_flow_pipeline", "from_flow_pipeline", "flow_shift"]


def is_flow_pipeline(pipe: Any) -> bool:
    """Whether ``pipe`` is a transformer pipeline with a flow-matching scheduler."""
    scheduler = getattr(pipe, "scheduler", None)
    config = getattr(scheduler, "config", {}) or {}
    return getattr(pipe, "transformer", None) is not None and "shift" in config and not hasattr(scheduler,
                                                                                              "alphas_cumprod")


def flow_shift(config: Any, latent_h: int, latent_w: int, patch_size: int) -> tuple[float, float | None]:
    """``(shift, mu)`` of a flow-matching scheduler ``config`` for latents ``latent_h x
    latent_w``: the static ``shift`` (``mu`` None), or with ``use_dynamic_shifting`` ``exp(mu)``
    with ``mu`` linear in the number of image tokens between ``(base_image_seq_len,
    base_shift)`` and ``(max_image_seq_len, max_shift)``, as diffusers' SD3 and Flux pipelines
    compute it."""
    if not config.get("use_dynamic_shifting", False):
        return float(config.get("shift", 1.0)), None
    tokens = (latent_h // patch_size) * (latent_w // patch_size)
    lo_n, hi_n = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    lo_s, hi_s = config.get("base_shift", 0.5), config.get("max_shift", 1.16)
    slope = (hi_s - lo_s) / (hi_n - lo_n)
    mu = tokens * slope + (lo_s - slope * lo_n)
    return math.exp(mu), mu


def _encode_sd3(pipe: Any, prompts: list[str], negative_prompt: str | None, guidance: bool, device: Any,
                max_sequence_length: int) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    """Per-prompt conditions ``{"encoder_hidden_states", "pooled_projections"}`` and the
    negative prompt's (one row), from ``pipe.encode_prompt`` called by keyword."""
    with torch.no_grad():
        embeds, neg, pooled, neg_pooled = pipe.encode_prompt(
            prompt=prompts, prompt_2=None, prompt_3=None, device=device, num_images_per_prompt=1,
            do_classifier_free_guidance=guidance,
            negative_prompt=None if negative_prompt is None else [negative_prompt] * len(prompts),
            max_sequence_length=max_sequence_length)
    table = {"encoder_hidden_states": embeds, "pooled_projections": pooled}
    uncond = {"encoder_hidden_states": neg[:1], "pooled_projections": neg_pooled[:1]} if guidance else None
    return table, uncond


def from_flow_pipeline(
    pipe: Any,
    *,
    prompts: Sequence[str] | None = None,
    guidance_scale: float | None = None,
    negative_prompt: str | None = None,
    height: int | None = None,
    width: int | None = None,
    max_sequence_length: int | None = None,
    true_cfg_scale: float | None = None,
) -> Denoiser:
    """A flow-matching pipeline as a :class:`Denoiser` in the VE frame.

    * ``StableDiffusion3Pipeline``: conditions ``{"encoder_hidden_states": [B, L, D],
      "pooled_projections": [B, P]}``; ``guidance_scale`` applies classifier-free guidance
      against ``negative_prompt`` in one batched call (``None``: the pipeline's default
      negative prompt). ``model.sample_shape = (C, height / f, width / f)``.
    * ``FluxPipeline``: conditions ``{"encoder_hidden_states", "pooled_projections"}`` (T5 and
      CLIP); ``guidance_scale`` is the guidance embedding of a guidance-distilled transformer
      (``guidance_embeds``; one pass per step, as the pipeline does), not classifier-free
      guidance. ``true_cfg_scale`` (above 1, with a ``negative_prompt``) adds Flux's true
      classifier-free guidance against the negative prompt, in one batched call where the
      pipeline makes two. Samples are the pipeline's packed latents, ``model.sample_shape =
      ((h/2)(w/2), 4C)`` for latents ``h x w``.

    ``prompts`` (default ``[""]``) give ``model.conditions(seeds)`` (seed ``s`` takes prompt
    ``s % len``). ``height`` and ``width`` (pixels; default the pipeline's) fix the sample
    shape and the resolution-dependent shift; ``max_sequence_length`` (default the pipeline's)
    the text length. ``model.decode(latents) -> images[B, 3, H, W]`` in ``[-1, 1]``
    (differentiable) undoes the packing and the VAE's scaling and shift. ``model.host`` records
    the pipeline, shift, ``mu``, resolution and guidance.
    """
    transformer, scheduler = pipe.transformer, pipe.scheduler
    accepts = set(inspect.signature(transformer.forward).parameters)
    flux = {"img_ids", "txt_ids"} <= accepts
    if not {"encoder_hidden_states", "pooled_projections", "timestep"} <= accepts:
        raise TypeError(f"{type(pipe).__name__}: s4s wraps flow pipelines whose transformer takes "
                        "encoder_hidden_states, pooled_projections and timestep (StableDiffusion3Pipeline, "
                        f"FluxPipeline); this one takes {sorted(accepts)}")
    if prompts is None:
        prompts = [""]
    if isinstance(prompts, str) or not prompts:
        raise ValueError("prompts must be a non-empty list of strings")
    freeze(pipe, transformer)
    dtype = next(transformer.parameters()).dtype
    device = next(transformer.parameters()).device
    factor = getattr(pipe, "vae_scale_factor", 8)
    step = factor * 2 if flux else factor  # Flux packs 2x2 latent patches
    default = getattr(pipe, "default_sample_size", transformer.config.get("sample_size", 64)) * factor
    height, width = height or default, width or default
    if height % step or width % step:
        raise ValueError(f"height and width must be multiples of {step} for {type(pipe).__name__}, got {height}x{width}")
    h, w = height // factor, width // factor
    guidance = guidance_scale is not None
    if flux:
        if true_cfg_scale is not None and not (true_cfg_scale > 1 and negative_prompt is not None):
            raise ValueError("true_cfg_scale needs a value above 1 and a negative_prompt, as FluxPipeline does")
        if guidance and not transformer.config.get("guidance_embeds", False):
            raise ValueError(f"{type(pipe).__name__}: this transformer has no guidance embedding (guidance_embeds); "
                             "leave guidance_scale out")
        channels = transformer.config.in_channels // 4
        shift, mu = flow_shift(scheduler.config, h, w, 2)
        with torch.no_grad():
            embeds, pooled, _ = pipe.encode_prompt(prompt=list(prompts), prompt_2=None, device=device,
                                                   num_images_per_prompt=1, max_sequence_length=max_sequence_length or 512)
        table = {"encoder_hidden_states": embeds, "pooled_projections": pooled}
        if true_cfg_scale is not None:
            with torch.no_grad():
                neg, neg_pooled, _ = pipe.encode_prompt(prompt=[negative_prompt], prompt_2=None, device=device,
                                                        num_images_per_prompt=1,
                                                        max_sequence_length=max_sequence_length or 512)
            uncond = {"encoder_hidden_states": neg, "pooled_projections": neg_pooled}
        # the pipeline's own position ids of the packed latent tokens, and its zero text ids
        img_ids = pipe._prepare_latent_image_ids(1, h // 2, w // 2, device, dtype)
        txt_ids = torch.zeros(embeds.shape[1], 3, dtype=dtype, device=device)
        sample_shape: tuple[int, ...] = ((h // 2) * (w // 2), 4 * channels)
        time_scale = 1.0  # the pipeline passes timestep / 1000
    else:
        shift, mu = flow_shift(scheduler.config, h, w, transformer.config.patch_size)
        table, uncond = _encode_sd3(pipe, list(prompts), negative_prompt, guidance, device, max_sequence_length or 256)
        sample_shape = (transformer.config.in_channels, h, w)
        time_scale = float(scheduler.config.get("num_train_timesteps", 1000))

    def net(x_t: Tensor, t: Tensor, cond: dict[str, Tensor]) -> Tensor:
        extra: dict[str, Any] = {}
        if flux:
            extra = {"img_ids": img_ids, "txt_ids": txt_ids}
            if guidance:
                extra["guidance"] = torch.full((x_t.shape[0],), float(guidance_scale), dtype=torch.float32,  # type: ignore[arg-type]
                                               device=x_t.device)
        out = transformer(hidden_states=x_t.to(dtype), timestep=t.to(dtype),
                          encoder_hidden_states=cond["encoder_hidden_states"].to(dtype),
                          pooled_projections=cond["pooled_projections"].to(dtype), return_dict=False, **extra)[0]
        return out.to(x_t.dtype)

    train = int(scheduler.config.get("num_train_timesteps", 1000))
    model = flow_denoiser(net, shift=shift, time_scale=time_scale, t_min=float(scheduler.sigma_min),
                          t_max=1 - 1 / train, name=type(pipe).__name__)
    if guidance and not flux:
        model = guided(model, float(guidance_scale), uncond)  # type: ignore[arg-type]
    elif flux and true_cfg_scale is not None:
        model = guided(model, float(true_cfg_scale), uncond)
    elif len(prompts) == 1:
        model = with_fixed_condition(model, table)
    model.sample_shape = sample_shape  # type: ignore[attr-defined]
    model.host = {"pipeline": type(pipe).__name__, "frame": "flow", "shift": shift, "mu": mu,  # type: ignore[attr-defined]
                  "height": height, "width": width, "latent_shape": list(sample_shape),
                  "guidance_scale": guidance_scale, "true_cfg_scale": true_cfg_scale}

    def conditions(seeds: Sequence[int]) -> dict[str, Tensor]:
        """The condition of each seed: prompt ``seed % len(prompts)``."""
        idx = torch.as_tensor([int(s) % len(prompts) for s in seeds], device=device)
        return {k: v[idx] for k, v in table.items()}

    model.conditions = conditions  # type: ignore[attr-defined]
    if getattr(pipe, "vae", None) is not None:
        decode = vae_decoder(pipe.vae)
        if flux:  # the pipeline's own unpacking of 2x2 latent patches
            model.decode = lambda x: decode(pipe._unpack_latents(x, height, width, factor))  # type: ignore[attr-defined]
        else:
            model.decode = decode  # type: ignore[attr-defined]
    return model
