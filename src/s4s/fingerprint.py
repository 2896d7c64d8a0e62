"""What a model is, as far as a teacher cache or a solver file must know: its name, noise range,
sample shape and a digest of its outputs on fixed inputs."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import Tensor

from . import conds
from .conds import Cond
from .frame import Denoiser
from .noise import seeded_noise

__all__ = ["model_probe", "fingerprint", "mismatches"]


def model_probe(model: Denoiser, shape: tuple[int, ...], cond: Cond | None = None,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> str:
    """A digest of what ``model`` returns on two fixed inputs of ``shape`` (seeded noise at the
    geometric mean of its noise range, with the first condition row when there are conditions),
    rounded to 4 significant digits: two models that share a name but not their outputs get
    different digests. Costs two model rows."""
    sigma = (model.sigma_min * model.sigma_max) ** 0.5
    x = seeded_noise([0, 1], shape, dtype=dtype, device=device) * sigma
    with torch.no_grad():
        args = () if cond is None else (conds.to_device(conds.take(cond, [0, 0]), device),)
        out = model(x, torch.full((2,), sigma, dtype=dtype, device=device), *args).double().cpu()
    text = ",".join(f"{v:.4g}" for v in out.reshape(-1).tolist())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(model: Denoiser, shape: tuple[int, ...], cond: Cond | None = None,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The record a solver file keeps of the model it was learned for (the probe's condition
    row too, when it is a small tensor, so the probe can be repeated; otherwise no probe)."""
    out = {"name": model.name, "sigma_min": model.sigma_min, "sigma_max": model.sigma_max,
           "time": model.time.name, "shape": list(shape), "probe_dtype": str(dtype).removeprefix("torch.")}
    if getattr(model, "timesteps", None) in ("integer", "continuous"):  # what the network is fed (set by the adapters)
        out["timesteps"] = model.timesteps  # type: ignore[attr-defined]
    host = getattr(model, "host", None)
    if isinstance(host, dict):  # the pipeline settings a host integration recorded (shift, resolution, ...)
        out["host"] = dict(host)
    if cond is None:
        out["probe"] = model_probe(model, shape, None, dtype, device)
    elif isinstance(cond, Tensor) and cond[:1].numel() <= 16:
        out["probe"] = model_probe(model, shape, cond[:1], dtype, device)
        out["probe_cond"] = {"values": cond[:1].cpu().tolist(), "dtype": str(cond.dtype).removeprefix("torch.")}
    return out


def mismatches(recorded: dict[str, Any], model: Denoiser, shape: tuple[int, ...],
               device: torch.device | str = "cpu") -> list[str]:
    """How ``model`` (sampling ``shape``) differs from the ``recorded`` fingerprint, one phrase
    each naming both sides; fields the record lacks (older files) are not compared."""
    cond = None
    if "probe_cond" in recorded:
        cond = torch.tensor(recorded["probe_cond"]["values"], dtype=getattr(torch, recorded["probe_cond"]["dtype"]))
    out = []
    if "name" in recorded and recorded["name"] != model.name:
        out.append(f"model {recorded['name']!r}, not {model.name!r}")
    if "sigma_min" in recorded and (float(recorded["sigma_min"]), float(recorded["sigma_max"])) != (
            float(model.sigma_min), float(model.sigma_max)):
        out.append(f"noise range [{recorded['sigma_min']:g}, {recorded['sigma_max']:g}], not "
                   f"[{model.sigma_min:g}, {model.sigma_max:g}]")
    if "shape" in recorded and tuple(recorded["shape"]) != tuple(shape):
        out.append(f"sample shape {tuple(recorded['shape'])}, not {tuple(shape)}")
    elif "probe" in recorded and recorded["probe"] != model_probe(
            model, tuple(shape), cond, getattr(torch, recorded.get("probe_dtype", "float32")), device):
        out.append("other outputs on the same inputs (another model or other weights under this name)")
    return out
