"""Teacher data: per-seed noise, conditions, and accurate ODE solutions, cached on disk.

The teacher is any core solver at high NFE, or adaptive dopri5 (torchdiffeq) in
``u = log sigma``, where the probability-flow ODE reads ``dx/du = x - D(x, e^u)``.
A cache is a folder of safetensors shards (one per seed block) and a JSON manifest with
each shard's SHA-256: interrupted runs resume, and a damaged shard is regenerated alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from . import conds, distributed
from ._atomic import atomic_path, write_text_atomic
from ._json import parse_json
from ._threads import run_jobs
from .frame import Denoiser
from .conds import Cond
from .fingerprint import model_probe
from .noise import seeded_noise
from .solvers import make_solver

__all__ = ["TeacherSpec", "TeacherData", "generate_teacher", "generate_img2img_teacher", "IMAGE_SEEDS",
           "teacher_gap"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherSpec:
    """How teacher samples are made: ``solver`` at ``nfe`` on ``schedule``, or ``solver="dopri5"``."""

    solver: str = "unipc"
    nfe: int = 200
    schedule: str = "karras"
    options: dict[str, Any] = field(default_factory=dict)
    rtol: float = 1e-5
    atol: float = 1e-5

    def __post_init__(self) -> None:
        from .schedules import SCHEDULES
        from .solvers import SOLVERS

        if self.solver != "dopri5" and self.solver not in SOLVERS:
            raise ValueError(f"unknown teacher solver {self.solver!r}; choose dopri5 or one of {sorted(SOLVERS)}")
        if isinstance(self.nfe, bool) or not isinstance(self.nfe, int) or not 1 <= self.nfe <= 100_000:
            raise ValueError(f"teacher nfe must be an int in [1, 100000], got {self.nfe!r}")
        if not isinstance(self.schedule, str) or self.schedule not in SCHEDULES:
            raise ValueError(f"unknown teacher schedule {self.schedule!r}; choose one of {sorted(SCHEDULES)}")
        if not isinstance(self.options, dict):
            raise ValueError(f"teacher options must be a dict, got {type(self.options).__name__}")
        for key in ("rtol", "atol"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1e-12 <= value <= 1:
                raise ValueError(f"teacher {key} must be a number in [1e-12, 1], got {value!r}")

    def finer(self) -> "TeacherSpec":
        """The same teacher with twice the work (2x NFE, or 10x tighter tolerances)."""
        if self.solver == "dopri5":
            return TeacherSpec("dopri5", rtol=max(self.rtol / 10, 1e-12), atol=max(self.atol / 10, 1e-12))
        return TeacherSpec(self.solver, 2 * self.nfe, self.schedule, dict(self.options))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.solver != "dopri5":
            d.pop("rtol"), d.pop("atol")
        return d

    def sampler(self, model: Denoiser) -> Callable[[Tensor, Any], Tensor]:
        """``(noise, cond) -> sample``."""
        if self.solver == "dopri5":
            return lambda noise, cond: _dopri5(model, noise, cond, self.rtol, self.atol)
        solver = make_solver(self.solver, self.nfe, self.schedule, model, **self.options)
        return lambda noise, cond: solver.sample(model, noise, cond)


def _dopri5(model: Denoiser, noise: Tensor, cond: Any, rtol: float, atol: float) -> Tensor:
    try:
        from torchdiffeq import odeint
    except ImportError as e:
        raise ImportError("the dopri5 teacher needs torchdiffeq: pip install torchdiffeq") from e
    u0, u1 = torch.log(torch.tensor(model.sigma_max)), torch.log(torch.tensor(model.sigma_min))
    batch = noise.shape[0]

    def rhs(u: Tensor, x: Tensor) -> Tensor:
        sigma = torch.exp(u).to(x.dtype).expand(batch)
        return x - (model(x, sigma) if cond is None else model(x, sigma, cond))

    t = torch.stack([u0, u1]).to(noise.dtype)
    return odeint(rhs, noise * model.sigma_max, t, method="dopri5", rtol=rtol, atol=atol)[-1]


@dataclass
class TeacherData:
    """Aligned per-seed tensors: ``noise[N, ...]``, ``samples[N, ...]``, optional conditions
    ``cond`` with ``N`` rows (a tensor, or a tuple or dict of tensors: :mod:`s4s.conds`)."""

    seeds: list[int]
    noise: Tensor
    samples: Tensor
    cond: Cond | None = None

    def __len__(self) -> int:
        return len(self.seeds)

    def subset(self, idx: Sequence[int] | Tensor) -> "TeacherData":
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        return TeacherData([self.seeds[int(i)] for i in idx_t], self.noise[idx_t], self.samples[idx_t],
                           None if self.cond is None else conds.take(self.cond, idx_t))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_manifest(path: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """The cache manifest at ``path``, or ``fresh`` when it is missing or malformed (its shards
    are then regenerated: a damaged manifest costs time, never a wrong sample)."""
    if not path.exists():
        return fresh
    try:
        manifest = parse_json(path.read_bytes(), str(path))
        shards = manifest["shards"]
        ok = isinstance(shards, dict) and all(
            isinstance(e, dict) and isinstance(e.get("sha256"), str) and isinstance(e.get("seeds"), list)
            for e in shards.values())
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        ok = False
    if not ok:
        log.warning("teacher cache: manifest %s is malformed; regenerating its shards", path)
        return fresh
    return manifest


def _cache_key(model: Denoiser, spec: TeacherSpec, shape: tuple[int, ...], dtype: torch.dtype, cond: Cond | None,
               device: torch.device | str = "cpu", noise: Tensor | None = None) -> str:
    ident: dict[str, Any] = {"model": model.name, "sigma": [model.sigma_min, model.sigma_max], "teacher": spec.to_dict(),
             "shape": list(shape), "dtype": str(dtype), "probe": model_probe(model, shape, cond, dtype, device),
             "cond": None if cond is None else conds.digest(cond)}
    if noise is not None:  # a given start (image-to-image); seeded noise keeps the keys it had
        ident["noise"] = conds.digest(noise)
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def generate_teacher(
    model: Denoiser,
    seeds: Sequence[int],
    shape: tuple[int, ...],
    spec: TeacherSpec = TeacherSpec(),
    *,
    cond: Cond | None = None,
    batch_size: int = 256,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    parallel: bool | None = None,
    noise: Tensor | None = None,
) -> TeacherData:
    """Teacher samples for ``seeds`` (noise from :func:`s4s.noise.seeded_noise`).

    ``cond[i]`` is the condition of ``seeds[i]``. With ``cache_dir``, shards of
    ``batch_size`` seeds are stored and reused (a shard whose checksum fails is regenerated).
    Under ``torch.distributed`` shard ``i`` is made by rank ``i % world``, every rank returns
    all samples, and rank 0 writes the manifest (the cache folder must be shared by the ranks).
    With ``parallel`` (by default on a CPU in one process) shards are made side by side on
    threads, the torch threads shared out (:func:`s4s.learn`'s ``parallel``); on this
    project's CPU a shard's samples are the same bits either way (``tests/test_threads.py``).
    ``noise`` (``[len(seeds), *shape]``) replaces the seeded noise (the start is then
    ``model.sigma_max * noise``; its digest joins the cache key): :func:`generate_img2img_teacher`.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("need at least one seed")
    if cond is not None:
        conds.check(cond, len(seeds))
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sampler = spec.sampler(model)
    given = noise
    if given is not None and tuple(given.shape) != (len(seeds), *shape):
        raise ValueError(f"noise has shape {tuple(given.shape)}, expected {(len(seeds), *shape)}")
    noise = seeded_noise(seeds, shape, dtype=dtype, device=device) if given is None else given.to(device, dtype)
    cond_dev = None if cond is None else conds.to_device(cond, device)
    folder = manifest = None
    if cache_dir is not None:
        folder = Path(cache_dir) / _cache_key(model, spec, shape, dtype, cond, device, given)
        folder.mkdir(parents=True, exist_ok=True)
        mpath = folder / "manifest.json"
        manifest = _read_manifest(mpath, {"teacher": spec.to_dict(), "model": model.name, "shards": {}})

    from safetensors.torch import load_file, save_file

    rank, world = distributed.rank(), distributed.world_size()
    samples = torch.zeros((len(seeds), *shape), dtype=dtype, device=device)
    starts = list(range(0, len(seeds), batch_size))
    lock = threading.Lock()  # shards made side by side write the manifest and report progress in turn

    def shard(start: int) -> None:
        block = seeds[start:start + batch_size]
        name = _shard_name(block)
        out = None
        if folder is not None and manifest is not None:
            entry = manifest["shards"].get(name)
            path = folder / name
            if entry and path.exists() and _sha256(path) == entry["sha256"] and entry["seeds"] == block:
                out = load_file(str(path))["samples"].to(device=device, dtype=dtype)
            elif entry:
                log.warning("teacher cache: shard %s is missing or damaged; regenerating it", name)
        if out is None:
            with torch.no_grad():
                c = None if cond_dev is None else conds.take(cond_dev, slice(start, start + len(block)))
                out = sampler(noise[start:start + len(block)], c).to(dtype)
            if folder is not None and manifest is not None:
                path = folder / name
                with atomic_path(path) as tmp:
                    save_file({"samples": out.detach().cpu().contiguous()}, str(tmp))
                if world == 1:  # progress is recorded shard by shard (resumable)
                    with lock:
                        manifest["shards"][name] = {"seeds": block, "sha256": _sha256(path)}
                        _write_manifest(folder, manifest)
        samples[start:start + len(block)] = out
        if progress is not None:
            with lock:
                done[0] += len(block)
                progress(done[0], len(seeds))

    done = [0]
    side_by_side = world == 1 and torch.device(device).type == "cpu" if parallel is None else parallel
    run_jobs([partial(shard, start) for i, start in enumerate(starts) if i % world == rank], side_by_side)
    if world > 1:
        distributed.all_reduce_sum(samples)  # each entry is non-zero on one rank only: exact
        if folder is not None and manifest is not None:
            distributed.barrier()  # every rank's shards are on disk
            if distributed.is_main():
                for start in starts:
                    block = seeds[start:start + batch_size]
                    manifest["shards"][_shard_name(block)] = {"seeds": block, "sha256": _sha256(folder / _shard_name(block))}
                _write_manifest(folder, manifest)
            distributed.barrier()
    return TeacherData(seeds, noise, samples, cond_dev)  # every tensor on ``device``


IMAGE_SEEDS = 10**9
"""Image-to-image pairs take their input images from the model's own samples of the seeds
shifted by this much (so images and noise are independent of the pairs' own seeds)."""


def generate_img2img_teacher(
    model: Denoiser,
    seeds: Sequence[int],
    shape: tuple[int, ...],
    spec: TeacherSpec,
    strength: float,
    *,
    cond: Cond | None = None,
    images: Tensor | None = None,
    **options: Any,
) -> TeacherData:
    """Teacher pairs that start where image-to-image with ``strength`` starts: for each seed the
    start ``x = image + sigma_s n`` (``sigma_s = strength_level(model, strength)``, ``n`` the
    seed's noise, ``image`` the model's own teacher sample for seed ``IMAGE_SEEDS + seed``
    unless ``images`` are given), stored as the noise ``x / sigma_s`` of
    ``partial_denoising(model, strength)``, with the teacher's solution from there. ``options``
    go to :func:`generate_teacher` (``dtype``, ``device``, ``cache_dir``, ...)."""
    from .models import partial_denoising

    view = partial_denoising(model, strength)
    seeds = list(seeds)
    if images is None:
        images = generate_teacher(model, [IMAGE_SEEDS + s for s in seeds], shape, spec, cond=cond, **options).samples
    if tuple(images.shape) != (len(seeds), *shape):
        raise ValueError(f"images have shape {tuple(images.shape)}, expected {(len(seeds), *shape)}")
    n = seeded_noise(seeds, shape, dtype=images.dtype, device=images.device)
    return generate_teacher(view, seeds, shape, spec, cond=cond, noise=images / view.sigma_max + n, **options)


def _shard_name(block: list[int]) -> str:
    return f"seeds-{block[0]}-{block[-1]}-{len(block)}.safetensors"


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))


def teacher_gap(model: Denoiser, data: TeacherData, spec: TeacherSpec, count: int = 64) -> float:
    """RMSE between the teacher and a 2x-finer teacher on the first ``count`` samples."""
    sub = data.subset(range(min(count, len(data))))
    with torch.no_grad():
        finer = spec.finer().sampler(model)(sub.noise, sub.cond)
    return float((finer.double() - sub.samples.double()).pow(2).mean().sqrt())
