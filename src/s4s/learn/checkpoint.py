"""Learning checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is one safetensors file (tensors: solver parameters, the best state so far, the
optimizer's moments, the relaxation shifts, the minibatch generator's state) with JSON
metadata (where the run stands, the scheduler's counters and a fingerprint of the run's
settings and teacher data). It is written atomically, read without pickle, and refused with a
clear message when it belongs to a different run. Resuming from it gives the same solver as
an uninterrupted run with the same seed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from .._atomic import atomic_path
from .._json import parse_json

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "fingerprint"]

FORMAT = "s4s-learn-checkpoint"
VERSION = 2  # 2: best_val became best_score (the selection score)


@dataclass
class Checkpoint:
    """The state of a learning run at the top of iteration ``iteration`` of phase ``phase``.

    ``iteration == 0`` means the phase starts afresh (new optimizer); ``phase == len(phases)``
    means the run's phases are done and ``best_state`` is their result. A second try
    (``learn(retry_warmup=...)``) numbers its phases on from ``len(phases)``.
    """

    fingerprint: str
    phase: int
    iteration: int
    done: int
    best_score: float
    scores: dict[str, float]
    params: dict[str, Tensor]
    best_state: dict[str, Tensor]
    generator: Tensor
    shift: Tensor | None = None
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fingerprint(settings: dict[str, Any], *tensors: Tensor) -> str:
    """A digest of a run's settings and data: a checkpoint only resumes the run that wrote it."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"opt.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically (safetensors + JSON metadata)."""
    from safetensors.torch import save_file

    tensors = {f"params.{k}": v.detach().cpu().contiguous() for k, v in ckpt.params.items()}
    tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in ckpt.best_state.items()})
    tensors["generator"] = ckpt.generator.cpu().contiguous()
    if ckpt.shift is not None:
        tensors["shift"] = ckpt.shift.detach().cpu().contiguous()
    opt_meta = None
    if ckpt.optimizer is not None:
        opt_tensors, opt_meta = _split_optimizer(ckpt.optimizer)
        tensors.update(opt_tensors)
    meta = {"format": FORMAT, "version": VERSION, "fingerprint": ckpt.fingerprint, "phase": ckpt.phase,
            "iteration": ckpt.iteration, "done": ckpt.done, "best_score": ckpt.best_score, "scores": ckpt.scores,
            "optimizer": opt_meta, "scheduler": ckpt.scheduler, "extra": ckpt.extra}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"s4s": json.dumps(meta)})


def _fail(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: not a usable s4s learning checkpoint: {why}")


def load_checkpoint(path: str | os.PathLike[str], expected_fingerprint: str) -> Checkpoint:
    """Read a checkpoint; refuses damaged files and checkpoints of a different run."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("s4s")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise _fail(path, f"it cannot be read ({e}); truncated or damaged? delete it to start over") from None
    try:
        meta = parse_json(raw, f"{path}: metadata") if raw is not None else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, "it has no s4s checkpoint metadata")
    if meta.get("version") != VERSION:
        raise _fail(path, f"version {meta.get('version')!r} is not supported (this s4s reads {VERSION})")
    if meta.get("fingerprint") != expected_fingerprint:
        raise _fail(path, "it was written by a run with different settings or teacher data; "
                          "delete it or give another checkpoint path")
    try:
        optimizer = None
        if meta["optimizer"] is not None:
            state: dict[int, dict[str, Any]] = {}
            for key, value in tensors.items():
                if key.startswith("opt."):
                    _, idx, name = key.split(".", 2)
                    state.setdefault(int(idx), {})[name] = value
            for key, value in meta["optimizer"]["scalars"].items():
                idx, name = key.split(".", 1)
                state.setdefault(int(idx), {})[name] = value
            optimizer = {"state": state, "param_groups": meta["optimizer"]["param_groups"]}
        return Checkpoint(
            fingerprint=meta["fingerprint"], phase=int(meta["phase"]), iteration=int(meta["iteration"]),
            done=int(meta["done"]), best_score=float(meta["best_score"]), scores=dict(meta["scores"]),
            params={k[7:]: v for k, v in tensors.items() if k.startswith("params.")},
            best_state={k[5:]: v for k, v in tensors.items() if k.startswith("best.")},
            generator=tensors["generator"], shift=tensors.get("shift"), optimizer=optimizer,
            scheduler=meta["scheduler"], extra=dict(meta.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(path, f"a field is missing or malformed ({e})") from None
