"""One solver for a range of guidance scales: the parametrisation, the pairs it is judged on,
the learn (cost equal to a single-scale learn's), the solver file and the refusals."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

import s4s
from s4s import zoo
from s4s.learn.guidance import GuidanceParams, GuidanceRange, ScaledSolver, guidance_pairs_cond, lagrange, nodes
from s4s.learn.objectives import get_distance
from s4s.learn.pairs import Pairs
from s4s.learn.params import SolverParams
from s4s.models import guided, with_guidance


def labels(seeds):
    return torch.tensor([s % 10 for s in seeds])


@pytest.fixture(scope="module")
def free():
    return guided(zoo.load("digits"), None, uncond=torch.tensor(zoo.NULL_LABEL))


def test_a_range_spreads_its_training_scales_evenly_in_log_scale():
    g = GuidanceRange(1.0, 8.0, degree=2, points=4)
    assert g.scales == pytest.approx([1.0, 2.0, 4.0, 8.0])
    assert [g.feature(w) for w in (1.0, math.sqrt(8.0), 8.0)] == pytest.approx([-1.0, 0.0, 1.0])
    assert g.check(8.0) == 8.0
    with pytest.raises(ValueError, match=r"outside \[1, 8\]"):
        g.check(8.5)
    for bad in [dict(lo=0, hi=1), dict(lo=2, hi=1), dict(lo=1, hi=2, degree=5), dict(lo=1, hi=2, degree=2, points=2)]:
        with pytest.raises(ValueError):
            GuidanceRange(**bad)
    assert s4s.LearnConfig(guidance=(1, 8)).guidance == GuidanceRange(1, 8)
    with pytest.raises(ValueError, match="guidance must be"):
        s4s.LearnConfig(guidance=3.0)


def test_the_parametrisation_starts_as_one_solver_and_its_node_values_move_it_with_the_scale(free):
    start = s4s.make_solver("dpmpp_2m", 4, "karras", free)
    inner = SolverParams("dpmpp_2m", start.grid)
    g = GuidanceRange(1.0, 8.0)
    params = GuidanceParams(inner, g)
    family = params()
    assert isinstance(family, ScaledSolver) and len(family.solvers) == 8
    for s in family.solvers:  # equal node values: the start at every scale
        assert torch.allclose(s.b, inner.solver().b) and torch.allclose(s.sigmas, inner.solver().sigmas)
    at = nodes(g.degree)
    assert at == sorted(at) and at[-1] == pytest.approx(math.cos(math.pi / 8))
    for u in (-1.0, -0.3, 0.5, 1.0):  # a partition of unity, interpolating at the nodes
        assert sum(lagrange(u, g.degree)) == pytest.approx(1.0)
    assert lagrange(at[1], g.degree) == pytest.approx([0.0, 1.0, 0.0, 0.0], abs=1e-12)
    # each node's values move the solver where that node is and leave the other nodes' solvers
    w_node = [math.exp(math.log(g.lo) + (u + 1) / 2 * (math.log(g.hi) - math.log(g.lo))) for u in at]
    with torch.no_grad():
        params.node_grid_logits[3] += torch.tensor([0.3, -0.3, 0.0, 0.0])[: params.node_grid_logits.shape[1]]
    assert torch.allclose(params.solver_at(w_node[0]).sigmas, inner.solver().sigmas)
    assert not torch.allclose(params.solver_at(w_node[3]).sigmas, inner.solver().sigmas)
    # a step of d in every node's values moves the solver by at most the Lebesgue constant times d, anywhere
    lebesgue = max(sum(abs(v) for v in lagrange(-1 + 2 * i / 200, g.degree)) for i in range(201))
    assert 1.0 < lebesgue < 2.0
    # gradients reach the node values, and every group carries them (the template is not learned)
    params.solver_at(2.0).sigmas[1].backward()
    assert params.node_grid_logits.grad is not None and params.node_grid_logits.grad.abs().sum() > 0
    groups = params.groups()
    assert any(p is params.node_coef for p in groups["coef"]) and any(p is params.node_grid_logits
                                                                      for p in groups["grid"])
    assert not any(p is q for ps in groups.values() for p in ps for q in inner.parameters())


def test_a_version_1_file_loads_as_the_same_polynomial(free, tmp_path):
    # version 1 stored theta_0 and Legendre coefficients; it loads as node values of the same solvers
    from s4s.learn.guidance import _legendre

    start = s4s.make_solver("dpmpp_2m", 4, "karras", free)
    g = GuidanceRange(1.0, 8.0)
    inner = SolverParams("dpmpp_2m", start.grid)
    state = {f"inner.{k}": v.detach().clone() for k, v in inner.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    for n, p in inner.named_parameters():
        state[f"slope_{n}"] = 0.1 * torch.randn(g.degree, *p.shape, generator=gen, dtype=p.dtype)
    state["scales"] = torch.tensor(g.scales, dtype=torch.float64)
    spec = {"base": "dpmpp_2m", "grid": start.grid.tolist(), "band": inner.band, "decouple_bound": inner.decouple_bound,
            "options": inner.options, "guidance": g.to_dict()}
    body = {"spec": spec, "state": {k: v.tolist() for k, v in state.items()}}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    path = tmp_path / "v1.json"
    path.write_text(json.dumps({"format": "s4s-guidance-solver", "version": 1, "name": "s4s_alt", "nfe": 4, **body,
                                "meta": {}, "sha256": digest}))
    loaded = s4s.load_guidance_solver(path)
    for w in (1.0, 2.5, 8.0):
        values = {n: state[f"inner.{n}"] + sum(pk * state[f"slope_{n}"][k]
                                               for k, pk in enumerate(_legendre(g.feature(w), g.degree)))
                  for n, _ in inner.named_parameters()}
        expected = torch.func.functional_call(inner, values, (), strict=False)
        assert torch.allclose(loaded.at(guidance=w).b, expected.b, atol=1e-10)
        assert torch.allclose(loaded.at(guidance=w).sigmas, expected.sigmas, atol=1e-10)
    again = s4s.load_guidance_solver(loaded.save(tmp_path / "v2.json"))  # saved in today's version
    assert json.loads((tmp_path / "v2.json").read_text())["version"] == 2
    assert torch.allclose(again.at(guidance=2.5).b, loaded.at(guidance=2.5).b)


def test_pairs_judge_each_pair_with_the_solver_of_its_scale(free):
    g = GuidanceRange(1.0, 8.0, degree=2, points=3)
    seeds = list(range(6))
    data = s4s.generate_teacher(free, seeds, (1, 8, 8), s4s.TeacherSpec("unipc", 12, "karras"),
                                cond=guidance_pairs_cond(labels(seeds), 6, g))
    assert data.cond["guidance"].tolist() == pytest.approx([g.scales[i % 3] for i in range(6)])
    solvers = [s4s.make_solver(name, 3, "karras", free) for name in ("ddim", "dpmpp_2m", "ipndm")]
    family = ScaledSolver(torch.tensor(g.scales, dtype=torch.float64), solvers)
    pairs = Pairs(free, data, get_distance("l2"))
    idx = torch.arange(6)
    with torch.no_grad():
        got = pairs.loss(family, idx)
        want = torch.stack([pairs.loss(solvers[i % 3], idx[i:i + 1])[0] for i in range(6)])
    assert torch.allclose(got, want)
    other = s4s.generate_teacher(free, [0, 1], (1, 8, 8), s4s.TeacherSpec("unipc", 12, "karras"),
                                 cond=with_guidance(labels([0, 1]), 2.5))
    with pytest.raises(ValueError, match="other than the training scales"):
        Pairs(free, other, get_distance("l2")).loss(family, torch.arange(2))


def test_a_range_learn_costs_what_a_single_scale_learn_costs_and_gives_a_solver_per_scale(free, tmp_path):
    config = dict(iters=6, base="dpmpp_2m", schedule="karras", teacher=s4s.TeacherSpec("unipc", 16, "karras"))
    ranged = s4s.learn(free, 3, num_samples=16, cond=labels,
                       config=s4s.LearnConfig(guidance=(1.0, 8.0), **config))
    single = s4s.learn(zoo.load("digits", guidance=2.0), 3, num_samples=16, cond=labels,
                       config=s4s.LearnConfig(**config))
    assert isinstance(ranged, s4s.GuidanceSolver) and ranged.nfe == 3
    r, s1 = ranged.meta["cost"], single.meta["cost"]
    assert r["teacher_units"] == s1["teacher_units"] and r["rows_grad"] == s1["rows_grad"]  # same pairs and steps
    assert s1["units"] - 2 <= r["units"] <= s1["units"]  # the file's model probe (2 rows) needs a tensor condition
    assert ranged.meta["guidance"] == {"lo": 1.0, "hi": 8.0, "degree": 3, "points": 8}
    at = ranged.at(guidance=3.0)
    assert isinstance(at, s4s.Solver) and at.meta["guidance"] == 3.0 and at.meta["guidance_range"] == [1.0, 8.0]
    with pytest.raises(ValueError, match=r"outside \[1, 8\]"):
        ranged.at(guidance=0.5)
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = ranged.sample(free, noise, labels(range(4)), guidance=3.0)
        y = at.sample(zoo.load("digits", guidance=3.0), noise, labels(range(4)))
    assert torch.allclose(x, y, atol=1e-5)
    path = ranged.save(tmp_path / "range.json")
    again = s4s.load_guidance_solver(path)
    assert torch.equal(again.at(guidance=5.0).b, ranged.at(guidance=5.0).b)
    with pytest.raises(ValueError, match="load_guidance_solver"):
        s4s.load_solver(path)
    # in a diffusers pipeline: the scheduler takes the pipeline's guidance_scale
    pytest.importorskip("diffusers")
    from s4s.integrations.diffusers import S4SScheduler

    for source in (ranged, path):
        scheduler = S4SScheduler.from_solver(source, guidance=3.0, frame="flow")
        assert torch.equal(scheduler.solver.b, at.b) and torch.equal(scheduler.solver.sigmas, at.sigmas)
    with pytest.raises(ValueError, match=r"guidance scales 1 to 8: give the scale to sample at \(the pipeline's guidance_scale"):
        S4SScheduler.from_solver(path, frame="flow")
    with pytest.raises(ValueError, match=r"outside \[1, 8\]"):
        S4SScheduler.from_solver(ranged, guidance=12.0, frame="flow")
    with pytest.raises(ValueError, match="learned for one"):
        S4SScheduler.from_solver(at, guidance=3.0, frame="flow")
    data = json.loads(path.read_text())
    data["state"]["node_coef"][0][0][0] += 1.0
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="sha256"):
        s4s.load_guidance_solver(path)


def test_a_range_learn_is_refused_before_any_model_call_without_a_per_sample_scale(free):
    calls = []
    fixed = zoo.load("digits", guidance=2.0)
    counting = s4s.Denoiser(lambda x, s, c=None: calls.append(1) or fixed(x, s, c), fixed.sigma_min, fixed.sigma_max,
                            name=fixed.name)
    with pytest.raises(ValueError, match="scale=None"):
        s4s.learn(counting, 3, num_samples=8, cond=labels, config=s4s.LearnConfig(guidance=(1, 8), iters=2))
    with pytest.raises(ValueError, match="plain condition"):
        s4s.learn(free, 3, num_samples=8, config=s4s.LearnConfig(guidance=(1, 8), iters=2))
    assert calls == []


def test_each_scale_counts_alike_relative_to_the_start():
    from s4s.learn.guidance import scale_weights

    g = GuidanceRange(1.0, 8.0, degree=2, points=3)
    lo, mid, hi = g.scales
    scales = torch.tensor([lo, lo, mid, hi, hi], dtype=torch.float64)
    distances = torch.tensor([0.1, 0.3, 0.5, 2.0, 6.0], dtype=torch.float64)
    weight = scale_weights(scales, distances, g)
    assert weight(scales).tolist() == pytest.approx([5.0, 5.0, 2.0, 0.25, 0.25])
    relative = distances * weight(scales)
    assert [float(relative[scales == w].mean()) for w in g.scales] == pytest.approx([1.0, 1.0, 1.0])
    # a scale without pairs takes the mean weight of the others
    only = scale_weights(torch.tensor([lo, hi], dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64), g)
    assert float(only(torch.tensor([mid], dtype=torch.float64))[0]) == pytest.approx((2.0 + 0.5) / 2)


def test_a_range_steps_by_the_geometric_mean_of_each_scales_relative_error():
    # the step size's relative error: per group (training scale) RMSE over the teacher's RMS, then
    # the geometric mean, so the large errors at the top of a range do not set every scale's step
    from types import SimpleNamespace

    from s4s.learn.learner import relative_error

    samples = torch.cat([torch.ones(2, 4), 2 * torch.ones(2, 4)])  # RMS 1, then RMS 2
    mse = torch.tensor([0.01, 0.01, 0.64, 0.64], dtype=torch.float64)  # relative errors 0.1 and 0.4
    pairs = SimpleNamespace(each=lambda solver: mse, data=SimpleNamespace(samples=samples))
    groups = torch.tensor([3, 3, 7, 7])
    assert relative_error(pairs, None, groups) == pytest.approx(0.2)
    assert relative_error(pairs, None) == pytest.approx(math.sqrt(0.325 / 2.5))  # pooled: one group
    assert relative_error(pairs, None, torch.zeros(4, dtype=torch.long)) == relative_error(pairs, None)
    mse[3] = math.inf
    assert relative_error(pairs, None, groups) == 1.0  # a start whose samples are not finite


def test_the_start_of_a_range_is_the_best_candidate_at_its_middle():
    from s4s.learn import RankStarts
    from s4s.learn.guidance import middle_scores

    g = GuidanceRange(1.0, 8.0, points=4)  # scales 1, 2, 4, 8: the middle ones are 2 and 4
    scales = torch.tensor(g.scales, dtype=torch.float64)
    distances = {"low": torch.tensor([0.1, 0.5, 0.9, 9.0]), "mid": torch.tensor([0.3, 0.2, 0.4, 2.0]),
                 "high": torch.tensor([0.9, 0.9, 0.9, 0.5])}
    scores = middle_scores(distances, scales, g)
    assert scores == pytest.approx({"low": 0.7, "mid": 0.3, "high": 0.9})
    assert RankStarts().choose(scores) == "mid"
    odd = GuidanceRange(1.0, 4.0, degree=2, points=3)
    assert middle_scores({"a": torch.tensor([5.0, 1.0, 5.0])}, torch.tensor(odd.scales, dtype=torch.float64),
                         odd) == {"a": 1.0}
