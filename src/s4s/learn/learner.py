"""``s4s.learn``: fit a few-step solver to a teacher's final samples (S4S, S4S-Alt, LD3, joint).

Method (Frankel et al., "S4S: Solving for a Diffusion Model Solver", ICML 2025):
1. teacher pairs ``(z, x_T(z))`` from an accurate solver, split into train and validation;
2. the starting point is the best hand-designed (solver, grid) pair on validation;
3. minimise ``d(student(z + zeta), teacher(z))`` over the solver's parameters (``zeta``
   confined to a ball: the relaxed objective of LD3 / S4S; radius 0 is the plain one);
4. keep the parameters with the best selection score: by default the mean distance over all
   teacher pairs, validation and training (``select="all"``), or over the validation pairs only
   (``select="val"``). The start is a candidate, so the learned solver is never worse on that
   score than the solver it started from.

Why all pairs by default: the parameters are a few dozen numbers fitted to hundreds of pairs,
and on image models the training pairs' distance followed the held-out one along whole runs,
while a fifth of 512 pairs ranked states poorly (the error sits on a few samples). A last
guard returns the start unless the learned solver beats it on the training pairs and on the
validation pairs both. When it does not, the run is learned once more from the start with
the step size ramped up over the first tenth of each phase (``retry_warmup``): Adam's first
full-size steps can throw a tuned start so far off that a phase ends worse on one split, and
the gentler second try is judged by the same guard. ``benchmarks/HISTORY.md`` ("Selection
score", "A second try") gives the held-out figures.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from .. import distributed
from .._threads import run_jobs, serialised
from ..frame import Denoiser
from ..schedules import SCHEDULES, split_zero
from ..solvers import SOLVERS, make_solver
from ..solvers.table import Solver
from ..teacher import TeacherData, TeacherSpec, generate_teacher, teacher_gap
from .budget import Cost, cost_of, counted
from .checkpoint import Checkpoint, fingerprint, load_checkpoint, save_checkpoint
from .lanes import Stopped, Track, lanes_from, run_lane
from .objectives import Distance, get_distance
from .pairs import Pairs, split_pairs
from .params import SolverParams

__all__ = ["learn", "LearnEvent", "METHODS", "CANDIDATE_SOLVERS", "CANDIDATE_SCHEDULES", "parse_plan", "parse_start",
           "plan_string", "split_pairs"]

log = logging.getLogger("s4s.learn")

METHODS = ("s4s", "s4s_alt", "ld3", "joint")
CANDIDATE_SOLVERS = ("ddim", "ipndm", "dpmpp_2m", "dpmpp_3m", "unipc", "deis")
CANDIDATE_SCHEDULES = ("karras", "logsnr", "time_uniform", "karras+zero", "logsnr+zero", "time_uniform+zero")


@dataclass(frozen=True)
class LearnEvent:
    """What a progress callback receives: the phase, the iteration and the current figures."""

    phase: str
    iteration: int
    total: int
    loss: float | None = None
    val: float | None = None  # validation distance at a check
    score: float | None = None  # selection score at a check (see ``learn(select=...)``)
    best: float | None = None  # best selection score so far (over all lanes, where lanes run side by side)
    solver: Solver | None = None  # the solver scored at a check (detached)


@dataclass
class _Phase:
    name: str
    groups: tuple[str, ...]
    iters: int
    from_start: bool = False  # begin at the starting solver, not at the best state so far
    fresh: bool = False  # also restart the minibatch stream (and relaxation shifts): retrace a run opening with it


_PARTS = {"grid": ("grid",), "coef": ("coef",), "joint": ("grid", "coef")}


def plan_string(phases: Sequence[_Phase]) -> str:
    """The plan notation of ``phases``: ``"joint:100@start,joint:500,grid:800@fresh"``."""
    part = {v: k for k, v in _PARTS.items()}
    flag = lambda p: "@fresh" if p.fresh else "@start" if p.from_start else ""  # noqa: E731
    return ",".join(f"{part[p.groups]}:{p.iters}{flag(p)}" for p in phases)


def _second_try(phases: Sequence[_Phase]) -> list[_Phase]:
    """``phases`` again from the start, minibatch stream restarted: a run of its own, appended."""
    again = [_Phase(f"{p.name}-retry", p.groups, p.iters, p.from_start, p.fresh) for p in phases]
    again[0].from_start = again[0].fresh = True
    return again


def parse_start(start: str) -> tuple[str, str]:
    """``(base, schedule)`` of a start written ``"BASE/SCHEDULE"``, e.g. ``"deis/logsnr"`` or
    ``"ipndm/time_uniform+zero"``: ``learn(base=..., schedule=...)``."""
    base, _, schedule = start.partition("/") if isinstance(start, str) else ("", "", "")
    if base not in SOLVERS or not schedule or split_zero(schedule)[0] not in SCHEDULES:
        raise ValueError(f"a start must be BASE/SCHEDULE with BASE one of {sorted(SOLVERS)} and SCHEDULE one of "
                         f"{sorted(SCHEDULES)} (optionally +zero), e.g. deis/logsnr; got {start!r}")
    return base, schedule


def parse_plan(plan: str) -> list[_Phase]:
    """Phases from a plan such as ``"grid:800,joint:400@start,coef:400"``.

    Each item is ``part:steps`` with ``part`` one of ``grid`` (grid + decoupled model-input
    levels), ``coef`` (coefficients) or ``joint`` (both); ``@start`` begins that phase at the
    starting solver instead of at the best state so far; ``@fresh`` does that and also restarts
    the minibatch stream (and the relaxation shifts), so the phase retraces, step for step, a
    run that opens with it: ``grid:800@fresh`` anywhere in a plan is ``ld3``'s run of 800
    steps. Every phase keeps only what improves the best selection score, as the built-in
    plans do."""
    if not isinstance(plan, str) or not plan.strip():
        raise ValueError(f"plan must be a non-empty string such as 'grid:800,coef:400', got {plan!r}")
    phases, counts = [], dict.fromkeys(_PARTS, 0)
    for item in plan.split(","):
        body, _, flag = item.strip().partition("@")
        part, _, steps = body.partition(":")
        part = part.strip()
        if part not in _PARTS or not steps.strip().isdigit() or int(steps) < 1 or flag not in ("", "start", "fresh"):
            raise ValueError(f"bad plan item {item.strip()!r} in {plan!r}: expected part:steps[@start|@fresh] with part one "
                             f"of {sorted(_PARTS)} and steps a positive int")
        counts[part] += 1
        phases.append(_Phase(f"{part}{counts[part]}", _PARTS[part], int(steps), from_start=flag != "",
                             fresh=flag == "fresh"))
    return phases


def _phases(method: str, iters: int, rounds: int, probes: int = 3) -> list[_Phase]:
    """Optimisation phases. S4S-Alt runs two openings from the starting solver and goes on from
    the better one:

    * joint: ``probes`` short joint phases (``iters/8`` steps each), every one from the start
      with its own minibatch order; the best on selection score continues in a joint phase of
      the remaining ``iters`` budget;
    * LD3's: ``iters`` steps on the grid and decoupled levels alone, with the minibatch stream
      restarted (``@fresh``), so it retraces ``method="ld3"`` step for step.

    Then ``rounds`` coefficient phases (``iters/4``, ``iters/8``, ...) alternate with grid phases
    from the best state so far. The best state carries over between phases, so on the selection
    score S4S-Alt is never worse than its start, nor than ``ld3`` run on the same device.

    Why probes: which basin the grid lands in is decided by the first large Adam steps and
    varies with the minibatch order; ``benchmarks/learn_table.py`` measured ``digits`` at NFE 8
    going from 0.0567 (one joint phase, 64ec202) to 0.0464 held-out RMSE. Why LD3's opening:
    at high NFE the grid alone sometimes lands in a better basin than the joint phases (the
    mixture and guided ``digits`` at NFE 8 in the table of 3a4b8dc), and the coefficient rounds
    after the joint phases gained little (``benchmarks/HISTORY.md``, "Two openings")."""
    if method == "s4s":
        return [_Phase("coef", ("coef",), iters)]
    if method == "ld3":
        return [_Phase("grid", ("grid",), iters)]
    if method == "joint":
        return [_Phase("joint", ("grid", "coef"), iters)]
    probe = max(1, iters // 8)
    phases = [_Phase(f"probe{i + 1}", ("grid", "coef"), probe, from_start=True) for i in range(probes)]
    phases.append(_Phase("joint", ("grid", "coef"), max(1, iters - probes * probe)))
    phases.append(_Phase("ld3", ("grid",), iters, from_start=True, fresh=True))
    budget = max(1, iters // 4)
    for r in range(rounds):
        phases.append(_Phase(f"coef{r + 1}", ("coef",), budget))
        if r + 1 < rounds:
            phases.append(_Phase(f"grid{r + 2}", ("grid",), max(1, budget // 2)))
        budget = max(1, budget // 2)
    return phases


@dataclass
class _Progress:
    """Steps done over all lanes, the progress callback (called under a lock, since lanes may run
    side by side) and the flag that stops the lanes when one fails."""

    total: int
    best: float  # the best selection score any lane has reported
    callback: Callable[[LearnEvent], None] | None = None
    done: int = 0  # steps taken
    reported: int = 0  # steps reported: the events' ``iteration`` (lanes side by side take and report in any order)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def advance(self) -> None:
        with self.lock:
            self.done += 1

    def report(self, phase: str, loss: float, val: float | None, score: float | None, best: float,
               solver: Solver | None) -> None:
        """Hand a step's figures to the callback, with the best score over all lanes so far."""
        with self.lock:
            self.reported += 1
            self.best = min(self.best, best)
            if self.callback is not None:
                self.callback(LearnEvent(phase, self.reported, self.total, loss, val, score, self.best, solver))


def _step_size(i: int, steps: int, warmup: float) -> float:
    """Step size factor at step ``i`` of a ``steps``-step phase: a half cosine from 1 to 0,
    times a linear ramp over the first ``warmup * steps`` steps."""
    ramp = max(1, round(warmup * steps))
    return 0.5 * (1 + math.cos(math.pi * i / steps)) * min(1.0, (i + 1) / ramp)


def _sample_shape(model: Denoiser, shape: Sequence[int] | None) -> tuple[int, ...]:
    if shape is not None:
        return tuple(int(s) for s in shape)
    from ..zoo import sample_shape

    try:
        return sample_shape(model)
    except ValueError:
        raise ValueError("give the shape of one sample: learn(..., shape=(C, H, W))") from None


def _sum_gradients(params: list[Tensor]) -> None:
    """Sum gradients over ranks (a rank whose share missed a parameter contributes zeros)."""
    if distributed.world_size() == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        distributed.all_reduce_sum(p.grad)


def _detached(solver: Solver) -> Solver:
    """``solver`` with its tensors cut from the autograd graph."""
    return solver.with_(sigmas=solver.sigmas.detach(), model_sigmas=solver.model_sigmas.detach(),
                        a=solver.a.detach(), b=solver.b.detach())


def _same(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    """Whether two parameter states are equal, tensor for tensor."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def fresh_pairs(model: Denoiser, data: TeacherData, spec: TeacherSpec, n: int,
                cond: Tensor | Callable[[list[int]], Tensor] | None, *, device: torch.device | str = "cpu",
                cache_dir: str | None = None, parallel: bool | None = None) -> TeacherData:
    """``n`` teacher pairs on the seeds after ``data``'s (``max(data.seeds) + 1``, ...), with the
    sample shape and dtype of ``data``. Conditions: ``cond(seeds)`` when ``cond`` is a function,
    else ``data``'s condition rows in turn (row ``k % len(data)`` for the ``k``-th fresh seed)."""
    seeds = list(range(max(data.seeds) + 1, max(data.seeds) + 1 + n))
    cost = cost_of(model)
    if cost is not None:  # teacher pairs are charged as such, made now or cached (:mod:`s4s.learn.budget`)
        cost.charge_teacher(n, None if spec.solver == "dopri5" else spec.nfe)
        model = model.uncounted  # type: ignore[attr-defined]
    if callable(cond):
        fresh_cond = cond(seeds)
    elif data.cond is not None:
        fresh_cond = data.cond[torch.arange(n) % len(data)]
    else:
        fresh_cond = None
    return generate_teacher(model, seeds, tuple(data.noise.shape[1:]), spec, cond=fresh_cond,
                            dtype=data.noise.dtype, device=device, cache_dir=cache_dir, parallel=parallel)


FINAL_Z = 2.0
"""How far ahead an opening must be to replace the end in the final choice: its paired mean
difference on the fresh pairs, in standard errors."""


def paired_z(a: Tensor, b: Tensor) -> float:
    """``mean(a - b)`` over its standard error, for per-pair distances ``a``, ``b`` of shape ``(n,)``:
    below 0 when ``a`` is lower. ``-inf``/``inf`` when every pair differs by the same amount, 0 when
    none differs, ``nan`` when a distance is not finite."""
    diff = (a - b).to(torch.float64)
    if not bool(torch.isfinite(diff).all()):
        return math.nan
    mean = float(diff.mean())
    se = float(diff.std()) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
    if se > 0:
        return mean / se
    return 0.0 if mean == 0 else math.copysign(math.inf, mean)


def _final_choice(candidates: dict[str, tuple[float, dict[str, Tensor], float]], params: SolverParams,
                  model: Denoiser, data: TeacherData, spec: TeacherSpec, n: int,
                  cond: Tensor | Callable[[list[int]], Tensor] | None, dist: Distance,
                  decode: Callable[[Tensor], Tensor] | None, chunk: int, device: torch.device | str,
                  cache_dir: str | None, parallel: bool | None,
                  ) -> tuple[dict[str, Tensor], float, float, dict[str, Any]]:
    """Choose between the end (``candidates["end"]``) and the openings (the other entries; name ->
    selection score, state, validation distance) on ``n`` fresh teacher pairs: an opening replaces
    the end only when it is ahead by more than ``FINAL_Z`` paired standard errors (``paired_z``
    below ``-FINAL_Z``; of several such, the lowest mean). The end is the whole plan's result and
    the openings are its first phases, so a tie, or a lead the fresh pairs cannot tell from noise,
    keeps it. Returns the chosen state, selection score, validation distance and a record."""
    started = time.perf_counter()
    fresh = fresh_pairs(model, data, spec, n, cond, device=device, cache_dir=cache_dir, parallel=parallel)
    on_fresh = Pairs(model, fresh, dist, decode, chunk)
    each: dict[str, Tensor] = {}
    for name, (_, state, _) in candidates.items():
        params.load_state_dict(state)
        each[name] = on_fresh.each(_detached(params.solver()))
    scored = {k: float(v.mean()) if bool(torch.isfinite(v).all()) else math.inf for k, v in each.items()}
    z = {k: paired_z(v, each["end"]) for k, v in each.items() if k != "end"}
    if math.isinf(scored["end"]):  # the end fails on a fresh pair: any finite opening beats it
        ahead = [k for k in z if math.isfinite(scored[k])]
    else:
        ahead = [k for k in z if z[k] < -FINAL_Z]
    chosen = min(ahead, key=lambda k: scored[k]) if ahead else "end"
    log.info("final choice on %d fresh teacher pairs (seeds %d..%d, %.1f s): end %.4g, %s -> %s", n,
             fresh.seeds[0], fresh.seeds[-1], time.perf_counter() - started, scored["end"],
             ", ".join(f"{k} {scored[k]:.4g} (z {z[k]:.2f})" for k in z), chosen)
    score, state, val = candidates[chosen]
    return state, score, val, {"pairs": n, "seeds": [fresh.seeds[0], fresh.seeds[-1]], "distances": scored,
                               "z": z, "z_needed": FINAL_Z, "scores": {k: c[0] for k, c in candidates.items()},
                               "chosen": chosen}


def beats_start(train_now: float, val_now: float, train_start: float, val_start: float) -> bool:
    """The last guard's rule: a learned solver replaces its start only when its mean distance
    is lower on the training pairs and on the validation pairs both."""
    return train_now < train_start and val_now < val_start


def _distance_name(distance: str | Distance) -> str:
    return distance if isinstance(distance, str) else getattr(distance, "__name__", "callable")


def _start_scores(model: Denoiser, nfe: int, on_val: Pairs, base: str | None, schedule: str | None) -> dict[str, float]:
    """Validation distance of every hand-designed (solver, grid) candidate."""
    candidates = [(b, s) for b in ([base] if base else CANDIDATE_SOLVERS) for s in ([schedule] if schedule else CANDIDATE_SCHEDULES)]
    scores: dict[str, float] = {}
    for b, s in candidates:
        if b not in SOLVERS or split_zero(s)[0] not in SCHEDULES:
            raise ValueError(f"unknown base {b!r} or schedule {s!r}")
        try:
            scores[f"{b}/{s}"] = on_val.mean(make_solver(b, nfe, s, model))
        except ValueError as e:  # e.g. heun with an odd nfe
            if base:
                raise
            log.debug("skipping %s/%s: %s", b, s, e)
    return scores


def _train_scores(model: Denoiser, nfe: int, scores: dict[str, float], on_train: Pairs,
                  leaders: int = 4) -> dict[str, float]:
    """Mean distance on the training pairs of the ``leaders`` best candidates on validation."""
    top = sorted(scores, key=lambda k: scores[k])[:leaders]
    return {k: on_train.mean(make_solver(k.split("/")[0], nfe, k.split("/")[1], model)) for k in top}


def learn(
    model: Denoiser,
    nfe: int,
    method: str = "s4s_alt",
    num_samples: int = 512,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    cond: Tensor | Callable[[list[int]], Tensor] | None = None,
    base: str | None = None,
    schedule: str | None = None,
    teacher: TeacherSpec | None = None,
    teacher_data: TeacherData | None = None,
    distance: str | Distance = "l2",
    decode: Callable[[Tensor], Tensor] | None = None,
    radius: float = 0.0,
    iters: int = 800,
    rounds: int = 1,
    plan: str | None = None,
    batch_size: int = 64,
    band: int | None = None,
    lr: float = 0.05,
    warmup: float = 0.0,
    retry_warmup: float | None = 0.1,
    val_fraction: float = 0.2,
    val_every: int = 50,
    select: str = "all",
    starts: int = 1,
    screen: int = 2,
    final_pairs: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_dir: str | None = None,
    callback: Callable[[LearnEvent], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpointing: bool = False,
    parallel: bool | None = None,
    _gap: float | None = None,
    _stop: threading.Event | None = None,
) -> Solver:
    """Learn an ``nfe``-evaluation solver for ``model`` from its own teacher samples.

    Args:
        method: ``"s4s"`` (coefficients on a fixed grid), ``"s4s_alt"`` (joint phases, then
            alternating grid + decoupled levels and coefficients), ``"ld3"`` (grid + decoupled
            levels only) or ``"joint"`` (everything at once).
        num_samples: teacher pairs (seeds ``0 .. num_samples-1``), split into train/validation.
        seed: fixes the split, the minibatch order and so the result.
        shape: one sample's shape (zoo models know theirs).
        cond: conditions, ``[num_samples, ...]`` or a function of the seed list.
        base, schedule: the starting solver and grid; by default the best pair on validation
            over ``CANDIDATE_SOLVERS x CANDIDATE_SCHEDULES``.
        teacher: how teacher samples are made (default: UniPC-3, 200 NFE, Karras grid).
        teacher_data: precomputed teacher pairs (overrides ``num_samples``/``teacher``).
        distance: ``"l2"``, ``"l1"``, ``"pseudo_huber"`` or ``f(x, y) -> [B]``, measured after
            ``decode`` when given (latent models).
        radius: relaxed objective: the student's noise may move within ``radius * sqrt(dim)``
            of the teacher's (0 = plain objective).
        iters: optimisation steps of ``s4s``, ``ld3`` and ``joint``; ``s4s_alt`` spends
            ``iters`` on joint phases (three probes of ``iters/8`` from the start, the best
            continued) and ``iters`` on ``ld3``'s phase, then ``rounds`` coefficient phases
            (``iters/4``, ``iters/8``, ...) with grid phases between them: ``2.25 * iters`` in
            all by default.
        plan: the optimisation phases, replacing the method's own, e.g.
            ``"grid:800,joint:400,coef:400"`` (see :func:`parse_plan`); ``solver.meta["plan"]``
            records the phases a run used.
        lr: Adam's step size, decayed over each phase on a half cosine.
        warmup: the fraction of each phase's steps over which the step size ramps up linearly
            to the cosine's (0: none; the first step takes ``1 / (warmup * steps)`` of it).
            Adam's first steps move every parameter by about ``lr`` whatever its gradient,
            which can throw a tuned start far off (``benchmarks/HISTORY.md``, "Warm-up").
        retry_warmup: when the last guard rejects the learned solver (it does not beat its start
            on both the training and the validation pairs), learn once more from the start with
            this ``warmup`` and judge that by the same guard (``None``, or equal to ``warmup``:
            no second try; the start is returned). ``solver.meta["retried"]`` says whether it ran.
        band: history depth K of the learned coefficients (default: every earlier evaluation).
        val_every: steps between checks of the selection score (and at every phase end).
        select: which score keeps the best parameters: ``"all"`` (mean distance over all
            teacher pairs, the default) or ``"val"`` (validation pairs only). The learned
            solver's ``meta["metrics"]`` reports both scores and the validation distance.
        starts: learn from each of the ``starts`` leading hand-designed starts (ranked as the one
            start is) as a run of its own, with its start fixed, and return the run with the
            lowest selection score (``starts`` times the time). Where the teacher pairs cannot
            tell the leaders apart, the start can decide the basin the grid lands in
            (``benchmarks/HISTORY.md``, "Starting points"). ``solver.meta["starts"]`` gives
            each run's score; with a ``checkpoint``, run ``k`` keeps its own at
            ``checkpoint + ".start{k}"``.
        screen: for the methods that learn the grid (``s4s_alt``, ``ld3``, ``joint``), how many
            leading hand-designed starts to try before the run: from each, one joint phase of
            ``iters/16`` steps (``method="joint"`` with that start), and the run starts from the
            one that ends it with the lowest selection score (``iters/8`` more steps for a
            screen of two: 1/18 of ``s4s_alt``'s, 1/8 of ``ld3``'s). How close a start is to the
            teacher before learning is a weak guide to where learning from it ends
            (``benchmarks/HISTORY.md``, "Screening starts"). 1: no screen, the leading start.
            Not used when ``base`` and ``schedule`` are both given, or with ``starts > 1``.
            ``solver.meta["screen"]`` gives each tried start's probe score (``None`` without a
            screen).
        final_pairs: for a plan with ``@fresh`` phases (``s4s_alt``'s ``ld3`` opening), how many
            fresh teacher pairs (default: twice the learning pairs, at most 1,024) judge the
            run's end against the best of each ``@fresh`` phase (which ``ld3`` alone would have
            returned): seeds after the learning ones, with ``cond`` called on them, or else the
            learning conditions' rows in turn. The later phases are fitted to the learning pairs,
            so those pairs favour them; where their gain is small it can be a loss on new noise.
            An opening replaces the end only when it is ahead on these pairs by more than
            ``FINAL_Z`` (2) paired standard errors (``benchmarks/HISTORY.md``, "A final choice on
            fresh pairs"). Made only when there is something to choose between; ``cache_dir``
            caches them. 0: no final choice, the end is returned. ``solver.meta["metrics"]
            ["final"]`` gives each candidate's distance on these pairs and each opening's paired z.
        parallel: run independent work side by side on CPU threads, the torch threads shared
            out among them: the screen's probes, the ``starts`` runs, and the lanes of a plan
            (a ``@fresh`` phase beside the phases before it: ``s4s_alt``'s joint opening beside
            its ``ld3`` opening, :mod:`s4s.learn.lanes`) and the teacher's shards when ``learn``
            makes them. Each lane keeps its own best state and the lanes join on the
            best, ties to the earlier, so the result is the same work's in turn, up to float
            rounding where a kernel rounds differently at a lane's share of the threads than
            at all of them (bit for bit where none does, as on the mixture). On 2 cores with
            the zoo's U-Net, ``s4s_alt`` took 0.73x the time (``benchmarks/side_by_side.py``).
            ``None`` (the default): on when ``device`` is a CPU, there is no ``checkpoint``
            (which saves inside phases) and one process runs. Lanes hold their activations
            at once (about twice the memory of the work in turn), and the model must be safe
            to call from two threads at once, as a PyTorch module in eval mode is.
        _gap: the teacher's distance to a 2x-finer teacher, when a calling ``learn`` (a screen or
            ``starts``) has measured it already; internal.
        _stop: set to end the run early (with an error) when a run beside it fails; internal.
        checkpointing: recompute each model call in the backward pass instead of storing its
            activations (memory flat in ``nfe``, about one extra forward pass of time).
        checkpoint: a file where the run's state is saved (atomically) at every score
            check and phase end; if it exists, the run resumes from it and ends with the same
            solver as an uninterrupted run. A checkpoint of a different run is refused.
    Returns:
        The learned :class:`Solver`; ``solver.meta`` records the method, base, teacher and figures.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"nfe must be a positive int, got {nfe!r}")
    for key, value in (("iters", iters), ("batch_size", batch_size), ("band", 1 if band is None else band),
                       ("rounds", rounds), ("starts", starts), ("screen", screen)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive int, got {value!r}")
    if final_pairs is not None and (isinstance(final_pairs, bool) or not isinstance(final_pairs, int)
                                    or final_pairs < 0):
        raise ValueError(f"final_pairs must be None or a non-negative int, got {final_pairs!r}")
    if not 0 <= radius < 1:
        raise ValueError(f"radius must be in [0, 1), got {radius}")
    if select not in ("all", "val"):
        raise ValueError(f"select must be 'all' or 'val', got {select!r}")
    if isinstance(val_every, bool) or not isinstance(val_every, int) or val_every < 1:
        raise ValueError(f"val_every must be a positive int, got {val_every!r}")
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup must be in [0, 1), got {warmup}")
    if retry_warmup is not None and not 0 <= retry_warmup < 1:
        raise ValueError(f"retry_warmup must be None or in [0, 1), got {retry_warmup}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if distributed.world_size() > batch_size:
        raise ValueError(f"batch_size={batch_size} is smaller than the {distributed.world_size()} ranks")
    if parallel and (checkpoint is not None or distributed.world_size() > 1):
        raise ValueError("parallel=True runs work side by side in threads, which neither saves checkpoints inside "
                         "phases nor shares work between processes: drop checkpoint or run one process, or leave "
                         "parallel=None")
    side_by_side = (checkpoint is None and distributed.world_size() == 1 and torch.device(device).type == "cpu"
                    if parallel is None else parallel)
    stop = _stop or threading.Event()
    cost = cost_of(model)  # a calling ``learn`` (screen, starts) passes its counted model down
    if cost is None:
        cost = Cost()
        model = counted(model, cost)
    dist = get_distance(distance)
    phases = parse_plan(plan) if plan is not None else _phases(method, iters, rounds)
    started = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    spec = teacher or TeacherSpec()
    top_level = _gap is None  # screens and starts call learn with the top run's _gap and its pairs
    if teacher_data is None:
        if num_samples < 4:
            raise ValueError(f"num_samples must be at least 4, got {num_samples}")
        seeds = list(range(num_samples))
        cond_t = cond(seeds) if callable(cond) else cond
        teacher_data = generate_teacher(model.uncounted, seeds, _sample_shape(model.uncounted, shape), spec,  # type: ignore[attr-defined]
                                        cond=cond_t, dtype=dtype, device=device, cache_dir=cache_dir,
                                        parallel=parallel)
    if top_level:  # the pairs are charged once, by the run that was asked for them
        cost.charge_teacher(len(teacher_data), None if spec.solver == "dopri5" else spec.nfe)
    teacher_time = time.perf_counter() - started

    train, val = split_pairs(teacher_data, val_fraction, gen)
    stream_start = gen.get_state()  # where every run's minibatch stream begins (``@fresh`` phases)
    chunk = max(batch_size, 256)
    on_train = Pairs(model, train, dist, decode, chunk, checkpointing)
    on_val = Pairs(model, val, dist, decode, chunk)

    settings = {"method": method, "nfe": nfe, "seed": seed, "base": base, "schedule": schedule, "iters": iters,
                "rounds": rounds, "batch_size": batch_size, "band": band, "lr": lr, "warmup": warmup,
                "retry_warmup": retry_warmup, "screen": screen, "val_fraction": val_fraction, "val_every": val_every,
                "select": select, "plan": plan_string(phases), "radius": radius,
                "distance": _distance_name(distance), "dtype": str(dtype), "decode": decode is not None,
                "seeds": teacher_data.seeds}
    fp = fingerprint(settings, teacher_data.noise, teacher_data.samples)
    resume = None
    if checkpoint is not None and Path(checkpoint).exists() and starts == 1:
        resume = load_checkpoint(checkpoint, fp)
        log.info("resuming from %s: phase %d, iteration %d", checkpoint, resume.phase, resume.iteration)

    # starting point: the best hand-designed (solver, grid); validation ranks every candidate,
    # all pairs rank the leaders (nothing is fitted yet, so the training pairs are fair judges
    # too, and rare large errors, e.g. mode switches, need more than the validation pairs)
    scores = resume.scores if resume is not None else _start_scores(model, nfe, on_val, base, schedule)
    on_train_start = resume.extra.get("train_scores") if resume is not None else None
    if on_train_start is None:
        on_train_start = _train_scores(model, nfe, scores, on_train, leaders=max(4, screen))
    n_val, n_train = len(val), len(train)
    overall = {k: (scores[k] * n_val + v * n_train) / (n_val + n_train) for k, v in on_train_start.items()}
    start_key = min(overall, key=lambda k: overall[k])
    gap = teacher_gap(model, teacher_data, spec) if _gap is None else _gap
    # ``s4s_alt`` and ``ld3`` screen alike, so ``s4s_alt`` retraces ``ld3`` from the same start
    screened = resume.extra.get("screen") if resume is not None else None
    if (screened is None and screen > 1 and len(overall) > 1 and starts == 1 and method != "s4s"
            and not (base and schedule)):
        tried = sorted(overall, key=lambda k: overall[k])[:screen]
        probes = [partial(learn, model, nfe, "joint", seed=seed, base=key.split("/")[0], schedule=key.split("/")[1],
                          teacher=spec, teacher_data=teacher_data, distance=distance, decode=decode, radius=radius,
                          iters=max(1, iters // 16), batch_size=batch_size, band=band, lr=lr, warmup=warmup,
                          retry_warmup=None, val_fraction=val_fraction, val_every=val_every, select=select,
                          device=device, dtype=dtype, checkpointing=checkpointing, parallel=side_by_side, _gap=gap,
                          _stop=stop)
                  for key in tried]
        ends = run_jobs(probes, side_by_side, stop)
        screened = {key: probe.meta["metrics"]["score_best"] for key, probe in zip(tried, ends)}
        torch.manual_seed(seed)  # as if no probe had run
        log.info("screened starts: %s", ", ".join(f"{k} {v:.4g}" for k, v in screened.items()))
    if screened:
        start_key = min(screened, key=lambda k: screened[k])
    if starts > 1:
        leaders = sorted(overall, key=lambda k: overall[k])[:starts]
        log.info("learning from %d starts: %s", len(leaders), ", ".join(leaders))
        shared = serialised(callback) if callback is not None and side_by_side else callback
        jobs = [partial(learn, model, nfe, method, seed=seed, base=key.split("/")[0], schedule=key.split("/")[1],
                        teacher=spec, teacher_data=teacher_data, distance=distance, decode=decode, radius=radius,
                        iters=iters, rounds=rounds, plan=plan, batch_size=batch_size, band=band, lr=lr,
                        warmup=warmup, retry_warmup=retry_warmup, val_fraction=val_fraction, val_every=val_every,
                        select=select, final_pairs=final_pairs, cond=cond, cache_dir=cache_dir, device=device,
                        dtype=dtype, callback=shared,
                        checkpoint=None if checkpoint is None else f"{checkpoint}.start{k + 1}",
                        checkpointing=checkpointing, parallel=side_by_side, _gap=gap, _stop=stop)
                for k, key in enumerate(leaders)]
        runs = dict(zip(leaders, run_jobs(jobs, side_by_side, stop)))
        best_key = min(runs, key=lambda k: runs[k].meta["metrics"]["score_best"])
        log.info("the run from %s scores best (%s)", best_key,
                 ", ".join(f"{k} {r.meta['metrics']['score_best']:.4g}" for k, r in runs.items()))
        return runs[best_key].with_(meta={
            **runs[best_key].meta, "starts": {k: r.meta["metrics"]["score_best"] for k, r in runs.items()},
            "seconds": round(time.perf_counter() - started, 2), "cost": cost.to_dict()})
    base_name, sched_name = start_key.split("/")
    log.info("teacher %s (gap to 2x-finer %.2e) in %.1f s; start %s: val %.4g", spec.to_dict(), gap, teacher_time,
             start_key, scores[start_key])

    start_grid = make_solver(base_name, nfe, sched_name, model).grid
    params = SolverParams(base_name, start_grid, band=band, sigma_floor=model.sigma_min)
    dim = math.prod(train.noise.shape[1:])
    shift = torch.zeros_like(train.noise, requires_grad=radius > 0) if radius > 0 else None

    def score(solver: Solver) -> tuple[float, float]:
        """(selection score, validation distance) of ``solver``."""
        v = on_val.mean(solver)
        if select == "val":
            return v, v
        return (v * n_val + on_train.mean(solver) * n_train) / (n_val + n_train), v

    start_score = scores[start_key] if select == "val" else overall[start_key]
    start_state = {k: v.detach().clone() for k, v in params.state_dict().items()}
    track = Track(params, gen, shift, start_state, start_score)
    # a second try (``retry_warmup``) runs as more phases after the first try's, from the start
    retries = retry_warmup is not None and retry_warmup != warmup
    run = list(phases) + (_second_try(phases) if retries else [])
    n_first = len(phases)
    progress = _Progress(sum(p.iters for p in phases), start_score, callback, stop=stop)
    # each ``@fresh`` phase's best (score, state) from its own start: a candidate for the final choice
    openings: dict[int, tuple[float, dict[str, Tensor]]] = {}
    first_phase = 0
    if resume is not None:
        like = params.state_dict()
        openings = {int(i): (o["score"], {k: torch.tensor(v, dtype=like[k].dtype, device=like[k].device)
                                          for k, v in o["state"].items()})
                    for i, o in (resume.extra.get("openings") or {}).items()}
        params.load_state_dict(resume.params)
        track.best_state, track.best_score = resume.best_state, resume.best_score
        gen.set_state(resume.generator)
        if shift is not None and resume.shift is not None:
            with torch.no_grad():
                shift.copy_(resume.shift)
        first_phase, progress.best = resume.phase, resume.best_score
        progress.done = progress.reported = resume.done

    def save(phase_idx: int, it: int, opt: torch.optim.Optimizer | None, sched: Any, track: Track) -> None:
        if checkpoint is None or not distributed.is_main():
            return
        sched_state = None
        if sched is not None:
            sched_state = {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}
        save_checkpoint(checkpoint, Checkpoint(
            fingerprint=fp, phase=phase_idx, iteration=it, done=progress.done, best_score=track.best_score,
            scores=scores, params=track.params.state_dict(), best_state=track.best_state,
            generator=track.gen.get_state(),
            shift=track.shift, optimizer=None if opt is None else opt.state_dict(), scheduler=sched_state,
            extra={"train_scores": on_train_start, "screen": screened,
                   "openings": {str(i): {"score": o[0], "state": {k: v.tolist() for k, v in o[1].items()}}
                                for i, o in openings.items()}}))

    def guard(state: dict[str, Tensor], state_score: float) -> tuple[bool, float]:
        """(whether the solver of ``state`` beats the start on the training and the validation
        pairs both, its validation distance). The last guard against a noisy or overfitted
        selection score."""
        if state_score == start_score:
            return True, scores[start_key]  # the start itself: nothing learned, nothing to reject
        params.load_state_dict(state)
        with torch.no_grad():
            solver = _detached(params.solver())
        val_now, train_now = on_val.mean(solver), on_train.mean(solver)
        ok = beats_start(train_now, val_now, on_train_start[start_key], scores[start_key])
        if not ok:
            log.warning("%s: better on the selection score (%.4g < %.4g) but not on both training pairs (%.4g vs %.4g) "
                        "and validation pairs (%.4g vs %.4g)", method, state_score, start_score, train_now,
                        on_train_start[start_key], val_now, scores[start_key])
        return ok, val_now

    def run_phase(phase_idx: int, track: Track) -> None:
        """Phase ``run[phase_idx]`` on ``track``: Adam steps, score checks, the best state kept."""
        phase, params, shift = run[phase_idx], track.params, track.shift
        ramp = retry_warmup if phase_idx >= n_first else warmup
        groups = params.groups()
        trainable = [p for g in phase.groups for p in groups[g]]
        for p in params.parameters():
            p.requires_grad_(any(p is q for q in trainable))
        opt_params: list[dict[str, Any]] = [{"params": trainable, "lr": lr}]
        if shift is not None:
            opt_params.append({"params": [shift], "lr": lr})
        opt = torch.optim.Adam(opt_params)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(_step_size, steps=phase.iters, warmup=ramp))
        it0 = 0
        if resume is not None and phase_idx == resume.phase and resume.iteration > 0:
            it0 = resume.iteration
            opt.load_state_dict(resume.optimizer)
            sched.load_state_dict({**resume.scheduler, "lr_lambdas": [None] * len(opt.param_groups)})
        elif phase.from_start:
            params.load_state_dict(start_state)
            if phase.fresh:
                openings[phase_idx] = (start_score, start_state)
                track.gen.set_state(stream_start)
                if shift is not None:
                    with torch.no_grad():
                        shift.zero_()
        for it in range(it0, phase.iters):
            if progress.stop.is_set():
                raise Stopped(f"{phase.name} stopped: a lane beside it ended with an error or was interrupted")
            idx = torch.randint(0, len(train), (min(batch_size, len(train)),), generator=track.gen)
            part = distributed.local(idx)  # this rank's share of the minibatch
            solver = params.solver()
            loss = on_train.loss(solver, part, None if shift is None else shift[part]).sum() / len(idx)
            total_loss = distributed.all_reduce_sum(loss.detach().to(torch.float64).cpu().clone())
            opt.zero_grad(set_to_none=True)
            if torch.isfinite(total_loss):
                loss.backward()
                _sum_gradients(trainable + ([] if shift is None else [shift]))
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                opt.step()
                sched.step()
            if not torch.isfinite(total_loss) or not all(torch.isfinite(p).all() for p in params.parameters()):
                log.warning("non-finite %s in %s at iteration %d; restoring the best parameters and halving the "
                            "step size", "loss" if not torch.isfinite(total_loss) else "parameters", phase.name, it)
                params.load_state_dict(track.best_state)
                opt.state.clear()
                sched.base_lrs = [0.5 * b for b in sched.base_lrs]
                continue
            if shift is not None:
                with torch.no_grad():  # project onto the ball of radius * sqrt(dim)
                    norms = shift.reshape(shift.shape[0], -1).norm(dim=1).clamp_min(1e-12)
                    factor = (radius * math.sqrt(dim) / norms).clamp(max=1.0)
                    shift.mul_(factor.reshape(-1, *([1] * (shift.dim() - 1))))
            progress.advance()
            score_now = val_now = checked = None
            if (it + 1) % val_every == 0 or it + 1 == phase.iters:
                with torch.no_grad():
                    checked = _detached(params.solver())
                score_now, val_now = score(checked)
                state = None
                if score_now < track.best_score:
                    track.best_score = score_now
                    track.best_state = state = {k: v.detach().clone() for k, v in params.state_dict().items()}
                if phase.fresh and score_now < openings[phase_idx][0]:
                    openings[phase_idx] = (score_now, state or {k: v.detach().clone()
                                                                for k, v in params.state_dict().items()})
                log.debug("%s %d/%d loss %.4g score %.4g val %.4g best %.4g", phase.name, it + 1, phase.iters,
                          float(total_loss), score_now, val_now, track.best_score)
                if it + 1 < phase.iters:
                    save(phase_idx, it + 1, opt, sched, track)
            progress.report(phase.name, float(total_loss), val_now, score_now, track.best_score, checked)
        params.load_state_dict(track.best_state)  # each phase continues from the best so far
        log.info("%s (%d steps): best score so far %.4g", phase.name, phase.iters, track.best_score)
        save(phase_idx + 1, 0, None, None, track)

    retried = first_phase > n_first or (resume is not None and first_phase == n_first and resume.iteration > 0)
    progress.total += sum(p.iters for p in run[n_first:]) if retried else 0
    verdict: tuple[bool, float] | None = None
    phase_idx = first_phase
    while phase_idx < len(run):
        if phase_idx == n_first and not retried:  # the first try is over: judge it
            verdict = guard(track.best_state, track.best_score)
            if verdict[0]:
                break
            log.warning("%s: learning again from the start with warmup=%g", method, retry_warmup)
            retried, progress.total = True, progress.total + sum(p.iters for p in run[n_first:])
            track.best_state, track.best_score = start_state, start_score
            progress.best = start_score
        stop_at = n_first if phase_idx < n_first else len(run)  # the second try's phases wait for the guard
        lanes = lanes_from(run, phase_idx, stop_at) if side_by_side else [[phase_idx]]
        if len(lanes) == 1:
            run_phase(phase_idx, track)
            phase_idx += 1
            continue
        names = " | ".join("+".join(run[i].name for i in lane) for lane in lanes)
        log.info("lanes %s, side by side on %d torch threads", names, torch.get_num_threads())
        forks = [track.fork() for _ in lanes]
        run_jobs([partial(run_lane, run_phase, lane, fork) for lane, fork in zip(lanes, forks)], stop=progress.stop)
        track.join(forks)
        phase_idx = lanes[-1][-1] + 1

    best_state, best_score = track.best_state, track.best_score

    accepted, val_best = verdict if verdict is not None and verdict[0] else guard(best_state, best_score)
    if not accepted:
        log.warning("%s: keeping the starting solver", method)
        best_state, best_score, val_best = start_state, start_score, scores[start_key]
    final = None
    n_final = min(1024, 2 * len(teacher_data)) if final_pairs is None else final_pairs
    if accepted and n_final > 0:
        candidates = {"end": (best_score, best_state, val_best)}
        for i, (o_score, o_state) in sorted(openings.items()):
            if (i >= n_first) != retried or o_score >= start_score or _same(o_state, best_state):
                continue  # another try's, nothing learned, or the end itself
            ok, o_val = guard(o_state, o_score)
            if ok:
                candidates[f"{run[i].name}@{i}"] = (o_score, o_state, o_val)
        if len(candidates) > 1:
            best_state, best_score, val_best, final = _final_choice(
                candidates, params, model, teacher_data, spec, n_final, cond, dist, decode, chunk, device, cache_dir,
                parallel)
    params.load_state_dict(best_state)
    with torch.no_grad():
        learned = _detached(params.solver())
    learned = learned.with_(
        name=method,
        meta={
            "method": method, "base": base_name, "schedule": sched_name, "nfe": nfe, "band": params.band,
            "model": {"name": model.name, "sigma_min": model.sigma_min, "sigma_max": model.sigma_max,
                      "time": model.time.name},
            "teacher": spec.to_dict(), "num_samples": len(teacher_data), "seed": seed, "radius": radius,
            "distance": _distance_name(distance), "plan": plan_string(phases), "warmup": warmup,
            "retried": retried, "screen": screened,
            "metrics": {"select": select, "score_start": start_score, "score_best": best_score,
                        "val_start": scores[start_key], "val_best": val_best, "teacher_gap_rmse": gap,
                        "final": final,
                        "candidates": scores, "candidates_all_pairs": overall},
            "seconds": round(time.perf_counter() - started, 2),
            "cost": cost.to_dict(),
        },
    )
    log.info("%s nfe=%d: score (%s pairs) %.4g -> %.4g (%.0f%%), validation %.4g -> %.4g in %.1f s; cost %d "
             "model-evaluation units (%d learning, %d teacher)", method, nfe, select, start_score, best_score,
             100 * best_score / max(start_score, 1e-30), scores[start_key], val_best, time.perf_counter() - started,
             cost.units, cost.learn_units, cost.teacher_units)
    return learned
