"""Reliability: learning survives SIGKILL and non-finite steps; checkpoints and caches are
checked; every write is atomic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
import torch

import s4s
from s4s._atomic import atomic_path, write_text_atomic
from s4s.learn import LearnConfig
from s4s.learn.checkpoint import load_checkpoint

GMM = s4s.zoo.load("gmm", dim=2)
TEACHER = s4s.TeacherSpec("unipc", 100, "logsnr")
PLAN = "grid:1@start,joint:1@start,joint:6"  # three phases: resume within and between phases
CONFIG = LearnConfig(teacher=TEACHER, iters=40, checks=4, dtype=torch.float64, radius=0.05, plan=PLAN)
SETTINGS = dict(nfe=4, method="s4s_alt", num_samples=96, seed=0, config=CONFIG)

WORKER = textwrap.dedent("""
    import sys, time, torch, s4s
    from s4s.learn import LearnConfig
    model = s4s.zoo.load("gmm", dim=2)
    def report(event):
        print(event.iteration, flush=True)
        time.sleep(0.02)  # slow enough for the parent to kill it mid-run
    config = LearnConfig(teacher=s4s.TeacherSpec("unipc", 100, "logsnr"), iters=40, checks=4, dtype=torch.float64,
                         radius=0.05, plan="grid:1@start,joint:1@start,joint:6")
    solver = s4s.learn(model, nfe=4, method="s4s_alt", num_samples=96, seed=0, config=config,
                       checkpoint=sys.argv[1], callback=report)
    solver.save(sys.argv[2])
""")


def _assert_same_solver(a: s4s.Solver, b: s4s.Solver) -> None:
    for key in ("sigmas", "model_sigmas", "a", "b"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_solver(tmp_path):
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "solver.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(ckpt), str(out)], stdout=subprocess.PIPE, text=True, env=env)
    killed_at = None
    for line in proc.stdout:
        if int(line) >= 25:  # of 40 steps (two openings of 5, then 30), past several checkpoints
            proc.send_signal(signal.SIGKILL)
            killed_at = int(line)
            break
    proc.wait(timeout=120)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL and not out.exists()
    assert ckpt.exists()
    resumed = subprocess.run([sys.executable, "-c", WORKER, str(ckpt), str(out)], capture_output=True, text=True,
                             env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    first = int(resumed.stdout.split()[0])
    assert 10 <= first < 40  # it resumed from a checkpoint (the child may have run a little past killed_at)

    uninterrupted = s4s.learn(GMM, **SETTINGS)
    _assert_same_solver(s4s.load_solver(out), uninterrupted)


def test_a_finished_checkpoint_returns_the_result_and_a_foreign_one_is_refused(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    first = s4s.learn(GMM, **SETTINGS, checkpoint=ckpt)
    events = []
    again = s4s.learn(GMM, **SETTINGS, checkpoint=ckpt, callback=events.append)
    _assert_same_solver(first, again)
    assert events == []  # nothing left to do
    with pytest.raises(ValueError, match="different settings or teacher data"):
        s4s.learn(GMM, **{**SETTINGS, "config": replace(CONFIG, lr=0.01)}, checkpoint=ckpt)



class _Stop(Exception):
    pass


@pytest.mark.parametrize("stop_at", [7, 33])  # in the joint opening (steps 6-10); in the last phase (11-40)
def test_a_run_stopped_mid_phase_resumes_to_the_uninterrupted_solver(tmp_path, stop_at):
    ckpt = tmp_path / "run.ckpt"

    def stop(event):
        if event.iteration == stop_at:
            raise _Stop

    with pytest.raises(_Stop):
        s4s.learn(GMM, **SETTINGS, checkpoint=ckpt, callback=stop)
    events = []
    resumed = s4s.learn(GMM, **SETTINGS, checkpoint=ckpt, callback=events.append)
    uninterrupted = s4s.learn(GMM, **SETTINGS)
    _assert_same_solver(resumed, uninterrupted)
    assert resumed.meta["metrics"] == uninterrupted.meta["metrics"]
    # it went on from the last check before the stop (every 2 steps of the openings' 5, every 8 of 30)
    assert events[0].iteration == {7: 8, 33: 27}[stop_at] and events[-1].iteration == events[-1].total == 40
    assert events[0].phase == {7: "joint2", 33: "joint3"}[stop_at]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_checkpoints_get_a_clear_error(tmp_path, damage):
    ckpt = tmp_path / "run.ckpt"
    s4s.learn(GMM, **{**SETTINGS, "config": replace(CONFIG, iters=4)}, checkpoint=ckpt)
    data = ckpt.read_bytes()
    ckpt.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}[damage])
    with pytest.raises(ValueError, match="not a usable s4s learning checkpoint"):
        load_checkpoint(ckpt, "anything")


def test_non_finite_steps_roll_back_and_lower_the_step_size(caplog):
    calls = {"n": 0}

    def flaky(x, sigma):  # poisons a few training evaluations with NaN
        calls["n"] += 1
        out = GMM(x, sigma)
        return out * float("nan") if x.requires_grad and calls["n"] % 37 == 0 else out

    model = s4s.Denoiser(flaky, GMM.sigma_min, GMM.sigma_max, time=GMM.time, name="flaky")
    with caplog.at_level("WARNING", logger="s4s.learn"):
        solver = s4s.learn(model, nfe=4, method="s4s", num_samples=64, seed=0,
                           config=LearnConfig(teacher=TEACHER, iters=30, dtype=torch.float64, shape=(2,),
                                              base="dpmpp_2m", schedule="logsnr"))
    assert any("non-finite" in r.getMessage() and "rolled back" in r.getMessage() for r in caplog.records)
    assert all(torch.isfinite(getattr(solver, k)).all() for k in ("sigmas", "model_sigmas", "a", "b"))
    assert solver.meta["metrics"]["val_best"] <= solver.meta["metrics"]["val_start"]


def test_atomic_writes_leave_the_old_file_on_failure(tmp_path):
    path = write_text_atomic(tmp_path / "f.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]  # no temporary left behind
