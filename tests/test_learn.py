"""Learning: the public API end to end on the Gaussian mixture with a tiny budget; solver files;
the recipes and the policies on their own."""

from __future__ import annotations

import json
import math

import pytest
import torch

import s4s
from s4s.learn import JOINT, LD3, RECIPES, S4S, S4S_ALT, Guard, LearnConfig, Phase, RankStarts, StepBudget, parse_plan
from s4s.learn.params import SolverParams
from s4s.noise import seeded_noise

GMM = s4s.zoo.load("gmm", dim=2)
TEACHER = s4s.TeacherSpec("unipc", 100, "logsnr")


def config(**kw) -> LearnConfig:
    """The tests' config: the mixture's float64, the cheap teacher."""
    return LearnConfig(**{"teacher": TEACHER, "dtype": torch.float64, **kw})


@pytest.fixture(scope="module")
def learned():
    return s4s.learn(GMM, nfe=4, method="s4s_alt", num_samples=96, seed=0, config=config(iters=40))


def test_api_as_written(tmp_path, learned):
    noise = seeded_noise(range(1000, 1016), (2,), dtype=torch.float64)
    calls = []
    counting = s4s.Denoiser(lambda x, s: (calls.append(1), GMM(x, s))[1], GMM.sigma_min, GMM.sigma_max)
    x0 = learned.sample(counting, noise)
    assert len(calls) == 4 and x0.shape == noise.shape
    path = learned.save(tmp_path / "gmm-nfe4.json")
    again = s4s.load_solver(path)
    assert torch.equal(again.sample(GMM, noise), learned.sample(GMM, noise))  # bit-identical
    assert again.meta["method"] == "s4s_alt" and again.meta["nfe"] == 4


def test_learning_beats_the_start_on_held_out_seeds(learned):
    noise = seeded_noise(range(5000, 5500), (2,), dtype=torch.float64)
    ref = TEACHER.sampler(GMM)(noise, None)
    start = s4s.make_solver(learned.meta["base"], 4, learned.meta["schedule"], GMM)
    err = lambda s: float((s.sample(GMM, noise) - ref).pow(2).mean().sqrt())  # noqa: E731
    assert err(learned) < err(start)


def test_learning_is_deterministic():
    kw = dict(nfe=3, method="joint", num_samples=32, seed=5, config=config(iters=10))
    a, b = s4s.learn(GMM, **kw), s4s.learn(GMM, **kw)
    assert torch.equal(a.b, b.b) and torch.equal(a.sigmas, b.sigmas) and torch.equal(a.model_sigmas, b.model_sigmas)


@pytest.mark.parametrize("method", ["s4s", "ld3", "joint"])
def test_methods_learn_what_they_say(method):
    s = s4s.learn(GMM, nfe=3, method=method, num_samples=32, seed=0,
                  config=config(iters=10, base="dpmpp_2m", schedule="logsnr"))
    start = s4s.make_solver("dpmpp_2m", 3, "logsnr", GMM)
    moved_grid = not torch.allclose(s.sigmas, start.sigmas) or not torch.allclose(s.model_sigmas, start.model_sigmas)
    if method == "s4s":
        assert not moved_grid
    if method == "ld3":
        # coefficients are the base's, re-derived on the new grid
        rebuilt = s4s.solvers.builders.dpmpp(s.sigmas, order=2)
        assert torch.allclose(s.b, rebuilt.b)


def test_relaxed_objective_and_distances_run():
    for distance in ("l1", "pseudo_huber", lambda x, y: (x - y).abs().amax(1)):
        s = s4s.learn(GMM, nfe=3, method="joint", num_samples=16,
                      config=config(iters=8, radius=0.05, distance=distance, decode=lambda x: 2 * x))
        assert s.nfe == 3 and s.meta["radius"] == 0.05


def test_params_reproduce_the_base_at_initialisation():
    grid = s4s.schedules.karras(0.002, 80.0, 5)
    params = SolverParams("ipndm", grid)
    s = params.solver()
    ref = s4s.solvers.builders.ipndm(grid)
    assert torch.allclose(s.sigmas, ref.sigmas, rtol=1e-12) and torch.allclose(s.b, ref.b, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        params.grid_logits.add_(torch.randn(5, dtype=torch.float64))
    g = params.grid().detach()
    assert float(g[0]) == pytest.approx(80.0) and float(g[-1]) == pytest.approx(0.002)
    assert bool((g[1:] < g[:-1]).all())


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown method"):
        s4s.learn(GMM, nfe=3, method="magic")
    with pytest.raises(ValueError, match="nfe"):
        s4s.learn(GMM, nfe=0)
    with pytest.raises(ValueError, match="num_samples"):
        s4s.learn(GMM, nfe=3, num_samples=2)
    with pytest.raises(ValueError, match="config"):
        s4s.learn(GMM, nfe=3, config={"iters": 3})
    with pytest.raises(ValueError, match="shape"):
        s4s.learn(s4s.Denoiser(lambda x, s: x, 0.1, 1.0), nfe=3, num_samples=8)


@pytest.mark.parametrize("bad,match", [({"radius": 2.0}, "radius"), ({"iters": 0}, "iters"),
                                       ({"batch_size": True}, "batch_size"), ({"lr": -1.0}, "lr"),
                                       ({"val_fraction": 1.0}, "val_fraction"), ({"base": "euler9"}, "base"),
                                       ({"schedule": "lognsr"}, "schedule"), ({"distance": "l3"}, "distance"),
                                       ({"plan": "wiggle:1"}, "plan"), ({"budget": 2.0}, "StepBudget"),
                                       ({"checks": 0}, "checks")])
def test_bad_configs_are_refused_before_any_work(bad, match):
    with pytest.raises(ValueError, match=match):
        LearnConfig(**bad)


def test_learn_takes_at_most_ten_parameters():
    import inspect

    assert len(inspect.signature(s4s.learn).parameters) <= 10


def test_solver_files_are_validated(tmp_path, learned):
    path = learned.save(tmp_path / "s.json")
    text = path.read_text()
    (tmp_path / "trunc.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not JSON.*truncated"):
        s4s.load_solver(tmp_path / "trunc.json")
    data = json.loads(text)
    data["b"][2][1] += 0.5
    (tmp_path / "tampered.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        s4s.load_solver(tmp_path / "tampered.json")
    for key, value, match in [("version", 99, "version 99"), ("format", "pickle", "format"), ("nfe", -1, "nfe"),
                              ("nfe", 5, "checksum|list of")]:
        bad = dict(json.loads(text), **{key: value})
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=match):
            s4s.load_solver(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        s4s.load_solver(tmp_path / "missing.json")
    with pytest.raises(FileExistsError):
        learned.save(path, overwrite=False)


def test_teacher_cache_resumes_and_repairs(tmp_path):
    seeds = list(range(10))
    first = s4s.generate_teacher(GMM, seeds, (2,), TEACHER, batch_size=4, dtype=torch.float64, cache_dir=tmp_path)
    folder = next(tmp_path.iterdir())
    shards = sorted(folder.glob("*.safetensors"))
    assert len(shards) == 3
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    shards[1].write_bytes(shards[1].read_bytes()[:-7] + b"garbage")
    calls = []
    counting = s4s.Denoiser(lambda x, s: (calls.append(x.shape[0]), GMM(x, s))[1], GMM.sigma_min, GMM.sigma_max,
                            name=GMM.name)
    second = s4s.generate_teacher(counting, seeds, (2,), TEACHER, batch_size=4, dtype=torch.float64, cache_dir=tmp_path)
    assert torch.equal(first.samples, second.samples)
    assert calls == [2] + [4] * TEACHER.nfe  # the model's probe (cache key), then only the damaged shard
    assert {p.name for p in shards if p.stat().st_mtime_ns != mtimes[p.name]} == {shards[1].name}


def test_teacher_noise_does_not_depend_on_batch_size():
    a = s4s.generate_teacher(GMM, range(6), (2,), TEACHER, batch_size=6, dtype=torch.float64)
    b = s4s.generate_teacher(GMM, range(6), (2,), TEACHER, batch_size=2, dtype=torch.float64)
    assert torch.allclose(a.samples, b.samples, atol=1e-12) and torch.equal(a.noise, b.noise)


def test_dopri5_teacher_agrees_with_a_fine_multistep_teacher():
    pytest.importorskip("torchdiffeq")
    g = s4s.zoo.gaussian(dim=3)
    noise = seeded_noise(range(8), (3,), dtype=torch.float64)
    exact = g.ode_solution(noise * g.sigma_max, g.sigma_max, g.sigma_min)
    x = s4s.TeacherSpec("dopri5", rtol=1e-7, atol=1e-7).sampler(g)(noise, None)
    assert float((x - exact).abs().max()) < 1e-5


def test_starts_are_parsed_or_refused_with_the_valid_names():
    from s4s.learn import parse_start

    assert parse_start("ipndm/time_uniform+zero") == ("ipndm", "time_uniform+zero")
    for bad in ("deis", "deis/", "nope/karras", "deis/lognsr", None):
        with pytest.raises(ValueError, match="BASE/SCHEDULE"):
            parse_start(bad)


def test_cost_is_counted_row_by_row():
    """``meta["cost"]`` agrees with a count made outside the learner: every row through the
    model, 3 units with autograd and 1 without, and the teacher pairs at rows x teacher NFE."""
    rows = {"grad": 0, "nograd": 0}

    def fn(x, sigma):
        rows["grad" if torch.is_grad_enabled() and (x.requires_grad or sigma.requires_grad) else "nograd"] += x.shape[0]
        return GMM(x, sigma)

    model = s4s.Denoiser(fn, GMM.sigma_min, GMM.sigma_max, name="gmm-counted")
    data = s4s.generate_teacher(GMM, range(48), (2,), TEACHER, dtype=torch.float64)
    solver = s4s.learn(model, nfe=3, method="s4s_alt", teacher_data=data, config=config(iters=16, parallel=False))
    cost = solver.meta["cost"]
    assert rows["grad"] > 0 and rows["nograd"] > 0
    assert cost["rows_grad"] == rows["grad"] and cost["rows_nograd"] == rows["nograd"]
    assert cost["learn_units"] == 3 * rows["grad"] + rows["nograd"]
    assert cost["teacher_units"] == 48 * TEACHER.nfe
    assert cost["units"] == cost["learn_units"] + cost["teacher_units"]


def test_cost_charges_an_adaptive_teacher_nothing_up_front():
    from s4s.learn.budget import Cost, counted

    cost = Cost()
    model = counted(GMM, cost)
    cost.charge_teacher(10, None)
    cost.charge_teacher(10, 7)
    with torch.no_grad():
        model(torch.zeros(5, 2, dtype=torch.float64), torch.ones(5, dtype=torch.float64))
    x = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    model(x, torch.ones(4, dtype=torch.float64)).sum().backward()
    assert (cost.teacher_units, cost.rows_nograd, cost.rows_grad, cost.learn_units) == (70, 5, 4, 17)


@pytest.mark.parametrize("nfe", [3, 5])
def test_the_default_budget_holds_teacher_included(nfe):
    """With its defaults, a learn spends at most three times the teacher's cost: the budget's
    two for learning (ranking, steps, checks and the guard) and the teacher's one."""
    solver = s4s.learn(GMM, nfe=nfe, method="s4s_alt", num_samples=64, config=config())
    cost = solver.meta["cost"]
    assert cost["teacher_units"] == 64 * TEACHER.nfe
    assert 0.8 * 2 * cost["teacher_units"] < cost["learn_units"] <= 2 * cost["teacher_units"]
    steps = sum(solver.meta["steps"])  # the steps' share is what is left after the rest
    assert steps * 16 * StepBudget.per_sample(nfe) > 0.6 * 2 * cost["teacher_units"]
    half = s4s.learn(GMM, nfe=nfe, method="s4s_alt", num_samples=64, config=config(budget=StepBudget(1.0)))
    assert half.meta["cost"]["learn_units"] <= cost["teacher_units"]


def test_a_budget_that_buys_no_step_is_refused_before_any_model_call(tmp_path):
    calls = []

    def model(x, sigma, cond=None):
        calls.append(len(x))
        return GMM(x, sigma, cond)

    watched = s4s.Denoiser(model, GMM.sigma_min, GMM.sigma_max)
    cache = tmp_path / "teacher"
    with pytest.raises(ValueError, match="buys no step.*raise the budget to at least"):
        s4s.learn(watched, nfe=5, num_samples=32, config=config(budget=StepBudget(0.2), cache_dir=str(cache), shape=(2,)))
    assert calls == [] and not cache.exists()
    from s4s.learn import planned_steps

    assert planned_steps(GMM, 5, "s4s_alt", 32, config(iters=80)) == [80]
    assert planned_steps(GMM, 5, "s4s_alt", 32, config(iters=80, plan="grid:1@start,joint:1@start,joint:6")) == [10, 10, 60]


def test_checks_report_the_validation_distance_and_the_solver_they_scored():
    events = []
    learned = s4s.learn(GMM, nfe=3, method="ld3", num_samples=48, seed=1, callback=events.append,
                        config=config(iters=16, checks=4))
    checks = [e for e in events if e.val is not None]
    assert [e.iteration for e in checks] == [4, 8, 12, 16] and [e.iteration for e in events] == list(range(1, 17))
    assert all(e.solver is None for e in events if e.val is None)
    assert all(not e.solver.b.requires_grad and e.solver.nfe == 3 for e in checks)
    m = learned.meta["metrics"]
    assert events[-1].best == min([m["val_start"]] + [e.val for e in checks])
    assert m["val_best"] in (events[-1].best, m["val_start"])  # the start if the guard keeps it


def test_phases_go_on_from_the_best_so_far_and_openings_from_the_start():
    events = []
    s = s4s.learn(GMM, nfe=4, method="s4s_alt", num_samples=48, seed=1, callback=events.append,
                  config=config(iters=24, checks=3, plan="grid:1@start,joint:1@start,joint:6"))
    assert s.meta["plan"] == "grid:1@start,joint:1@start,joint:6" and s.meta["steps"] == [3, 3, 18]
    assert [e.phase for e in events] == ["grid1"] * 3 + ["joint2"] * 3 + ["joint3"] * 18
    openings = min([s.meta["metrics"]["val_start"]] + [e.val for e in events[:6] if e.val is not None])
    assert events[6].best == openings  # the last phase starts from the better opening

    events.clear()
    s = s4s.learn(GMM, nfe=4, method="s4s_alt", num_samples=48, seed=1, callback=events.append,
                  config=config(iters=8, checks=4, plan="coef:4,grid:4@start"))
    grid_phase = [e.solver for e in events if e.phase == "grid2"]
    for solver in grid_phase:  # begun at the start: the base's own coefficients on each grid tried
        rebuilt = s4s.SOLVERS[s.meta["base"]].build(solver.sigmas)
        assert torch.allclose(solver.b, rebuilt.b, atol=1e-12)


@pytest.mark.parametrize("plan, factor", [(None, 1.0), ("coef*0.25", 0.25)])
def test_the_first_step_moves_each_coefficient_by_the_step_size_the_start_error_sets(plan, factor):
    # Adam's first step moves every coordinate by its step size: the coefficients' is
    # lr * coef_lr * (the start's relative error) times the phase's factor (a plan's ``*lr``),
    # in units of their row's denoised weight
    events = []
    s = s4s.learn(GMM, nfe=4, method="s4s", num_samples=48, callback=events.append,
                  config=config(iters=1, checks=1, lr=0.2, coef_lr=0.5, base="deis", schedule="karras", plan=plan))
    error = s.meta["metrics"]["start_error"]
    assert 0.01 < error < 1
    base = s4s.make_solver("deis", 4, "karras", GMM)
    moved = (events[0].solver.b - base.b) / base.b.sum(1, keepdim=True)
    lower = moved[torch.tril(torch.ones(4, 4, dtype=torch.bool))].abs()
    stepped = lower[lower > 1e-12]  # a coefficient without a gradient (a weight the sample does not use) stays
    expected = torch.full_like(stepped, 0.2 * 0.5 * error * factor)
    assert len(stepped) >= 8 and torch.allclose(stepped, expected, rtol=1e-5)


def test_the_first_step_moves_each_model_input_level_by_the_coefficients_step_size():
    # a decoupled level changes what the model sees by an amount that does not shrink with the
    # start's error (as a coefficient does), so it steps like one: level = sigma * exp(0.3 tanh(d)),
    # and the grid's positions step at lr
    events = []
    s = s4s.learn(GMM, nfe=4, method="ld3", num_samples=48, callback=events.append,
                  config=config(iters=1, checks=1, lr=0.2, coef_lr=0.5, base="deis", schedule="karras"))
    error = s.meta["metrics"]["start_error"]
    solver = events[0].solver
    moved = ((solver.model_sigmas[1:] / solver.sigmas[1:4]).log() / 0.3).atanh().abs()
    assert torch.allclose(moved, torch.full_like(moved, 0.2 * 0.5 * error), rtol=1e-5)
    assert solver.model_sigmas[0] == solver.sigmas[0]  # the first evaluation keeps sigma_max


def test_a_run_the_guard_rejects_returns_its_start(caplog):
    class Never(Guard):
        def accepts(self, *figures: float) -> bool:
            return False

    with caplog.at_level("WARNING", logger="s4s.learn"):
        s = s4s.learn(GMM, nfe=4, method="s4s", num_samples=64, config=config(iters=20, guard=Never()))
    assert "keeping the start" in caplog.text and not s.meta["accepted"]
    m = s.meta["metrics"]
    assert m["val_best"] == m["val_start"]
    start = s4s.make_solver(s.meta["base"], 4, s.meta["schedule"], GMM)
    noise = seeded_noise(range(100), (2,), dtype=torch.float64)
    assert torch.allclose(s.sample(GMM, noise), start.sample(GMM, noise), atol=1e-10)


def test_the_start_is_the_best_ranked_candidate():
    s = s4s.learn(GMM, nfe=4, method="s4s", num_samples=64, config=config(iters=2, rank=RankStarts(8)))
    ranked = s.meta["metrics"]["ranked"]
    assert len(ranked) == 36 and f'{s.meta["base"]}/{s.meta["schedule"]}' == min(ranked, key=ranked.get)
    # ranked on the first 8 validation pairs: the mean distance there, recomputed
    fixed = s4s.learn(GMM, nfe=4, method="s4s", num_samples=64,
                      config=config(iters=2, base=s.meta["base"], schedule=s.meta["schedule"]))
    assert fixed.meta["metrics"]["ranked"] == {} and torch.equal(fixed.b, s.b)


# --- the policies and recipes on their own: numbers in, decisions out


def test_rank_starts_takes_the_lowest_finite_and_the_first_of_ties():
    rank = RankStarts()
    assert rank.choose({"a/x": 0.3, "b/x": 0.1, "c/x": 0.1}) == "b/x"
    assert rank.choose({"a/x": math.inf, "b/x": math.nan, "c/x": 2.0}) == "c/x"
    with pytest.raises(ValueError, match="finite"):
        rank.choose({"a/x": math.inf})
    with pytest.raises(ValueError, match="pairs"):
        RankStarts(1)


def test_step_budget_buys_what_is_left_after_the_rest():
    budget = StepBudget(2.0)
    assert StepBudget.per_sample(5) == 13 and StepBudget.per_sample(5, first_free=False) == 15
    # 2 x 102,400 teacher units, 20,000 spent elsewhere, NFE 5, 16 pairs a step: 184,800 // 208
    assert budget.steps(102_400, 20_000, 5, 16) == 888
    with pytest.raises(ValueError, match="buys no step.*at least 2.11x"):
        budget.steps(1000, 1900, 5, 16)  # 100 left, a step 208: (1900 + 208) / 1000 = 2.11x
    assert StepBudget(1.0).steps(102_400, 0, 8, 16) == 102_400 // (16 * 22)
    for bad in (0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="budget"):
            StepBudget(bad)


@pytest.mark.parametrize("train,val,ok", [((0.9, 1.0), (0.9, 1.0), True), ((0.9, 1.0), (1.1, 1.0), False),
                                          ((1.1, 1.0), (0.9, 1.0), False), ((1.0, 1.0), (0.5, 1.0), False)])
def test_the_guard_needs_a_gain_on_both_splits(train, val, ok):
    assert Guard().accepts(train[0], val[0], train[1], val[1]) is ok


def test_recipes_are_data():
    assert RECIPES == {"s4s": S4S, "s4s_alt": S4S_ALT, "ld3": LD3, "joint": JOINT}
    assert [p.part for p in S4S.phases] == ["coef"] and [p.part for p in LD3.phases] == ["grid"]
    assert S4S_ALT.steps(80) == [80] and JOINT.steps(7) == [7] and S4S_ALT.phases == JOINT.phases
    assert [(p.part, p.from_start) for p in S4S_ALT.phases] == [("joint", False)]
    plan = parse_plan("grid:1@start, joint:2,coef")
    assert plan.phases == (Phase("grid", 1.0, True), Phase("joint", 2.0), Phase("coef", 1.0))
    assert plan.steps(40) == [10, 20, 10] and parse_plan(plan.plan()).phases == plan.phases
    scaled = parse_plan("grid:1@start*2, joint:6*0.4")
    assert scaled.phases == (Phase("grid", 1.0, True, lr=2.0), Phase("joint", 6.0, lr=0.4))
    assert scaled.plan() == "grid:1@start*2,joint:6*0.4" and parse_plan(scaled.plan()).phases == scaled.phases


def test_s4s_alt_and_joint_are_the_same_learn():
    # the learn-table's joint column stands for s4s_alt: the method's name enters only the meta
    alt, joint = (s4s.learn(GMM, nfe=4, method=m, num_samples=48, seed=1, config=config(iters=12, checks=3))
                  for m in ("s4s_alt", "joint"))
    assert alt.meta["method"] == "s4s_alt" and joint.meta["method"] == "joint"
    for key in ("sigmas", "model_sigmas", "a", "b"):
        assert torch.equal(getattr(alt, key), getattr(joint, key)), key
    assert alt.meta["metrics"] == joint.meta["metrics"] and alt.meta["plan"] == joint.meta["plan"] == "joint:1"


@pytest.mark.parametrize("plan", ["", "grid:0", "wiggle:5", "coef:-1", "joint:x", "grid:inf", "grid:1@end", None,
                                  "joint:6*0", "joint:6*-1", "joint:6*x", "joint:6*", "joint:6*nan"])
def test_bad_plans_are_refused(plan):
    with pytest.raises(ValueError, match="plan|share|part"):
        parse_plan(plan)


def test_two_models_of_one_name_do_not_share_a_teacher_cache(tmp_path):
    other = s4s.Denoiser(lambda x, s: 0.5 * GMM(x, s), GMM.sigma_min, GMM.sigma_max, name=GMM.name)
    first = s4s.generate_teacher(GMM, range(6), (2,), TEACHER, dtype=torch.float64, cache_dir=tmp_path)
    second = s4s.generate_teacher(other, range(6), (2,), TEACHER, dtype=torch.float64, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2 and not torch.allclose(first.samples, second.samples)
    again = s4s.generate_teacher(GMM, range(6), (2,), TEACHER, dtype=torch.float64, cache_dir=tmp_path)
    assert torch.equal(again.samples, first.samples) and len(list(tmp_path.iterdir())) == 2


def test_a_teacher_barely_finer_than_the_student_is_warned_of(caplog):
    with caplog.at_level("WARNING", logger="s4s.learn"):
        s4s.learn(GMM, nfe=3, method="s4s", num_samples=8, config=config(iters=1, teacher=s4s.TeacherSpec("unipc", 2)))
    assert "less than 4x the student's 3 NFE" in caplog.text and "at least 12 NFE" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="s4s.learn"):
        s4s.learn(GMM, nfe=3, method="s4s", num_samples=8, config=config(iters=1))
    assert "student's" not in caplog.text


def test_rmse_standard_error_is_the_delta_method_over_samples():
    from s4s import metrics

    ref = torch.zeros(4, 2, dtype=torch.float64)
    x = torch.tensor([[1.0, 1.0], [1.0, 1.0], [3.0, 3.0], [3.0, 3.0]], dtype=torch.float64)  # MSEs 1, 1, 9, 9
    per = torch.tensor([1.0, 1.0, 9.0, 9.0], dtype=torch.float64)
    expected = float(per.std() / 2 / (2 * per.mean().sqrt()))
    assert metrics.rmse(x, ref) == pytest.approx(5 ** 0.5) and metrics.rmse_se(x, ref) == pytest.approx(expected)
    assert metrics.rmse_se(ref, ref) == 0.0 and metrics.rmse_se(x[:1], ref[:1]) == 0.0
