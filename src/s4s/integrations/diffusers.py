"""diffusers interop.

* :func:`from_diffusers`: a pipeline (UNet, scheduler, optional text encoder and VAE) as an
  :class:`s4s.Denoiser` for learning and sampling; classifier-free guidance in one batched
  call; latent pipelines offer their VAE decoder as ``model.decode``.
* :class:`S4SScheduler`: a learned (or hand-designed) s4s solver as a diffusers scheduler, to
  drop into ``DDPMPipeline``, ``StableDiffusionPipeline`` and other discrete-time VP pipelines.

Frames: s4s works in the VE frame (``x = x0 + sigma n``); diffusers' VP pipelines hold
``x_t = alpha x`` with ``alpha = 1 / sqrt(1 + sigma^2)`` and start from ``x_T = n``
(``init_noise_sigma = 1``). The scheduler converts at each step.
"""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from ..frame import Denoiser
from ..io import load_solver, solver_from_dict, solver_to_dict
from ..models import DiscreteVP, guided, vp_input, vp_to_x0, vp_denoiser
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
    return DiffusionPipeline.from_pretrained(folder, use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False)


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
    negative_prompt: str = "",
    class_labels: Sequence[int] | None = None,
    null_class_label: int | None = None,
    round_time: bool = False,
) -> Denoiser:
    """Wrap a discrete-time VP pipeline (``pipe.unet`` and ``pipe.scheduler``) as a :class:`Denoiser`.

    Handles the scheduler's ``prediction_type`` (epsilon, v_prediction, sample) and its
    ``alphas_cumprod`` (timestep mapping; ``round_time`` gives integer timesteps).

    Conditions: with ``prompts`` (text pipelines: ``pipe.encode_prompt``) or ``class_labels``
    (class-conditional UNets), ``model.conditions(seeds)`` gives the condition of each seed
    (seed ``s`` takes entry ``s % len``) to pass as ``cond`` to ``solver.sample`` or
    ``s4s.learn(..., cond=model.conditions)``. ``guidance_scale`` applies classifier-free
    guidance against ``negative_prompt`` (or ``null_class_label``) in one batched call, so a
    guided step is one NFE.

    Latent pipelines (with ``pipe.vae``): samples are latents of shape ``model.sample_shape``,
    and ``model.decode(latents) -> images[B, 3, H, W]`` (in ``[-1, 1]``, differentiable) is the
    VAE decoder, to measure the learning distance on images: ``s4s.learn(..., decode=model.decode)``.
    """
    _need_diffusers()
    unet, scheduler = getattr(pipe, "unet", None), getattr(pipe, "scheduler", None)
    if unet is None or scheduler is None or not hasattr(scheduler, "alphas_cumprod"):
        raise TypeError("expected a pipeline with a UNet `unet` and a discrete-time `scheduler`")
    if prompts is not None and class_labels is not None:
        raise ValueError("give prompts or class_labels, not both")
    if prompts is not None and (isinstance(prompts, str) or not prompts):
        raise ValueError("prompts must be a non-empty list of strings")
    if class_labels is not None and not len(class_labels):
        raise ValueError("class_labels must be a non-empty list of ints")
    if guidance_scale is not None and prompts is None and (class_labels is None or null_class_label is None):
        raise ValueError("guidance needs prompts=[...] (text pipelines) or class_labels=[...] with null_class_label")
    prediction = _prediction(scheduler)
    unet.eval()
    for p in unet.parameters():
        p.requires_grad_(False)
    dtype = next(unet.parameters()).dtype
    device = next(unet.parameters()).device

    table: Tensor | None = None  # per-prompt or per-label conditions
    uncond: Tensor | None = None
    if prompts is not None:
        if not hasattr(pipe, "encode_prompt"):
            raise TypeError(f"{type(pipe).__name__} has no encode_prompt; it cannot take prompts")
        with torch.no_grad():
            embeds, negative = pipe.encode_prompt(list(prompts), device, 1, True, [negative_prompt] * len(prompts))
        table, uncond = embeds, negative[0]
        kind = "text"
    elif class_labels is not None:
        table = torch.as_tensor(list(class_labels), dtype=torch.long, device=device)
        uncond = None if null_class_label is None else torch.tensor(null_class_label, dtype=torch.long, device=device)
        kind = "class"

    def net(x_t: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        t = t.to(dtype)
        if cond is None:
            return unet(x_t.to(dtype), t).sample.to(x_t.dtype)
        if kind == "text":
            return unet(x_t.to(dtype), t, encoder_hidden_states=cond.to(dtype)).sample.to(x_t.dtype)
        return unet(x_t.to(dtype), t, class_labels=cond).sample.to(x_t.dtype)

    model = vp_denoiser(net, DiscreteVP(scheduler.alphas_cumprod), _PREDICTIONS[prediction],  # type: ignore[arg-type]
                        round_time=round_time, name=type(pipe).__name__)
    if guidance_scale is not None:
        model = guided(model, float(guidance_scale), uncond)
    size = unet.config.sample_size
    size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    model.sample_shape = (unet.config.in_channels, *size)  # type: ignore[attr-defined]
    if table is not None:
        rows = table

        def conditions(seeds: Sequence[int]) -> Tensor:
            """The condition of each seed: entry ``seed % len`` of the prompts or labels."""
            return rows[torch.as_tensor([int(s) % rows.shape[0] for s in seeds], device=rows.device)]

        model.conditions = conditions  # type: ignore[attr-defined]
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        vae.eval()
        for p in vae.parameters():
            p.requires_grad_(False)
        scale = float(vae.config.scaling_factor)

        def decode(latents: Tensor) -> Tensor:
            """VAE decoder: latents ``[B, C, h, w]`` -> images ``[B, 3, H, W]`` in ``[-1, 1]``."""
            return vae.decode((latents / scale).to(vae.dtype)).sample.to(latents.dtype)

        model.decode = decode  # type: ignore[attr-defined]
    return model


def _as_solver(solver: Solver | dict[str, Any] | str | os.PathLike[str]) -> Solver:
    if isinstance(solver, Solver):
        return solver
    if isinstance(solver, dict):
        return solver_from_dict(solver, "S4SScheduler config 'solver'")
    if isinstance(solver, (str, os.PathLike)):
        return load_solver(solver)
    raise TypeError(f"solver must be an s4s.Solver, a solver file path or its dict, got {type(solver).__name__}")


class S4SScheduler(SchedulerMixin, ConfigMixin):  # type: ignore[misc]
    """A fixed-step s4s solver as a diffusers scheduler for discrete-time VP pipelines.

    Build it with :meth:`from_solver` (``S4SScheduler.from_solver("digits-nfe5.json",
    **pipe.scheduler.config)``) and set ``pipe.scheduler``; sample with
    ``num_inference_steps = solver.nfe``. The solver is stored in the scheduler config, so
    ``save_pretrained`` / ``from_pretrained`` round-trip it (validated on load).

    Conventions as diffusers' own multistep schedulers: ``init_noise_sigma = 1``,
    ``scale_model_input`` is the identity, and the pipeline's sample is always the model's
    input, the VP sample ``alpha(sigma'_k) x_k`` at the next model level. So the starting
    latents ``n`` are read as ``x_0 = n / alpha(sigma_max)``, i.e. the solver's noise is
    ``n * sqrt(1 + sigma_max^2) / sigma_max`` (``1 + 2e-5`` times ``n`` for SD's and DDPM's
    schedules). The last step returns the solver's sample ``x_N``. Timesteps are the model
    levels' times on the training schedule (fractional unless ``round_time``).
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
    ) -> None:
        _need_diffusers()
        if solver is None:
            raise ValueError("S4SScheduler needs a solver: S4SScheduler.from_solver(solver_or_path, **config)")
        self.solver = _as_solver(solver)
        self.register_to_config(solver=solver_to_dict(self.solver))  # self-contained config
        if prediction_type not in _PREDICTIONS:
            raise ValueError(f"unsupported prediction_type {prediction_type!r}; expected one of {sorted(_PREDICTIONS)}")
        betas = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_start=beta_start, beta_end=beta_end,
                              beta_schedule=beta_schedule, trained_betas=trained_betas)
        self.alphas_cumprod = betas.alphas_cumprod
        self.vp = DiscreteVP(self.alphas_cumprod)
        first, start = float(self.solver.model_sigmas[0]), float(self.solver.sigmas[0])
        if abs(first - start) > 1e-6 * start:
            raise ValueError(
                f"the solver's first model level ({first:.6g}) differs from its starting level ({start:.6g}); "
                "pipelines feed their starting noise straight to the model, so it must not be decoupled")
        lo, hi = float(self.solver.model_sigmas.min()), float(self.solver.model_sigmas.max())
        if not (self.vp.sigma_min * (1 - 1e-3) <= lo and hi <= self.vp.sigma_max * (1 + 1e-3)):
            raise ValueError(
                f"the solver evaluates the model at sigma in [{lo:.4g}, {hi:.4g}], outside this schedule's "
                f"[{self.vp.sigma_min:.4g}, {self.vp.sigma_max:.4g}]: was it learned for another model?")
        self.init_noise_sigma = 1.0
        self.num_inference_steps: int | None = None
        self.timesteps = torch.empty(0)
        self._stepper: Stepper | None = None
        self._returned: Tensor | None = None

    @classmethod
    def from_solver(cls, solver: Solver | str | os.PathLike[str], /, **scheduler_config: Any) -> "S4SScheduler":
        """A scheduler for ``solver`` (or a solver file) on a pipeline's training schedule.

        ``scheduler_config`` is typically ``pipe.scheduler.config``: the keys this scheduler
        knows (``num_train_timesteps``, ``beta_*``, ``trained_betas``, ``prediction_type``,
        ``round_time``) are used and the rest (other schedulers' options) are ignored.
        """
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "solver"}
        config = {k: v for k, v in dict(scheduler_config).items() if k in known}
        return cls(solver=solver_to_dict(_as_solver(solver)), **config)

    @property
    def alpha_at_levels(self) -> Tensor:
        """``alpha(sigma'_k) = 1 / sqrt(1 + sigma'_k^2)`` at each model level (float64)."""
        return torch.rsqrt(1 + self.solver.model_sigmas.detach() ** 2)

    def set_timesteps(self, num_inference_steps: int | None = None, device: str | torch.device | None = None) -> None:
        """Prepare a run; ``num_inference_steps`` must be the solver's NFE."""
        nfe = self.solver.nfe
        if num_inference_steps != nfe:
            raise ValueError(
                f"this S4SScheduler runs a solver learned for exactly {nfe} steps; num_inference_steps="
                f"{num_inference_steps} would need another solver (learn one with s4s.learn(..., nfe={num_inference_steps}))")
        t = self.vp.sigma_to_t(self.solver.model_sigmas.detach())
        if self.config.round_time:
            t = t.round()
        self.num_inference_steps = nfe
        self.timesteps = t.to(device=device, dtype=torch.float32)
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
    ) -> Any:
        """One solver step: the model's output at the current level -> the next sample."""
        if self.num_inference_steps is None:
            raise RuntimeError("call set_timesteps(num_inference_steps) before step()")
        k = 0 if self._stepper is None else self._stepper.k
        if k >= self.solver.nfe:
            raise RuntimeError(f"all {self.solver.nfe} steps are done; call set_timesteps() to start again")
        expected = float(self.timesteps[k])
        if abs(float(torch.as_tensor(timestep)) - expected) > 1e-3 * max(1.0, abs(expected)):
            raise ValueError(f"step {k} expects timestep {expected:.4f} (from scheduler.timesteps), got {float(timestep):.4f}")
        # the update runs in float64 (float32 on MPS): at sigma_max ~ 157, x0 = x - sigma eps
        # cancels about 3 digits, which float32 states would turn into visible noise
        work = torch.float32 if sample.device.type == "mps" else torch.float64
        alphas = self.alpha_at_levels.to(dtype=work, device=sample.device)
        if self._stepper is None:
            self._stepper = Stepper(self.solver, sample.to(work))
        if k == 0 or sample is not self._returned:  # the model saw `sample`: x_k = sample / alpha_k
            self._stepper.x = sample.to(work) / alphas[k]
        stepper = self._stepper
        sigma = stepper.sigma.expand(sample.shape[0])
        denoised = vp_to_x0(stepper.x, sigma, model_output.to(work),
                            _PREDICTIONS[self.config.prediction_type])  # type: ignore[arg-type]
        x_next = stepper.tell(denoised)
        prev = (x_next if stepper.done else x_next * alphas[k + 1]).to(sample.dtype)
        self._returned = prev
        if not return_dict:
            return (prev,)
        return SchedulerOutput(prev_sample=prev)

    def add_noise(self, original_samples: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """``x_t = alpha_t x0 + sigma_t n`` at (possibly fractional) training timesteps ``[B]``;
        at integer timesteps it equals ``DDPMScheduler.add_noise``."""
        sigma = self.vp.t_to_sigma(torch.as_tensor(timesteps, dtype=torch.float64).flatten().cpu())
        sigma = sigma.to(dtype=original_samples.dtype, device=original_samples.device)
        if sigma.numel() == 1:
            sigma = sigma.expand(original_samples.shape[0])
        return vp_input(original_samples + noise * sigma.reshape(-1, *[1] * (noise.dim() - 1)), sigma)

    def __len__(self) -> int:
        return int(self.config.num_train_timesteps)
