"""Solver files: versioned, human-readable JSON; loading validates and never unpickles.

Numbers are written with Python's shortest round-trip repr, so a reloaded solver samples
bit-identically. A SHA-256 of the numeric payload detects edits and damage.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from ._atomic import write_text_atomic
from ._json import MAX_BYTES, parse_json
from .solvers.table import Solver

__all__ = ["save_solver", "load_solver", "solver_to_dict", "solver_from_dict", "FORMAT", "VERSION"]

FORMAT = "s4s-solver"
VERSION = 1
_ARRAYS = ("sigmas", "model_sigmas", "a", "b")
MAX_NFE = 1000


def _payload_digest(arrays: dict[str, Any]) -> str:
    text = json.dumps({k: arrays[k] for k in _ARRAYS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def solver_to_dict(solver: Solver) -> dict[str, Any]:
    arrays = {k: getattr(solver, k).detach().to(torch.float64).cpu().tolist() for k in _ARRAYS}
    return {"format": FORMAT, "version": VERSION, "name": solver.name, "nfe": solver.nfe, **arrays,
            "sha256": _payload_digest(arrays), "meta": solver.meta}


def _fail(where: str, why: str) -> ValueError:
    return ValueError(f"{where}: not a valid s4s solver file: {why}")


def _matrix(value: Any, rows: int, cols: int | None, key: str, where: str) -> torch.Tensor:
    def number(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _fail(where, f"{key} holds {v!r}; expected finite numbers")
        return float(v)

    if not isinstance(value, list) or len(value) != rows:
        raise _fail(where, f"{key} must be a list of {rows} entries")
    if cols is None:
        return torch.tensor([number(v) for v in value], dtype=torch.float64)
    out = []
    for row in value:
        if not isinstance(row, list) or len(row) != cols:
            raise _fail(where, f"{key} must be a {rows}x{cols} matrix")
        out.append([number(v) for v in row])
    return torch.tensor(out, dtype=torch.float64).reshape(rows, cols)


def solver_from_dict(data: Any, where: str = "solver") -> Solver:
    """Validate a parsed solver file and build the :class:`Solver`."""
    if not isinstance(data, dict):
        raise _fail(where, "the top level must be a JSON object")
    if data.get("format") == "s4s-guidance-solver":
        raise _fail(where, "it holds a solver for a range of guidance scales: load it with "
                           "s4s.load_guidance_solver(path) and take .at(guidance=w) for one scale")
    if data.get("format") != FORMAT:
        raise _fail(where, f"format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if version != VERSION:
        raise _fail(where, f"version {version!r} is not supported (this s4s reads version {VERSION})")
    nfe = data.get("nfe")
    if isinstance(nfe, bool) or not isinstance(nfe, int) or not 1 <= nfe <= MAX_NFE:
        raise _fail(where, f"nfe must be an int in [1, {MAX_NFE}], got {nfe!r}")
    missing = [k for k in (*_ARRAYS, "sha256", "name") if k not in data]
    if missing:
        raise _fail(where, f"missing fields {missing}")
    if data["sha256"] != _payload_digest(data):
        raise _fail(where, "checksum mismatch: the numbers were changed after the file was written")
    name, meta = data["name"], data.get("meta", {})
    if not isinstance(name, str) or not isinstance(meta, dict):
        raise _fail(where, "name must be a string and meta an object")
    try:
        return Solver(
            sigmas=_matrix(data["sigmas"], nfe + 1, None, "sigmas", where),
            model_sigmas=_matrix(data["model_sigmas"], nfe, None, "model_sigmas", where),
            a=_matrix(data["a"], nfe, nfe, "a", where),
            b=_matrix(data["b"], nfe, nfe, "b", where),
            name=name,
            meta=meta,
        )
    except (ValueError, TypeError) as e:
        if str(e).startswith(where):
            raise
        raise _fail(where, str(e)) from None


def save_solver(solver: Solver, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write ``solver`` as JSON (atomically: a temporary file, then a rename)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (or --force) to replace it")
    return write_text_atomic(path, json.dumps(solver_to_dict(solver), indent=1) + "\n")


def load_solver(path: str | os.PathLike[str]) -> Solver:
    """Read and validate a solver file; errors say what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no solver file at {path}")
    if not path.is_file():
        raise _fail(str(path), "it is not a regular file (a folder, a device or a pipe?)")
    if path.stat().st_size > MAX_BYTES:
        raise _fail(str(path), f"larger than {MAX_BYTES >> 20} MiB; a solver file is a few kilobytes")
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    data = parse_json(raw, f"{path}: not a valid s4s solver file")
    return solver_from_dict(data, str(path))
