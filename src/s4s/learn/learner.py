"""``s4s.learn``: fit a few-step solver to a teacher's final samples (S4S, S4S-Alt, LD3, joint).

Method (Frankel et al., "S4S: Solving for a Diffusion Model Solver", ICML 2025):
1. teacher pairs ``(z, x_T(z))`` from an accurate solver, split into training and validation;
2. the start is the best hand-designed (solver, grid) on validation pairs (``RankStarts``);
3. the method's recipe (:mod:`s4s.learn.recipes`): phases of minibatch Adam
   (:mod:`s4s.learn.engine`) minimising ``d(student(z + zeta), teacher(z))`` over one part of
   the solver's parameters, each phase from the best parameters so far by validation distance;
4. the learned solver replaces its start only if ``Guard`` accepts it.

The cost is a budget: steps are what ``StepBudget`` buys after the rest of the run is paid for,
and ``solver.meta["cost"]`` records what the run spent (:mod:`s4s.learn.budget`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from .. import distributed
from ..fingerprint import fingerprint as fingerprint_of
from ..frame import Denoiser
from ..schedules import SCHEDULES, split_zero
from ..solvers import SOLVERS, make_solver
from ..solvers.table import Solver
from ..models import partial_denoising
from ..teacher import TeacherData, generate_img2img_teacher, generate_teacher
from .budget import Cost, counted
from .checkpoint import Checkpoint, fingerprint, load_checkpoint, save_checkpoint
from .config import NUM_SAMPLES, LearnConfig
from .engine import AdamConfig, AdamState, fit, init_state
from .guidance import (GuidanceParams, GuidanceSolver, ScaledSolver, guidance_pairs_cond, middle_scores,
                       scale_weights, scales_of, training_index)
from .objectives import get_distance
from .pairs import Pairs, split_pairs, val_size
from .params import SolverParams
from .problem import Problem
from .recipes import PARTS, RECIPES, Recipe, parse_plan, resolve_part

__all__ = ["learn", "planned_steps", "LearnEvent", "METHODS", "CANDIDATE_SOLVERS", "CANDIDATE_SCHEDULES", "parse_start"]

log = logging.getLogger("s4s.learn")

METHODS = tuple(RECIPES)
CANDIDATE_SOLVERS = ("ddim", "ipndm", "dpmpp_2m", "dpmpp_3m", "unipc", "deis")
CANDIDATE_SCHEDULES = ("karras", "logsnr", "time_uniform", "karras+zero", "logsnr+zero", "time_uniform+zero")
WEAK_TEACHER = 4
"""A teacher with fewer than this many times the student's NFE gets a warning."""
ADAPTIVE_TEACHER_NFE = 200
"""The NFE a pair of an adaptive (``dopri5``) teacher is reckoned at for the budget."""


@dataclass(frozen=True)
class LearnEvent:
    """What a progress callback receives after each step."""

    phase: str
    iteration: int  # steps done over all phases
    total: int
    loss: float | None = None  # the step's minibatch distance
    val: float | None = None  # validation distance at a check (the selection score)
    best: float | None = None  # the best validation distance so far
    solver: Solver | None = None  # the solver checked (detached), at a check


def parse_start(start: str) -> tuple[str, str]:
    """``(base, schedule)`` of a start written ``"BASE/SCHEDULE"``, e.g. ``"deis/logsnr"`` or
    ``"ipndm/time_uniform+zero"``."""
    base, _, schedule = start.partition("/") if isinstance(start, str) else ("", "", "")
    if base not in SOLVERS or not schedule or split_zero(schedule)[0] not in SCHEDULES:
        raise ValueError(f"a start must be BASE/SCHEDULE with BASE one of {sorted(SOLVERS)} and SCHEDULE one of "
                         f"{sorted(SCHEDULES)} (optionally +zero), e.g. deis/logsnr; got {start!r}")
    return base, schedule


def _sample_shape(model: Denoiser, shape: Sequence[int] | None) -> tuple[int, ...]:
    if shape is not None:
        return tuple(int(s) for s in shape)
    from ..zoo import sample_shape

    try:
        return sample_shape(model)
    except ValueError:
        raise ValueError("give the shape of one sample: learn(..., config=LearnConfig(shape=(C, H, W)))") from None


def _candidates(nfe: int, model: Denoiser, config: LearnConfig) -> dict[str, Solver]:
    """The hand-designed starts to rank (a fixed ``base``/``schedule`` narrows them)."""
    out = {}
    for b in [config.base] if config.base else CANDIDATE_SOLVERS:
        for s in [config.schedule] if config.schedule else CANDIDATE_SCHEDULES:
            try:
                out[f"{b}/{s}"] = make_solver(b, nfe, s, model)
            except ValueError as e:  # e.g. a grid this NFE cannot make
                if config.base and config.schedule:
                    raise
                log.debug("skipping %s/%s: %s", b, s, e)
    return out


def planned_steps(model: Denoiser, nfe: int, method: str, n_pairs: int, config: LearnConfig) -> list[int]:
    """The optimisation steps of each of the recipe's phases for a run on ``n_pairs`` teacher
    pairs: ``config.iters``, or what ``config.budget`` buys once the rest of the run (ranking,
    checks, the guard; rows without autograd) is paid for. Calls no model, so a budget that buys
    no step is refused (``ValueError``) before any teacher work."""
    recipe = parse_plan(config.plan, method) if config.plan is not None else RECIPES[method]
    if config.iters:
        return recipe.steps(config.iters)
    teacher_nfe = ADAPTIVE_TEACHER_NFE if config.teacher.solver == "dopri5" else config.teacher.nfe
    n_candidates = len(_candidates(nfe, model, config))
    n_val = val_size(n_pairs, config.val_fraction)
    n_rank = min(config.rank.pairs, n_val) if n_candidates > 1 else 0
    checks = config.checks + 1 + (1 if config.backtrack and config.tolerance else 0)  # the best's per-pair scores
    rows = nfe * (n_candidates * n_rank + n_val * (2 + checks * len(recipe.phases))
                  + 2 * (n_pairs - n_val))
    return recipe.steps(config.budget.steps(n_pairs * teacher_nfe, rows, nfe, config.batch_size,
                                            first_free=config.radius == 0))


def _settings(method: str, recipe: Recipe, nfe: int, seed: int, config: LearnConfig) -> dict[str, Any]:
    """What a checkpoint's fingerprint covers (everything that changes the result)."""
    skip = {"device", "cache_dir", "parallel", "decode", "distance", "teacher"}
    out = {k: v for k, v in asdict(config).items() if k not in skip}
    name = config.distance if isinstance(config.distance, str) else getattr(config.distance, "__name__", "callable")
    return {**out, "method": method, "plan": recipe.plan(), "nfe": nfe, "seed": seed, "distance": name,
            "decode": config.decode is not None, "dtype": str(config.dtype), "teacher": config.teacher.to_dict()}


def learn(
    model: Denoiser,
    nfe: int,
    method: str = "s4s_alt",
    num_samples: int = NUM_SAMPLES,
    seed: int = 0,
    *,
    cond: Tensor | Callable[[list[int]], Tensor] | None = None,
    teacher_data: TeacherData | None = None,
    config: LearnConfig | None = None,
    callback: Callable[[LearnEvent], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> Solver:
    """Learn an ``nfe``-evaluation solver for ``model`` from its own teacher samples.

    Args:
        method: ``"s4s"`` (coefficients on a fixed grid), ``"s4s_alt"`` (grid, decoupled
            levels and coefficients together), ``"ld3"`` (grid and decoupled levels) or
            ``"joint"`` (the same phases as ``"s4s_alt"``): :data:`s4s.learn.recipes.RECIPES`.
        num_samples: teacher pairs on seeds ``0 .. num_samples-1`` (not used with ``teacher_data``).
        seed: fixes the split into training and validation pairs and the minibatch order.
        cond: conditions, ``[num_samples, ...]`` or a function of the seed list.
        teacher_data: the teacher pairs (the caller owns their seeds and conditions).
        config: everything else (:class:`s4s.learn.config.LearnConfig`).
        callback: called with a :class:`LearnEvent` after every step.
        checkpoint: a file where the run's state is saved (atomically) at every check; if it
            exists the run resumes from it and ends with the same solver, bit for bit. A
            checkpoint of another run is refused.
    Returns:
        The learned :class:`Solver`; ``solver.meta`` records the method, start, teacher,
        figures and cost. With ``LearnConfig(guidance=(lo, hi))`` (a model guided with
        ``scale=None``, ``cond`` the plain condition of each seed): a
        :class:`~s4s.learn.guidance.GuidanceSolver` for every scale in the range, whose teacher
        pairs spread over its training scales (the same number of pairs and steps).
    """
    cfg = config or LearnConfig()
    if not isinstance(cfg, LearnConfig):
        raise ValueError(f"config must be a LearnConfig, got {type(cfg).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 2:
        raise ValueError(f"nfe must be an int of at least 2, got {nfe!r}")
    if distributed.world_size() > cfg.batch_size:
        raise ValueError(f"batch_size={cfg.batch_size} is smaller than the {distributed.world_size()} ranks")
    recipe = parse_plan(cfg.plan, method) if cfg.plan is not None else RECIPES[method]
    spec = cfg.teacher
    if spec.solver != "dopri5" and spec.nfe < WEAK_TEACHER * nfe:
        log.warning("the teacher (%s at %d NFE) has less than %dx the student's %d NFE: the student learns the "
                    "teacher's own error; give a teacher of at least %d NFE", spec.solver, spec.nfe, WEAK_TEACHER, nfe,
                    WEAK_TEACHER * nfe)
    if cfg.guidance is not None:
        if cfg.strength < 1:
            raise ValueError("a guidance range and image-to-image (strength < 1) cannot be learned together yet")
        if not getattr(model, "per_sample_guidance", False):
            raise ValueError(f"LearnConfig(guidance=...) learns over scales: it needs a model guided with scale=None "
                             f"(s4s.models.guided(model, None, uncond)), got {model.name!r}")
        if teacher_data is None and cond is None:
            raise ValueError("a guidance-range learn needs the plain condition of each seed: cond=...")
        if teacher_data is not None:
            training_index(cfg.guidance.scales, scales_of(teacher_data.cond))
    started = time.perf_counter()
    cost = Cost()
    full = model
    if cfg.strength < 1:  # image-to-image: every grid, teacher and solver starts at the strength's level
        model = partial_denoising(model, cfg.strength)
    raw, model = model, counted(model, cost)

    # --- the steps the budget buys (refused now if it buys none, before any model call)
    if teacher_data is None and (isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 4):
        raise ValueError(f"num_samples must be an int of at least 4, got {num_samples!r}")
    candidates = _candidates(nfe, raw, cfg)
    steps = planned_steps(raw, nfe, method, len(teacher_data) if teacher_data is not None else num_samples, cfg)
    total = sum(steps)
    teacher_nfe = ADAPTIVE_TEACHER_NFE if spec.solver == "dopri5" else spec.nfe

    # --- teacher pairs (charged at rows x teacher NFE, made now or read from a cache)
    if teacher_data is None:
        seeds = list(range(num_samples))
        plain = cond(seeds) if callable(cond) else cond
        if cfg.guidance is not None:  # seed i at training scale i % points
            plain = guidance_pairs_cond(plain, len(seeds), cfg.guidance)
        options = dict(cond=plain, dtype=cfg.dtype, device=cfg.device,
                       cache_dir=cfg.cache_dir, parallel=cfg.parallel)
        shape = _sample_shape(full, cfg.shape)
        if cfg.strength < 1:
            teacher_data = generate_img2img_teacher(full, seeds, shape, spec, cfg.strength, **options)
            cost.charge_teacher(len(teacher_data), teacher_nfe)  # the input images, the model's own samples
        else:
            teacher_data = generate_teacher(raw, seeds, shape, spec, **options)
    cost.charge_teacher(len(teacher_data), teacher_nfe)
    train, val = split_pairs(teacher_data, cfg.val_fraction, torch.Generator().manual_seed(seed))
    dist = get_distance(cfg.distance)
    chunk = max(cfg.batch_size, 256)
    on_train = Pairs(model, train, dist, cfg.decode, chunk, cfg.checkpointing)
    on_val = Pairs(model, val, dist, cfg.decode, chunk)

    # --- the budget, then resume or rank the hand-designed starts on the first validation pairs
    settings = _settings(method, recipe, nfe, seed, cfg)
    fp = fingerprint(settings, teacher_data.noise, teacher_data.samples)
    resume = None
    if checkpoint is not None and Path(checkpoint).exists():
        resume = load_checkpoint(checkpoint, fp)
        log.info("resuming from %s: phase %d, step %d", checkpoint, resume.phase, resume.state.step)
    n_rank = min(cfg.rank.pairs, len(val))
    if resume is not None:
        start_key, ranked = resume.start, resume.extra.get("ranked", {})
    elif len(candidates) > 1:
        on_rank = Pairs(model, val.subset(range(n_rank)), dist, cfg.decode, chunk)
        if cfg.guidance is not None:  # the start is the polynomial's constant term: the range's middle
            ranked = middle_scores({k: on_rank.each(s) for k, s in candidates.items()},
                                   scales_of(on_rank.data.cond), cfg.guidance)
        else:
            ranked = {k: on_rank.mean(s) for k, s in candidates.items()}
        start_key = cfg.rank.choose(ranked)
    else:
        start_key, ranked = next(iter(candidates)), {}
    base, schedule = start_key.split("/")
    params: SolverParams | GuidanceParams = SolverParams(base, candidates[start_key].grid, band=cfg.band,
                                                         sigma_floor=raw.sigma_min)
    if cfg.guidance is not None:
        params = GuidanceParams(params, cfg.guidance)
    start_state = {k: v.detach().clone() for k, v in params.state_dict().items()}
    with torch.no_grad():
        start = _detached(params.solver())
        if isinstance(params, GuidanceParams):  # every training scale counts alike: distances relative to the start's
            on_val.weights = on_train.weights = None
            each = on_val.each(start)
            weight = scale_weights(scales_of(val.cond), each, params.guidance)
            on_val.weights, on_train.weights = weight(scales_of(val.cond)), weight(scales_of(train.cond))
            val_start = float((each * on_val.weights).mean())
        else:
            val_start = on_val.mean(start)
        groups = None if cfg.guidance is None else training_index(cfg.guidance.scales, scales_of(val.cond))
        error = relative_error(Pairs(model, val, get_distance("l2"), None, chunk), start, groups)
    coef_scale = cfg.coef_lr * error

    log.info("%s nfe=%d from %s (validation %.4g, relative error %.3g): %d steps (%s) on %d training pairs", method,
             nfe, start_key, val_start, error, total, ", ".join(f"{p.part} {n}" for p, n in zip(recipe.phases, steps)),
             len(train))

    # --- the recipe's phases, each from the best parameters so far
    carry, carry_score, done, first, carry_part = start_state, val_start, 0, 0, None
    if resume is not None:
        carry, carry_score, done, first = resume.carry, resume.carry_score, resume.done, resume.phase
        carry_part = resume.extra.get("carry_part")
    for i in range(first, len(recipe.phases)):
        phase, n_steps = recipe.phases[i], steps[i]
        part = resolve_part(phase.part, carry_part)
        name = f"{part}{i + 1}"
        begin, begin_score = (start_state, val_start) if phase.from_start else (carry, carry_score)
        params.load_state_dict(begin)
        problem = Problem(params, PARTS[part], on_train, on_val, cfg.radius, {"coef": coef_scale, "levels": coef_scale})
        every = -(-n_steps // cfg.checks)  # at most checks + 1 checks
        adam = AdamConfig(steps=n_steps, pairs=len(train), batch_size=cfg.batch_size, lr=cfg.lr * phase.lr,
                          backtrack=cfg.backtrack, tolerance=cfg.tolerance, check_every=every)
        resumed = resume is not None and i == resume.phase
        state = resume.state if resumed else init_state(problem.x0(), begin_score, seed + i)
        at = Checkpoint(fp, i, done, start_key, carry, carry_score, state, {"ranked": ranked, "carry_part": carry_part})

        def on_step(st: AdamState, loss: float, checked: float | None, *, at: Checkpoint = at,
                    problem: Problem = problem, name: str = name) -> None:
            solver = None
            if checked is not None:
                with torch.no_grad():
                    solver = _detached(problem.solver(st.x))
                if checkpoint is not None and distributed.is_main():
                    save_checkpoint(checkpoint, replace(at, state=st))
            if callback is not None:
                callback(LearnEvent(name, at.done + st.step, total, loss, checked, min(at.carry_score, st.best_score),
                                    solver))  # best: over every phase so far

        state = fit(problem.objective, state, adam, problem.score, problem.project, on_step)
        if state.rollbacks:
            log.warning("%s: %d step(s) gave non-finite values and were rolled back", name, state.rollbacks)
        if state.backtracks:
            log.info("%s: %d check(s) without a gain went back to the best with half the step size", name,
                     state.backtracks)
        done += n_steps
        if state.best_score < carry_score:
            problem.load(state.best_x)
            carry = {k: v.detach().clone() for k, v in params.state_dict().items()}
            carry_score, carry_part = state.best_score, part
        log.info("%s (%d steps): validation %.4g", name, n_steps, carry_score)

    # --- the guard: replace the start only if the training and validation pairs both agree
    params.load_state_dict(carry)
    with torch.no_grad():
        learned = _detached(params.solver())
        accepted = carry_score < val_start and cfg.guard.accepts(on_train.mean(learned), carry_score,
                                                                 on_train.mean(start), val_start)
    if not accepted:
        log.warning("%s: no learned solver beats the start %s on both the training and the validation pairs; "
                    "keeping the start", method, start_key)
        learned, carry_score = start, val_start
    meta = {
        "method": method, "base": base, "schedule": schedule, "nfe": nfe, "band": params.band,
        "model": fingerprint_of(model, tuple(teacher_data.noise.shape[1:]), teacher_data.cond,
                                teacher_data.noise.dtype, cfg.device),
        "teacher": spec.to_dict(), "num_samples": len(teacher_data), "seed": seed, "radius": cfg.radius,
        "distance": settings["distance"], "plan": recipe.plan(), "steps": steps, "strength": cfg.strength,
        "batch_size": cfg.batch_size, "accepted": accepted,
        "metrics": {"val_start": val_start, "val_best": carry_score, "ranked": ranked, "start_error": error},
        "seconds": round(time.perf_counter() - started, 2), "cost": cost.to_dict(),
    }
    log.info("%s nfe=%d: validation %.4g -> %.4g in %.1f s; cost %d model-evaluation units (%d learning, %d teacher)",
             method, nfe, val_start, carry_score, time.perf_counter() - started, meta["cost"]["units"],
             meta["cost"]["learn_units"], meta["cost"]["teacher_units"])
    if isinstance(params, GuidanceParams):
        params.load_state_dict(carry if accepted else start_state)
        meta["guidance"] = params.guidance.to_dict()
        return GuidanceSolver.from_params(params, candidates[start_key].grid, method, meta)  # type: ignore[return-value]
    return learned.with_(name=method, meta=meta)


def relative_error(on_val: Pairs, start: Any, groups: Tensor | None = None, floor: float = 1e-6) -> float:
    """The start's RMSE to the teacher over the teacher samples' RMS, on ``on_val`` (mean squared
    error pairs): the scale of the coefficients' steps. A coefficient of the last rows moves the
    sample by about its change times the data's scale, so the steps a coefficient needs follow
    the error there is to remove.

    With ``groups`` (``[len(on_val)]`` integer labels, e.g. each pair's training guidance scale),
    the geometric mean over the groups of each group's relative error: every group counts alike,
    as in a guidance-range learn's objective, so the groups whose errors are large (the top of a
    guidance range) do not set the step of all the others. Each figure is at least ``floor``;
    the result is 1 when the start's samples are not finite."""
    mse = on_val.each(start)
    samples = on_val.data.samples.detach().to("cpu", torch.float64)
    labels = torch.zeros(len(mse), dtype=torch.long) if groups is None else torch.as_tensor(groups).cpu()
    errors = []
    for label in labels.unique().tolist():
        mask = labels == label
        mean, rms = float(mse[mask].mean()), float(samples[mask].pow(2).mean().sqrt())
        if not (math.isfinite(mean) and rms > 0):
            return 1.0
        errors.append(max(floor, math.sqrt(mean) / rms))
    return math.prod(errors) ** (1 / len(errors))


def _detached(solver: Any) -> Any:
    """``solver`` (a :class:`Solver` or a :class:`ScaledSolver`) with its tensors cut from the
    autograd graph."""
    if isinstance(solver, ScaledSolver):
        return solver.detached()
    return solver.with_(sigmas=solver.sigmas.detach(), model_sigmas=solver.model_sigmas.detach(),
                        a=solver.a.detach(), b=solver.b.detach())
