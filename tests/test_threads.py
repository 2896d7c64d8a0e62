"""Work side by side on CPU threads: the same result as in turn, errors and interrupts handled."""

from __future__ import annotations

import _thread
import json
import logging
import threading
from functools import partial

import pytest
import torch

import s4s
from s4s._threads import run_jobs

GMM = s4s.zoo.load("gmm", dim=2)
TEACHER = s4s.TeacherSpec("unipc", 100, "logsnr")


@pytest.fixture
def two_threads():
    """Two torch threads, as on a 2-core machine, whatever this machine has."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_jobs_run_on_threads_of_their_own_and_the_threads_are_restored(two_threads):
    seen = []

    def job(k: int) -> int:
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return k * k

    assert run_jobs([partial(job, k) for k in range(5)]) == [0, 1, 4, 9, 16]
    assert torch.get_num_threads() == 2
    assert len(seen) == 5 and {name for name, _ in seen} <= {"s4s-job0", "s4s-job1"}  # two threads take five jobs
    assert all(threads == 1 for _, threads in seen)
    seen.clear()
    assert run_jobs([partial(job, 2), partial(job, 3)], side_by_side=False) == [4, 9]
    assert seen == [(threading.current_thread().name, 2)] * 2  # in turn, in this thread


def test_the_first_error_is_raised_and_the_other_jobs_are_told_to_stop(two_threads):
    stop = threading.Event()

    def fails() -> None:
        raise KeyError("the first error")

    def waits() -> None:
        assert stop.wait(30), "never told to stop"
        raise RuntimeError("stopped because the other failed")

    with pytest.raises(KeyError, match="the first error"):
        run_jobs([waits, fails], stop=stop)
    assert torch.get_num_threads() == 2


def _recording(names: set[str]) -> s4s.Denoiser:
    """The mixture, noting the threads that call it."""
    def fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        names.add(threading.current_thread().name)
        return GMM(x, sigma)

    return s4s.Denoiser(fn, GMM.sigma_min, GMM.sigma_max, name="gmm")


@pytest.mark.parametrize("kw", [{"method": "s4s_alt", "radius": 0.05}, {"method": "ld3", "starts": 2},
                                {"method": "s4s_alt", "plan": "coef:6,grid:8@fresh,joint:6@fresh,coef:4"}])
def test_learning_side_by_side_gives_the_run_in_turn_bit_for_bit(two_threads, kw):
    common = dict(nfe=4, num_samples=64, seed=3, teacher=TEACHER, iters=24, val_every=4, dtype=torch.float64,
                  shape=(2,))
    events: dict[bool, list] = {True: [], False: []}
    names: dict[bool, set[str]] = {True: set(), False: set()}
    runs = {p: s4s.learn(_recording(names[p]), parallel=p, callback=events[p].append, **common, **kw)
            for p in (True, False)}
    assert {"s4s-job0", "s4s-job1"} <= names[True] and names[False] == {threading.current_thread().name}
    side, turn = runs[True], runs[False]
    assert all(torch.equal(getattr(side, k), getattr(turn, k)) for k in ("sigmas", "model_sigmas", "a", "b"))
    assert side.meta["metrics"] == turn.meta["metrics"] and side.meta["screen"] == turn.meta["screen"]
    figures = lambda events: sorted(repr((e.phase, e.loss, e.val, e.score)) for e in events)  # noqa: E731
    assert figures(events[True]) == figures(events[False])  # the same steps, in another order
    if "starts" not in kw:  # one run: its steps are counted once, and the best reported never rises
        assert [e.iteration for e in events[True]] == list(range(1, len(events[True]) + 1))
        best = [e.best for e in events[True]]
        final = side.meta["metrics"]["final"]  # the end, or a fresh phase's best chosen on fresh pairs
        end = side.meta["metrics"]["score_best"] if final is None else final["scores"]["end"]
        assert best == sorted(best, reverse=True) and best[-1] == end


def test_an_error_in_one_lane_ends_the_run_with_that_error(two_threads):
    def fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if threading.current_thread().name == "s4s-job1":
            raise RuntimeError("this lane failed")
        return GMM(x, sigma)

    model = s4s.Denoiser(fn, GMM.sigma_min, GMM.sigma_max, name="gmm")
    with pytest.raises(RuntimeError, match="this lane failed"):
        s4s.learn(model, nfe=4, num_samples=64, teacher=TEACHER, iters=24, shape=(2,), dtype=torch.float64,
                  screen=1, parallel=True)


def test_side_by_side_with_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(ValueError, match="parallel=True"):
        s4s.learn(GMM, nfe=3, num_samples=8, teacher=TEACHER, parallel=True, checkpoint=tmp_path / "run.ckpt")


def test_teacher_shards_made_side_by_side_are_the_same_bits(two_threads, tmp_path):
    model = s4s.zoo.load("digits")
    spec = s4s.TeacherSpec("unipc", 8, "karras")
    seen = []
    made = {p: s4s.generate_teacher(model, range(48), (1, 8, 8), spec, batch_size=16, parallel=p,
                                    cache_dir=tmp_path / str(p), progress=lambda i, n: seen.append((i, n)))
            for p in (True, False)}
    assert torch.equal(made[True].samples, made[False].samples)
    assert seen == [(16, 48), (32, 48), (48, 48)] * 2  # counted once per shard, in turn or side by side
    manifest = json.loads(next((tmp_path / "True").glob("*/manifest.json")).read_text())
    assert len(manifest["shards"]) == 3  # every shard made side by side reached the manifest


def test_an_interrupt_stops_the_jobs_and_is_raised(two_threads):
    stop, ended = threading.Event(), []

    def interrupts() -> None:
        _thread.interrupt_main()  # Ctrl-C, as the calling thread receives it
        ended.append(stop.wait(30))

    def waits() -> None:
        ended.append(stop.wait(30))

    with pytest.raises(KeyboardInterrupt):
        run_jobs([waits, interrupts], stop=stop)  # the interrupt comes once both have started
    assert ended == [True, True] and torch.get_num_threads() == 2  # both told to stop, both ended


def test_the_command_line_runs_in_turn_when_asked(two_threads, tmp_path, caplog):
    from s4s.cli import main

    args = ["learn", "--model", "gmm", "--teacher", "unipc:40", "--nfe", "3", "--num-samples", "24", "--iters", "16"]
    with caplog.at_level(logging.INFO, logger="s4s.learn"):
        assert main([*args, "--out", str(tmp_path / "side.json")]) == 0
        side_log = caplog.text
        caplog.clear()
        assert main([*args, "--in-turn", "--out", str(tmp_path / "turn.json")]) == 0
    assert "side by side" in side_log and "side by side" not in caplog.text
    side, turn = s4s.load_solver(tmp_path / "side.json"), s4s.load_solver(tmp_path / "turn.json")
    assert all(torch.equal(getattr(side, k), getattr(turn, k)) for k in ("sigmas", "model_sigmas", "a", "b"))
