"""Conditions as data: one tensor, or a tuple or dict of tensors (a text model's embeddings and
pooled embeddings, say), every tensor with one row per sample along dim 0.

Everything that holds conditions for many samples (teacher data, learning pairs, the teacher
cache's key) goes through these functions, so a dict of tensors travels wherever a tensor does.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence, Union

import torch
from torch import Tensor

__all__ = ["Cond", "rows", "take", "to_device", "cat", "digest", "check"]

Cond = Union[Tensor, tuple, Mapping[str, Any]]
"""A tensor ``[N, ...]``, or a tuple or ``str``-keyed dict of conditions (nested as deep as
needed), every tensor with the same ``N``."""


def _leaves(cond: Cond) -> list[tuple[str, Tensor]]:
    """``(path, tensor)`` for each tensor of ``cond``, in a fixed order (dict keys sorted)."""
    if isinstance(cond, Tensor):
        return [("", cond)]
    if isinstance(cond, tuple):
        return [(f"{i}.{p}", t) for i, c in enumerate(cond) for p, t in _leaves(c)]
    if isinstance(cond, Mapping):
        return [(f"{k}.{p}", t) for k in sorted(cond) for p, t in _leaves(cond[k])]
    raise TypeError(f"conditions must be tensors, or tuples or dicts of tensors, got {type(cond).__name__}")


def _map(cond: Cond, fn: Any) -> Cond:
    if isinstance(cond, Tensor):
        return fn(cond)
    if isinstance(cond, tuple):
        return tuple(_map(c, fn) for c in cond)
    return {k: _map(v, fn) for k, v in cond.items()}


def check(cond: Cond, n: int | None = None, what: str = "cond") -> int:
    """The row count of ``cond``; a ``ValueError`` naming ``what`` if its tensors disagree on it,
    it holds no tensor, or it differs from ``n``."""
    try:
        leaves = _leaves(cond)
    except TypeError as e:
        raise ValueError(f"{what}: {e}") from None
    if not leaves:
        raise ValueError(f"{what} holds no tensor")
    counts = {p.rstrip("."): t.shape[0] if t.dim() else None for p, t in leaves}
    if None in counts.values() or len(set(counts.values())) > 1:
        raise ValueError(f"{what}: every tensor needs the same number of rows along dim 0, got {counts}")
    found = next(iter(counts.values()))
    if n is not None and found != n:
        raise ValueError(f"{what} has {found} rows for {n} samples")
    return int(found)  # type: ignore[arg-type]


def rows(cond: Cond) -> int:
    """The number of samples ``cond`` conditions."""
    return check(cond)


def take(cond: Cond, idx: Tensor | slice | Sequence[int]) -> Cond:
    """The rows ``idx`` of every tensor of ``cond`` (an index tensor is moved to each tensor's device)."""
    if isinstance(idx, slice):
        return _map(cond, lambda t: t[idx])
    idx_t = torch.as_tensor(idx, dtype=torch.long)
    return _map(cond, lambda t: t[idx_t.to(t.device)])


def to_device(cond: Cond, device: torch.device | str) -> Cond:
    return _map(cond, lambda t: t.to(device))


def cat(conds: Sequence[Cond]) -> Cond:
    """The conditions of several batches as one (the same structure in each)."""
    first = conds[0]
    if isinstance(first, Tensor):
        return torch.cat(list(conds))  # type: ignore[arg-type]
    if isinstance(first, tuple):
        return tuple(cat([c[i] for c in conds]) for i in range(len(first)))  # type: ignore[index]
    return {k: cat([c[k] for c in conds]) for k in first}  # type: ignore[index]


def _bytes(t: Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    return (t.view(torch.uint8) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


def digest(cond: Cond) -> str:
    """A SHA-256 of ``cond``: of a tensor's bytes, or of a tuple's or dict's structure, dtypes,
    shapes and bytes."""
    if isinstance(cond, Tensor):
        return hashlib.sha256(_bytes(cond)).hexdigest()
    h = hashlib.sha256()
    for path, t in _leaves(cond):
        h.update(f"{path}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(_bytes(t))
    return h.hexdigest()
