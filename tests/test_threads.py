"""Work side by side on CPU threads (teacher shards): the same result as in turn, errors and
interrupts handled."""

from __future__ import annotations

import _thread
import json
import logging
import threading
import time
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


def test_an_interrupt_stops_the_jobs_and_is_raised(two_threads, caplog):
    stop, ended = threading.Event(), []

    def interrupts() -> None:
        _thread.interrupt_main()  # Ctrl-C, as the calling thread receives it
        ended.append(stop.wait(30))

    def waits() -> None:
        ended.append(stop.wait(30))
        time.sleep(0.5)  # still running when the caller looks

    with pytest.raises(KeyboardInterrupt):
        run_jobs([waits, interrupts], stop=stop)  # the interrupt comes once both have started
    assert ended == [True, True] and torch.get_num_threads() == 2  # both told to stop, both ended
    assert "waiting for the jobs running side by side to end" in caplog.text  # the wait is said


def test_the_command_line_makes_teacher_shards_in_turn_when_asked(two_threads, tmp_path, monkeypatch):
    from s4s import teacher
    from s4s.cli import main

    seen = []
    real = teacher.run_jobs
    monkeypatch.setattr(teacher, "run_jobs", lambda jobs, side_by_side=True, *a, **k: (
        seen.append(side_by_side), real(jobs, side_by_side, *a, **k))[1])
    args = ["learn", "--model", "gmm", "--teacher", "unipc:40", "--nfe", "3", "--num-samples", "24", "--iters", "16"]
    assert main([*args, "--out", str(tmp_path / "side.json")]) == 0
    assert main([*args, "--in-turn", "--out", str(tmp_path / "turn.json")]) == 0
    assert seen == [True, False]
    side, turn = s4s.load_solver(tmp_path / "side.json"), s4s.load_solver(tmp_path / "turn.json")
    assert all(torch.equal(getattr(side, k), getattr(turn, k)) for k in ("sigmas", "model_sigmas", "a", "b"))
