"""Small networks for the digits zoo: a conditional U-Net for 8x8 images and a classifier.

Plain PyTorch, no pickles: weights travel as safetensors with a JSON config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNetConfig", "UNet", "ClassifierConfig", "Classifier"]


@dataclass(frozen=True)
class UNetConfig:
    channels: int = 48
    emb: int = 128
    num_classes: int = 0  # 0: unconditional; else labels 0..K-1 and K = "no label"
    in_channels: int = 1

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _fourier(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of a scalar per sample: ``t[B] -> [B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None] * 100.0
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(8, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.proj = nn.Linear(emb, 2 * c_out)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.proj(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class UNet(nn.Module):
    """A two-level U-Net for ``[B, 1, 8, 8]`` inputs, conditioned on a scalar ``t[B]`` and a label.

    ``forward(x, t, label=None)``; ``label`` is ``[B]`` ints in ``0..num_classes`` where
    ``num_classes`` means "no label" (classifier-free guidance's null condition).
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        c, e = config.channels, config.emb
        self.time = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.label = nn.Embedding(config.num_classes + 1, e) if config.num_classes else None
        self.conv_in = nn.Conv2d(config.in_channels, c, 3, padding=1)
        self.enc1 = _ResBlock(c, c, e)
        self.down = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.enc2 = _ResBlock(2 * c, 2 * c, e)
        self.mid = _ResBlock(2 * c, 2 * c, e)
        self.dec2 = _ResBlock(4 * c, 2 * c, e)
        self.up = nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1)
        self.dec1 = _ResBlock(2 * c, c, e)
        self.norm_out = nn.GroupNorm(8, c)
        self.conv_out = nn.Conv2d(c, config.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, t: Tensor, label: Tensor | None = None) -> Tensor:
        emb = self.time(_fourier(t, self.config.emb))
        if self.label is not None:
            if label is None:
                label = torch.full((x.shape[0],), self.config.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self.label(label.long())
        emb = F.silu(emb)
        h1 = self.enc1(self.conv_in(x), emb)
        h2 = self.enc2(self.down(h1), emb)
        h = self.mid(h2, emb)
        h = self.dec2(torch.cat([h, h2], dim=1), emb)
        h = self.dec1(torch.cat([self.up(h), h1], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


@dataclass(frozen=True)
class ClassifierConfig:
    channels: int = 32
    features: int = 128
    num_classes: int = 10

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Classifier(nn.Module):
    """A small CNN for 8x8 digits in ``[-1, 1]``; ``features(x)`` gives the FD-digits space."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * c * 4, config.features), nn.SiLU(),
        )
        self.head = nn.Linear(config.features, config.num_classes)
        self.dropout = nn.Dropout(0.2)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x.reshape(-1, 1, 8, 8))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.features(x)))
