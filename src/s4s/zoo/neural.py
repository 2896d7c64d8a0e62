"""The neural zoo: trained digits models, stored as safetensors (no pickle) inside the package.

* ``digits``: EDM-preconditioned class-conditional U-Net (label dropout, so it also samples
  unconditionally and with classifier-free guidance). Karras et al. 2022, Table 1.
* ``digits-flow``: rectified-flow velocity U-Net, ``x_t = (1 - t) x0 + t eps``.
* ``digits-ddpm``: diffusers ``UNet2DModel`` eps-model with a 1000-step linear-beta DDPM
  schedule, saved as a diffusers pipeline folder.
* ``classifier``: a small CNN whose features define FD-digits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .._atomic import atomic_path
from ..frame import Denoiser
from ..models import DiscreteVP, flow_denoiser, vp_denoiser
from .data import SIGMA_DATA
from .nets import Classifier, ClassifierConfig, UNet, UNetConfig

__all__ = ["WEIGHTS", "edm_precond", "save_module", "load_module", "digits", "digits_flow", "digits_ddpm",
           "classifier", "ddpm_path", "NULL_LABEL"]

WEIGHTS = Path(__file__).parent / "weights"
NULL_LABEL = 10
"""The digits model's "no label" condition (classifier-free guidance's null)."""


def edm_precond(net: nn.Module, sigma_data: float) -> Callable[..., Tensor]:
    """EDM's preconditioning: ``D = c_skip x + c_out F(c_in x, ln(sigma)/4, label)``."""

    def fn(x: Tensor, sigma: Tensor, label: Tensor | None = None) -> Tensor:
        s = sigma.reshape(-1, *([1] * (x.dim() - 1))).to(torch.float32)
        c_skip = sigma_data**2 / (s**2 + sigma_data**2)
        c_out = s * sigma_data / (s**2 + sigma_data**2).sqrt()
        c_in = 1 / (s**2 + sigma_data**2).sqrt()
        out = net((c_in * x).float(), torch.log(sigma.float()) / 4, label)
        return (c_skip * x + c_out * out).to(x.dtype)

    return fn


def save_module(module: nn.Module, path: Path, kind: str, config: dict[str, Any], **info: Any) -> None:
    """Weights as safetensors with the JSON config in its metadata; written atomically."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"kind": kind, "config": json.dumps(config), "info": json.dumps(info)})


def load_module(path: Path, kind: str) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """``(state_dict, config, info)`` from a file written by :func:`save_module`."""
    from safetensors import SafetensorError, safe_open

    if not path.exists():
        raise FileNotFoundError(f"no weights at {path}; train them with `s4s zoo train`")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: not a readable safetensors file ({e}); retrain it with `s4s zoo train`") from None
    if meta.get("kind") != kind:
        raise ValueError(f"{path} holds {meta.get('kind')!r} weights, expected {kind!r}")
    try:
        config, info = json.loads(meta["config"]), json.loads(meta.get("info", "{}"))
    except (KeyError, ValueError):
        config = info = None
    if not isinstance(config, dict) or not isinstance(info, dict):
        raise ValueError(f"{path}: its config metadata is missing or malformed")
    return tensors, config, info


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _build(net_cls: Callable[[Any], nn.Module], config_cls: Callable[..., Any], config: dict[str, Any],
           state: dict[str, Tensor], path: Path) -> nn.Module:
    """A network from its stored config and weights; a mismatch is a clear error."""
    try:
        net = net_cls(config_cls(**config))
        net.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: config and weights do not make a {net_cls.__name__}: {e}") from None
    return net


def _unet(path: Path, kind: str, device: str | torch.device = "cpu") -> tuple[UNet, dict[str, Any]]:
    state, config, info = load_module(path, kind)
    return _frozen(_build(UNet, UNetConfig, config, state, path).to(device)), info  # type: ignore[return-value]


def digits(guidance: float | None = None, path: Path | None = None, device: str | torch.device = "cpu") -> Denoiser:
    """The EDM digits model; ``fn(x, sigma, label)`` with labels 0-9, or 10 / none for unconditional.

    With ``guidance``, returns the classifier-free-guided model (call it with labels).
    """
    net, _ = _unet(path or WEIGHTS / "digits.safetensors", "edm-unet", device)
    model = Denoiser(edm_precond(net, SIGMA_DATA), 0.002, 80.0, SIGMA_DATA, name="digits")
    if guidance is None:
        return model
    from ..models import guided

    return guided(model, guidance, uncond=torch.tensor(NULL_LABEL, device=device))


def digits_flow(path: Path | None = None, device: str | torch.device = "cpu") -> Denoiser:
    """The rectified-flow digits model (velocity prediction)."""
    net, _ = _unet(path or WEIGHTS / "digits-flow.safetensors", "flow-unet", device)
    return flow_denoiser(lambda x_t, t: net(x_t.float(), t.float()).to(x_t.dtype), sigma_data=SIGMA_DATA, name="digits-flow")


def ddpm_path() -> Path:
    """The diffusers pipeline folder of ``digits-ddpm`` (``DDPMPipeline.from_pretrained(path)``)."""
    return WEIGHTS / "digits-ddpm"


def digits_ddpm(path: Path | None = None, device: str | torch.device = "cpu") -> Denoiser:
    """The diffusers DDPM digits model (eps-prediction, 1000 linear-beta steps)."""
    try:
        from diffusers import DDPMScheduler, UNet2DModel
    except ImportError as e:
        raise ImportError("digits-ddpm is a diffusers model: pip install 's4s[diffusers]'") from e
    folder = Path(path or ddpm_path())
    unet = _frozen(UNet2DModel.from_pretrained(folder / "unet", use_safetensors=True, low_cpu_mem_usage=False).to(device))
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    schedule = DiscreteVP(scheduler.alphas_cumprod)

    def net(x_t: Tensor, t: Tensor) -> Tensor:
        return unet(x_t.float(), t.float()).sample.to(x_t.dtype)

    return vp_denoiser(net, schedule, "eps", sigma_data=SIGMA_DATA, name="digits-ddpm")


def classifier(path: Path | None = None) -> Classifier:
    """The digits classifier behind FD-digits (inputs ``[B, 1, 8, 8]`` in ``[-1, 1]``)."""
    path = path or WEIGHTS / "classifier.safetensors"
    state, config, _ = load_module(path, "classifier")
    return _frozen(_build(Classifier, ClassifierConfig, config, state, path))  # type: ignore[return-value]
