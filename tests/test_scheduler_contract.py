"""The scheduler contract diffusers' own scheduler suite (``SchedulerCommonTest`` in diffusers'
``tests/schedulers/test_schedulers.py``) checks, rewritten here for ``S4SScheduler`` in both of
its frames (diffusers' test files are not on PyPI, so CI cannot fetch them).

Checked as diffusers checks them: outputs identical after ``save_config``/``from_pretrained``
and after ``save_pretrained``; configs equal after a round trip; the step keeps the sample's
shape; the tuple and ``SchedulerOutput`` returns agree; the public API (``init_noise_sigma``,
``scale_model_input``, ``step``, ``set_timesteps``, ``timesteps``, ``order``); ``add_noise``
keeps device and dtype; ``trained_betas`` round-trips; no undeclared deprecated keyword
arguments; ``step_index`` and ``begin_index``.

Checks that cannot apply to a scheduler that runs one fixed-step solver, and why:
* ``test_compatibles``: it builds this scheduler ``from_config`` of another scheduler's config,
  which carries no solver (``S4SScheduler`` refuses to exist without one, naming the fix).
* ``check_over_configs`` / ``check_over_forward`` at an arbitrary ``time_step`` (0 or 1) with
  arbitrary ``num_inference_steps``: the solver evaluates the model at its own levels and
  refuses another timestep or step count, so these checks run here at the scheduler's own
  timesteps and NFE.
* ``test_add_noise_device`` at ``scheduler.timesteps`` of a 100-step run: timesteps here are
  the solver's (its NFE), which is what this file uses.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import s4s
from s4s.integrations.diffusers import S4SScheduler

pytest.importorskip("diffusers")



def schedulers() -> list[S4SScheduler]:
    """A VP scheduler (SD's betas, v-prediction) and a flow scheduler, each with a 4-step solver."""
    from s4s.models import DiscreteVP

    vp = DiscreteVP.scaled_linear()
    model = s4s.Denoiser(lambda x, s: x, vp.sigma_min, vp.sigma_max, time=s4s.frame.TimeMap(vp.sigma_to_t, vp.t_to_sigma))
    solver = s4s.make_solver("dpmpp_2m", 4, "karras", model)
    flow = s4s.models.flow_denoiser(lambda x, t: x, shift=3.0, time_scale=1000)
    return [
        S4SScheduler.from_solver(solver, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                 prediction_type="v_prediction"),
        S4SScheduler.from_solver(s4s.make_solver("ipndm", 4, "time_uniform+zero", flow), shift=3.0),
    ]


def sample() -> torch.Tensor:
    return torch.rand((4, 3, 8, 8), generator=torch.Generator().manual_seed(0))


def run(scheduler: S4SScheduler, steps: int | None = None, return_dict: bool = True) -> list[torch.Tensor]:
    """The samples of ``steps`` (default all) steps on the residual ``0.1 * sample``."""
    scheduler.set_timesteps(scheduler.solver.nfe)
    x, out = sample(), []
    for t in scheduler.timesteps[:steps]:
        result = scheduler.step(0.1 * x, t, x, return_dict=return_dict)
        x = result.prev_sample if return_dict else result[0]
        out.append(x)
    return out


@pytest.mark.parametrize("index", [0, 1], ids=["vp", "flow"])
def test_outputs_are_identical_after_save_config_and_from_pretrained(tmp_path, index):
    scheduler = schedulers()[index]
    scheduler.save_config(tmp_path)
    again = S4SScheduler.from_pretrained(tmp_path)
    for a, b in zip(run(scheduler), run(again)):
        assert torch.sum(torch.abs(a - b)) < 1e-5


@pytest.mark.parametrize("index", [0, 1], ids=["vp", "flow"])
def test_the_config_survives_save_pretrained(tmp_path, index):
    scheduler = schedulers()[index]
    scheduler.save_pretrained(tmp_path)
    again = S4SScheduler.from_pretrained(tmp_path)
    config = dict(scheduler.config)
    config.pop("_use_default_values", None)
    assert config == {k: v for k, v in again.config.items() if k != "_use_default_values"}
    assert again.config.frame == scheduler.config.frame


@pytest.mark.parametrize("index", [0, 1], ids=["vp", "flow"])
def test_a_step_keeps_the_sample_shape_and_both_returns_agree(index):
    scheduler = schedulers()[index]
    as_dict, as_tuple = run(scheduler), run(scheduler, return_dict=False)
    assert all(x.shape == sample().shape for x in as_dict)
    for a, b in zip(as_dict, as_tuple):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("index", [0, 1], ids=["vp", "flow"])
def test_the_public_api(index):
    scheduler = schedulers()[index]
    assert hasattr(scheduler, "init_noise_sigma") and scheduler.init_noise_sigma == 1.0
    x = sample()
    assert scheduler.scale_model_input(x, 0).shape == x.shape
    for name in ("step", "set_timesteps", "add_noise"):
        assert callable(getattr(scheduler, name))
    scheduler.set_timesteps(4)
    assert scheduler.timesteps.shape == (4,) and scheduler.order == 1 and scheduler.step_index is None
    scheduler.step(0.1 * x, scheduler.timesteps[0], x)
    assert scheduler.step_index == 1 and scheduler.begin_index is None
    scheduler.set_begin_index(0)
    assert scheduler.begin_index == 0


@pytest.mark.parametrize("index", [0, 1], ids=["vp", "flow"])
def test_add_noise_keeps_device_and_dtype(index):
    scheduler = schedulers()[index]
    scheduler.set_timesteps(4)
    for dtype in (torch.float32, torch.float64):
        x = sample().to(dtype)
        noised = scheduler.add_noise(x, torch.randn_like(x), scheduler.timesteps[1:2])
        assert noised.shape == x.shape and noised.dtype == dtype and noised.device == x.device


def test_trained_betas_round_trip(tmp_path):
    solver = schedulers()[0].solver
    betas = np.linspace(1e-4, 0.02, 1000)
    scheduler = S4SScheduler.from_solver(solver, trained_betas=betas.tolist())
    scheduler.save_pretrained(tmp_path)
    again = S4SScheduler.from_pretrained(tmp_path)
    assert np.allclose(again.config.trained_betas, betas) and torch.equal(again.alphas_cumprod, scheduler.alphas_cumprod)


def test_no_undeclared_deprecated_keyword_arguments():
    accepts_kwargs = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(S4SScheduler.__init__).parameters.values())
    assert not accepts_kwargs and not getattr(S4SScheduler, "_deprecated_kwargs", [])


def test_a_scheduler_without_its_solver_says_how_to_make_one():
    with pytest.raises(ValueError, match="needs a solver: S4SScheduler.from_solver"):
        S4SScheduler.from_config({"num_train_timesteps": 1000})
