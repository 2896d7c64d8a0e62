"""One learned solver for a range of classifier-free-guidance scales.

Every learned parameter of :class:`~s4s.learn.params.SolverParams` (grid logits, decoupled
model levels, coefficient corrections) becomes a polynomial in the scale ``w``, held as its
values at ``degree + 1`` nodes (Lagrange interpolation):

    theta(w) = sum_{j=0..degree} theta_j l_j(u(w)),
    u(w) = 2 (log w - log lo) / (log hi - log lo) - 1  in [-1, 1],

with ``l_j`` the Lagrange basis at the Chebyshev points ``u_j = cos((2j + 1) pi / (2 degree + 2))``
(cubic by default), so a start with every ``theta_j`` equal is one hand-designed solver for every
scale. The values are the learned coordinates: a step of ``delta`` in each moves the solver at
any scale by at most the nodes' Lebesgue constant times ``delta`` (below 2 for degree <= 4), the
same step at the middle of the range as at its ends.
Training pairs are drawn at a few fixed scales spread evenly in ``u``
(:attr:`GuidanceRange.scales`); a batch of pairs is sampled scale by scale
(:class:`ScaledSolver`), so the model-evaluation count equals a single-scale learn's. Each
scale's distances are divided by the start solver's mean distance at that scale
(:func:`scale_weights`): errors grow with the scale, and without it the objective would
serve the largest scales at the expense of the smallest. The start (``theta_0``, the solver
at the middle of the range) is the hand-designed candidate best at the middle training
scales (:func:`middle_scores`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .._atomic import write_text_atomic
from ..solvers.table import Solver
from .params import SolverParams

__all__ = ["GuidanceRange", "GuidanceParams", "ScaledSolver", "GuidanceSolver", "load_guidance_solver", "FORMAT"]

FORMAT = "s4s-guidance-solver"
VERSION = 2  # 2: parameters as values at Chebyshev nodes (1: Legendre coefficients, still read)


@dataclass(frozen=True)
class GuidanceRange:
    """Scales ``[lo, hi]`` (``0 < lo < hi``), the polynomial ``degree`` in ``u(w)``, and how many
    training scales (``points``, evenly spaced in ``u``) the teacher pairs are spread over."""

    lo: float
    hi: float
    degree: int = 3
    points: int = 8

    def __post_init__(self) -> None:
        for name in ("lo", "hi"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"guidance {name} must be a positive number, got {v!r}")
        if not self.lo < self.hi:
            raise ValueError(f"a guidance range needs lo < hi, got [{self.lo}, {self.hi}]")
        if isinstance(self.degree, bool) or not isinstance(self.degree, int) or not 0 <= self.degree <= 4:
            raise ValueError(f"guidance degree must be an int in [0, 4], got {self.degree!r}")
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < self.degree + 1:
            raise ValueError(f"guidance points must be an int of at least degree + 1 = {self.degree + 1}, "
                             f"got {self.points!r}")

    @property
    def scales(self) -> list[float]:
        """The training scales: ``points`` values evenly spaced in ``u`` (geometric in ``w``)."""
        return [math.exp(math.log(self.lo) + (math.log(self.hi) - math.log(self.lo)) * i / (self.points - 1))
                for i in range(self.points)]

    def feature(self, w: float) -> float:
        """``u(w)`` in ``[-1, 1]``."""
        return 2 * (math.log(w) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo)) - 1

    def check(self, w: float) -> float:
        """``w`` as a float, or a ``ValueError`` naming the range when it lies outside."""
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise ValueError(f"a guidance scale must be a number, got {w!r}")
        if not self.lo * (1 - 1e-9) <= w <= self.hi * (1 + 1e-9):
            raise ValueError(f"guidance scale {w:g} is outside [{self.lo:g}, {self.hi:g}], the range this solver "
                             "was learned for: learn one for a range that holds it (LearnConfig(guidance=(lo, hi)))")
        return float(w)

    def to_dict(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi, "degree": self.degree, "points": self.points}


def _legendre(u: float, degree: int) -> list[float]:
    """``[P_1(u), ..., P_degree(u)]`` (Bonnet's recursion): the basis of version-1 files."""
    p = [1.0, u]
    for n in range(1, degree):
        p.append(((2 * n + 1) * u * p[n] - n * p[n - 1]) / (n + 1))
    return p[1:degree + 1]


def nodes(degree: int) -> list[float]:
    """The ``degree + 1`` Chebyshev points of the first kind in ``u``, ascending."""
    n = degree + 1
    return [math.cos((2 * (n - 1 - j) + 1) * math.pi / (2 * n)) for j in range(n)]


def lagrange(u: float, degree: int) -> list[float]:
    """``[l_0(u), ..., l_degree(u)]``, the Lagrange basis at :func:`nodes` (summing to 1)."""
    at = nodes(degree)
    return [math.prod((u - m) / (x - m) for i, m in enumerate(at) if i != j) for j, x in enumerate(at)]


def training_index(scales: Sequence[float] | Tensor, w: Tensor) -> Tensor:
    """For each scale in ``w`` (``[B]``), the index of the training scale (of ``scales``) it
    is; a scale that is none of them is a ``ValueError``."""
    grid = torch.as_tensor(scales, dtype=torch.float64).cpu().reshape(1, -1)
    w = torch.as_tensor(w, dtype=torch.float64).cpu().reshape(-1, 1)
    gap = (w - grid).abs()
    best = gap.argmin(1)
    if bool((gap.gather(1, best[:, None]).squeeze(1) > 1e-6 * w.squeeze(1).abs()).any()):
        raise ValueError(f"teacher pairs at guidance scales other than the training scales {grid.flatten().tolist()}")
    return best


@dataclass
class ScaledSolver:
    """Solvers at the training scales ``scales`` (``[M]``): what a guidance-range learn optimises.
    :class:`s4s.learn.pairs.Pairs` samples each pair with the solver of its scale."""

    scales: Tensor
    solvers: list[Solver]

    def index(self, w: Tensor) -> Tensor:
        """For each scale in ``w`` (``[B]``), the index of its training scale."""
        return training_index(self.scales, w)

    def detached(self) -> "ScaledSolver":
        return ScaledSolver(self.scales, [s.with_(sigmas=s.sigmas.detach(), model_sigmas=s.model_sigmas.detach(),
                                                  a=s.a.detach(), b=s.b.detach()) for s in self.solvers])


class GuidanceParams(nn.Module):
    """:class:`SolverParams` whose parameters are polynomials in the guidance scale (see the
    module docstring). ``inner`` holds the start (a template, not learned); ``node_<name>``
    (``[degree + 1, *shape]``, each row ``inner``'s value at the start) are the values at
    :func:`nodes`. ``forward()`` gives the :class:`ScaledSolver` at the range's training scales."""

    def __init__(self, inner: SolverParams, guidance: GuidanceRange) -> None:
        super().__init__()
        self.inner = inner
        self.guidance = guidance
        self.names = [n for n, _ in inner.named_parameters()]
        for n in self.names:
            p = getattr(inner, n).detach()
            self.register_parameter(f"node_{n}", nn.Parameter(p.unsqueeze(0).repeat(guidance.degree + 1,
                                                                                   *([1] * p.dim()))))
        self.register_buffer("scales", torch.tensor(guidance.scales, dtype=torch.float64))

    def solver_at(self, w: float) -> Solver:
        """The solver at scale ``w`` (differentiable in the node values)."""
        basis = lagrange(self.guidance.feature(w), self.guidance.degree)
        values = {}
        for n in self.names:
            node = getattr(self, f"node_{n}")
            values[n] = sum((lj * node[j] for j, lj in enumerate(basis)), torch.zeros_like(node[0]))
        return functional_call(self.inner, values, (), strict=False)

    def forward(self) -> ScaledSolver:
        return ScaledSolver(self.scales, [self.solver_at(float(w)) for w in self.scales])

    def solver(self) -> ScaledSolver:
        return self.forward()

    def groups(self) -> dict[str, list[nn.Parameter]]:
        """``inner``'s groups, each as its node values."""
        name_of = {id(p): n for n, p in self.inner.named_parameters()}
        return {g: [getattr(self, f"node_{name_of[id(p)]}") for p in ps] for g, ps in self.inner.groups().items()}

    def legacy_state(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """A version-1 state (``inner.<name>`` = ``theta_0``, ``slope_<name>`` = the Legendre
        coefficients ``theta_1..theta_degree``) as this parametrisation's (the same polynomial)."""
        out = {k: v for k, v in state.items() if not k.startswith("slope_")}
        for n in self.names:
            theta0, slope = state[f"inner.{n}"], state[f"slope_{n}"]
            rows = []
            for u in nodes(self.guidance.degree):
                value = theta0.clone()
                for k, pk in enumerate(_legendre(u, self.guidance.degree)):
                    value = value + pk * slope[k]
                rows.append(value)
            out[f"node_{n}"] = torch.stack(rows)
        return out

    @property
    def band(self) -> int:
        return self.inner.band


class GuidanceSolver:
    """A learned solver for every guidance scale in ``[lo, hi]``: ``at(guidance=w)`` is a plain
    :class:`Solver` for scale ``w`` (usable everywhere a solver is); :meth:`sample` samples a
    model guided with ``scale=None`` (:func:`s4s.models.guided`) at one scale. A scale outside
    the range is refused, naming it. Saved as its own file format (:meth:`save`,
    :func:`load_guidance_solver`)."""

    def __init__(self, spec: dict[str, Any], state: dict[str, Tensor], name: str = "s4s_alt",
                 meta: dict[str, Any] | None = None, legacy: bool = False) -> None:
        self.spec = dict(spec)
        self.guidance = GuidanceRange(**spec["guidance"])
        self.name, self.meta = name, dict(meta or {})
        inner = SolverParams(spec["base"], torch.tensor(spec["grid"], dtype=torch.float64), band=spec["band"],
                             decouple_bound=spec["decouple_bound"], options=spec.get("options") or {})
        self._params = GuidanceParams(inner, self.guidance)
        try:
            state = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in state.items()}
            self._params.load_state_dict(self._params.legacy_state(state) if legacy else state)
        except (RuntimeError, KeyError) as e:
            raise ValueError(f"a guidance solver's parameters do not fit its base {spec['base']!r}: {e}") from None
        self._params.requires_grad_(False)

    @classmethod
    def from_params(cls, params: GuidanceParams, grid: Tensor, name: str, meta: dict[str, Any]) -> "GuidanceSolver":
        """The solver of ``params`` (``grid``: the start grid ``params.inner`` was made from)."""
        inner = params.inner
        spec = {"base": inner.base, "grid": grid.detach().to(torch.float64).tolist(), "band": inner.band,
                "decouple_bound": inner.decouple_bound, "options": inner.options,
                "guidance": params.guidance.to_dict()}
        return cls(spec, {k: v.detach().clone() for k, v in params.state_dict().items()}, name, meta)

    @property
    def nfe(self) -> int:
        return self._params.inner.solver().nfe

    def at(self, guidance: float) -> Solver:
        """The plain solver for scale ``guidance`` (``meta["guidance"]`` records it)."""
        w = self.guidance.check(guidance)
        with torch.no_grad():
            s = self._params.solver_at(w)
        meta = {**self.meta, "guidance": w, "guidance_range": [self.guidance.lo, self.guidance.hi]}
        model = meta.get("model")
        if isinstance(model, dict) and str(model.get("name", "")).endswith("+cfg(per sample)"):
            # the model it now serves is the one guided at w (s4s.models.guided names it so)
            meta["model"] = {**model, "name": model["name"].removesuffix("(per sample)") + f"{w:g}"}
        return s.with_(sigmas=s.sigmas.detach(), model_sigmas=s.model_sigmas.detach(), a=s.a.detach(), b=s.b.detach(),
                       name=self.name, meta=meta)

    def sample(self, model: Any, noise: Tensor, cond: Any, guidance: float, **options: Any) -> Tensor:
        """Sample ``model`` (guided with ``scale=None``) at scale ``guidance``: ``cond`` is the
        plain condition of each sample (labels, prompt embeddings)."""
        from ..models import with_guidance

        solver = self.at(guidance)
        return solver.sample(model, noise, with_guidance(cond, guidance, rows=noise.shape[0]), **options)

    def to_dict(self) -> dict[str, Any]:
        state = {k: v.tolist() for k, v in self._params.state_dict().items()}
        body = {"spec": self.spec, "state": state}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return {"format": FORMAT, "version": VERSION, "name": self.name, "nfe": self.nfe, **body,
                "meta": self.meta, "sha256": digest}

    @classmethod
    def from_dict(cls, data: Any, where: str = "guidance solver") -> "GuidanceSolver":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{where}: not an s4s guidance solver (format {FORMAT!r})")
        if data.get("version") not in (1, VERSION):
            raise ValueError(f"{where}: version {data.get('version')!r} is not supported (this s4s reads 1 and {VERSION})")
        try:
            body = {"spec": data["spec"], "state": data["state"]}
        except KeyError as e:
            raise ValueError(f"{where}: missing {e}") from None
        if hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() != data.get("sha256"):
            raise ValueError(f"{where}: its numbers do not match its sha256 (edited or truncated)")
        try:
            state = {k: torch.tensor(v, dtype=torch.float64) for k, v in data["state"].items()}
            return cls(data["spec"], state, str(data.get("name", "s4s")), data.get("meta") or {},
                       legacy=data["version"] == 1)
        except (KeyError, TypeError) as e:
            raise ValueError(f"{where}: malformed ({e})") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))
        return path


def is_guidance_solver_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a readable JSON file in this format (not a one-scale solver file)."""
    from .._json import MAX_BYTES, parse_json

    p = Path(path)
    try:
        if not p.is_file() or p.stat().st_size > MAX_BYTES:
            return False
        data = parse_json(p.read_bytes(), str(p))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def load_guidance_solver(path: str | os.PathLike[str]) -> GuidanceSolver:
    """A :class:`GuidanceSolver` from a file :meth:`GuidanceSolver.save` wrote."""
    from .._json import MAX_BYTES, parse_json

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no guidance solver file at {p}")
    if p.stat().st_size > MAX_BYTES:
        raise ValueError(f"{p}: larger than {MAX_BYTES >> 20} MiB; a guidance solver file is a few kilobytes")
    return GuidanceSolver.from_dict(parse_json(p.read_bytes(), f"{p}: not a valid s4s guidance solver file"), str(p))


def guidance_pairs_cond(base: Any, n: int, guidance: GuidanceRange) -> dict[str, Any]:
    """The teacher condition of ``n`` seeds for a guidance-range learn: seed position ``i``
    gets the training scale ``scales[i % points]`` with its plain condition ``base`` (rows)."""
    from ..models import with_guidance

    scales = guidance.scales
    return with_guidance(base, torch.tensor([scales[i % len(scales)] for i in range(n)], dtype=torch.float64), rows=n)


def scale_weights(scales: Tensor, distances: Tensor, guidance: GuidanceRange) -> Any:
    """``weight(w[B]) -> [B]``: each training scale's weight, the reciprocal of the mean of
    ``distances`` (the start solver's, on pairs at ``scales``) at that scale, so the objective
    is the mean over scales of the distance relative to the start's, and a scale whose errors
    are small (low guidance) counts as much as one whose errors are large. A scale without
    pairs, or with a zero mean, gets the mean weight of the others."""
    which = training_index(guidance.scales, scales)
    means = torch.stack([distances[which == m].mean() if bool((which == m).any()) else torch.tensor(math.nan)
                         for m in range(guidance.points)]).to(torch.float64)
    table = torch.where(torch.isfinite(means) & (means > 0), 1 / means, torch.tensor(math.nan, dtype=torch.float64))
    table = torch.where(torch.isnan(table), table[~torch.isnan(table)].mean(), table)

    def weight(w: Tensor) -> Tensor:
        return table[training_index(guidance.scales, w)]

    return weight


def middle_scores(distances: dict[str, Tensor], scales: Tensor, guidance: GuidanceRange) -> dict[str, float]:
    """Each candidate's mean distance on the pairs at the range's middle training scales (the
    middle one, or the two around ``u = 0``): the start of a guidance-range learn is the
    polynomial's constant term, the solver at the middle of the range, so it is ranked there."""
    which = training_index(guidance.scales, scales)
    half = guidance.points // 2
    middle = [half] if guidance.points % 2 else [half - 1, half]
    mask = (which == middle[0]) | (which == middle[-1])
    if not bool(mask.any()):
        mask = torch.ones_like(which, dtype=torch.bool)
    return {k: float(d[mask].mean()) for k, d in distances.items()}


def scales_of(cond: Any) -> Tensor:
    """The per-pair scales of a guidance condition (``{"cond", "guidance"}``)."""
    if not (isinstance(cond, dict) and set(cond) == {"cond", "guidance"}):
        raise ValueError("a guidance-range learn needs teacher pairs whose condition is "
                         "{'cond': ..., 'guidance': w[B]} (s4s.models.with_guidance)")
    return torch.as_tensor(cond["guidance"], dtype=torch.float64)


def solver_at(solver: Solver | GuidanceSolver | str | os.PathLike[str], guidance: float | None = None) -> Solver:
    """The plain solver a host runs: ``solver`` itself (or its file), or, for a solver learned
    for a range of guidance scales (or its file), its solver at ``guidance``. A range without a
    scale, a scale for a one-scale solver, and a scale outside the range are refused, naming
    what to pass."""
    from ..io import load_solver

    if isinstance(solver, (str, os.PathLike)):
        solver = load_guidance_solver(solver) if is_guidance_solver_file(solver) else load_solver(solver)
    if isinstance(solver, GuidanceSolver):
        if guidance is None:
            raise ValueError(f"this solver was learned for guidance scales {solver.guidance.lo:g} to "
                             f"{solver.guidance.hi:g}: give the scale to sample at (the pipeline's guidance_scale, "
                             "ComfyUI's cfg)")
        return solver.at(guidance=guidance)
    if guidance is not None:
        raise ValueError("a guidance scale selects one of a solver learned for a range of scales; "
                         "this solver was learned for one")
    if not isinstance(solver, Solver):
        raise TypeError(f"expected an s4s.Solver, a GuidanceSolver or a solver file, got {type(solver).__name__}")
    return solver
