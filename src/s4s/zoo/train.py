"""Training recipes for the zoo (``s4s zoo train NAME``): fixed seed, minutes on 2 CPU cores.

Each recipe returns the per-step losses; the same seed gives the same losses on the same
machine and thread count.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import SIGMA_DATA, digits_split, load_digits
from .neural import NULL_LABEL, WEIGHTS, edm_precond, save_module
from .nets import Classifier, ClassifierConfig, UNet, UNetConfig

__all__ = ["Recipe", "RECIPES", "train"]

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Tensor, Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class Recipe:
    steps: int
    batch: int = 256
    lr: float = 2e-3
    ema: float = 0.999


def _fit(net: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, recipe: Recipe, seed: int,
         steps: int | None = None, progress: Callable[[int, float], None] | None = None) -> tuple[nn.Module, list[float]]:
    """Adam with linear warm-up and cosine decay; returns the EMA network and the losses."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    steps = recipe.steps if steps is None else steps
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    ema = copy.deepcopy(net).requires_grad_(False)
    losses: list[float] = []
    net.train()
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (recipe.batch,), generator=g)
        loss = loss_fn(net, x[idx], y[idx], g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            decay = min(recipe.ema, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - decay)
            for be, b in zip(ema.buffers(), net.buffers()):
                be.copy_(b)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, losses[-1])
    ema.eval()
    return ema, losses


def _edm_loss(net: nn.Module, x0: Tensor, label: Tensor, g: torch.Generator) -> Tensor:
    """EDM's loss (Karras et al. 2022, eq. 8 with Table 1's P_mean, P_std and weighting)."""
    b = x0.shape[0]
    sigma = torch.exp(-1.2 + 1.2 * torch.randn(b, generator=g))
    drop = torch.rand(b, generator=g) < 0.1
    label = torch.where(drop, torch.full_like(label, NULL_LABEL), label)
    n = torch.randn(x0.shape, generator=g)
    d = edm_precond(net, SIGMA_DATA)(x0 + sigma.reshape(-1, 1, 1, 1) * n, sigma, label)
    weight = (sigma**2 + SIGMA_DATA**2) / (sigma * SIGMA_DATA) ** 2
    return (weight.reshape(-1, 1, 1, 1) * (d - x0) ** 2).mean()


def _flow_loss(net: nn.Module, x0: Tensor, label: Tensor, g: torch.Generator) -> Tensor:
    """Conditional flow matching (Lipman et al. 2023) on the straight path, t ~ U(0, 1)."""
    t = torch.rand(x0.shape[0], generator=g)
    eps = torch.randn(x0.shape, generator=g)
    tt = t.reshape(-1, 1, 1, 1)
    return F.mse_loss(net((1 - tt) * x0 + tt * eps, t), eps - x0)


def _classifier_loss(net: nn.Module, x: Tensor, label: Tensor, g: torch.Generator) -> Tensor:
    # light augmentation: small noise and one-pixel shifts, so samples a little off the data still classify
    x = x + 0.1 * torch.randn(x.shape, generator=g)
    shift = torch.randint(-1, 2, (2,), generator=g).tolist()
    x = torch.roll(x, shifts=shift, dims=(2, 3))
    return F.cross_entropy(net(x), label)


def _ddpm_unet():  # type: ignore[no-untyped-def]
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )


def _ddpm_loss(alphas_cumprod: Tensor) -> LossFn:
    def loss(net: nn.Module, x0: Tensor, label: Tensor, g: torch.Generator) -> Tensor:
        t = torch.randint(0, alphas_cumprod.numel(), (x0.shape[0],), generator=g)
        ac = alphas_cumprod[t].reshape(-1, 1, 1, 1).float()
        eps = torch.randn(x0.shape, generator=g)
        return F.mse_loss(net(ac.sqrt() * x0 + (1 - ac).sqrt() * eps, t).sample, eps)

    return loss


RECIPES: dict[str, Recipe] = {
    "digits": Recipe(steps=4000),
    "digits-flow": Recipe(steps=4000),
    "digits-ddpm": Recipe(steps=1500, batch=128, lr=1e-3),
    "classifier": Recipe(steps=1500, batch=128, lr=1e-3, ema=0.99),
    "digits-sd3": Recipe(steps=3000, batch=128, lr=1e-3),
}
LATENT_VAE = Recipe(steps=1500, batch=128, lr=1e-3, ema=0.99)
"""The VAE of ``digits-sd3`` (trained before its transformer)."""


def train(name: str, out: Path | None = None, seed: int = 0, steps: int | None = None,
          progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train zoo model ``name`` and write its weights under ``out`` (the package's weights by default)."""
    if name not in RECIPES:
        raise ValueError(f"no training recipe for {name!r}; choose one of {sorted(RECIPES)}")
    recipe, out = RECIPES[name], Path(out or WEIGHTS)
    start = time.perf_counter()
    torch.manual_seed(seed)  # network initialisation
    if name == "classifier":
        (x, y), (xt, yt) = digits_split()
        net, losses = _fit(Classifier(ClassifierConfig()), _classifier_loss, x, y, recipe, seed, steps, progress)
        with torch.no_grad():
            acc = float((net(xt).argmax(1) == yt).float().mean())
        save_module(net, out / "classifier.safetensors", "classifier", ClassifierConfig().to_dict(),
                    seed=seed, steps=len(losses), held_out_accuracy=acc)
        log.info("classifier: held-out accuracy %.4f", acc)
    elif name == "digits-sd3":
        from .latent import train_digits_sd3

        losses = train_digits_sd3(out, seed, _fit, LATENT_VAE, recipe, steps, progress)
    elif name == "digits-ddpm":
        from diffusers import DDPMPipeline, DDPMScheduler

        x, y = load_digits()
        scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
        net, losses = _fit(_ddpm_unet(), _ddpm_loss(scheduler.alphas_cumprod), x, y, recipe, seed, steps, progress)
        DDPMPipeline(unet=net, scheduler=scheduler).save_pretrained(out / "digits-ddpm", safe_serialization=True)
    else:
        x, y = load_digits()
        conditional = name == "digits"
        config = UNetConfig(channels=32, num_classes=10 if conditional else 0)
        loss_fn = _edm_loss if conditional else _flow_loss
        net, losses = _fit(UNet(config), loss_fn, x, y, recipe, seed, steps, progress)
        kind = "edm-unet" if conditional else "flow-unet"
        save_module(net, out / f"{name}.safetensors", kind, config.to_dict(), seed=seed, steps=len(losses))
    log.info("%s: %d steps in %.0f s, final loss %.4f", name, len(losses), time.perf_counter() - start,
             sum(losses[-100:]) / min(100, len(losses)))
    return losses
