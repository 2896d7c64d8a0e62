"""Adapters: the only place that knows about prediction types and model time variables.

Each adapter turns a network ``net(x_t, t[B], *cond)`` trained in some parametrization into
an :class:`s4s.Denoiser` in the EDM/VE frame (``x = x0 + sigma * n``):

* VP models (DDPM, score-SDE, Stable Diffusion): ``x_t = alpha_t x0 + sigma_t eps`` with
  ``alpha_t^2 + sigma_t^2 = 1``. The VE level is ``sigma = sigma_t / alpha_t``, so
  ``alpha = 1 / sqrt(1 + sigma^2)`` and ``x_t = alpha * x``. Predictions convert as
  eps: ``x0 = x - sigma * eps``; v (Salimans & Ho 2022): ``x0 = alpha_t x_t - sigma_t v``;
  sample: ``x0`` directly.
* Flow matching / rectified flow (Lipman et al. 2023; Liu et al. 2023):
  ``x_t = (1 - t) x0 + t eps``, velocity ``v = eps - x0``. Then ``sigma = t / (1 - t)``,
  ``x_t = x / (1 + sigma)`` and ``x0 = x_t - t v``.
* Classifier-free guidance (Ho & Salimans 2022): ``D_u + w (D_c - D_u)`` in one batched call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

import torch
from torch import Tensor

from .frame import Denoiser, TimeMap

__all__ = [
    "DiscreteVP",
    "ContinuousVP",
    "vp_denoiser",
    "flow_denoiser",
    "guided",
    "with_guidance",
    "strength_level",
    "partial_denoising",
    "vp_input",
    "vp_to_x0",
    "Prediction",
]

Prediction = Literal["eps", "v", "sample"]
NetFn = Callable[..., Tensor]


def _as_f64(x: Tensor | float) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def _invert_increasing(g: Callable[[Tensor], Tensor], y: Tensor, lo: float, hi: float) -> Tensor:
    """Solve ``g(t) = y`` for increasing ``g`` on ``[lo, hi]`` (float64, clamped to the range).

    Bisection gives the value; one Newton step on the detached root restores the gradient
    ``dt/dy = 1 / g'(t)`` (implicit function theorem), so grids stay differentiable.
    """
    y = _as_f64(y)
    with torch.no_grad():
        a = torch.full_like(y, lo)
        b = torch.full_like(y, hi)
        for _ in range(64):
            mid = 0.5 * (a + b)
            below = g(mid) < y
            a = torch.where(below, mid, a)
            b = torch.where(below, b, mid)
        root = (0.5 * (a + b)).clamp(lo, hi)
    root = root.detach().requires_grad_(True)
    with torch.enable_grad():
        g_root = g(root)
        (slope,) = torch.autograd.grad(g_root.sum(), root)
    return root.detach() + (y - g_root.detach()) / slope


@dataclass(frozen=True)
class DiscreteVP:
    """A discrete-time VP schedule given by its ``alphas_cumprod[T]`` table (DDPM, SD).

    Model time is the (fractional) index ``t in [0, T-1]``; ``sigma(t)`` interpolates the
    table linearly in ``log sigma``, as k-diffusion's ``DiscreteSchedule`` does. A zero-terminal-SNR
    table (Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed", 2024) ends
    in 0; that entry is read as ``2**-24`` (``sigma_max`` about 4096), as diffusers' Euler
    scheduler reads it.
    """

    alphas_cumprod: Tensor
    _log_sigmas: dict[torch.device, Tensor] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ac = _as_f64(self.alphas_cumprod).flatten()
        if ac.numel() < 2:
            raise ValueError("alphas_cumprod needs at least 2 entries")
        if float(ac[-1]) == 0:
            ac = torch.cat([ac[:-1], ac.new_full((1,), 2.0**-24)])
        if not bool(((ac > 0) & (ac < 1)).all()):
            raise ValueError("alphas_cumprod must lie strictly between 0 and 1 (the last may be 0: zero terminal SNR)")
        if not bool((ac[1:] < ac[:-1]).all()):
            raise ValueError("alphas_cumprod must be strictly decreasing in t")
        object.__setattr__(self, "alphas_cumprod", ac)
        self._log_sigmas[ac.device] = 0.5 * torch.log((1 - ac) / ac)

    @classmethod
    def linear(cls, beta_start: float = 1e-4, beta_end: float = 0.02, steps: int = 1000) -> "DiscreteVP":
        """DDPM's linear-beta schedule (Ho et al. 2020)."""
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        return cls(torch.cumprod(1 - betas, 0))

    @classmethod
    def scaled_linear(
        cls, beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = 1000
    ) -> "DiscreteVP":
        """Stable Diffusion's schedule: linear in ``sqrt(beta)``."""
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
        return cls(torch.cumprod(1 - betas, 0))

    @property
    def log_sigmas(self) -> Tensor:
        """``log sigma`` at each table index, ``[T]`` float64 (computed once)."""
        return self._table(self.alphas_cumprod.device)

    def _table(self, device: torch.device) -> Tensor:
        """The ``log sigma`` table on ``device``, copied there once (model calls need it every step)."""
        if device not in self._log_sigmas:
            self._log_sigmas[device] = self._log_sigmas[self.alphas_cumprod.device].to(device)
        return self._log_sigmas[device]

    @property
    def t_max(self) -> float:
        return float(self.alphas_cumprod.numel() - 1)

    def sigma_to_t(self, sigma: Tensor) -> Tensor:
        sigma = _as_f64(sigma)
        ls = self._table(sigma.device)
        log_s = torch.log(sigma).clamp(float(ls[0]), float(ls[-1]))
        low = torch.searchsorted(ls, log_s.detach(), right=True).sub(1).clamp(0, ls.numel() - 2)
        w = (log_s - ls[low]) / (ls[low + 1] - ls[low])
        return low.to(torch.float64) + w

    def t_to_sigma(self, t: Tensor) -> Tensor:
        t = _as_f64(t).clamp(0, self.t_max)
        ls = self._table(t.device)
        low = t.detach().floor().long().clamp(0, ls.numel() - 2)
        w = t - low.to(torch.float64)
        return torch.exp((1 - w) * ls[low] + w * ls[low + 1])

    @property
    def sigma_min(self) -> float:
        return float(self.log_sigmas[0].exp())

    @property
    def sigma_max(self) -> float:
        return float(self.log_sigmas[-1].exp())


@dataclass(frozen=True)
class ContinuousVP:
    """A continuous-time VP schedule given by ``log alpha_bar(t)`` on ``[t_min, t_max]``.

    ``sigma(t) = sqrt(1 / alpha_bar(t) - 1)``. The inverse is ``sigma_to_t`` when given,
    otherwise found by bisection (with an exact gradient).
    """

    log_alpha_bar: Callable[[Tensor], Tensor]
    t_min: float = 1e-3
    t_max: float = 1.0
    inverse: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        if not self.t_min < self.t_max:
            raise ValueError(f"t_min must be below t_max, got {self.t_min} >= {self.t_max}")
        lo, hi = self.t_to_sigma(_as_f64(self.t_min)), self.t_to_sigma(_as_f64(self.t_max))
        if not (torch.isfinite(lo) and torch.isfinite(hi) and 0 < lo < hi):
            raise ValueError(
                "log_alpha_bar must decrease over [t_min, t_max] and give finite positive sigma; "
                f"got sigma(t_min)={float(lo)}, sigma(t_max)={float(hi)}"
            )

    @classmethod
    def linear(cls, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3, t_max: float = 1.0) -> "ContinuousVP":
        """Score-SDE's VP-SDE (Song et al. 2021): ``beta(t) = beta_min + t (beta_max - beta_min)``."""
        db = beta_max - beta_min

        def log_alpha_bar(t: Tensor) -> Tensor:
            return -0.5 * t * beta_min - 0.25 * t**2 * db

        def inverse(sigma: Tensor) -> Tensor:
            # 0.25 db t^2 + 0.5 beta_min t - log(1 + sigma^2) = 0
            return (-0.5 * beta_min + torch.sqrt(0.25 * beta_min**2 + db * torch.log1p(sigma**2))) / (0.5 * db)

        return cls(log_alpha_bar, t_min, t_max, inverse)

    def t_to_sigma(self, t: Tensor) -> Tensor:
        return torch.sqrt(torch.expm1(-self.log_alpha_bar(_as_f64(t))))

    def sigma_to_t(self, sigma: Tensor) -> Tensor:
        sigma = _as_f64(sigma)
        if self.inverse is not None:
            return self.inverse(sigma)
        return _invert_increasing(lambda t: torch.log(self.t_to_sigma(t)), torch.log(sigma), self.t_min, self.t_max)

    @property
    def sigma_min(self) -> float:
        return float(self.t_to_sigma(_as_f64(self.t_min)))

    @property
    def sigma_max(self) -> float:
        return float(self.t_to_sigma(_as_f64(self.t_max)))


def _bcast(v: Tensor, x: Tensor) -> Tensor:
    """``v[B]`` reshaped to broadcast over ``x[B, ...]``."""
    return v.reshape(v.shape + (1,) * (x.dim() - 1))


def _call(net: NetFn, x: Tensor, t: Tensor, cond: tuple[Any, ...]) -> Tensor:
    out = net(x, t, *cond)
    # diffusers models return an output object whose `.sample` is the tensor
    return out.sample if hasattr(out, "sample") and not isinstance(out, Tensor) else out


def vp_input(x: Tensor, sigma: Tensor) -> Tensor:
    """The VP network's input ``x_t = alpha * x`` for the VE state ``x[B, ...]`` at ``sigma[B]``."""
    return _bcast(torch.rsqrt(1 + sigma**2), x) * x


def vp_to_x0(x: Tensor, sigma: Tensor, out: Tensor, prediction: Prediction) -> Tensor:
    """``x0`` from a VP network's output ``out`` at the VE state ``x[B, ...]``, level ``sigma[B]``
    (eps: ``x - sigma eps``; v: ``alpha^2 x - alpha sigma v``; sample: ``out``)."""
    if prediction == "eps":
        return x - _bcast(sigma, x) * out
    if prediction == "v":
        alpha = _bcast(torch.rsqrt(1 + sigma**2), x)
        return alpha**2 * x - alpha * _bcast(sigma, x) * out
    return out


def vp_denoiser(
    net: NetFn,
    schedule: DiscreteVP | ContinuousVP,
    prediction: Prediction = "eps",
    *,
    time_scale: float = 1.0,
    round_time: bool = False,
    sigma_data: float | None = None,
    name: str = "vp",
) -> Denoiser:
    """Wrap a VP network ``net(x_t, t[B], *cond) -> eps | v | x0`` as a :class:`Denoiser`.

    Args:
        schedule: the model's noise schedule (discrete table or continuous functions).
        prediction: what ``net`` predicts: ``"eps"``, ``"v"`` or ``"sample"`` (x0).
        time_scale: ``net`` receives ``t * time_scale`` (e.g. 999 for score-SDE networks
            trained on ``t in [0, 1]`` with DDPM-style embeddings).
        round_time: give ``net`` the nearest integer time, as diffusers' schedulers do when
            stepping on Karras sigmas (the sample is still scaled with the exact sigma).
    """
    if prediction not in ("eps", "v", "sample"):
        raise ValueError(f"prediction must be 'eps', 'v' or 'sample', got {prediction!r}")

    def fn(x: Tensor, sigma: Tensor, *cond: Any) -> Tensor:
        t = schedule.sigma_to_t(sigma)
        if round_time:
            t = t.round()
        t = (t * time_scale).to(x.dtype)
        out = _call(net, vp_input(x, sigma), t, cond)
        return vp_to_x0(x, sigma, out, prediction)

    time = TimeMap(schedule.sigma_to_t, schedule.t_to_sigma, name="vp-t")
    model = Denoiser(fn, schedule.sigma_min, schedule.sigma_max, sigma_data, time=time, name=name)
    model.timesteps = "integer" if round_time else "continuous"  # type: ignore[attr-defined]
    return model


def flow_denoiser(
    net: NetFn,
    *,
    shift: float = 1.0,
    time_scale: float = 1.0,
    t_min: float = 1e-3,
    t_max: float = 0.999,
    sigma_data: float | None = None,
    name: str = "flow",
) -> Denoiser:
    """Wrap a rectified-flow velocity network ``net(x_t, t[B], *cond) -> v = eps - x0``.

    ``x_t = (1 - t) x0 + t eps`` with ``t in [t_min, t_max]``; the VE level is
    ``sigma = t / (1 - t)``. ``shift`` is the SD3/Flux time shift (Esser et al. 2024):
    time-uniform schedules are uniform in ``tau`` with ``t = shift tau / (1 + (shift - 1) tau)``;
    the network always receives its own ``t`` (times ``time_scale``, e.g. 1000 for diffusers'
    SD3 transformer).
    """
    if not 0 < t_min < t_max < 1:
        raise ValueError(f"need 0 < t_min < t_max < 1, got t_min={t_min}, t_max={t_max}")
    if not shift > 0:
        raise ValueError(f"shift must be positive, got {shift}")

    def fn(x: Tensor, sigma: Tensor, *cond: Any) -> Tensor:
        s = _bcast(sigma, x)
        t = sigma / (1 + sigma)
        x_t = x / (1 + s)
        v = _call(net, x_t, (t * time_scale).to(x.dtype), cond)
        return x_t - _bcast(t, x) * v

    def sigma_to_tau(sigma: Tensor) -> Tensor:
        t = sigma / (1 + sigma)
        return t / (shift - (shift - 1) * t)

    def tau_to_sigma(tau: Tensor) -> Tensor:
        t = shift * tau / (1 + (shift - 1) * tau)
        return t / (1 - t)

    time = TimeMap(sigma_to_tau, tau_to_sigma, name=f"flow-tau(shift={shift:g})")
    model = Denoiser(fn, t_min / (1 - t_min), t_max / (1 - t_max), sigma_data, time=time, name=name)
    model.timesteps = "continuous"  # type: ignore[attr-defined]
    return model


def _pair(cond: Any, uncond: Any) -> Any:
    """Stack a batch of conditions with the unconditional one: ``[cond; uncond]``."""
    if isinstance(cond, Tensor):
        u = torch.as_tensor(uncond, dtype=cond.dtype, device=cond.device)
        return torch.cat([cond, u.expand(cond.shape)])
    if isinstance(cond, Mapping):
        if not isinstance(uncond, Mapping) or set(uncond) != set(cond):
            raise TypeError("with a dict condition, the unconditional value must be a dict with the same keys")
        return {k: _pair(cond[k], uncond[k]) for k in cond}
    if isinstance(cond, tuple):
        if not isinstance(uncond, tuple) or len(uncond) != len(cond):
            raise TypeError("with a tuple condition, the unconditional value must be a tuple of the same length")
        return tuple(_pair(c, u) for c, u in zip(cond, uncond))
    raise TypeError(f"conditions must be tensors, or tuples or dicts of tensors, got {type(cond).__name__}")


def guided(model: Denoiser, scale: float | None, uncond: Any) -> Denoiser:
    """Classifier-free guidance ``D_u + w * (D_c - D_u)``, one batched model call (1 NFE).

    ``uncond`` is the null condition (e.g. the "no class" label or the empty prompt's
    embedding), broadcast to the batch's condition shape. The result must be called with a
    condition. With ``scale=None`` the scale comes with each sample's condition, as the dict
    ``{"cond": condition, "guidance": w[B]}`` (:func:`with_guidance`), so one batch, and one
    set of teacher pairs, can span several scales; ``model.per_sample_guidance`` says which
    (what ``LearnConfig(guidance=(lo, hi))`` needs).
    """
    fixed = None if scale is None else float(scale)

    def fn(x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
        if cond is None:
            raise ValueError("classifier-free guidance needs a condition: pass cond=...")
        if fixed is None:
            if not (isinstance(cond, Mapping) and set(cond) == {"cond", "guidance"}):
                raise ValueError("a model guided with scale=None takes cond={'cond': condition, 'guidance': w[B]} "
                                 "(s4s.models.with_guidance)")
            cond, w = cond["cond"], _bcast(torch.as_tensor(cond["guidance"]).to(x), x)
        else:
            w = fixed
        out = model(torch.cat([x, x]), torch.cat([sigma, sigma]), _pair(cond, uncond))
        d_cond, d_uncond = out.chunk(2)
        return d_uncond + w * (d_cond - d_uncond)

    out = Denoiser(
        fn, model.sigma_min, model.sigma_max, model.sigma_data, time=model.time,
        name=f"{model.name}+cfg{'(per sample)' if fixed is None else f'{fixed:g}'}",
    )
    out.per_sample_guidance = fixed is None  # type: ignore[attr-defined]
    return carry(model, out, ("timesteps",))  # what the network is fed; the rest is the caller's to set


def guidance_scale_or_range(guidance: Any) -> float | None:
    """A host's guidance setting as :func:`guided`'s ``scale``: one number, or ``None`` for a
    range ``(lo, hi)`` (``0 < lo < hi``), whose scale then comes with each sample's condition
    (what ``LearnConfig(guidance=(lo, hi))`` learns from)."""
    if isinstance(guidance, (tuple, list)):
        if len(guidance) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in guidance) \
                or not 0 < guidance[0] < guidance[1]:
            raise ValueError(f"a guidance range must be (lo, hi) with 0 < lo < hi, got {guidance!r}")
        return None
    return float(guidance)


def with_guidance(cond: Any, guidance: Tensor | float, rows: int | None = None) -> dict[str, Any]:
    """The condition of a model guided with ``scale=None``: ``cond`` (``[B, ...]``, or a tuple
    or dict of such) with the scale of each sample (``guidance``: ``[B]``, or one number for
    all ``rows``)."""
    from . import conds

    n = conds.rows(cond) if rows is None else rows
    w = torch.as_tensor(guidance, dtype=torch.float64)
    if w.dim() == 0:
        w = w.expand(n).clone()
    if w.shape != (n,):
        raise ValueError(f"guidance must be one number or one per sample ({n}), got shape {tuple(w.shape)}")
    return {"cond": cond, "guidance": w}


CARRIED = ("sample_shape", "conditions", "decode", "host", "timesteps", "per_sample_guidance")
"""Attributes an integration sets on a model that a view of it keeps."""


def carry(source: Denoiser, view: Denoiser, names: Sequence[str] = CARRIED) -> Denoiser:
    """``view`` with ``source``'s :data:`CARRIED` attributes (those it has); returns ``view``."""
    for name in names:
        if hasattr(source, name):
            setattr(view, name, getattr(source, name))
    return view


def strength_level(model: Denoiser, strength: float) -> float:
    """The noise level where image-to-image with ``strength`` starts: ``strength`` of the way
    from ``sigma_min`` to ``sigma_max`` in the model's own time (so a time-uniform grid's
    levels; 1 is ``sigma_max``). A 1000-step VP model starts at ``t = 999 strength``, as
    diffusers' img2img pipelines do up to their spacing; a flow model at the shifted time."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength!r}")
    lo, hi = (model.time.sigma_to_t(torch.tensor(v, dtype=torch.float64)) for v in (model.sigma_min, model.sigma_max))
    return float(model.time.t_to_sigma(lo + float(strength) * (hi - lo)))


def partial_denoising(model: Denoiser, strength: float) -> Denoiser:
    """``model`` seen from where image-to-image with ``strength`` starts: the same function with
    ``sigma_max = strength_level(model, strength)``, so grids, teachers and learned solvers start
    there. ``model.strength`` records it (and ``model.host["strength"]`` when there is a host)."""
    if strength == 1:
        return model
    top = strength_level(model, strength)
    view = Denoiser(model, model.sigma_min, top, model.sigma_data, time=model.time,
                    name=f"{model.name}@strength{strength:g}")
    carry(model, view)
    view.strength = float(strength)  # type: ignore[attr-defined]
    if isinstance(getattr(model, "host", None), dict):
        view.host = {**model.host, "strength": float(strength)}  # type: ignore[attr-defined]
    return view
