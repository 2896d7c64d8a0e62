"""The ``s4s`` command line. Exit codes: 0 success, 1 failure, 2 usage error.

Subcommands: ``learn``, ``sample``, ``eval``, ``bench``, ``teacher``, ``zoo`` (and ``demo``).
``--model`` takes a zoo name, ``diffusers:PATH`` (a pipeline folder) or ``module:factory``
(a Python callable returning an :class:`s4s.Denoiser`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import signal
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch

from .learn.config import NUM_SAMPLES, TEACHER_NFE
from .teacher import TeacherSpec

log = logging.getLogger("s4s")


class UsageError(Exception):
    """A mistake in the command line or its inputs: one clear message, exit code 2."""


# ----------------------------------------------------------------------------- shared pieces


def _device(text: str) -> torch.device:
    """``--device``: ``cpu``, ``cuda``, ``cuda:1``, ``mps`` ...; refused when this machine lacks it."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"--device must name a torch device such as cpu, cuda or cuda:1, got {text!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {text}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {text}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {text}: s4s runs on cpu, cuda or mps")
    return device


def _guidance_arg(text: str) -> float | tuple[float, float]:
    """``--guidance W`` or ``--guidance LO:HI`` (a range, for ``s4s learn``)."""
    try:
        if ":" in text:
            lo, hi = (float(v) for v in text.split(":"))
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
                raise ValueError
            return (lo, hi)
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a scale W or a range LO:HI with 0 < LO < HI, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite scale, got {text!r}")
    return value


def _resolve_model(spec: str, guidance: float | tuple[float, float] | None = None, device: torch.device | None = None,
                   prompts: list[str] | None = None) -> Any:
    """The model named by ``--model``, its weights on ``device`` (analytic zoo models compute on
    their input's device; a ``module:factory`` model stays where its factory put it); a
    diffusers pipeline takes ``prompts`` and its ``guidance`` scale."""
    from . import zoo
    from .frame import Denoiser

    device = device or torch.device("cpu")
    neural = {"device": device} if spec.startswith("digits") else {}
    if isinstance(guidance, tuple):  # a range: the scale comes with each sample (s4s learn only)
        if spec == "digits":
            from .models import guided

            return guided(zoo.load("digits", **neural), None, uncond=torch.tensor(zoo.NULL_LABEL, device=device))
        if spec != "digits-sd3" and not spec.startswith("diffusers:"):
            raise UsageError("--guidance LO:HI (a range) is for guided models: the zoo's digits and digits-sd3, and "
                             "diffusers:PATH pipelines; give one scale W here")
    if prompts is not None and not spec.startswith("diffusers:"):
        raise UsageError("--prompt applies to diffusers:PATH models")
    if spec.startswith("diffusers:"):
        from .integrations.diffusers import from_diffusers, load_pipeline

        return from_diffusers(load_pipeline(spec[len("diffusers:"):]).to(device), prompts=prompts,
                              guidance_scale=guidance)
    elif ":" in spec:
        module, _, attr = spec.partition(":")
        if os.getcwd() not in sys.path:  # the folder the command runs from, as `python -m` has it
            sys.path.append(os.getcwd())
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise UsageError(f"cannot import {spec!r}: {e}") from None
        if not callable(factory):
            raise UsageError(f"{spec} is a {type(factory).__name__}, not a factory: name a function that takes no "
                             "arguments and returns an s4s.Denoiser")
        try:
            model = factory()
        except Exception as e:  # the user's code: report it, with its name, not as our traceback
            raise UsageError(f"the model factory {spec} raised {type(e).__name__}: {e}") from None
        if not isinstance(model, Denoiser):
            raise UsageError(f"{spec} returned {type(model).__name__}, expected an s4s.Denoiser")
    elif spec in zoo.names():
        if guidance is not None:
            if spec not in ("digits", "digits-sd3"):
                raise UsageError("--guidance applies to the conditional 'digits' and 'digits-sd3' models")
            return zoo.load(spec, guidance=guidance, **neural)
        model = zoo.load(spec, **neural)
    else:
        raise UsageError(f"unknown model {spec!r}: give a zoo name ({', '.join(zoo.names())}), "
                         "diffusers:PATH or module:factory")
    if guidance is not None:
        raise UsageError("--guidance needs a conditional model")
    return model


def _shape(model: Any, text: str | None) -> tuple[int, ...]:
    if text:
        try:
            return tuple(int(v) for v in text.split(","))
        except ValueError:
            raise UsageError(f"--shape must be comma-separated ints, got {text!r}") from None
    from .zoo import sample_shape

    try:
        return sample_shape(model)
    except ValueError as e:
        raise UsageError(f"{e}: pass --shape C,H,W") from None


MAX_SEEDS = 10_000_000
"""Most seeds one command takes (each is a sample held in memory)."""


def _seeds(text: str, option: str = "--seeds") -> list[int]:
    """``0-15`` or ``1,5,9`` (ranges inclusive), at most :data:`MAX_SEEDS` in all."""
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            span = (int(lo), int(hi) if sep else int(lo))
        except ValueError:
            raise UsageError(f"{option} must look like 0-15 or 1,5,9 (non-negative ints); got {text!r}") from None
        if span[0] > span[1]:
            raise UsageError(f"{option}: the range {part.strip()} is empty; write LO-HI with LO <= HI")
        spans.append(span)
    count = sum(hi - lo + 1 for lo, hi in spans)
    if count > MAX_SEEDS:
        raise UsageError(f"{option} names {count:,} seeds; at most {MAX_SEEDS:,} fit in one command")
    return [s for lo, hi in spans for s in range(lo, hi + 1)]


def _cond(args: argparse.Namespace, seeds: list[int], model: Any = None) -> Any:
    """The conditions of ``seeds``: a pipeline's prompts (``model.conditions``), the digit labels
    of guided ``digits``, the digit prompts of ``digits-sd3``, or ``None``."""
    if args.model == "digits-sd3":  # prompt "d" for seed s, d = s % 10 or --labels
        return model.conditions(seeds if args.labels is None else [args.labels] * len(seeds))
    if args.model.startswith("diffusers:") and hasattr(model, "conditions"):
        return model.conditions(seeds) if (args.prompt or args.guidance is not None) else None
    if getattr(args, "guidance", None) is None:
        return None
    return torch.tensor([s % 10 for s in seeds]) if args.labels is None else torch.full((len(seeds),), args.labels)


def _solver(args: argparse.Namespace, model: Any) -> Any:
    from . import load_solver, make_solver

    if args.solver and Path(args.solver).suffix == ".json":
        from .learn.guidance import is_guidance_solver_file, load_guidance_solver

        if not is_guidance_solver_file(args.solver):
            solver = load_solver(args.solver)
        else:
            if not isinstance(args.guidance, float):
                ranged = load_guidance_solver(args.solver).guidance
                raise UsageError(f"{args.solver} holds a solver for guidance scales {ranged.lo:g} to {ranged.hi:g}: "
                                 "pass --guidance W for one of them")
            try:
                solver = load_guidance_solver(args.solver).at(guidance=args.guidance)
            except ValueError as e:
                raise UsageError(f"--guidance: {e}") from None
        _check_fit(args, solver, model)
        return solver
    if not args.solver:
        raise UsageError("--solver needs a solver file (.json) or a hand-designed solver name")
    if args.nfe is None:
        raise UsageError(f"--solver {args.solver} needs --nfe")
    return make_solver(args.solver, args.nfe, args.schedule, model)


def _check_fit(args: argparse.Namespace, solver: Any, model: Any) -> None:
    """Warn (with ``--strict``: refuse) when a solver file was learned for another model, sample
    shape or noise range than the one given."""
    from .fingerprint import mismatches

    recorded = solver.meta.get("model")
    if not isinstance(recorded, dict):
        return
    found = mismatches(recorded, model, _shape(model, args.shape), device=args.device)
    if found:
        message = f"{args.solver} was learned for " + "; ".join(found)
        if args.strict:
            raise UsageError(message + " (--strict)")
        log.warning("%s: its samples may be far from this model's teacher (--strict refuses)", message)


def _version() -> str:
    from . import __version__

    return __version__


def _check_out(path: str, force: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """``--out``, checked before any work: a file (not a folder) in an existing folder this
    process may write, with one of ``suffixes``, not there already unless ``force``."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"--out {p} is a folder; name the file to write in it, e.g. {p / ('out' + (suffixes or ('',))[0])}")
    if suffixes and p.suffix not in suffixes:
        raise UsageError(f"--out must end in {' or '.join(suffixes)}, got {p.name!r}")
    if p.exists() and not force:
        raise UsageError(f"{p} exists; pass --force to overwrite it")
    parent = p.parent
    if not parent.exists():
        raise UsageError(f"--out {p}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"--out {p}: {parent} is not a folder")
    try:  # the one sure test of writability (permissions, read-only mounts, quotas)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".s4s-probe-"):
            pass
    except OSError as e:
        raise UsageError(f"--out {p}: cannot write in {parent} ({e.strerror or e})") from None
    return p


def _progress(total: int | None, label: str) -> Callable[..., None]:
    """A one-line progress bar on stderr when it is a terminal; ``update(done, note, total)``
    may correct the total (a learning run knows its length once its phases are planned)."""
    tty = sys.stderr.isatty()

    def update(done: int | None, note: str = "", total_now: int | None = None) -> None:
        nonlocal total
        total = total_now or total
        if not tty:
            return
        if done is None:
            sys.stderr.write("\n")
        else:
            width = 30
            fill = min(width, int(width * done / max(total or 1, 1)))
            sys.stderr.write(f"\r{label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {note}   ")
        sys.stderr.flush()

    return update


def _teacher_spec(args: argparse.Namespace) -> Any:
    from .schedules import SCHEDULES
    from .solvers import SOLVERS
    from .teacher import TeacherSpec

    if args.teacher_schedule not in SCHEDULES:
        raise UsageError(f"--teacher-schedule must be one of {', '.join(sorted(SCHEDULES))}; "
                         f"got {args.teacher_schedule!r}")
    if args.teacher == "dopri5":
        return TeacherSpec("dopri5")
    name, _, nfe = args.teacher.partition(":")
    nfe = nfe or str(TEACHER_NFE)
    if name not in SOLVERS or not nfe.isdigit() or not 1 <= int(nfe) <= 100_000:
        raise UsageError(f"--teacher must be SOLVER:NFE with SOLVER one of {', '.join(sorted(SOLVERS))} and NFE in "
                         f"1..100000 (e.g. unipc:{TEACHER_NFE}), or dopri5; got {args.teacher!r}")
    return TeacherSpec(name, int(nfe), args.teacher_schedule)


def _check_args(args: argparse.Namespace) -> None:
    """Every option that can be checked without the model, checked before any work starts."""
    def positive(option: str, value: Any, low: int = 1) -> None:
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is not None and v < low:
                raise UsageError(f"{option} must be at least {low}, got {v}")

    learns = hasattr(args, "method") or hasattr(args, "methods")  # learn, bench
    positive("--nfe", getattr(args, "nfe", None), 2 if learns else 1)
    positive("--num-samples", getattr(args, "num_samples", None), 4)
    positive("--iters", getattr(args, "iters", None))
    budget = getattr(args, "budget", None)
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise UsageError(f"--budget must be a positive multiple of the teacher's cost, got {budget}")
    strength = getattr(args, "strength", None)
    if strength is not None and not (math.isfinite(strength) and 0 < strength <= 1):
        raise UsageError(f"--strength must be in (0, 1], got {strength}")
    radius = getattr(args, "radius", None)
    if radius is not None and not 0 <= radius < 1:
        raise UsageError(f"--radius must be in [0, 1), got {radius}")
    if getattr(args, "seeds", None) is not None:
        _seeds(args.seeds)
    if isinstance(getattr(args, "guidance", None), tuple):
        if args.command != "learn":
            raise UsageError(f"--guidance LO:HI (a range) is for s4s learn; s4s {args.command} takes one scale W "
                             "(a range's solver file then gives its solver at W)")
        if getattr(args, "strength", 1.0) != 1.0 or getattr(args, "checkpoint", None):
            raise UsageError("--guidance LO:HI cannot be combined with --strength or --checkpoint yet")
    if getattr(args, "prompt", None) and not args.model.startswith("diffusers:"):
        raise UsageError("--prompt applies to diffusers:PATH models")
    if getattr(args, "labels", None) is not None:
        if getattr(args, "guidance", None) is None and args.model != "digits-sd3":
            raise UsageError("--labels chooses the class of a guided model: it needs --guidance")
        if not 0 <= args.labels <= 9:
            raise UsageError(f"--labels must be a digit class 0..9, got {args.labels}")
    if getattr(args, "shape", None):
        try:
            dims = [int(v) for v in args.shape.split(",")]
        except ValueError:
            dims = []
        if not dims or min(dims) < 1:
            raise UsageError(f"--shape must be comma-separated positive ints such as 1,8,8; got {args.shape!r}")
    if getattr(args, "teacher", None) is not None:
        _teacher_spec(args)
    solver = getattr(args, "solver", None)
    if solver and Path(solver).suffix == ".json":
        if not Path(solver).exists():
            raise UsageError(f"--solver: no solver file at {solver}")
        if not Path(solver).is_file():
            raise UsageError(f"--solver: {solver} is not a regular file (a folder, a device or a pipe?)")
    elif solver:
        from .schedules import SCHEDULES, split_zero
        from .solvers import SOLVERS

        if solver not in SOLVERS:
            raise UsageError(f"--solver must be a solver file (.json) or one of {sorted(SOLVERS)}, got {solver!r}")
        if split_zero(args.schedule)[0] not in SCHEDULES:
            raise UsageError(f"--schedule must be one of {sorted(SCHEDULES)} (optionally +zero), got {args.schedule!r}")


def _learn_config(args: argparse.Namespace, **options: Any) -> Any:
    """The ``LearnConfig`` of a command's options (``options``: a command's own)."""
    from .learn import LearnConfig, StepBudget

    return LearnConfig(teacher=_teacher_spec(args), iters=args.iters, budget=StepBudget(args.budget),
                       device=args.device, cache_dir=args.cache, parallel=False if args.in_turn else None, **options)


def _check_budget(model: Any, nfe: int, method: str, num_samples: int, config: Any) -> None:
    """Refuse, before the teacher is made, a --budget that buys no optimisation step."""
    from .learn import planned_steps

    try:
        planned_steps(model, nfe, method, num_samples, config)
    except ValueError as e:
        raise UsageError(f"--budget: {e}") from None


def _generate(model: Any, args: argparse.Namespace, seeds: list[int], label: str) -> Any:
    from .teacher import generate_teacher

    bar = _progress(len(seeds), label)
    try:
        return generate_teacher(model, seeds, _shape(model, args.shape), _teacher_spec(args),
                                cond=_cond(args, seeds, model), device=args.device, cache_dir=args.cache, progress=lambda done, total: bar(done),
                                parallel=False if getattr(args, "in_turn", False) else None)
    finally:
        bar(None)


def _evaluate(model: Any, solver: Any, data: Any, digits: bool) -> dict[str, float]:
    from . import metrics

    with torch.no_grad():
        x = solver.sample(model, data.noise, data.cond).cpu()
    out = {"rmse": metrics.rmse(x, data.samples.cpu()), "rmse_se": metrics.rmse_se(x, data.samples.cpu())}
    if digits:  # on images: a latent model's (digits-sd3) decoded first
        decode = getattr(model, "decode", None)
        with torch.no_grad():
            out["fd_digits"] = metrics.fd_digits(x if decode is None else decode(x.to(data.noise.device)).cpu())
    return out


# ----------------------------------------------------------------------------- subcommands


def _start(start: str | None) -> tuple[str | None, str | None]:
    """``(base, schedule)`` of ``--start BASE/SCHEDULE`` (``(None, None)``: the learner chooses)."""
    from .learn import parse_start

    try:
        return (None, None) if start is None else parse_start(start)
    except ValueError as e:
        raise UsageError(f"--start: {e}") from None


def cmd_learn(args: argparse.Namespace) -> None:
    from . import learn
    from .learn import parse_plan

    out = _check_out(args.out, args.force, (".json",))
    if args.plan is not None:
        try:
            parse_plan(args.plan)  # a bad plan is refused before the teacher is made
        except ValueError as e:
            raise UsageError(f"--plan: {e}") from None
    base, schedule = _start(args.start)
    model = _resolve_model(args.model, args.guidance, args.device, args.prompt)
    ranged = isinstance(args.guidance, tuple)
    config = _learn_config(args, base=base, schedule=schedule, plan=args.plan, radius=args.radius, strength=args.strength,
                           distance=args.distance, checkpointing=args.checkpointing,
                           guidance=args.guidance if ranged else None)
    _check_budget(model, args.nfe, args.method, args.num_samples, config)
    seeds = list(range(args.num_samples))
    # image-to-image pairs (noised samples of the model's own) and a guidance range's pairs (spread
    # over its scales) are made by the learner itself
    data = _generate(model, args, seeds, "teacher") if args.strength == 1 and not ranged else None
    bar = _progress(None, f"learn {args.method}")
    try:
        solver = learn(model, args.nfe, method=args.method, num_samples=args.num_samples, seed=args.seed,
                       teacher_data=data, config=config,
                       cond=partial(_cond, args, model=model), checkpoint=args.checkpoint,
                       callback=lambda e: bar(e.iteration, f"best validation {e.best:.4g}", e.total))
    finally:
        bar(None)
    from . import distributed

    if not distributed.is_main():  # rank 0 writes and reports
        return
    solver.save(out)
    m = solver.meta["metrics"]
    c = solver.meta["cost"]
    print(f"{args.method} nfe={args.nfe} from {solver.meta['base']}/{solver.meta['schedule']}: "
          f"validation mean squared error {m['val_start']:.4g} -> {m['val_best']:.4g}; cost {c['units']:,} "
          f"model-evaluation units "
          f"({c['learn_units']:,} learning, {c['teacher_units']:,} teacher pairs; a row with autograd counts 3) "
          f"in {c['seconds']:.0f} s; wrote {out}" + (f" (guidance scales {args.guidance[0]:g} to {args.guidance[1]:g}: "
                                                   "use it with --guidance W)" if ranged else ""))


def cmd_sample(args: argparse.Namespace) -> None:
    from .noise import seeded_noise

    out = _check_out(args.out, args.force, (".png", ".safetensors"))
    model = _resolve_model(args.model, args.guidance, args.device, args.prompt)
    seeds = _seeds(args.seeds)
    shape = _shape(model, args.shape)
    solver = _solver(args, model)
    if out.suffix == ".png" and len(shape) not in (2, 3):
        raise UsageError(f"a PNG grid needs image samples [C, H, W] or [H, W]; this model's are {shape}: "
                         "write --out FILE.safetensors")
    noise = seeded_noise(seeds, shape, device=args.device)
    cond = _cond(args, seeds, model)
    from .conds import to_device

    with torch.no_grad():
        x = solver.sample(model, noise, None if cond is None else to_device(cond, args.device)).cpu()
    if out.suffix == ".png":
        from .viz import save_grid

        decode = getattr(model, "decode", None)  # a latent model's PNG shows its decoded images
        if decode is not None:
            with torch.no_grad():
                x = decode(x.to(args.device)).cpu()
        save_grid({f"{solver.name} {solver.nfe} NFE": x}, out)
    else:  # .safetensors (_check_out admits no other suffix)
        from safetensors.torch import save_file

        from ._atomic import atomic_path

        with atomic_path(out) as tmp:
            save_file({"samples": x.contiguous(), "seeds": torch.tensor(seeds)}, str(tmp),
                      metadata={"solver": solver.name, "nfe": str(solver.nfe), "model": args.model,
                                "seeds": args.seeds, "s4s": _version()})
    print(f"{len(seeds)} samples with {solver.name} ({solver.nfe} NFE) -> {out}")


def cmd_eval(args: argparse.Namespace) -> None:
    from . import make_solver
    from .learn import CANDIDATE_SOLVERS
    from .teacher import teacher_gap

    model = _resolve_model(args.model, args.guidance, args.device, args.prompt)
    solver = _solver(args, model)
    data = _generate(model, args, _seeds(args.seeds), "teacher")
    digits = args.model.startswith("digits")
    res = _evaluate(model, solver, data, digits)
    hand = {f"{b}/{g}": _evaluate(model, make_solver(b, solver.nfe, g, model), data, False)["rmse"]
            for b in CANDIDATE_SOLVERS for g in ("karras", "logsnr")}
    best = min(hand, key=hand.__getitem__)
    out = {"solver": solver.name, "nfe": solver.nfe, "seeds": args.seeds, **res,
           "best_hand_designed": {"solver": best, "rmse": hand[best]}, "ratio_to_best_hand": res["rmse"] / hand[best],
           "teacher_gap_rmse": teacher_gap(model, data, _teacher_spec(args))}
    if isinstance(solver.meta.get("cost"), dict):
        out["learn_cost_units"] = solver.meta["cost"].get("units")
    print(json.dumps(out))
    print(f"RMSE to the teacher {res['rmse']:.4g} +- {res['rmse_se']:.2g} (standard error over {len(data)} seeds); "
          f"best hand-designed at {solver.nfe} NFE ({best}) {hand[best]:.4g}, ratio {out['ratio_to_best_hand']:.2f}; "
          f"the teacher's own error (RMSE to a 2x-finer teacher) {out['teacher_gap_rmse']:.2g}", file=sys.stderr)


def cmd_teacher(args: argparse.Namespace) -> None:
    if not args.cache:
        raise UsageError("s4s teacher writes a cache: pass --cache DIR")
    from .teacher import teacher_gap

    model = _resolve_model(args.model, args.guidance, args.device, args.prompt)
    data = _generate(model, args, _seeds(args.seeds), "teacher")
    gap = teacher_gap(model, data, _teacher_spec(args))
    from . import distributed

    if distributed.is_main():
        print(f"{len(data)} teacher samples in {args.cache}; RMSE to a 2x-finer teacher: {gap:.3g}")


def cmd_bench(args: argparse.Namespace) -> None:
    from . import learn, make_solver
    from .learn import CANDIDATE_SOLVERS

    model = _resolve_model(args.model, args.guidance, args.device, args.prompt)
    for nfe in args.nfe:
        for method in args.methods:
            _check_budget(model, nfe, method, args.num_samples, _learn_config(args))
    train = _generate(model, args, list(range(args.num_samples)), "teacher (learning)")
    held = _generate(model, args, _seeds(args.seeds), "teacher (held out)")
    digits = args.model.startswith("digits")
    rows = []
    for nfe in args.nfe:
        hand = {}
        for b in CANDIDATE_SOLVERS:
            for g in ("karras", "logsnr"):
                hand[f"{b}/{g}"] = _evaluate(model, make_solver(b, nfe, g, model), held, digits)
        best = min(hand, key=lambda k: hand[k]["rmse"])
        row: dict[str, Any] = {"nfe": nfe, "best hand-designed": best, "hand": hand[best]}
        for method in args.methods:
            solver = learn(model, nfe, method=method, seed=args.seed, teacher_data=train, config=_learn_config(args),
                           cond=partial(_cond, args, model=model))
            row[method] = _evaluate(model, solver, held, digits)
        rows.append(row)
        print(json.dumps(row), flush=True)


def cmd_zoo_list(args: argparse.Namespace) -> None:
    from . import zoo

    for name in zoo.names():
        print(name)


def cmd_zoo_train(args: argparse.Namespace) -> None:
    from .zoo.train import RECIPES, train

    if args.name not in RECIPES:
        raise UsageError(f"no training recipe for {args.name!r}; choose one of {sorted(RECIPES)}")
    bar = _progress(args.steps or RECIPES[args.name].steps, f"train {args.name}")
    try:
        train(args.name, Path(args.out) if args.out else None, seed=args.seed, steps=args.steps,
              progress=lambda i, loss: bar(i + 1, f"loss {loss:.4f}") if i % 10 == 0 else None)
    finally:
        bar(None)


def cmd_comfyui_install(args: argparse.Namespace) -> None:
    from .integrations.comfyui import install, solver_dir

    path = install(args.path, force=args.force)
    print(f"wrote {path}; restart ComfyUI (s4s must be installed in its Python) and find the S4S nodes under "
          f"sampling/s4s; solver files are read from and written to {solver_dir()} ($S4S_COMFYUI_SOLVERS)")


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(Path(args.out), nfe=args.nfe, num_samples=args.num_samples, force=args.force)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s4s", description="Learned few-step solvers for diffusion and flow models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser, teacher: bool = True, teacher_nfe: int = TEACHER_NFE) -> None:
        p.add_argument("--model", required=True, help="zoo name, diffusers:PATH or module:factory")
        p.add_argument("--guidance", type=_guidance_arg, default=None,
                       help="classifier-free guidance scale (digits, digits-sd3, or a diffusers pipeline's "
                            "guidance_scale); `s4s learn --guidance LO:HI` learns one solver for every scale in "
                            "the range (digits, digits-sd3, a diffusers pipeline with classifier-free guidance)")
        p.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                       help="a diffusers pipeline's prompt; repeat it for several (seed s takes prompt s %% count; "
                            "default: the empty prompt)")
        p.add_argument("--labels", type=int, default=None, help="class for every sample (default: seed %% 10)")
        p.add_argument("--shape", help="one sample's shape, e.g. 1,8,8 (zoo models know theirs)")
        p.add_argument("--device", default="cpu",
                       help="where the model, teacher and learning run: cpu, cuda, cuda:1, mps (default cpu; "
                            "with --distributed, cuda means each rank's own GPU)")
        if teacher:
            p.add_argument("--teacher", default=f"unipc:{teacher_nfe}",
                           help=f"SOLVER:NFE or dopri5 (default unipc:{teacher_nfe})")
            p.add_argument("--teacher-schedule", default="karras")
            p.add_argument("--cache", help="teacher cache folder (resumable)")
            p.add_argument("--distributed", action="store_true",
                           help="run under torchrun: split teacher shards and minibatches over the ranks (gloo)")

    def learn_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--budget", type=float, default=2.0, metavar="X",
                       help="learning budget: X times the teacher pairs' model evaluations (default 2; a row with "
                            "autograd counts 3)")
        p.add_argument("--iters", type=int, help="optimisation steps in all, instead of what --budget buys")
        p.add_argument("--in-turn", action="store_true",
                       help="make teacher shards in turn, not side by side on CPU threads (for a model that two "
                            "threads may not call at once)")

    def solver_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--solver", required=True, help="a solver file (.json) or a hand-designed solver name")
        p.add_argument("--strict", action="store_true",
                       help="refuse a solver file learned for another model, sample shape or noise range "
                            "(default: a warning)")
        p.add_argument("--nfe", type=int, help="NFE for a hand-designed solver (a solver file knows its own)")
        p.add_argument("--schedule", default="karras", help="grid for a hand-designed solver")

    p = sub.add_parser("learn", help="learn a solver and write its file")
    model_args(p)
    p.add_argument("--nfe", type=int, required=True, help="model evaluations per sample of the learned solver")
    p.add_argument("--method", default="s4s_alt", choices=["s4s", "s4s_alt", "ld3", "joint"],
                   help="what is learned (default s4s_alt: coefficients and time steps)")
    p.add_argument("--num-samples", type=int, default=NUM_SAMPLES,
                   help=f"teacher pairs to learn from, seeds 0..N-1 (default {NUM_SAMPLES}, at least 4)")
    learn_args(p)
    p.add_argument("--plan", help="optimisation phases replacing the method's, as part[:share][@start][*lr] items, "
                                  "e.g. 'joint:3,coef:1' or 'grid:1@start,joint:1@start,joint:6*0.4' (parts: grid, "
                                  "coef, joint, same; @start: from the start; *lr: a factor on the step size)")
    p.add_argument("--radius", type=float, default=0.0, help="relaxed objective radius (0 = plain)")
    p.add_argument("--strength", type=float, default=1.0, metavar="S",
                   help="learn for image-to-image: start where an img2img pipeline with strength S starts "
                        "(default 1: from noise)")
    p.add_argument("--start", metavar="BASE/SCHEDULE",
                   help="start from this hand-designed solver, e.g. deis/logsnr, instead of the best candidate on "
                        "the teacher pairs (the start can decide the basin: experiments/LOG.md, 'Starting points')")
    p.add_argument("--distance", default="l2", choices=["l2", "l1", "pseudo_huber"])
    p.add_argument("--seed", type=int, default=0, help="fixes the train/validation split and the result (default 0)")
    p.add_argument("--out", required=True, help="solver file to write (.json)")
    p.add_argument("--checkpoint", help="save progress here and resume from it if it exists")
    p.add_argument("--checkpointing", action="store_true",
                   help="activation checkpointing per solver step (memory flat in NFE, ~1 extra forward)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(func=cmd_learn)

    p = sub.add_parser("sample", help="sample with a solver; write a PNG grid or safetensors")
    model_args(p, teacher=False)
    solver_args(p)
    p.add_argument("--seeds", default="0-15", help="noise seeds, e.g. 0-15 or 1,5,9 (default 0-15)")
    p.add_argument("--out", required=True, help=".png or .safetensors")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="RMSE to the teacher (with its standard error; FD-digits on digits models) of a "
                                    "solver on given seeds, against the best hand-designed solver at its NFE")
    model_args(p, teacher_nfe=TeacherSpec().nfe)  # the reference teacher, whatever teacher learn learns from
    solver_args(p)
    p.add_argument("--seeds", default="1000000-1000499",
                   help="held-out seeds to evaluate on (default 1000000-1000499)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("teacher", help="generate (or resume) a teacher cache")
    model_args(p)
    p.add_argument("--seeds", default=f"0-{NUM_SAMPLES - 1}",
                   help=f"seeds of the teacher pairs (default 0-{NUM_SAMPLES - 1}, what learn uses)")
    p.set_defaults(func=cmd_teacher)

    p = sub.add_parser("bench", help="best hand-designed against learned solvers, per NFE")
    model_args(p)
    p.add_argument("--nfe", type=int, nargs="+", default=[4, 5, 6])
    p.add_argument("--methods", nargs="+", default=["s4s_alt"], choices=["s4s", "s4s_alt", "ld3", "joint"])
    p.add_argument("--num-samples", type=int, default=NUM_SAMPLES)
    learn_args(p)
    p.add_argument("--seeds", default="1000000-1000499", help="held-out evaluation seeds")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_bench)

    zoo = sub.add_parser("zoo", help="bundled models: list them, or train one").add_subparsers(dest="zoo_command", required=True)
    p = zoo.add_parser("list", help="names of the bundled models")
    p.set_defaults(func=cmd_zoo_list)
    p = zoo.add_parser("train", help="train a zoo model with its fixed recipe (writes safetensors weights)")
    p.add_argument("name", help="digits, digits-ddpm, digits-flow or classifier")
    p.add_argument("--out", help="folder for the weights (default: the package's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    p.set_defaults(func=cmd_zoo_train)

    comfy = sub.add_parser("comfyui", help="ComfyUI nodes").add_subparsers(dest="comfyui_command", required=True)
    p = comfy.add_parser("install", help="write the s4s nodes' loader into a ComfyUI folder's custom_nodes")
    p.add_argument("path", help="the ComfyUI folder (or its custom_nodes folder)")
    p.add_argument("--force", action="store_true", help="replace another file at custom_nodes/comfyui-s4s/__init__.py")
    p.set_defaults(func=cmd_comfyui_install)

    p = sub.add_parser("demo", help="the main job: learn S4S-Alt for digits and compare (writes docs/ files)")
    p.add_argument("--out", default="docs")
    p.add_argument("--nfe", type=int, default=5)
    p.add_argument("--num-samples", type=int, default=NUM_SAMPLES)
    p.add_argument("--force", action="store_true", help="overwrite an existing solver file in --out")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        if hasattr(args, "device"):
            args.device = _device(args.device)
        if getattr(args, "distributed", False):
            from . import distributed

            if "WORLD_SIZE" not in os.environ:
                raise UsageError("--distributed runs under torchrun: torchrun --nproc_per_node=N -m s4s.cli ...")
            args.device = distributed.init(args.device)  # cuda: this rank's GPU, NCCL; cpu: gloo
        _check_args(args)
        args.func(args)
    except UsageError as e:
        print(f"s4s: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while we report is not an abort
        hint = ""
        if args.command in ("learn", "teacher", "eval", "bench"):
            hint = ("; teacher pairs already made are kept in --cache (when given), and a learn with --checkpoint "
                    "FILE resumes from FILE when run again")
        print(f"s4s: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line for the user; --debug shows where
        if args.debug:
            raise
        known = isinstance(e, (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError))
        print(f"s4s: error: {e if known else f'{type(e).__name__}: {e}'} (--debug shows the traceback)",
              file=sys.stderr)
        return 1
    return 0


def entry() -> None:
    """The ``s4s`` command: :func:`main`, then the exit. After an interrupt, jobs still running on
    other threads (teacher shards side by side) are not waited for: the process ends at once
    with 130 (files are written atomically, so nothing half-written is left), where a normal
    exit would tear down PyTorch's thread pools under them and abort."""
    code = main()
    if code == 130 and threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    entry()
