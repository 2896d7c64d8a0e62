"""Lanes: lines of learning phases that need nothing from each other, run side by side and joined.

A ``@fresh`` phase (``learn``'s plan notation) restarts the parameters, the minibatch stream and
the relaxation shifts, so it needs nothing from the phases before it but the best score to beat:
``s4s_alt``'s ``ld3`` opening beside its joint opening. Each lane runs on a :class:`Track` of its
own; :meth:`Track.join` then leaves the main track where the phases in turn would have left it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch
from torch import Tensor

from .params import SolverParams

__all__ = ["Stopped", "Track", "lanes_from", "run_lane"]


class _Fresh(Protocol):
    fresh: bool


def lanes_from(phases: Sequence[_Fresh], i: int, stop: int) -> list[list[int]]:
    """Indices of the phases from ``i`` (before ``stop``) that can run as lanes side by side: the
    phases before the next ``@fresh`` one, then each ``@fresh`` phase that follows, a lane each,
    up to the first phase that is not ``@fresh`` (which needs them all: it goes on from the best
    state). One lane: nothing to run side by side."""
    lanes = [[i]]
    for j in range(i + 1, stop):
        if phases[j].fresh:
            lanes.append([j])
        elif len(lanes) == 1:
            lanes[0].append(j)
        else:
            break
    return lanes


class Stopped(RuntimeError):
    """A lane ended early because a lane beside it failed or the run was interrupted."""


@dataclass
class Track:
    """What a line of phases carries: the solver parameters, the minibatch stream, the relaxation
    shifts (``[N, ...]``, or ``None`` for the plain objective) and the best state seen so far with
    its selection score."""

    params: SolverParams
    gen: torch.Generator
    shift: Tensor | None
    best_state: dict[str, Tensor]
    best_score: float

    def fork(self) -> "Track":
        """A copy for a lane of its own (the best state is shared: it is replaced, never changed)."""
        shift = None if self.shift is None else self.shift.detach().clone().requires_grad_(True)
        gen = torch.Generator(self.gen.device)
        gen.set_state(self.gen.get_state())
        return Track(copy.deepcopy(self.params), gen, shift, self.best_state, self.best_score)

    def join(self, lanes: Sequence["Track"]) -> None:
        """Where the lanes, run in plan order, would have left this track: the best state of all
        (a later lane replaces it only when strictly lower, as a check in turn would), the last
        lane's minibatch stream and shifts, the parameters at the best state."""
        for lane in lanes:
            if lane.best_score < self.best_score:
                self.best_state, self.best_score = lane.best_state, lane.best_score
        self.gen.set_state(lanes[-1].gen.get_state())
        if self.shift is not None and lanes[-1].shift is not None:
            with torch.no_grad():
                self.shift.copy_(lanes[-1].shift)
        self.params.load_state_dict(self.best_state)


def run_lane(run_phase: Callable[[int, Track], None], lane: Sequence[int], track: Track) -> None:
    """The phases ``lane`` (indices), in order, on ``track``."""
    for i in lane:
        run_phase(i, track)
