"""Analytic models with exact denoisers: a Gaussian and a Gaussian mixture (diagonal covariances).

For data ``x0 ~ N(mu, diag(v))`` the noisy marginal is ``N(mu, diag(v + sigma^2))`` and
``D(x, sigma) = mu + v / (v + sigma^2) (x - mu)``. The probability-flow ODE then has the
closed-form solution ``x(s) = mu + (x(s0) - mu) sqrt((v + s^2) / (v + s0^2))``.
For a mixture, ``D`` is the posterior-weighted sum of the components' denoisers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..frame import Denoiser

__all__ = ["GaussianModel", "GaussianMixtureModel", "gaussian", "gaussian_mixture"]


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def _col(sigma: Tensor) -> Tensor:
    return sigma.reshape(-1, 1)


class GaussianModel(Denoiser):
    """``N(mean, diag(var))`` on data of shape ``[*shape]`` (flattened to ``dim`` inside)."""

    def __init__(self, mean: Tensor, var: Tensor, sigma_min: float = 0.002, sigma_max: float = 80.0) -> None:
        self.mean = mean.to(torch.float64).flatten()
        self.var = var.to(torch.float64).flatten()
        if self.mean.shape != self.var.shape or not bool((self.var > 0).all()):
            raise ValueError("mean and var must have the same size and var must be positive")
        super().__init__(self._denoise, sigma_min, sigma_max, sigma_data=float(self.var.mean().sqrt()), name="gaussian")

    @property
    def dim(self) -> int:
        return self.mean.numel()

    def _denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        mu, v = self.mean.to(x), self.var.to(x)
        xf = _flat(x)
        return (mu + v / (v + _col(sigma) ** 2) * (xf - mu)).reshape(x.shape)

    def ode_solution(self, x: Tensor, sigma_from: float, sigma_to: float) -> Tensor:
        """The exact probability-flow ODE map ``x(sigma_from) -> x(sigma_to)``."""
        mu, v = self.mean.to(x), self.var.to(x)
        scale = torch.sqrt((v + sigma_to**2) / (v + sigma_from**2))
        return (mu + (_flat(x) - mu) * scale).reshape(x.shape)

    def sample_data(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        return self.mean + z * self.var.sqrt()


class GaussianMixtureModel(Denoiser):
    """A mixture of ``K`` diagonal Gaussians in ``dim`` dimensions with exact denoiser and density."""

    def __init__(self, weights: Tensor, means: Tensor, vars: Tensor, sigma_min: float = 0.002, sigma_max: float = 80.0) -> None:
        self.weights = weights.to(torch.float64)
        self.means = means.to(torch.float64)
        self.vars = vars.to(torch.float64)
        k = self.weights.numel()
        if self.means.dim() != 2 or self.means.shape[0] != k or self.vars.shape != self.means.shape:
            raise ValueError("need weights [K], means [K, dim] and vars [K, dim]")
        if not bool((self.weights > 0).all()) or not bool((self.vars > 0).all()):
            raise ValueError("mixture weights and variances must be positive")
        self.weights = self.weights / self.weights.sum()
        spread = float((self.means.pow(2).mean() + self.vars.mean()).sqrt())
        super().__init__(self._denoise, sigma_min, sigma_max, sigma_data=spread, name="gmm")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _log_resp(self, xf: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """Per-component log-density terms of the noisy marginal: ``[B, K]``, and total var ``[B, K, dim]``."""
        v = self.vars.to(xf) + _col(sigma).unsqueeze(-1) ** 2  # [B, K, dim]
        diff = xf.unsqueeze(1) - self.means.to(xf)  # [B, K, dim]
        logp = -0.5 * (diff**2 / v + torch.log(2 * math.pi * v)).sum(-1) + torch.log(self.weights.to(xf))
        return logp, v

    def _denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        xf = _flat(x)
        logp, v = self._log_resp(xf, sigma)
        resp = torch.softmax(logp, dim=1).unsqueeze(-1)  # [B, K, 1]
        mu, var = self.means.to(xf), self.vars.to(xf)
        comp = mu + var / v * (xf.unsqueeze(1) - mu)  # [B, K, dim]
        return (resp * comp).sum(1).reshape(x.shape)

    def log_prob(self, x: Tensor, sigma: float = 0.0) -> Tensor:
        """Exact log-density of the data (``sigma=0``) or of the noisy marginal, ``[B]``."""
        xf = _flat(x)
        logp, _ = self._log_resp(xf, torch.full((xf.shape[0],), float(sigma), dtype=xf.dtype))
        return torch.logsumexp(logp, dim=1)

    def sample_data(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        return self.means[idx] + z * self.vars[idx].sqrt()


def gaussian(dim: int = 2, seed: int = 0, sigma_min: float = 0.002, sigma_max: float = 80.0) -> GaussianModel:
    """A Gaussian with random mean and per-coordinate variances in ``[0.25, 1]`` (fixed by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(dim, generator=g, dtype=torch.float64)
    var = 0.25 + 0.75 * torch.rand(dim, generator=g, dtype=torch.float64)
    return GaussianModel(mean, var, sigma_min, sigma_max)


def gaussian_mixture(
    dim: int = 2, components: int = 8, seed: int = 0, sigma_min: float = 0.002, sigma_max: float = 80.0
) -> GaussianMixtureModel:
    """Well-separated narrow components (std 0.05-0.2) with means ~ N(0, I) * 2: a hard, curved flow."""
    g = torch.Generator().manual_seed(seed)
    means = 2 * torch.randn(components, dim, generator=g, dtype=torch.float64)
    std = 0.05 + 0.15 * torch.rand(components, dim, generator=g, dtype=torch.float64)
    weights = 0.5 + torch.rand(components, generator=g, dtype=torch.float64)
    return GaussianMixtureModel(weights, means, std**2, sigma_min, sigma_max)
