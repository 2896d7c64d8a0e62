"""torch.distributed support: teacher generation and learning run unchanged under ``torchrun``.

s4s does not start processes or pick ports: launch with ``torchrun --nproc_per_node=N`` (gloo
on CPU, NCCL on GPU) and call :func:`init` (or pass ``--distributed`` to the CLI). When no
process group is initialised every helper is a no-op, so single-process behaviour is unchanged.

What is split: teacher shards (shard ``i`` belongs to rank ``i % world``; every rank ends with
all samples), learning minibatches and validation sets (rank ``r`` takes items
``r, r + world, ...``; per-rank loss sums are divided by the global count and gradients are
summed across ranks, so the step equals the single-process step up to rounding).
"""

from __future__ import annotations

import atexit
import logging
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["init", "rank", "world_size", "is_main", "all_reduce_sum", "barrier", "local"]

log = logging.getLogger(__name__)


def init(device: str | torch.device = "cpu") -> torch.device:
    """Initialise the process group from ``torchrun``'s environment (no-op outside torchrun or if
    already initialised); returns this rank's device (``cuda:LOCAL_RANK`` for CUDA). The group
    is destroyed when the process exits: a rank that leaves with it still open can abort in the
    backend's threads ("terminate called without an active exception")."""
    device = torch.device(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        atexit.register(_close)
        log.info("rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return device


def _close() -> None:
    """Destroy the group at exit, after the ranks meet: a rank that tears gloo down while a peer
    is still talking to it can abort in the backend's threads. The meeting is bounded (gloo's
    ``monitored_barrier``), so a rank whose peer died still exits."""
    if not _active():
        return
    if dist.get_backend() == "gloo" and world_size() > 1:
        try:
            dist.monitored_barrier(timeout=timedelta(seconds=60))
        except RuntimeError as err:  # a peer left without reaching the barrier
            log.warning("process group closed without every rank: %s", err)
    dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def is_main() -> bool:
    """Whether this process writes shared files (rank 0)."""
    return rank() == 0


def local(items: Tensor | range) -> Tensor | range:
    """This rank's part of ``items``: entries ``rank, rank + world, ...``."""
    return items[rank()::world_size()]


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over ranks in place and return it (NCCL reduces on this rank's GPU)."""
    if not _active() or world_size() == 1:
        return t
    if dist.get_backend() == "nccl" and t.device.type != "cuda":
        on_gpu = t.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(on_gpu)
        t.copy_(on_gpu)
    else:
        dist.all_reduce(t)
    return t


def barrier() -> None:
    if _active() and world_size() > 1:
        dist.barrier()
