"""diffusers flow-matching pipelines as :class:`s4s.Denoiser`s: ``StableDiffusion3Pipeline`` and
``FluxPipeline`` (a ``transformer`` taking ``encoder_hidden_states`` and ``pooled_projections``,
with a ``FlowMatchEulerDiscreteScheduler``), ``WanPipeline`` (Wan 2.1 text-to-video: 5-D
video latents, a transformer taking ``encoder_hidden_states`` only, and a flow scheduler such
as ``UniPCMultistepScheduler(use_flow_sigmas=True)``), ``SanaPipeline`` and ``QwenImagePipeline``.

The network sees ``x_t = (1 - t) x0 + t n`` and ``t * num_train_timesteps`` and predicts the
velocity ``n - x0`` (:func:`s4s.models.flow_denoiser`). The scheduler's shift (SD3: the
config's ``shift``; with ``use_dynamic_shifting``, ``exp(mu)`` with ``mu`` computed from the
latent size as the pipeline computes it) sets the model's time-uniform grid, and is recorded in
``model.host`` so that solvers learned on it carry it (:class:`S4SScheduler` refuses another).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ..frame import Denoiser
from ..models import flow_denoiser, guidance_scale_or_range, guided
from .diffusers import freeze, vae_decoder, with_fixed_condition

__all__ = ["is_flow_pipeline", "from_flow_pipeline", "flow_shift"]


def is_flow_scheduler_config(config: Any) -> bool:
    """Whether a scheduler config is a flow-matching one: ``FlowMatchEulerDiscreteScheduler``
    and kin (``shift``, ``use_dynamic_shifting``) or a multistep solver in its flow mode
    (``use_flow_sigmas``, ``prediction_type="flow_prediction"``)."""
    config = dict(config or {})
    return ("shift" in config or "use_dynamic_shifting" in config or bool(config.get("use_flow_sigmas"))
            or config.get("prediction_type") == "flow_prediction")


def scheduler_shift(config: Any) -> float:
    """The static time shift of a flow scheduler config (``shift``, or a multistep solver's
    ``flow_shift``)."""
    config = dict(config or {})
    return float(config["shift"] if "shift" in config else config.get("flow_shift", 1.0))


def is_flow_pipeline(pipe: Any) -> bool:
    """Whether ``pipe`` is a transformer pipeline with a flow-matching scheduler."""
    scheduler = getattr(pipe, "scheduler", None)
    return getattr(pipe, "transformer", None) is not None and is_flow_scheduler_config(getattr(scheduler, "config", {}))


def flow_shift(config: Any, latent_h: int, latent_w: int, patch_size: int) -> tuple[float, float | None]:
    """``(shift, mu)`` of a flow-matching scheduler ``config`` for latents ``latent_h x
    latent_w``: the static ``shift`` (``mu`` None), or with ``use_dynamic_shifting`` ``exp(mu)``
    with ``mu`` linear in the number of image tokens between ``(base_image_seq_len,
    base_shift)`` and ``(max_image_seq_len, max_shift)``, as diffusers' SD3 and Flux pipelines
    compute it."""
    if not config.get("use_dynamic_shifting", False):
        return scheduler_shift(config), None
    if config.get("time_shift_type", "exponential") != "exponential":
        raise ValueError(f"this scheduler shifts time with time_shift_type={config['time_shift_type']!r}; s4s "
                         "knows the exponential shift (SD3, Flux, Qwen-Image) only")
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
    num_frames: int | None = None,
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
    * ``WanPipeline`` (Wan 2.1; not Wan 2.2's two experts): conditions
      ``{"encoder_hidden_states": [B, L, D]}`` (UMT5); ``guidance_scale`` as SD3's, in one batched
      call where the pipeline makes two; ``num_frames`` (default the pipeline's) must be
      ``1 + k * vae_scale_factor_temporal``. ``model.sample_shape = (C, frames, h, w)`` and
      ``model.decode`` gives videos ``[B, 3, num_frames, H, W]``.
    * ``SanaPipeline``: conditions ``{"encoder_hidden_states": [B, L, D],
      "encoder_attention_mask": [B, L]}`` (Gemma, with the pipeline's default
      ``complex_human_instruction``); ``guidance_scale`` as SD3's. ``height`` and ``width`` are
      the latents' size times the VAE's factor: run the pipeline with
      ``use_resolution_binning=False``, or at a size its aspect-ratio bins keep.
    * ``QwenImagePipeline``: conditions ``{"encoder_hidden_states": [B, L, D],
      "encoder_hidden_states_mask": [B, L]}`` (Qwen2.5-VL); ``true_cfg_scale`` (above 1, with a
      ``negative_prompt``) is the pipeline's true classifier-free guidance with its rescaling of
      each token's guided velocity to the norm of the conditional one, in one batched call where
      the pipeline makes two; ``guidance_scale`` only for a guidance-distilled transformer.
      Samples are packed latents as Flux's, ``model.sample_shape = ((h/2)(w/2), 4C)``.

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
    wan = hasattr(pipe, "vae_scale_factor_temporal") and "pooled_projections" not in accepts
    if wan:
        return _from_wan(pipe, prompts, guidance_scale, negative_prompt, height, width, num_frames,
                         max_sequence_length)
    if num_frames is not None:
        raise ValueError(f"num_frames is for video pipelines (WanPipeline), not {type(pipe).__name__}")
    if "img_shapes" in accepts:
        return _from_qwen_image(pipe, prompts, guidance_scale, negative_prompt, height, width, max_sequence_length,
                                true_cfg_scale)
    if "complex_human_instruction" in inspect.signature(pipe.encode_prompt).parameters:
        if transformer.config.get("guidance_embeds", False):
            raise TypeError(f"{type(pipe).__name__}: a guidance-distilled Sana transformer (guidance_embeds, Sana "
                            "Sprint) is not supported; s4s wraps SanaPipeline's")
        return _from_sana(pipe, prompts, guidance_scale, negative_prompt, height, width, max_sequence_length)
    if not {"encoder_hidden_states", "pooled_projections", "timestep"} <= accepts:
        raise TypeError(f"{type(pipe).__name__}: s4s wraps flow pipelines whose transformer takes "
                        "encoder_hidden_states, pooled_projections and timestep (StableDiffusion3Pipeline, "
                        f"FluxPipeline), or a WanPipeline's, SanaPipeline's or QwenImagePipeline's; this one takes "
                        f"{sorted(accepts)}")
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
        if isinstance(guidance_scale, (tuple, list)) or isinstance(true_cfg_scale, (tuple, list)):
            raise ValueError(f"{type(pipe).__name__}: a guidance range is for classifier-free guidance in one batched "
                             "call (SD3, Wan, Sana, SD, SDXL); Flux's guidance embedding and true CFG take one scale")
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
        model = guided(model, guidance_scale_or_range(guidance_scale), uncond)
    elif flux and true_cfg_scale is not None:
        model = guided(model, float(true_cfg_scale), uncond)
    elif len(prompts) == 1:
        model = with_fixed_condition(model, table)
    model.sample_shape = sample_shape  # type: ignore[attr-defined]
    model.host = {"pipeline": type(pipe).__name__, "frame": "flow", "shift": shift, "mu": mu,  # type: ignore[attr-defined]
                  "height": height, "width": width, "latent_shape": list(sample_shape),
                  "guidance_scale": guidance_scale, "true_cfg_scale": true_cfg_scale}

    model.conditions = _prompt_conditions(table, len(prompts), device)  # type: ignore[attr-defined]
    if getattr(pipe, "vae", None) is not None:
        decode = vae_decoder(pipe.vae)
        if flux:  # the pipeline's own unpacking of 2x2 latent patches
            model.decode = lambda x: decode(pipe._unpack_latents(x, height, width, factor))  # type: ignore[attr-defined]
        else:
            model.decode = decode  # type: ignore[attr-defined]
    return model


def wan_vae_decoder(vae: Any) -> Callable[[Tensor], Tensor]:
    """``decode(latents[B, C, F, h, w]) -> videos[B, 3, frames, H, W]`` in ``[-1, 1]``,
    differentiable: a Wan-family VAE (Wan's, Qwen-Image's) after undoing its per-channel
    ``latents_mean`` and ``latents_std``."""
    freeze(None, vae)
    shape = (1, int(vae.config.z_dim), 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(shape)
    std = torch.tensor(vae.config.latents_std).view(shape)

    def decode(latents: Tensor) -> Tensor:
        """Wan VAE decoder: latents ``[B, C, F, h, w]`` -> videos ``[B, 3, frames, H, W]`` in ``[-1, 1]``."""
        z = latents * std.to(latents) + mean.to(latents)
        return vae.decode(z.to(vae.dtype)).sample.to(latents.dtype)

    return decode


def _from_wan(pipe: Any, prompts: Sequence[str], guidance_scale: float | None, negative_prompt: str | None,
              height: int | None, width: int | None, num_frames: int | None,
              max_sequence_length: int | None) -> Denoiser:
    """:func:`from_flow_pipeline` for ``WanPipeline`` (see there)."""
    transformer, scheduler = pipe.transformer, pipe.scheduler
    if getattr(pipe, "transformer_2", None) is not None or pipe.config.get("boundary_ratio") is not None:
        raise ValueError("this WanPipeline switches between two transformers (Wan 2.2's experts, boundary_ratio); "
                         "s4s wraps pipelines with one transformer (Wan 2.1)")
    if pipe.config.get("expand_timesteps"):
        raise ValueError("this WanPipeline gives every latent token its own timestep (expand_timesteps, Wan 2.2 "
                         "TI2V); s4s wraps pipelines with one timestep per sample")
    defaults = inspect.signature(type(pipe).__call__).parameters
    height = height or int(defaults["height"].default)
    width = width or int(defaults["width"].default)
    num_frames = num_frames or int(defaults["num_frames"].default)
    spatial, temporal = int(pipe.vae_scale_factor_spatial), int(pipe.vae_scale_factor_temporal)
    patch = tuple(transformer.config.patch_size)
    if height % (spatial * patch[1]) or width % (spatial * patch[2]):
        raise ValueError(f"height and width must be multiples of {spatial * patch[1]} for WanPipeline, "
                         f"got {height}x{width}")
    if num_frames < 1 or (num_frames - 1) % temporal:
        raise ValueError(f"num_frames must be 1 + a multiple of {temporal} for this WanPipeline (the pipeline "
                         f"would round {num_frames}), got {num_frames}")
    prompts, dtype, device = _prepare(pipe, prompts)
    h, w, frames = height // spatial, width // spatial, (num_frames - 1) // temporal + 1
    guidance = guidance_scale is not None
    with torch.no_grad():
        embeds, neg = pipe.encode_prompt(
            prompt=list(prompts), negative_prompt=[negative_prompt or ""] * len(prompts),
            do_classifier_free_guidance=guidance, num_videos_per_prompt=1,
            max_sequence_length=max_sequence_length or int(defaults["max_sequence_length"].default), device=device)
    table = {"encoder_hidden_states": embeds}
    shift, mu = flow_shift(scheduler.config, h, w, patch[1])

    def net(x_t: Tensor, t: Tensor, cond: dict[str, Tensor]) -> Tensor:
        out = transformer(hidden_states=x_t.to(dtype), timestep=t.to(dtype),
                          encoder_hidden_states=cond["encoder_hidden_states"].to(dtype), return_dict=False)[0]
        return out.to(x_t.dtype)

    train = int(scheduler.config.get("num_train_timesteps", 1000))
    model = flow_denoiser(net, shift=shift, time_scale=float(train), t_min=1 / train, t_max=1 - 1 / train,
                          name=type(pipe).__name__)
    uncond = {"encoder_hidden_states": neg[:1]} if guidance else None
    return _finish(pipe, model, table, uncond, guidance_scale, (int(transformer.config.in_channels), frames, h, w),
                   {"shift": shift, "mu": mu, "height": height, "width": width, "num_frames": num_frames},
                   wan_vae_decoder)


def _from_sana(pipe: Any, prompts: Sequence[str] | None, guidance_scale: float | None, negative_prompt: str | None,
               height: int | None, width: int | None, max_sequence_length: int | None) -> Denoiser:
    """:func:`from_flow_pipeline` for ``SanaPipeline`` (see there)."""
    transformer, scheduler = pipe.transformer, pipe.scheduler
    defaults = inspect.signature(type(pipe).__call__).parameters
    factor = int(pipe.vae_scale_factor)
    patch = int(transformer.config.patch_size)
    height, width = height or int(defaults["height"].default), width or int(defaults["width"].default)
    if height % (factor * patch) or width % (factor * patch):
        raise ValueError(f"height and width must be multiples of {factor * patch} for {type(pipe).__name__}, "
                         f"got {height}x{width}")
    prompts, dtype, device = _prepare(pipe, prompts)
    guidance = guidance_scale is not None
    with torch.no_grad():
        embeds, mask, neg, neg_mask = pipe.encode_prompt(
            prompt=list(prompts), do_classifier_free_guidance=guidance,
            negative_prompt="" if negative_prompt is None else negative_prompt, num_images_per_prompt=1, device=device,
            clean_caption=False, max_sequence_length=max_sequence_length or int(defaults["max_sequence_length"].default),
            complex_human_instruction=defaults["complex_human_instruction"].default)
    table = {"encoder_hidden_states": embeds, "encoder_attention_mask": mask}
    channels = int(transformer.config.in_channels)
    learned_sigma = int(transformer.config.out_channels) // 2 == channels  # the pipeline keeps the first half
    time_scale = float(scheduler.config.get("num_train_timesteps", 1000)) * float(transformer.config.timestep_scale)

    def net(x_t: Tensor, t: Tensor, cond: dict[str, Tensor]) -> Tensor:
        out = transformer(x_t.to(dtype), encoder_hidden_states=cond["encoder_hidden_states"].to(dtype),
                          encoder_attention_mask=cond["encoder_attention_mask"], timestep=t.to(dtype),
                          return_dict=False)[0]
        return (out[:, :channels] if learned_sigma else out).to(x_t.dtype)

    h, w = height // factor, width // factor
    shift, mu = flow_shift(scheduler.config, h, w, patch)
    train = int(scheduler.config.get("num_train_timesteps", 1000))
    model = flow_denoiser(net, shift=shift, time_scale=time_scale, t_min=1 / train, t_max=1 - 1 / train,
                          name=type(pipe).__name__)
    uncond = {"encoder_hidden_states": neg[:1], "encoder_attention_mask": neg_mask[:1]} if guidance else None
    return _finish(pipe, model, table, uncond, guidance_scale, (channels, h, w),
                   {"shift": shift, "mu": mu, "height": height, "width": width}, vae_decoder)


def _from_qwen_image(pipe: Any, prompts: Sequence[str] | None, guidance_scale: float | None,
                     negative_prompt: str | None, height: int | None, width: int | None,
                     max_sequence_length: int | None, true_cfg_scale: float | None) -> Denoiser:
    """:func:`from_flow_pipeline` for ``QwenImagePipeline`` (see there)."""
    transformer, scheduler = pipe.transformer, pipe.scheduler
    if isinstance(guidance_scale, (tuple, list)) or isinstance(true_cfg_scale, (tuple, list)):
        raise ValueError(f"{type(pipe).__name__}: its true CFG rescales the guided velocity; s4s learns it at one "
                         "true_cfg_scale")
    distilled = bool(transformer.config.get("guidance_embeds", False))
    if guidance_scale is not None and not distilled:
        raise ValueError(f"{type(pipe).__name__}: this transformer has no guidance embedding; classifier-free "
                         "guidance is true_cfg_scale (above 1) with a negative_prompt, as the pipeline takes it")
    if distilled and guidance_scale is None:
        raise ValueError(f"{type(pipe).__name__}: a guidance-distilled transformer needs guidance_scale")
    cfg = true_cfg_scale is not None
    if cfg and not (true_cfg_scale > 1 and negative_prompt is not None):  # type: ignore[operator]
        raise ValueError("true_cfg_scale needs a value above 1 and a negative_prompt, as QwenImagePipeline does")
    factor = int(pipe.vae_scale_factor)
    default = int(pipe.default_sample_size) * factor
    height, width = height or default, width or default
    if height % (factor * 2) or width % (factor * 2):
        raise ValueError(f"height and width must be multiples of {factor * 2} for {type(pipe).__name__}, "
                         f"got {height}x{width}")
    prompts, dtype, device = _prepare(pipe, prompts)
    length = max_sequence_length or int(inspect.signature(type(pipe).__call__).parameters["max_sequence_length"].default)

    def encode(texts: list[str]) -> dict[str, Tensor]:
        with torch.no_grad():
            embeds, mask = pipe.encode_prompt(prompt=texts, device=device, num_images_per_prompt=1,
                                              max_sequence_length=length)
        if mask is None:  # the pipeline drops an all-ones mask
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=device)
        return {"encoder_hidden_states": embeds, "encoder_hidden_states_mask": mask}

    table = encode(prompts)
    uncond = encode([negative_prompt]) if cfg else None  # type: ignore[list-item]
    if uncond is not None:  # one length for both, so that a guided step is one batched call; padding is masked
        size = max(table["encoder_hidden_states"].shape[1], uncond["encoder_hidden_states"].shape[1])
        table, uncond = (_pad_tokens(c, size) for c in (table, uncond))
    h, w = height // factor, width // factor
    shift, mu = flow_shift(scheduler.config, h, w, 2)
    shapes = [(1, h // 2, w // 2)]

    def velocity(x_t: Tensor, t: Tensor, cond: dict[str, Tensor]) -> Tensor:
        extra = {"guidance": torch.full((x_t.shape[0],), float(guidance_scale), dtype=torch.float32,  # type: ignore[arg-type]
                                        device=x_t.device)} if distilled else {}
        out = transformer(hidden_states=x_t.to(dtype), timestep=t.to(dtype),
                          encoder_hidden_states=cond["encoder_hidden_states"].to(dtype),
                          encoder_hidden_states_mask=cond["encoder_hidden_states_mask"],
                          img_shapes=[shapes] * x_t.shape[0], return_dict=False, **extra)[0]
        return out.to(x_t.dtype)

    def net(x_t: Tensor, t: Tensor, cond: dict[str, Tensor]) -> Tensor:
        if uncond is None:
            return velocity(x_t, t, cond)
        rows = x_t.shape[0]
        both = {k: torch.cat([v, uncond[k].expand(rows, *v.shape[1:])]) for k, v in cond.items()}
        v_cond, v_uncond = velocity(torch.cat([x_t, x_t]), torch.cat([t, t]), both).chunk(2)
        guided_v = v_uncond + float(true_cfg_scale) * (v_cond - v_uncond)  # type: ignore[arg-type]
        # the pipeline's rescaling: each token's guided velocity to the norm of its conditional one
        return guided_v * (v_cond.norm(dim=-1, keepdim=True) / guided_v.norm(dim=-1, keepdim=True))

    train = int(scheduler.config.get("num_train_timesteps", 1000))
    model = flow_denoiser(net, shift=shift, time_scale=1.0, t_min=float(scheduler.sigma_min), t_max=1 - 1 / train,
                          name=type(pipe).__name__)  # the pipeline passes timestep / 1000
    channels = int(transformer.config.in_channels) // 4
    decode = wan_vae_decoder(pipe.vae) if getattr(pipe, "vae", None) is not None else None

    def decoder(_vae: Any) -> Callable[[Tensor], Tensor]:
        """The pipeline's unpacking of 2x2 latent patches, then its VAE (its one frame)."""
        return lambda x: decode(pipe._unpack_latents(x, height, width, factor))[:, :, 0]  # type: ignore[misc]

    return _finish(pipe, model, table, None, None, ((h // 2) * (w // 2), 4 * channels),
                   {"shift": shift, "mu": mu, "height": height, "width": width, "guidance_scale": guidance_scale,
                    "true_cfg_scale": true_cfg_scale}, decoder)


def _pad_tokens(cond: dict[str, Tensor], size: int) -> dict[str, Tensor]:
    """Text embeddings ``[B, L, D]`` and their mask ``[B, L]`` padded with masked zeros to ``size`` tokens."""
    embeds, mask = cond["encoder_hidden_states"], cond["encoder_hidden_states_mask"]
    extra = size - embeds.shape[1]
    return {"encoder_hidden_states": torch.nn.functional.pad(embeds, (0, 0, 0, extra)),
            "encoder_hidden_states_mask": torch.nn.functional.pad(mask, (0, extra))}


def _prepare(pipe: Any, prompts: Sequence[str] | None) -> tuple[list[str], torch.dtype, torch.device]:
    """The prompts (default ``[""]``, checked), with the pipeline frozen for sampling, and the
    transformer's dtype and device."""
    if prompts is None:
        prompts = [""]
    if isinstance(prompts, str) or not prompts:
        raise ValueError("prompts must be a non-empty list of strings")
    freeze(pipe, pipe.transformer)
    first = next(pipe.transformer.parameters())
    return list(prompts), first.dtype, first.device


def _finish(pipe: Any, model: Denoiser, table: dict[str, Tensor], uncond: dict[str, Tensor] | None,
            guidance_scale: float | None, sample_shape: tuple[int, ...], host: dict[str, Any],
            decoder: Callable[[Any], Callable[[Tensor], Tensor]]) -> Denoiser:
    """``model`` guided against ``uncond`` (or, for one prompt without guidance, with its fixed
    condition), with the attributes every integration sets: ``sample_shape``, ``host``,
    ``conditions`` (prompt ``seed % len``) and ``decode`` (``decoder(pipe.vae)``)."""
    rows = next(iter(table.values())).shape[0]
    if uncond is not None:
        model = guided(model, guidance_scale_or_range(guidance_scale), uncond)
    elif rows == 1:
        model = with_fixed_condition(model, table)
    model.sample_shape = sample_shape  # type: ignore[attr-defined]
    model.host = {"pipeline": type(pipe).__name__, "frame": "flow", "latent_shape": list(sample_shape),  # type: ignore[attr-defined]
                  "guidance_scale": guidance_scale, "true_cfg_scale": None, **host}
    model.conditions = _prompt_conditions(table, rows, next(iter(table.values())).device)  # type: ignore[attr-defined]
    if getattr(pipe, "vae", None) is not None:
        model.decode = decoder(pipe.vae)  # type: ignore[attr-defined]
    return model


def _prompt_conditions(table: dict[str, Tensor], count: int, device: Any) -> Callable[[Sequence[int]], dict[str, Tensor]]:
    """``conditions(seeds)``: the condition of each seed, prompt ``seed % count`` of ``table``."""

    def conditions(seeds: Sequence[int]) -> dict[str, Tensor]:
        """The condition of each seed: prompt ``seed % len(prompts)``."""
        idx = torch.as_tensor([int(s) % count for s in seeds], device=device)
        return {k: v[idx] for k, v in table.items()}

    return conditions
