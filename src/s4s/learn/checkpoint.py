"""Learning checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is one safetensors file (tensors: the solver parameters the current phase began
from and the fit engine's state, the minibatch generator's included) with JSON metadata (where
the run stands and a fingerprint of the run's settings and teacher data). It is written
atomically, read without pickle, and refused with a clear message when it belongs to a
different run. Resuming from it gives the same solver as an uninterrupted run with the same
seed, bit for bit.
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
from .engine import AdamState

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "fingerprint"]

FORMAT = "s4s-learn-checkpoint"
VERSION = 5  # 5: guidance-range parameters as node values; 4: the engine state counts backtracks; 3: the fit engine


@dataclass
class Checkpoint:
    """A learning run at the end of step ``state.step`` of phase ``phase``.

    ``carry`` is the solver parameters' state (``SolverParams.state_dict()``) that phase
    began from and ``carry_score`` its selection score; ``state`` is the fit engine's
    (:class:`s4s.learn.engine.AdamState`). ``start`` names the hand-designed start and
    ``done`` counts the steps of the phases before this one.
    """

    fingerprint: str
    phase: int
    done: int
    start: str
    carry: dict[str, Tensor]
    carry_score: float
    state: AdamState
    extra: dict[str, Any] = field(default_factory=dict)


def fingerprint(settings: dict[str, Any], *tensors: Tensor) -> str:
    """A digest of a run's settings and data: a checkpoint only resumes the run that wrote it."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically (safetensors + JSON metadata)."""
    from safetensors.torch import save_file

    tensors = {f"carry.{k}": v.detach().cpu().contiguous() for k, v in ckpt.carry.items()}
    tensors.update({f"state.{k}": v.detach().cpu().contiguous() for k, v in ckpt.state.tensors().items()})
    meta = {"format": FORMAT, "version": VERSION, "fingerprint": ckpt.fingerprint, "phase": ckpt.phase,
            "done": ckpt.done, "start": ckpt.start, "carry_score": ckpt.carry_score, "state": ckpt.state.numbers(),
            "extra": ckpt.extra}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"s4s": json.dumps(meta)})


def _fail(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: not a usable s4s learning checkpoint: {why}")


def load_checkpoint(path: str | os.PathLike[str], expected_fingerprint: str) -> Checkpoint:
    """Read a checkpoint; refuses damaged files and checkpoints of a different run or version."""
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
        raise _fail(path, f"version {meta.get('version')!r} is not supported (this s4s reads {VERSION}); "
                          "delete it to start over")
    if meta.get("fingerprint") != expected_fingerprint:
        raise _fail(path, "it was written by a run with different settings or teacher data; "
                          "delete it or give another checkpoint path")
    try:
        state = AdamState.from_parts({k[6:]: v for k, v in tensors.items() if k.startswith("state.")}, meta["state"])
        return Checkpoint(fingerprint=meta["fingerprint"], phase=int(meta["phase"]), done=int(meta["done"]),
                          start=str(meta["start"]), carry={k[6:]: v for k, v in tensors.items() if k.startswith("carry.")},
                          carry_score=float(meta["carry_score"]), state=state, extra=dict(meta.get("extra") or {}))
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(path, f"a field is missing or malformed ({e})") from None
