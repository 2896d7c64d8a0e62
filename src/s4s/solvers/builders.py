"""Hand-designed solvers as builders: ``grid -> Solver`` table.

Every builder computes its coefficients in float64 with differentiable torch operations, so
a learner can move the grid and re-derive them. Formulas are written in the VE frame
(``x = x0 + sigma n``) with ``lambda = -log sigma`` and ``h_n = lambda_{n+1} - lambda_n``;
the exact step is ``x(s') = (s'/s) x(s) + s' int e^lambda D dlambda``.

A step onto ``sigma = 0`` returns the denoised value (the exact limit of every method here,
and what diffusers does with ``final_sigmas_type="zero"``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..schedules import validate_grid
from .table import Solver

__all__ = ["ddim", "heun", "dpmpp", "ipndm", "deis", "unipc"]

Form = Tensor  # a row over [x_0..x_{N-1}, D_0..D_{N-1}]


class _Forms:
    """Unit linear forms: ``x(j)`` and ``d(j)`` select state ``j`` and denoised value ``j``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._eye = torch.eye(2 * n, dtype=torch.float64)

    def x(self, j: int) -> Form:
        return self._eye[j]

    def d(self, j: int) -> Form:
        return self._eye[self.n + j]

    def eps(self, j: int, sigma: Tensor) -> Form:
        """``(x_j - D_j) / sigma_j``: the ODE's derivative ``dx/dsigma`` at state ``j``."""
        return (self.x(j) - self.d(j)) / sigma


def _table(rows: list[Form], sigmas: Tensor, model_sigmas: Tensor, name: str, **meta: object) -> Solver:
    n = len(rows)
    m = torch.stack(rows)
    return Solver(sigmas=sigmas, model_sigmas=model_sigmas, a=m[:, :n], b=m[:, n:], name=name, meta=dict(meta))


def _check_order(name: str, order: int, max_order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, int):
        raise TypeError(f"{name}: order must be an int, got {type(order).__name__}")
    if not 1 <= order <= max_order:
        raise ValueError(f"{name}: order must be between 1 and {max_order}, got {order}")
    return order


def _step_orders(steps: int, order: int, lower_order_final: bool) -> list[int]:
    """Warm-up (order grows by one per step) and optionally lower orders at the end."""
    return [min(order, n + 1, steps - n if lower_order_final else order) for n in range(steps)]


def _multistep(
    grid: Tensor,
    orders: list[int],
    step: Callable[[_Forms, Tensor, int, int], Form],
    name: str,
    **meta: object,
) -> Solver:
    """One evaluation per grid point but the last; ``step(forms, grid, n, p)`` gives x_{n+1}."""
    n_steps = grid.numel() - 1
    forms = _Forms(n_steps)
    rows = [forms.d(n) if n + 1 == n_steps and _ends_at_zero(grid) else step(forms, grid, n, orders[n]) for n in range(n_steps)]
    return _table(rows, grid, grid[:-1], name, **meta)


def _ends_at_zero(grid: Tensor) -> bool:
    return float(grid.detach()[-1]) == 0


def _lam(grid: Tensor) -> Tensor:
    return -torch.log(grid)


def ddim(grid: Tensor) -> Solver:
    """DDIM (Song et al. 2021) = DPM-Solver++(1) = Euler in sigma: ``x' = r x + (1 - r) D``."""
    grid = validate_grid(grid)

    def step(f: _Forms, g: Tensor, n: int, p: int) -> Form:
        r = g[n + 1] / g[n]
        return r * f.x(n) + (1 - r) * f.d(n)

    return _multistep(grid, [1] * (grid.numel() - 1), step, "ddim", order=1)


def dpmpp(grid: Tensor, order: int = 2, lower_order_final: bool = False) -> Solver:
    """Multistep DPM-Solver++ (Lu et al. 2022, arXiv 2211.01095), data prediction.

    2M is the "midpoint" form ``x' = r x + (1-r)(D_0 + (D_0 - D_1) / (2 r_0))``,
    ``r = e^{-h}``, ``r_0 = h_{n-1} / h_n``; 3M adds the second divided difference as in
    diffusers' ``multistep_dpm_solver_third_order_update``.
    """
    grid = validate_grid(grid)
    _check_order("dpmpp", order, 3)
    lam = _lam(grid)

    def step(f: _Forms, g: Tensor, n: int, p: int) -> Form:
        h = lam[n + 1] - lam[n]
        r = torch.exp(-h)
        row = r * f.x(n) + (1 - r) * f.d(n)
        if p == 2:
            r0 = (lam[n] - lam[n - 1]) / h
            row = row + (1 - r) * 0.5 * (f.d(n) - f.d(n - 1)) / r0
        elif p == 3:
            r0, r1 = (lam[n] - lam[n - 1]) / h, (lam[n - 1] - lam[n - 2]) / h
            d1_0 = (f.d(n) - f.d(n - 1)) / r0
            d1_1 = (f.d(n - 1) - f.d(n - 2)) / r1
            d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            row = row + ((r - 1) / h + 1) * d1 - ((r - 1 + h) / h**2 - 0.5) * d2
        return row

    orders = _step_orders(grid.numel() - 1, order, lower_order_final)
    return _multistep(grid, orders, step, f"dpmpp_{order}m", order=order, lower_order_final=lower_order_final)


_ADAMS_BASHFORTH = {
    1: (1.0,),
    2: (3 / 2, -1 / 2),
    3: (23 / 12, -16 / 12, 5 / 12),
    4: (55 / 24, -59 / 24, 37 / 24, -9 / 24),
}


def ipndm(grid: Tensor, order: int = 4) -> Solver:
    """Improved PNDM (Zhang & Chen 2023, DEIS paper; the form used by GITS/AMED).

    Adams-Bashforth with fixed coefficients on ``d = (x - D) / sigma`` in the sigma variable:
    ``x' = x + (s' - s) sum_i c_i d_{n-i}``, lower orders while history builds up.
    """
    grid = validate_grid(grid)
    _check_order("ipndm", order, 4)

    def step(f: _Forms, g: Tensor, n: int, p: int) -> Form:
        slope = sum(c * f.eps(n - i, g[n - i]) for i, c in enumerate(_ADAMS_BASHFORTH[p]))
        return f.x(n) + (g[n + 1] - g[n]) * slope

    orders = _step_orders(grid.numel() - 1, order, False)
    return _multistep(grid, orders, step, "ipndm", order=order)


_GAUSS_LEGENDRE = tuple(torch.tensor(v, dtype=torch.float64) for v in np.polynomial.legendre.leggauss(24))


def _lagrange_integrals(nodes: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """``int_lo^hi L_i(u) e^u du`` for the Lagrange basis on ``nodes`` (Gauss-Legendre, 24 points)."""
    z, w = _GAUSS_LEGENDRE
    u = 0.5 * (hi - lo) * z + 0.5 * (hi + lo)
    weights = 0.5 * (hi - lo) * w * torch.exp(u)
    out = []
    for i in range(nodes.numel()):
        basis = torch.ones_like(u)
        for j in range(nodes.numel()):
            if j != i:
                basis = basis * (u - nodes[j]) / (nodes[i] - nodes[j])
        out.append((basis * weights).sum())
    return torch.stack(out)


def deis(grid: Tensor, order: int = 3, lower_order_final: bool = False) -> Solver:
    """DEIS tAB (Zhang & Chen 2023) in diffusers' "logrho" form.

    ``dx/dsigma = eps`` with ``eps`` interpolated by a polynomial in ``log sigma`` through
    the last ``p`` evaluations and integrated exactly over the step:
    ``x' = x + sum_i (int_s^{s'} L_i(log sigma) dsigma) eps_{n-i}``.
    """
    grid = validate_grid(grid)
    _check_order("deis", order, 3)
    logs = torch.log(grid[:-1]) if _ends_at_zero(grid) else torch.log(grid)

    def step(f: _Forms, g: Tensor, n: int, p: int) -> Form:
        idx = list(range(n, n - p, -1))
        coef = _lagrange_integrals(logs[idx], logs[n], logs[n + 1])
        return f.x(n) + sum(c * f.eps(j, g[j]) for c, j in zip(coef, idx))

    orders = _step_orders(grid.numel() - 1, order, lower_order_final)
    return _multistep(grid, orders, step, "deis", order=order, lower_order_final=lower_order_final)


def heun(grid: Tensor) -> Solver:
    """EDM's deterministic 2nd-order Heun sampler (Karras et al. 2022, Algorithm 1, no churn).

    Two evaluations per step (at ``x_n`` and at the Euler predictor); a step onto
    ``sigma = 0`` is a single Euler step.
    """
    grid = validate_grid(grid)
    n_steps = grid.numel() - 1
    n_evals = 2 * n_steps - int(_ends_at_zero(grid))
    f = _Forms(n_evals)
    rows: list[Form] = []
    states, levels = [grid[0]], []
    k = 0
    for n in range(n_steps):
        s, s1 = grid[n], grid[n + 1]
        if n + 1 == n_steps and _ends_at_zero(grid):
            rows.append(f.d(k))
            states.append(s1)
            levels.append(s)
            break
        rows.append(s1 / s * f.x(k) + (1 - s1 / s) * f.d(k))  # Euler predictor
        rows.append(f.x(k) + 0.5 * (s1 - s) * (f.eps(k, s) + f.eps(k + 1, s1)))  # trapezoid
        states += [s1, s1]
        levels += [s, s1]
        k += 2
    return _table(rows, torch.stack(states), torch.stack(levels), "heun", order=2)


def unipc(grid: Tensor, order: int = 3, variant: str = "bh2", corrector: bool = True, lower_order_final: bool = False) -> Solver:
    """UniPC (Zhao et al. 2023, arXiv 2302.04867): UniP-p predictor with the UniC corrector.

    Data prediction with ``B(h) = h`` (``"bh1"``) or ``e^h - 1`` (``"bh2"``), as in diffusers'
    ``UniPCMultistepScheduler``. The corrector reuses ``D(x_pred)``, so it costs no evaluation:
    the corrected state is a linear form the next predictor starts from.
    """
    grid = validate_grid(grid)
    _check_order("unipc", order, 3)
    if variant not in ("bh1", "bh2"):
        raise ValueError(f"unipc: variant must be 'bh1' or 'bh2', got {variant!r}")
    n_steps = grid.numel() - 1
    lam = _lam(grid)
    f = _Forms(n_steps)
    orders = _step_orders(n_steps, order, lower_order_final)

    def coefficients(n: int, p: int) -> tuple[Tensor, Tensor, list[Form], Tensor, Tensor]:
        """Shared by UniP and UniC for the step lambda_n -> lambda_{n+1} with order p."""
        h = lam[n + 1] - lam[n]
        hh = -h
        rks = [(lam[n - i] - lam[n]) / h for i in range(1, p)]
        d1s = [(f.d(n - i) - f.d(n)) / rk for i, rk in zip(range(1, p), rks)]
        rks_t = torch.stack(rks + [torch.ones((), dtype=torch.float64)])
        b_h = hh if variant == "bh1" else torch.expm1(hh)
        h_phi_k = torch.expm1(hh) / hh - 1
        factorial = 1
        rhs = []
        for i in range(1, p + 1):
            rhs.append(h_phi_k * factorial / b_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        big_r = torch.stack([rks_t ** (i - 1) for i in range(1, p + 1)])
        return torch.exp(-h), b_h, d1s, big_r, torch.stack(rhs)

    rows: list[Form] = []
    state = f.x(0)  # linear form of the (corrected) state at grid point n
    for n in range(n_steps):
        if n + 1 == n_steps and _ends_at_zero(grid):
            rows.append(f.d(n))
            break
        p = orders[n]
        r, b_h, d1s, big_r, rhs = coefficients(n, p)
        pred = torch.zeros(2 * n_steps, dtype=torch.float64)
        if p == 2:
            pred = 0.5 * d1s[0]
        elif p == 3:
            pred = sum(c * d for c, d in zip(torch.linalg.solve(big_r[:-1, :-1], rhs[:-1]), d1s))
        rows.append(r * state + (1 - r) * f.d(n) - b_h * pred)
        if corrector and n + 1 < n_steps:
            rhos_c = torch.full((1,), 0.5, dtype=torch.float64) if p == 1 else torch.linalg.solve(big_r, rhs)
            corr = sum((c * d for c, d in zip(rhos_c[:-1], d1s)), rhos_c[-1] * (f.d(n + 1) - f.d(n)))
            # UniC starts from the same point as UniP, so the corrected state is the evaluated
            # prediction plus a combination of denoised values: the table stays banded.
            state = f.x(n + 1) - b_h * (corr - pred)
        else:
            state = f.x(n + 1)
    return _table(rows, grid, grid[:-1], "unipc", order=order, variant=variant, corrector=corrector,
                  lower_order_final=lower_order_final)
