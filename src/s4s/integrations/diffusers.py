"""diffusers interop.

* :func:`from_diffusers`: a pipeline (UNet, scheduler, optional text encoder and VAE) as an
  :class:`s4s.Denoiser` for learning and sampling; classifier-free guidance in one batched
  call; latent pipelines offer their VAE decoder as ``model.decode``.
  Flow-matching pipelines (``pipe.transformer`` with a ``FlowMatchEulerDiscreteScheduler``):
  :mod:`s4s.integrations.diffusers_flow`.
* :class:`S4SScheduler`: a learned (or hand-designed) s4s solver as a diffusers scheduler, to
  drop into ``DDPMPipeline``, ``StableDiffusionPipeline`` and other discrete-time VP pipelines,
  and into flow-matching pipelines (``StableDiffusion3Pipeline`` and others that call
  ``set_timesteps(..., sigmas=, mu=)``).

Frames: s4s works in the VE frame (``x = x0 + sigma n``); diffusers' VP pipelines hold
``x_t = alpha x`` with ``alpha = 1 / sqrt(1 + sigma^2)`` and start from ``x_T = n``
(``init_noise_sigma = 1``); flow pipelines hold ``x_t = (1 - t) x0 + t n = x / (1 + sigma)``
with ``t = sigma / (1 + sigma)`` and pass the network ``t * num_train_timesteps``. The
scheduler converts at each step.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from .. import conds
from .._json import parse_json
from ..frame import Denoiser
from ..io import load_solver, solver_from_dict, solver_to_dict
from ..k_diffusion import check_timesteps
from ..models import DiscreteVP, carry, guidance_scale_or_range, guided, vp_input, vp_to_x0, vp_denoiser
from ..solvers.table import Solver, Stepper

__all__ = ["from_diffusers", "load_pipeline", "S4SScheduler"]

log = logging.getLogger(__name__)

_PREDICTIONS = {"epsilon": "eps", "v_prediction": "v", "sample": "sample"}

try:  # the scheduler class needs diffusers; the rest of s4s does not
    from diffusers import DDPMScheduler
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.schedulers.scheduling_utils import SchedulerMixin, SchedulerOutput
except ImportError:  # pragma: no cover - exercised only without diffusers
    _HAVE_DIFFUSERS = False
    ConfigMixin = SchedulerMixin = object  # type: ignore[misc,assignment]

    def register_to_config(fn: Any) -> Any:  # type: ignore[no-redef]
        return fn
else:
    _HAVE_DIFFUSERS = True


def _need_diffusers() -> None:
    if not _HAVE_DIFFUSERS:
        raise ImportError("this needs diffusers: pip install 's4s[diffusers]'")


def load_pipeline(path: str | os.PathLike[str]) -> Any:
    """``DiffusionPipeline.from_pretrained`` on a local folder (safetensors only, no downloads)."""
    _need_diffusers()
    from diffusers import DiffusionPipeline

    folder = Path(path)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    index = parse_json((folder / "model_index.json").read_bytes(), str(folder / "model_index.json"))
    absent = {k: None for k, v in index.items() if isinstance(v, list) and v == [None, None]}  # saved as absent
    return DiffusionPipeline.from_pretrained(folder, use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False,
                                             **absent)


def _prediction(scheduler: Any) -> str:
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if prediction not in _PREDICTIONS:
        raise ValueError(f"unsupported prediction_type {prediction!r}; expected one of {sorted(_PREDICTIONS)}")
    return prediction


def from_diffusers(
    pipe: Any,
    *,
    guidance_scale: float | None = None,
    prompts: Sequence[str] | None = None,
    negative_prompt: str | None = None,
    class_labels: Sequence[int] | None = None,
    null_class_label: int | None = None,
    round_time: bool = False,
    height: int | None = None,
    width: int | None = None,
    max_sequence_length: int | None = None,
    true_cfg_scale: float | None = None,
    num_frames: int | None = None,
) -> Denoiser:
    """Wrap a discrete-time VP pipeline (``pipe.unet`` and ``pipe.scheduler``) as a :class:`Denoiser`;
    a flow-matching pipeline (``pipe.transformer`` with a flow scheduler: SD3, Flux, Wan 2.1, Sana, Qwen-Image)
    goes to :func:`s4s.integrations.diffusers_flow.from_flow_pipeline` (``prompts``,
    ``guidance_scale``, ``negative_prompt``, ``height``, ``width``, ``max_sequence_length``,
    ``true_cfg_scale``, and for video ``num_frames``).

    Handles the scheduler's ``prediction_type`` (epsilon, v_prediction, sample) and its
    ``alphas_cumprod`` (timestep mapping; ``round_time`` gives integer timesteps).

    Conditions: with ``prompts`` (text pipelines: ``pipe.encode_prompt``) or ``class_labels``
    (class-conditional UNets), ``model.conditions(seeds)`` gives the condition of each seed
    (seed ``s`` takes entry ``s % len``) to pass as ``cond`` to ``solver.sample`` or
    ``s4s.learn(..., cond=model.conditions)``. ``guidance_scale`` applies classifier-free
    guidance against ``negative_prompt`` (or ``null_class_label``) in one batched call, so a
    guided step is one NFE; a range ``(lo, hi)`` gives a model guided with the scale of each
    sample (:func:`s4s.guided` with ``scale=None``), to learn one solver for every scale in it
    with ``LearnConfig(guidance=(lo, hi))``.

    Latent pipelines (with ``pipe.vae``): samples are latents of shape ``model.sample_shape``,
    and ``model.decode(latents) -> images[B, 3, H, W]`` (in ``[-1, 1]``, differentiable) is the
    VAE decoder, to measure the learning distance on images: ``s4s.learn(..., decode=model.decode)``.
    """
    _need_diffusers()
    from .diffusers_flow import from_flow_pipeline, is_flow_pipeline

    if is_flow_pipeline(pipe):
        if class_labels is not None or round_time:
            raise ValueError("a flow-matching pipeline takes prompts, not class_labels or round_time")
        return from_flow_pipeline(pipe, prompts=prompts, guidance_scale=guidance_scale, negative_prompt=negative_prompt,
                                  height=height, width=width, max_sequence_length=max_sequence_length,
                                  true_cfg_scale=true_cfg_scale, num_frames=num_frames)
    if true_cfg_scale is not None:
        raise ValueError("true_cfg_scale is Flux's and Qwen-Image's classifier-free guidance; for this pipeline give guidance_scale")
    if num_frames is not None:
        raise ValueError("num_frames is for video pipelines (WanPipeline)")
    unet, scheduler = getattr(pipe, "unet", None), getattr(pipe, "scheduler", None)
    if unet is None or scheduler is None or not hasattr(scheduler, "alphas_cumprod"):
        raise TypeError("expected a pipeline with a UNet `unet` and a discrete-time `scheduler`, or a flow-matching "
                        "pipeline with a `transformer` and a FlowMatchEulerDiscreteScheduler")
    if prompts is not None and class_labels is not None:
        raise ValueError("give prompts or class_labels, not both")
    if prompts is not None and (isinstance(prompts, str) or not prompts):
        raise ValueError("prompts must be a non-empty list of strings")
    if class_labels is not None and not len(class_labels):
        raise ValueError("class_labels must be a non-empty list of ints")
    if guidance_scale is not None and prompts is None and (class_labels is None or null_class_label is None):
        raise ValueError("guidance needs prompts=[...] (text pipelines) or class_labels=[...] with null_class_label")
    prediction = _prediction(scheduler)
    freeze(pipe, unet)
    dtype = next(unet.parameters()).dtype
    device = next(unet.parameters()).device

    size = unet.config.sample_size
    size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    factor = getattr(pipe, "vae_scale_factor", 1) if getattr(pipe, "vae", None) is not None else 1
    if height is not None or width is not None:
        height, width = height or size[0] * factor, width or size[1] * factor
        if height % factor or width % factor:
            raise ValueError(f"height and width must be multiples of the VAE's factor {factor}, got {height}x{width}")
        size = (height // factor, width // factor)
    sdxl = getattr(unet.config, "addition_embed_type", None) == "text_time"
    text = unet.config.get("cross_attention_dim") is not None and hasattr(pipe, "encode_prompt")
    if text and class_labels is None and prompts is None:
        prompts = [""]  # an unconditional run of a text pipeline is the empty prompt's, as pipe("") is

    table: Any = None  # per-prompt or per-label conditions: a tensor or a dict of tensors, [N, ...]
    uncond: Any = None
    kind = "none"
    if prompts is not None:
        if not hasattr(pipe, "encode_prompt"):
            raise TypeError(f"{type(pipe).__name__} has no encode_prompt; it cannot take prompts")
        negatives = None if negative_prompt is None else [negative_prompt] * len(prompts)
        with torch.no_grad():
            if sdxl:
                embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
                    prompt=list(prompts), device=device, num_images_per_prompt=1, do_classifier_free_guidance=True,
                    negative_prompt=negatives)
                ids, negative_ids = _sdxl_time_ids(pipe, (size[0] * factor, size[1] * factor), pooled, dtype)
                table = {"encoder_hidden_states": embeds, "text_embeds": pooled,
                         "time_ids": ids.to(device).expand(len(prompts), -1)}
                uncond = {"encoder_hidden_states": negative[:1], "text_embeds": negative_pooled[:1],
                          "time_ids": negative_ids.to(device)}
                kind = "sdxl"
            else:
                embeds, negative = pipe.encode_prompt(prompt=list(prompts), device=device, num_images_per_prompt=1,
                                                      do_classifier_free_guidance=True, negative_prompt=negatives)
                table, uncond, kind = embeds, negative[:1], "text"
    elif class_labels is not None:
        table = torch.as_tensor(list(class_labels), dtype=torch.long, device=device)
        uncond = None if null_class_label is None else torch.tensor(null_class_label, dtype=torch.long, device=device)
        kind = "class"

    def net(x_t: Tensor, t: Tensor, cond: Any = None) -> Tensor:
        x, t = x_t.to(dtype), t.to(dtype)
        if kind == "sdxl":
            added = {"text_embeds": cond["text_embeds"].to(dtype), "time_ids": cond["time_ids"].to(dtype)}
            out = unet(x, t, encoder_hidden_states=cond["encoder_hidden_states"].to(dtype), added_cond_kwargs=added)
        elif kind == "text":
            out = unet(x, t, encoder_hidden_states=cond.to(dtype))
        elif kind == "class":
            out = unet(x, t, class_labels=cond)
        else:
            out = unet(x, t)
        return out.sample.to(x_t.dtype)

    model = vp_denoiser(net, DiscreteVP(scheduler.alphas_cumprod), _PREDICTIONS[prediction],  # type: ignore[arg-type]
                        round_time=round_time, name=type(pipe).__name__)
    if guidance_scale is not None:
        model = guided(model, guidance_scale_or_range(guidance_scale), uncond)
    elif table is not None and len(prompts or class_labels or []) == 1 and text:
        model = with_fixed_condition(model, table)
    model.sample_shape = (unet.config.in_channels, *size)  # type: ignore[attr-defined]
    if height is not None or sdxl:
        model.host = {"pipeline": type(pipe).__name__, "frame": "vp", "height": size[0] * factor,  # type: ignore[attr-defined]
                      "width": size[1] * factor, "latent_shape": list(model.sample_shape),  # type: ignore[attr-defined]
                      "guidance_scale": guidance_scale}
    if table is not None:
        rows = table

        def conditions(seeds: Sequence[int]) -> Any:
            """The condition of each seed: entry ``seed % len`` of the prompts or labels."""
            n = len(prompts) if prompts is not None else len(class_labels or [])
            return conds.take(rows, [int(s) % n for s in seeds])

        model.conditions = conditions  # type: ignore[attr-defined]
    if getattr(pipe, "vae", None) is not None:
        model.decode = vae_decoder(pipe.vae)  # type: ignore[attr-defined]
    return model


def freeze(pipe: Any, network: Any) -> None:
    """``network`` in eval mode without parameter gradients, and ``pipe``'s text encoders in eval
    mode (no dropout in the embeddings kept as conditions), as ``from_pretrained`` leaves them."""
    network.eval()
    for p in network.parameters():
        p.requires_grad_(False)
    for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
        if getattr(pipe, name, None) is not None:
            getattr(pipe, name).eval()


def vae_decoder(vae: Any) -> Callable[[Tensor], Tensor]:
    """``decode(latents[B, C, h, w]) -> images[B, 3, H, W]`` in ``[-1, 1]``, differentiable:
    the VAE's decoder after undoing its ``scaling_factor`` and ``shift_factor`` (SD3, Flux)."""
    freeze(None, vae)
    scale, offset = float(vae.config.scaling_factor), float(vae.config.get("shift_factor") or 0.0)

    def decode(latents: Tensor) -> Tensor:
        """VAE decoder: latents ``[B, C, h, w]`` -> images ``[B, 3, H, W]`` in ``[-1, 1]``."""
        return vae.decode((latents / scale + offset).to(vae.dtype)).sample.to(latents.dtype)

    return decode


def with_fixed_condition(model: Denoiser, cond: Any) -> Denoiser:
    """``model`` whose condition, when left out, is the one-row ``cond`` (a single prompt
    without guidance: callers that pass no condition, such as the command line, sample it)."""

    def fn(x: Tensor, sigma: Tensor, given: Any = None) -> Tensor:
        return model(x, sigma, conds.take(cond, [0] * x.shape[0]) if given is None else given)

    return carry(model, Denoiser(fn, model.sigma_min, model.sigma_max, model.sigma_data, time=model.time, name=model.name))


def _sdxl_time_ids(pipe: Any, size: tuple[int, int], pooled: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """SDXL's added time ids ``[1, k]`` of the prompt and of the negative prompt for an image of
    ``size`` (original and target size, no crop), as the pipeline makes them at its defaults
    (the img2img pipelines' aesthetic scores 6 and 2.5 when ``requires_aesthetics_score``)."""
    dim = int(pooled.shape[-1])
    if "aesthetic_score" in inspect.signature(pipe._get_add_time_ids).parameters:  # SDXL img2img / inpaint
        return pipe._get_add_time_ids(size, (0, 0), size, aesthetic_score=6.0, negative_aesthetic_score=2.5,
                                      negative_original_size=size, negative_crops_coords_top_left=(0, 0),
                                      negative_target_size=size, dtype=dtype, text_encoder_projection_dim=dim)
    ids = pipe._get_add_time_ids(size, (0, 0), size, dtype=dtype, text_encoder_projection_dim=dim)
    return ids, ids


def _as_solver(solver: Solver | dict[str, Any] | str | os.PathLike[str]) -> Solver:
    if isinstance(solver, Solver):
        return solver
    if isinstance(solver, dict):
        return solver_from_dict(solver, "S4SScheduler config 'solver'")
    if isinstance(solver, (str, os.PathLike)):
        return load_solver(solver)
    raise TypeError(f"solver must be an s4s.Solver, a solver file path or its dict, got {type(solver).__name__}")


class _VPFrame:
    """A discrete-time VP pipeline: model input ``alpha(sigma) x``, output eps / v / x0."""

    def __init__(self, alphas_cumprod: Tensor, prediction: str, round_time: bool) -> None:
        self.vp, self.prediction, self.round_time = DiscreteVP(alphas_cumprod), _PREDICTIONS[prediction], round_time
        self.sigma_min, self.sigma_max = self.vp.sigma_min, self.vp.sigma_max

    def scale(self, sigma: Tensor) -> Tensor:
        """The model input over the VE state at ``sigma``."""
        return torch.rsqrt(1 + sigma**2)

    def timesteps(self, sigma: Tensor) -> Tensor:
        t = self.vp.sigma_to_t(sigma)
        return t.round() if self.round_time else t

    def denoised(self, x: Tensor, sigma: Tensor, out: Tensor) -> Tensor:
        return vp_to_x0(x, sigma, out, self.prediction)  # type: ignore[arg-type]


class _FlowFrame:
    """A flow-matching pipeline: model input ``x / (1 + sigma) = x_t``, output the velocity
    ``v = n - x0`` at ``t = sigma / (1 + sigma)``, timesteps ``t * num_train_timesteps``."""

    def __init__(self, num_train_timesteps: int) -> None:
        self.train = float(num_train_timesteps)
        self.sigma_min, self.sigma_max = 0.0, math.inf  # any level in (0, 1) of flow time

    def scale(self, sigma: Tensor) -> Tensor:
        return 1 / (1 + sigma)

    def timesteps(self, sigma: Tensor) -> Tensor:
        return sigma / (1 + sigma) * self.train

    def denoised(self, x: Tensor, sigma: Tensor, out: Tensor) -> Tensor:
        s = sigma.reshape(-1, *[1] * (x.dim() - 1))
        return (x - s * out) / (1 + s)  # x_t - t v


class S4SScheduler(SchedulerMixin, ConfigMixin):  # type: ignore[misc]
    """A fixed-step s4s solver as a diffusers scheduler, for discrete-time VP pipelines and for
    flow-matching pipelines.

    Build it with :meth:`from_solver` (``S4SScheduler.from_solver("digits-nfe5.json",
    **pipe.scheduler.config)``) and set ``pipe.scheduler``; sample with
    ``num_inference_steps = solver.nfe``. A flow pipeline's scheduler config (one with
    ``shift``, or ``use_flow_sigmas``) gives a flow scheduler (``frame="flow"``). The solver is stored in the scheduler
    config, so ``save_pretrained`` / ``from_pretrained`` round-trip it (validated on load).

    Conventions as diffusers' own schedulers: ``init_noise_sigma = 1``, ``scale_model_input``
    is the identity, and the pipeline's sample is always the model's input at the next model
    level (VP: ``alpha(sigma'_k) x_k``; flow: ``x_k / (1 + sigma'_k)``). So the starting latents
    ``n`` are the model's first input, and the solver's noise is :meth:`solver_noise` of them
    (VP: ``n sqrt(1 + sigma_max^2) / sigma_max``, ``1 + 2e-5`` times ``n`` for SD's schedule;
    flow: ``n / t_max``). The last step returns the solver's sample ``x_N``. VP timesteps are
    the model levels' times on the training schedule (fractional unless ``round_time``); flow
    timesteps are ``t * num_train_timesteps``.

    A solver learned on a flow pipeline records its shift (:func:`s4s.from_diffusers`); a
    pipeline that asks for another (``set_timesteps(mu=...)``, the resolution-dependent shift of
    Flux-style pipelines) is refused, naming both, as are latents of another size. Those
    pipelines compute ``mu`` from the scheduler's config (``base_image_seq_len``,
    ``max_image_seq_len``, ``base_shift``, ``max_shift``), so the config keeps the original
    scheduler's values of these (their defaults are the pipelines' own).
    """

    order = 1
    _compatibles: list[str] = []

    @register_to_config
    def __init__(
        self,
        solver: dict[str, Any] | str | None = None,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: list[float] | None = None,
        prediction_type: str = "epsilon",
        round_time: bool = False,
        frame: str = "vp",
        rescale_betas_zero_snr: bool = False,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        base_shift: float = 0.5,
        max_shift: float = 1.15,
    ) -> None:
        _need_diffusers()
        if solver is None:
            raise ValueError("S4SScheduler needs a solver: S4SScheduler.from_solver(solver_or_path, **config)")
        self.solver = _as_solver(solver)
        self.register_to_config(solver=solver_to_dict(self.solver))  # self-contained config
        if frame == "flow":
            self.frame: _VPFrame | _FlowFrame = _FlowFrame(num_train_timesteps)
        elif frame == "vp":
            if prediction_type not in _PREDICTIONS:
                raise ValueError(f"unsupported prediction_type {prediction_type!r}; expected one of {sorted(_PREDICTIONS)}")
            betas = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_start=beta_start, beta_end=beta_end,
                                  beta_schedule=beta_schedule, trained_betas=trained_betas,
                                  rescale_betas_zero_snr=rescale_betas_zero_snr)
            self.alphas_cumprod = betas.alphas_cumprod
            self.frame = _VPFrame(self.alphas_cumprod, prediction_type, round_time)
            self.vp = self.frame.vp
            check_timesteps(self.solver, "integer" if round_time else "continuous", "this S4SScheduler")
        else:
            raise ValueError(f"frame must be 'vp' or 'flow', got {frame!r}")
        first, start = float(self.solver.model_sigmas[0]), float(self.solver.sigmas[0])
        if abs(first - start) > 1e-6 * start:
            raise ValueError(
                f"the solver's first model level ({first:.6g}) differs from its starting level ({start:.6g}); "
                "pipelines feed their starting noise straight to the model, so it must not be decoupled")
        lo, hi = float(self.solver.model_sigmas.min()), float(self.solver.model_sigmas.max())
        if not (self.frame.sigma_min * (1 - 1e-3) <= lo and hi <= self.frame.sigma_max * (1 + 1e-3)):
            raise ValueError(
                f"the solver evaluates the model at sigma in [{lo:.4g}, {hi:.4g}], outside this schedule's "
                f"[{self.frame.sigma_min:.4g}, {self.frame.sigma_max:.4g}]: was it learned for another model?")
        self.host = dict(self.solver.meta.get("model", {}).get("host") or {})
        self.strength = float(self.solver.meta.get("strength", 1.0))
        self._pad = 0  # steps an image-to-image pipeline skips before the solver's first
        self.init_noise_sigma = 1.0
        self.num_inference_steps: int | None = None
        self.timesteps = torch.empty(0)
        self.sigmas = torch.empty(0)
        self._begin_index: int | None = None
        self._stepper: Stepper | None = None
        self._returned: Tensor | None = None

    @classmethod
    def from_solver(cls, solver: Any, /, guidance: float | None = None, **scheduler_config: Any) -> "S4SScheduler":
        """A scheduler for ``solver`` (or a solver file) on a pipeline's training schedule; a
        solver learned for a range of guidance scales (:class:`s4s.GuidanceSolver` or its file)
        takes the pipeline's ``guidance_scale`` as ``guidance`` and runs its solver for that
        scale (a scale outside its range is refused, naming the range).

        ``scheduler_config`` is typically ``pipe.scheduler.config``: the keys this scheduler
        knows (``num_train_timesteps``, ``beta_*``, ``trained_betas``, ``prediction_type``,
        ``rescale_betas_zero_snr``, ``round_time``, ``frame``) are used and the rest (other schedulers' options) are
        ignored; a flow-matching scheduler's config (``FlowMatchEulerDiscreteScheduler``'s, or a
        multistep solver's with ``use_flow_sigmas``) gives ``frame="flow"``.
        """
        from ..learn.guidance import GuidanceSolver, solver_at
        from .diffusers_flow import is_flow_scheduler_config

        if isinstance(solver, (str, os.PathLike, GuidanceSolver)) or guidance is not None:
            solver = solver_at(solver, guidance)
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "solver"}
        config = {k: v for k, v in dict(scheduler_config).items() if k in known}
        if "frame" not in config and is_flow_scheduler_config(scheduler_config):
            config["frame"] = "flow"
        return cls(solver=solver_to_dict(_as_solver(solver)), **config)

    @property
    def alpha_at_levels(self) -> Tensor:
        """The model input over the VE state at each model level (float64): VP
        ``alpha(sigma'_k) = 1 / sqrt(1 + sigma'_k^2)``, flow ``1 / (1 + sigma'_k)``."""
        return self.frame.scale(self.solver.model_sigmas.detach())

    def solver_noise(self, latents: Tensor) -> Tensor:
        """The solver's noise for a pipeline's starting ``latents`` (what ``solver.sample`` takes
        to give what this scheduler gives): the latents are the model's first input."""
        sigma = self.solver.sigmas[0].detach().to(torch.float64)
        return (latents.to(torch.float64) / self.frame.scale(sigma) / sigma).to(latents.dtype)

    @property
    def step_index(self) -> int | None:
        """The index of the next step (``None`` before the first)."""
        return None if self._stepper is None else self._stepper.k

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """The step the pipeline starts at: the solver's first (``0``, or for a solver learned for
        image-to-image the steps the pipeline skips, ``num_inference_steps - nfe``)."""
        if begin_index != self._pad:
            if self.strength < 1:
                runs = (self.num_inference_steps or 0) - begin_index
                raise ValueError(f"the pipeline would run {runs} of {self.num_inference_steps} steps; this solver "
                                 f"(strength {self.strength:g}) runs {self.solver.nfe}: {self._steps_hint()}")
            raise ValueError(f"this S4SScheduler runs its solver from its first step; begin_index={begin_index} "
                             "would start elsewhere (image-to-image needs a solver learned for that start: "
                             "s4s.learn(..., config=LearnConfig(strength=...)))")
        self._begin_index = begin_index

    def img2img_steps(self) -> dict[str, int]:
        """``num_inference_steps`` that make an image-to-image pipeline at this solver's strength
        run exactly its ``nfe`` steps, by the pipeline's rule: ``"int"`` for pipelines that run
        ``int(steps * strength)`` (StableDiffusionImg2Img, SDXL's), ``"skip"`` for those that skip
        ``int(steps - steps * strength)`` (SD3's)."""
        nfe, s = self.solver.nfe, self.strength
        rules = {"int": lambda m: int(m * s), "skip": lambda m: m - int(max(m - m * s, 0))}
        out = {}
        for name, runs in rules.items():
            found = next((m for m in range(nfe + 1, 100 * nfe + 2) if runs(m) == nfe), None)
            if found is not None:
                out[name] = found
        return out

    def _steps_hint(self) -> str:
        steps = self.img2img_steps()
        return (f"give strength={self.strength:g} and num_inference_steps={steps.get('int')} "
                f"(pipelines that run int(steps * strength): StableDiffusionImg2Img, SDXL) or "
                f"{steps.get('skip')} (SD3's img2img)")

    def set_timesteps(self, num_inference_steps: int | None = None, device: str | torch.device | None = None,
                      sigmas: Sequence[float] | None = None, mu: float | None = None,
                      timesteps: Sequence[float] | None = None) -> None:
        """Prepare a run of the solver's ``nfe`` steps. Flow pipelines' ``sigmas`` or
        ``timesteps`` (their default spacing) may be given, of that length; the solver's own
        levels replace them. ``mu`` (a resolution-dependent shift ``exp(mu)``) must match the
        shift the solver was learned for when it records one."""
        nfe = self.solver.nfe
        asked = next((len(v) for v in (sigmas, timesteps) if v is not None), num_inference_steps)
        if self.strength < 1:
            if asked is None or asked not in self.img2img_steps().values():
                raise ValueError(f"this solver was learned for image-to-image at strength {self.strength:g} with {nfe} "
                                 f"steps, not for num_inference_steps={asked}: {self._steps_hint()}")
        elif asked != nfe:
            raise ValueError(
                f"this S4SScheduler runs a solver learned for exactly {nfe} steps; num_inference_steps="
                f"{asked} would need another solver (learn one with s4s.learn(..., nfe={asked}))")
        if mu is not None and "shift" in self.host and abs(math.exp(mu) - self.host["shift"]) > 1e-4 * self.host["shift"]:
            raise ValueError(f"the pipeline asks for the time shift exp(mu) = {math.exp(mu):.6g} (mu = {mu:.6g}), but "
                             f"this solver was learned at shift {self.host['shift']:.6g} "
                             f"({self.host.get('height')}x{self.host.get('width')}): learn one for this resolution")
        levels = self.solver.model_sigmas.detach()
        grid = self.solver.sigmas.detach()
        self._pad = int(asked) - nfe  # image-to-image: the steps the pipeline skips
        if self._pad:  # levels above the solver's start, for the pipeline to skip (never evaluated)
            top = levels.new_tensor(self.frame.sigma_max if math.isfinite(self.frame.sigma_max) else 1e4)
            above = torch.exp(torch.linspace(float(top.log()), float(grid[0].log()), self._pad + 1,
                                             dtype=torch.float64)[:-1])
            levels, grid = torch.cat([above, levels]), torch.cat([above, grid])
        self.num_inference_steps = int(asked)
        self.timesteps = self.frame.timesteps(levels).to(device=device, dtype=torch.float32)
        flow_time = grid / (1 + grid) if isinstance(self.frame, _FlowFrame) else grid
        self.sigmas = flow_time.to(device=device, dtype=torch.float32)
        self._stepper = None
        self._returned = None

    def scale_model_input(self, sample: Tensor, timestep: Any = None) -> Tensor:
        """The identity: the pipeline's sample is already the model's input."""
        return sample

    def step(
        self,
        model_output: Tensor,
        timestep: Any,
        sample: Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> Any:
        """One solver step: the model's output at the current level -> the next sample."""
        if self.num_inference_steps is None:
            raise RuntimeError("call set_timesteps(num_inference_steps) before step()")
        k = 0 if self._stepper is None else self._stepper.k
        if k >= self.solver.nfe:
            raise RuntimeError(f"all {self.solver.nfe} steps are done; call set_timesteps() to start again")
        expected = float(self.timesteps[self._pad + k])
        if abs(float(torch.as_tensor(timestep).flatten()[0]) - expected) > 1e-3 * max(1.0, abs(expected)):
            raise ValueError(f"step {k} expects timestep {expected:.4f} (from scheduler.timesteps), got "
                             f"{float(torch.as_tensor(timestep).flatten()[0]):.4f}")
        if k == 0 and "latent_shape" in self.host and list(sample.shape[1:]) != list(self.host["latent_shape"]):
            raise ValueError(f"this solver was learned for latents of shape {tuple(self.host['latent_shape'])} "
                             f"({self.host.get('height')}x{self.host.get('width')} images), got {tuple(sample.shape[1:])}")
        # the update runs in float64 (float32 on MPS): at sigma_max ~ 157, x0 = x - sigma eps
        # cancels about 3 digits, which float32 states would turn into visible noise
        work = torch.float32 if sample.device.type == "mps" else torch.float64
        scales = self.alpha_at_levels.to(dtype=work, device=sample.device)
        if self._stepper is None:
            self._stepper = Stepper(self.solver, sample.to(work))
        if k == 0 or sample is not self._returned:  # the model saw `sample`: x_k = sample / scale_k
            self._stepper.x = sample.to(work) / scales[k]
        stepper = self._stepper
        sigma = stepper.sigma.expand(sample.shape[0])
        denoised = self.frame.denoised(stepper.x, sigma, model_output.to(work))
        x_next = stepper.tell(denoised)
        prev = (x_next if stepper.done else x_next * scales[k + 1]).to(sample.dtype)
        self._returned = prev
        if not return_dict:
            return (prev,)
        return SchedulerOutput(prev_sample=prev)

    def add_noise(self, original_samples: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """VP: ``x_t = alpha_t x0 + sigma_t n`` at (possibly fractional) training timesteps ``[B]``;
        at integer timesteps it equals ``DDPMScheduler.add_noise``. Flow: :meth:`scale_noise`."""
        if isinstance(self.frame, _FlowFrame):
            return self.scale_noise(original_samples, timesteps, noise)
        sigma = self.vp.t_to_sigma(torch.as_tensor(timesteps, dtype=torch.float64).flatten().cpu())
        sigma = sigma.to(dtype=original_samples.dtype, device=original_samples.device)
        if sigma.numel() == 1:
            sigma = sigma.expand(original_samples.shape[0])
        return vp_input(original_samples + noise * sigma.reshape(-1, *[1] * (noise.dim() - 1)), sigma)

    def scale_noise(self, sample: Tensor, timestep: Any, noise: Tensor) -> Tensor:
        """Flow: ``x_t = (1 - t) x0 + t n`` with ``t = timestep / num_train_timesteps``."""
        t = torch.as_tensor(timestep, dtype=torch.float64).flatten() / float(self.config.num_train_timesteps)
        t = t.to(dtype=sample.dtype, device=sample.device).reshape(-1, *[1] * (sample.dim() - 1))
        return (1 - t) * sample + t * noise

    def __len__(self) -> int:
        return int(self.config.num_train_timesteps)
