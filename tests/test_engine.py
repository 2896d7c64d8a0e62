"""The fit engines (minibatch Adam, which the learner uses, and full-batch L-BFGS, measured against
it) on problems with known answers, a learning problem's gradient against a direct computation:
no learning run needed."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

import s4s
from s4s.learn import engine
from s4s.learn.engine import AdamConfig, AdamState, flat, unflat
from s4s.learn.lbfgs import FitConfig, fit, init_state
from s4s.learn.objectives import get_distance
from s4s.learn.pairs import Pairs
from s4s.learn.params import SolverParams


def least_squares(a: torch.Tensor, b: torch.Tensor):
    def objective(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        r = a @ x - b
        return float(r @ r), 2 * a.T @ r
    return objective


def rosenbrock(x: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    (g,) = torch.autograd.grad(f, x)
    return float(f.detach()), g


def test_least_squares_reaches_the_solution():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(40, 8, dtype=torch.float64, generator=gen) * torch.logspace(0, 2, 8, dtype=torch.float64)
    b = torch.randn(40, dtype=torch.float64, generator=gen)
    objective = least_squares(a, b)
    res = fit(objective, init_state(torch.zeros(8, dtype=torch.float64), objective, math.inf),
              FitConfig(steps=200, tol=1e-14, patience=5))
    exact = torch.linalg.lstsq(a, b).solution
    assert torch.allclose(res.x, exact, atol=1e-6)


def test_rosenbrock_reaches_its_minimum():
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    res = fit(rosenbrock, init_state(x0, rosenbrock, math.inf), FitConfig(steps=300, tol=1e-14, patience=5))
    assert torch.allclose(res.x, torch.ones(2, dtype=torch.float64), atol=1e-4)


def test_a_saved_state_goes_on_exactly_where_it_stopped():
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    start = init_state(x0, rosenbrock, math.inf)
    straight = fit(rosenbrock, start, FitConfig(steps=12))
    first = fit(rosenbrock, start, FitConfig(steps=5))
    again = fit(rosenbrock, first.state, FitConfig(steps=12))
    assert torch.equal(again.x, straight.x) and again.state.evals == straight.state.evals
    assert torch.equal(start.x, x0)  # the input state is not changed


def test_the_line_search_never_accepts_a_non_finite_value():
    def walled(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        if float(x[0]) > 0.5:  # beyond the wall the objective is undefined
            return math.inf, torch.zeros_like(x)
        return float((x[0] - 2) ** 2), 2 * (x - torch.tensor([2.0], dtype=torch.float64))

    seen = []
    res = fit(walled, init_state(torch.zeros(1, dtype=torch.float64), walled, math.inf),
              FitConfig(steps=30, first_step=1.0), on_step=lambda st: seen.append(st.value))
    assert all(math.isfinite(v) for v in seen) and float(res.x[0]) <= 0.5


def test_the_best_by_score_is_returned_and_the_start_is_a_candidate():
    objective = least_squares(torch.eye(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    near_start = lambda x, value: float(x.abs().sum())  # noqa: E731 - the start (0) scores best; the minimum is 1
    res = fit(objective, init_state(torch.zeros(2, dtype=torch.float64), objective, 0.0),
              FitConfig(steps=10, check_every=1), score=near_start)
    assert torch.equal(res.x, torch.zeros(2, dtype=torch.float64)) and res.score == 0.0
    assert torch.allclose(res.state.x, torch.ones(2, dtype=torch.float64))  # the iterate went on to the minimum


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="FitConfig.steps"):
        FitConfig(steps=0)
    with pytest.raises(ValueError, match="FitConfig.first_step"):
        FitConfig(first_step=-1.0)


def test_pairs_value_and_gradient_match_a_direct_computation():
    gmm = s4s.zoo.load("gmm", dim=2)
    spec = s4s.TeacherSpec("unipc", 40, "logsnr")
    data = s4s.generate_teacher(gmm, range(10), (2,), spec, dtype=torch.float64)
    params = SolverParams("dpmpp_2m", s4s.make_solver("dpmpp_2m", 4, "logsnr", gmm).grid, sigma_floor=gmm.sigma_min)
    with torch.no_grad():
        params.coef.add_(0.05)
    ps = [params.grid_logits, params.coef]
    pairs = Pairs(gmm, data, get_distance("l2"), chunk=3)  # chunks of 3, 3, 3, 1
    value, grads = pairs.value_and_grad(params.solver, ps)
    direct = get_distance("l2")(params.solver().sample(gmm, data.noise), data.samples).mean()
    expected = torch.autograd.grad(direct, ps)
    assert value == pytest.approx(float(direct.detach()), rel=1e-12)
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, rtol=1e-9, atol=1e-12)
    assert pairs.mean(params.solver()) == pytest.approx(float(direct.detach()), rel=1e-12)
    x = flat(ps)
    assert all(torch.equal(a, b) for a, b in zip(unflat(x, ps), ps))


# --- minibatch Adam


def rows_objective(a: torch.Tensor, b: torch.Tensor):
    """Least squares on the rows ``idx`` of ``a x = b``: mean of ``(a_i x - b_i)^2``."""
    def objective(x: torch.Tensor, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        r = a[idx] @ x - b[idx]
        return float(r @ r) / len(idx), 2 * a[idx].T @ r / len(idx)
    return objective


def problem(n: int = 64, d: int = 4):
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(n, d, dtype=torch.float64, generator=gen)
    x_true = torch.randn(d, dtype=torch.float64, generator=gen)
    b = a @ x_true
    full = lambda x: float((a @ x - b).pow(2).mean())  # noqa: E731
    return rows_objective(a, b), full, x_true


def test_adam_on_minibatches_reaches_the_solution():
    objective, full, x_true = problem()
    start = engine.init_state(torch.zeros(4, dtype=torch.float64), full(torch.zeros(4, dtype=torch.float64)), seed=0)
    end = engine.fit(objective, start, AdamConfig(steps=1500, pairs=64, batch_size=8, lr=0.1, check_every=50), full)
    assert torch.allclose(end.best_x, x_true, atol=1e-3) and end.best_score < 1e-6 and end.step == 1500


@pytest.mark.parametrize("tolerance", [None, 2.0])
def test_adam_goes_on_bit_for_bit_from_a_saved_state(tolerance):
    objective, full, _ = problem()
    cfg = AdamConfig(steps=40, pairs=64, batch_size=8, check_every=7)
    score = full
    if tolerance is not None:  # per-pair scores (noisy around the mean), and backtracking with a tolerance
        cfg = replace(cfg, lr=0.5, backtrack=True, tolerance=tolerance)
        wobble = torch.linspace(-1, 1, 32, dtype=torch.float64)
        score = lambda x: full(x) + 0.1 * full(x) * wobble.roll(int(1000 * float(x.sum())) % 32)  # noqa: E731
    start = engine.init_state(torch.zeros(4, dtype=torch.float64), math.inf, seed=3)
    straight = engine.fit(objective, start, cfg, score)
    saved = []
    engine.fit(objective, start, cfg, score, on_step=lambda st, loss, checked: saved.append(
        AdamState.from_parts({k: v.clone() for k, v in st.tensors().items()}, st.numbers())) if st.step == 17 else None)
    again = engine.fit(objective, saved[0], cfg, score)
    if tolerance is not None:
        assert straight.best_each.numel() == 32
    for key, value in straight.tensors().items():
        assert torch.equal(value, again.tensors()[key]), key
    assert straight.numbers() == again.numbers()
    assert torch.equal(start.x, torch.zeros(4, dtype=torch.float64)) and start.step == 0  # the input is not changed


def test_a_non_finite_step_rolls_back_to_the_best_with_half_the_step_size():
    objective, full, _ = problem()
    calls = []

    def flaky(x, idx):
        calls.append(1)
        return (math.nan, torch.zeros_like(x)) if len(calls) == 5 else objective(x, idx)

    seen = []
    cfg = AdamConfig(steps=10, pairs=64, batch_size=8, check_every=2)
    end = engine.fit(flaky, engine.init_state(torch.zeros(4, dtype=torch.float64), math.inf, seed=0), cfg, full,
                     on_step=lambda st, loss, checked: seen.append((st.step, st.x.clone(), st.best_x.clone())))
    assert end.rollbacks == 1 and end.lr_scale == 0.5 and end.t == 5  # Adam's count restarted at the rollback
    step, x, best = seen[4]
    assert step == 5 and torch.equal(x, best)  # back at the best after the failed step
    assert all(bool(torch.isfinite(s[1]).all()) for s in seen)


def test_with_backtrack_a_check_without_a_gain_returns_to_the_best_with_half_the_step_size():
    objective, full, _ = problem()
    scores = iter([1.0, 2.0, 0.5, 0.7, 0.6])
    seen = []
    cfg = AdamConfig(steps=10, pairs=64, batch_size=8, check_every=2, backtrack=True)
    end = engine.fit(objective, engine.init_state(torch.zeros(4, dtype=torch.float64), math.inf, seed=0), cfg,
                     lambda x: next(scores), on_step=lambda st, loss, checked: seen.append(
                         (st.step, checked, st.x.clone(), st.best_x.clone(), st.lr_scale)))
    by_step = {step: rest for step, *rest in seen}
    checked, x, best, scale = by_step[4]
    assert checked == 2.0 and torch.equal(x, best) and scale == 0.5  # worse than 1.0: back, half the step
    assert torch.equal(by_step[2][2], by_step[4][2])  # the best is the iterate of the first check
    checked, x, best, scale = by_step[6]
    assert checked == 0.5 and torch.equal(x, best) and scale == 0.5  # a gain: kept, the step unchanged
    assert by_step[8][3] == 0.25 and end.backtracks == 2 and end.rollbacks == 0
    assert end.lr_scale == 0.25  # the last check (0.6 > 0.5) ends the fit without a step to halve for
    plain = engine.fit(objective, engine.init_state(torch.zeros(4, dtype=torch.float64), math.inf, seed=0),
                       AdamConfig(steps=10, pairs=64, batch_size=8, check_every=2), lambda x: 1.0)
    assert plain.backtracks == 0 and plain.lr_scale == 1.0


def test_with_a_tolerance_only_a_check_clearly_worse_than_the_best_goes_back():
    objective, _, _ = problem()
    base = torch.linspace(1.0, 2.0, 50, dtype=torch.float64)
    noise = torch.linspace(-1, 1, 50, dtype=torch.float64).roll(7)  # per-pair differences: mean 0, SE about 0.08
    by_check = {2: base, 4: base + 0.01 + 0.1 * noise, 6: base + 0.5 + 0.1 * noise}  # best, within noise, clearly worse
    seen = []
    cfg = AdamConfig(steps=8, pairs=64, batch_size=8, check_every=2, backtrack=True, tolerance=2.0)
    end = engine.fit(objective, engine.init_state(torch.zeros(4, dtype=torch.float64), math.inf, seed=0), cfg,
                     lambda x: by_check.get(len(seen) + 1, base + 1), on_step=lambda st, *_: seen.append(
                         (st.step, st.lr_scale)))
    scale = dict(seen)
    assert scale[4] == 1.0  # 0.01 worse with a standard error of about 0.008: no step back
    assert scale[6] == 0.5 and end.backtracks == 1  # 0.5 worse: back, half the step
    strict = engine.fit(objective, engine.init_state(torch.zeros(4, dtype=torch.float64), math.inf, seed=0),
                        replace(cfg, tolerance=0.0), lambda x, it=iter([base, base + 0.01, base + 0.5, base + 1]): next(it))
    assert strict.backtracks == 2  # without a tolerance every check without a gain goes back
    with pytest.raises(ValueError, match="AdamConfig.tolerance"):
        AdamConfig(steps=1, pairs=1, tolerance=-1.0)


def test_adam_keeps_the_start_when_nothing_scores_better():
    objective, full, _ = problem()
    zero = torch.zeros(4, dtype=torch.float64)
    end = engine.fit(objective, engine.init_state(zero, -1.0, seed=0), AdamConfig(steps=20, pairs=64), full)
    assert torch.equal(end.best_x, zero) and end.best_score == -1.0 and not torch.equal(end.x, zero)


def test_projection_keeps_every_iterate_feasible():
    objective, full, x_true = problem()
    inside = lambda x: x.clamp(-0.1, 0.1)  # noqa: E731
    seen = []
    engine.fit(objective, engine.init_state(torch.zeros(4, dtype=torch.float64), math.inf, seed=0),
               AdamConfig(steps=30, pairs=64), full, project=inside, on_step=lambda st, *_: seen.append(st.x))
    assert all(float(x.abs().max()) <= 0.1 for x in seen) and float(x_true.abs().max()) > 0.1


def test_the_step_size_falls_on_a_half_cosine_from_lr_to_zero():
    cfg = AdamConfig(steps=20, pairs=1, lr=0.1)
    state = engine.init_state(torch.zeros(1, dtype=torch.float64), 0.0, seed=0)
    sizes = [engine._lr(cfg, replace(state, step=k)) for k in range(20)]
    assert sizes[0] == pytest.approx(0.1) and sizes[10] == pytest.approx(0.05)
    assert sizes[-1] == pytest.approx(0.05 * (1 + math.cos(math.pi * 19 / 20)))
    assert all(a > b for a, b in zip(sizes, sizes[1:]))
    assert engine._lr(cfg, replace(state, step=10, lr_scale=0.5)) == pytest.approx(0.025)  # after a rollback


def test_bad_adam_configs_are_refused():
    for bad in ({"steps": 0}, {"pairs": -1}, {"batch_size": 1.5}, {"check_every": 0}):
        with pytest.raises(ValueError, match=f"AdamConfig.{next(iter(bad))}"):
            AdamConfig(**{"steps": 1, "pairs": 1, **bad})
    with pytest.raises(ValueError, match="lr"):
        AdamConfig(steps=1, pairs=1, lr=0.0)


def test_a_problem_s_gradient_matches_a_direct_computation():
    from s4s.learn.problem import Problem

    gmm = s4s.zoo.load("gmm", dim=2)
    data = s4s.generate_teacher(gmm, range(10), (2,), s4s.TeacherSpec("unipc", 40, "logsnr"), dtype=torch.float64)
    params = SolverParams("dpmpp_2m", s4s.make_solver("dpmpp_2m", 4, "logsnr", gmm).grid, sigma_floor=gmm.sigma_min)
    pairs = Pairs(gmm, data, get_distance("l2"))
    for groups in (("grid",), ("coef",), ("grid", "coef")):
        prob = Problem(params, groups, pairs, pairs)
        x = prob.x0() + 0.01
        idx = torch.tensor([1, 4, 4, 7])
        value, grad = prob.objective(x, idx)
        chosen = [p for g in groups for p in params.groups()[g]]
        with torch.no_grad():
            for p, v in zip(chosen, unflat(x, chosen)):
                p.copy_(v)
        direct = get_distance("l2")(params.solver().sample(gmm, data.noise[idx]), data.samples[idx]).mean()
        expected = flat(torch.autograd.grad(direct, chosen, allow_unused=True, materialize_grads=True))
        assert value == pytest.approx(float(direct.detach()), rel=1e-12)
        assert torch.allclose(grad, expected, rtol=1e-9, atol=1e-12)
        assert float(prob.score(x).mean()) == pytest.approx(pairs.mean(params.solver()), rel=1e-12)
        with torch.no_grad():
            for p, v in zip(chosen, unflat(prob.x0() - 0.01, chosen)):
                p.copy_(v)


def test_a_same_phase_goes_on_with_the_part_of_the_winning_opening():
    from s4s.learn.recipes import SAME, parse_plan, resolve_part

    recipe = parse_plan("grid:1@start,joint:1@start,same:6")
    assert [p.part for p in recipe.phases] == ["grid", "joint", SAME]
    assert resolve_part(SAME, "grid") == "grid" and resolve_part(SAME, None) == "joint"
    assert resolve_part("coef", "grid") == "coef"
    gmm = s4s.zoo.load("gmm", dim=2)
    seen = set()
    for lr in (0.05, 0.02):  # on this cell the grid opening wins at the first step size, the joint one at the second
        events = []
        solver = s4s.learn(gmm, 4, num_samples=64, callback=events.append, config=s4s.LearnConfig(
            plan="grid:1@start,joint:1@start,same:2", iters=80, lr=lr, teacher=s4s.TeacherSpec("unipc", 40, "karras")))
        best = {n: min(e.val for e in events if e.phase == n and e.val is not None) for n in ("grid1", "joint2")}
        improved = {n: v for n, v in best.items() if v < solver.meta["metrics"]["val_start"]}
        winner = min(improved, key=improved.__getitem__)[:-1] if improved else "joint"
        third = {e.phase for e in events} - {"grid1", "joint2"}
        assert third == {f"{winner}3"}  # the third phase fits the part of the better opening
        seen.add(winner)
    assert seen == {"grid", "joint"}
