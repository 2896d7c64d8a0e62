"""Learning: the public API end to end on the Gaussian mixture with a tiny budget; solver files."""

from __future__ import annotations

import json
import math

import pytest
import torch

import s4s
from s4s.learn import learner
from s4s.learn.learner import fresh_pairs
from s4s.learn.params import SolverParams
from s4s.noise import seeded_noise

GMM = s4s.zoo.load("gmm", dim=2)
TEACHER = s4s.TeacherSpec("unipc", 100, "logsnr")


@pytest.fixture(scope="module")
def learned():
    return s4s.learn(GMM, nfe=4, method="s4s_alt", num_samples=96, seed=0, teacher=TEACHER, iters=40,
                     dtype=torch.float64)


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


def test_learned_is_never_worse_than_its_start_on_the_selection_score(learned):
    m = learned.meta["metrics"]
    assert m["select"] == "all" and m["score_best"] <= m["score_start"]
    leaders = sorted(m["candidates"], key=m["candidates"].get)[:4]  # the best four on validation ...
    assert sorted(m["candidates_all_pairs"]) == sorted(leaders)
    overall = m["candidates_all_pairs"]  # ... are ranked on all pairs ...
    screen = learned.meta["screen"]  # ... and the screen probes the leading two
    assert list(screen) == sorted(overall, key=overall.get)[:2]
    start = min(screen, key=screen.get)
    assert start == f'{learned.meta["base"]}/{learned.meta["schedule"]}'
    assert m["val_start"] == m["candidates"][start] and m["score_start"] == overall[start]


def test_learning_beats_the_start_on_held_out_seeds(learned):
    noise = seeded_noise(range(5000, 5500), (2,), dtype=torch.float64)
    ref = TEACHER.sampler(GMM)(noise, None)
    start = s4s.make_solver(learned.meta["base"], 4, learned.meta["schedule"], GMM)
    err = lambda s: float((s.sample(GMM, noise) - ref).pow(2).mean().sqrt())  # noqa: E731
    assert err(learned) < err(start)


def test_learning_is_deterministic():
    kw = dict(nfe=3, method="joint", num_samples=32, seed=5, teacher=TEACHER, iters=10, dtype=torch.float64)
    a, b = s4s.learn(GMM, **kw), s4s.learn(GMM, **kw)
    assert torch.equal(a.b, b.b) and torch.equal(a.sigmas, b.sigmas) and torch.equal(a.model_sigmas, b.model_sigmas)


@pytest.mark.parametrize("method", ["s4s", "ld3", "joint"])
def test_methods_learn_what_they_say(method):
    s = s4s.learn(GMM, nfe=3, method=method, num_samples=32, seed=0, teacher=TEACHER, iters=10,
                  base="dpmpp_2m", schedule="logsnr", dtype=torch.float64)
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
        s = s4s.learn(GMM, nfe=3, method="s4s", num_samples=16, teacher=TEACHER, iters=4, radius=0.05,
                      distance=distance, decode=lambda x: 2 * x, dtype=torch.float64)
        assert s.nfe == 3


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
    with pytest.raises(ValueError, match="radius"):
        s4s.learn(GMM, nfe=3, radius=2.0)
    with pytest.raises(ValueError, match="shape"):
        s4s.learn(s4s.Denoiser(lambda x, s: x, 0.1, 1.0), nfe=3, num_samples=8)


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
    assert calls == [4] * TEACHER.nfe  # only the damaged shard was regenerated
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


@pytest.mark.parametrize("select,nfe,seed", [("val", 3, 1), ("all", 3, 2), ("all", 5, 3)])
def test_s4s_alt_retraces_ld3_and_is_never_worse_on_its_score(select, nfe, seed):
    kw = dict(nfe=nfe, num_samples=48, seed=seed, teacher=TEACHER, iters=16, dtype=torch.float64, select=select)
    alt_events, ld3_events = [], []
    alt = s4s.learn(GMM, method="s4s_alt", callback=alt_events.append, **kw)
    ld3 = s4s.learn(GMM, method="ld3", callback=ld3_events.append, **kw)
    retraced = [(e.loss, e.score) for e in alt_events if e.phase == "ld3"]
    assert retraced == [(e.loss, e.score) for e in ld3_events if e.phase == "grid"]  # LD3's run, step for step
    assert alt.meta["plan"] == "joint:2@start,joint:2@start,joint:2@start,joint:10,grid:16@fresh,coef:4"
    assert alt.meta["metrics"]["score_best"] <= ld3.meta["metrics"]["score_best"]
    if select == "val":
        assert alt.meta["metrics"]["score_best"] == alt.meta["metrics"]["val_best"]  # one score


def test_checks_report_scores_and_the_solver_they_scored():
    events = []
    kw = dict(nfe=3, num_samples=48, seed=1, teacher=TEACHER, iters=16, val_every=4, dtype=torch.float64,
              retry_warmup=None)  # one try: its checks alone
    learned = s4s.learn(GMM, method="ld3", callback=events.append, **kw)
    checks = [e for e in events if e.score is not None]
    assert [e.iteration for e in checks] == [4, 8, 12, 16]
    assert all(e.solver is None and e.val is None for e in events if e.score is None)
    assert all(not e.solver.b.requires_grad and e.solver.nfe == 3 for e in checks)
    m = learned.meta["metrics"]
    assert events[-1].best == min([m["score_start"]] + [e.score for e in checks])
    assert m["score_best"] in (events[-1].best, m["score_start"])  # the start if the final guard keeps it
    # the last check scored the solver of the last step; all-pairs scores mix validation and training
    assert any(e.score != e.val for e in checks)


def test_a_warm_up_shortens_the_first_steps():
    # Adam's first step moves every parameter by the step size whatever the gradient's scale;
    # with warmup=0.5 over a 10-step phase the first step is a fifth of lr, in the same direction
    kw = dict(nfe=4, method="s4s", num_samples=48, seed=0, teacher=TEACHER, plan="coef:10", val_every=1,
              dtype=torch.float64)
    runs = {}
    for warmup in (0.0, 0.5):
        events = []
        s = s4s.learn(GMM, warmup=warmup, callback=events.append, **kw)
        assert s.meta["warmup"] == warmup
        runs[warmup] = [e.solver.b for e in events if e.solver is not None]
    b0 = s4s.make_solver(s.meta["base"], 4, s.meta["schedule"], GMM).b
    cold, warm = runs[0.0][0] - b0, runs[0.5][0] - b0
    assert cold.abs().max() > 1e-3
    torch.testing.assert_close(warm, 0.2 * cold, rtol=1e-6, atol=1e-12)
    assert not torch.allclose(runs[0.0][-1], runs[0.5][-1])


@pytest.mark.parametrize("bad", [{"select": "train"}, {"val_every": 0}, {"warmup": 1.0}, {"warmup": -0.1},
                                 {"retry_warmup": 1.0}])
def test_bad_selection_options_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        s4s.learn(GMM, nfe=3, num_samples=8, teacher=TEACHER, **bad)


def test_a_plan_opening_with_ld3s_phase_retraces_ld3_and_ends_no_worse():
    kw = dict(nfe=3, num_samples=48, seed=1, teacher=TEACHER, iters=16, dtype=torch.float64, retry_warmup=None)
    ld3_events, plan_events = [], []
    ld3 = s4s.learn(GMM, method="ld3", callback=ld3_events.append, **kw)
    alt = s4s.learn(GMM, method="s4s_alt", plan="grid:16, joint:8@start, coef:8", callback=plan_events.append, **kw)
    figures = lambda events: [(e.loss, e.val, e.best) for e in events]  # noqa: E731
    assert len(plan_events) == 32 and plan_events[-1].total == 32
    assert figures(plan_events[:16]) == figures(ld3_events)  # the same minibatches, the same steps
    assert [e.phase for e in plan_events[15:17]] == ["grid1", "joint1"]
    assert alt.meta["metrics"]["score_best"] <= ld3.meta["metrics"]["score_best"]
    assert alt.meta["plan"] == "grid:16,joint:8@start,coef:8" and ld3.meta["plan"] == "grid:16"


@pytest.mark.parametrize("radius", [0.0, 0.1])
def test_a_fresh_phase_retraces_ld3_after_other_phases(radius):
    kw = dict(nfe=3, num_samples=48, seed=1, teacher=TEACHER, iters=16, dtype=torch.float64, radius=radius,
              retry_warmup=None)
    ld3_events, plan_events = [], []
    ld3 = s4s.learn(GMM, method="ld3", callback=ld3_events.append, **kw)
    alt = s4s.learn(GMM, method="s4s_alt", plan="joint:8@start,grid:16@fresh,coef:4", callback=plan_events.append, **kw)
    figures = lambda events, phase: [(e.loss, e.val, e.score) for e in events if e.phase == phase]  # noqa: E731
    assert [e.phase for e in plan_events].count("grid1") == 16
    assert figures(plan_events, "grid1") == figures(ld3_events, "grid")  # the same minibatches, the same steps
    assert figures(plan_events, "joint1") != figures(ld3_events, "grid")[:8]
    assert alt.meta["metrics"]["score_best"] <= ld3.meta["metrics"]["score_best"]
    assert alt.meta["plan"] == "joint:8@start,grid:16@fresh,coef:4"


@pytest.mark.parametrize("plan", ["", "grid", "grid:0", "wiggle:5", "coef:5@end", "joint:2.5", "grid:5@fresh@start"])
def test_bad_plans_are_refused(plan):
    with pytest.raises(ValueError, match="plan"):
        s4s.learn(GMM, nfe=3, num_samples=8, plan=plan, teacher=TEACHER)


@pytest.mark.parametrize("train,val,ok", [((0.9, 1.0), (0.9, 1.0), True), ((0.9, 1.0), (1.1, 1.0), False),
                                          ((1.1, 1.0), (0.9, 1.0), False), ((1.0, 1.0), (0.5, 1.0), False)])
def test_the_guard_needs_a_gain_on_both_splits(train, val, ok):
    assert learner.beats_start(train[0], val[0], train[1], val[1]) is ok


@pytest.mark.parametrize("select", ["val", "all"])
def test_a_run_the_guard_rejects_returns_its_start(caplog, monkeypatch, select):
    monkeypatch.setattr(learner, "beats_start", lambda *figures: False)
    with caplog.at_level("WARNING", logger="s4s.learn"):
        s = s4s.learn(GMM, nfe=4, method="s4s", num_samples=64, seed=0, teacher=TEACHER, iters=20, val_every=5,
                      dtype=torch.float64, select=select, retry_warmup=None)
    assert "keeping the starting solver" in caplog.text and not s.meta["retried"]
    m = s.meta["metrics"]
    assert m["val_best"] == m["val_start"] and m["score_best"] == m["score_start"]
    start = s4s.make_solver(s.meta["base"], 4, s.meta["schedule"], GMM)
    noise = seeded_noise(range(100), (2,), dtype=torch.float64)
    assert torch.allclose(s.sample(GMM, noise), start.sample(GMM, noise), atol=1e-10)


def test_a_rejected_first_try_is_learned_again_and_judged_by_the_same_guard(monkeypatch):
    verdicts = []
    real = learner.beats_start

    def first_rejected(*figures):
        verdicts.append(real(*figures))
        return len(verdicts) > 1 and verdicts[-1]

    monkeypatch.setattr(learner, "beats_start", first_rejected)
    s = s4s.learn(GMM, nfe=4, method="s4s", num_samples=64, seed=0, teacher=TEACHER, iters=20, val_every=5,
                  dtype=torch.float64)
    m = s.meta["metrics"]
    assert s.meta["retried"] and len(verdicts) >= 2
    assert (m["score_best"] < m["score_start"]) == verdicts[-1]


RETRIED = dict(nfe=4, method="s4s", num_samples=128, seed=2, teacher=TEACHER, iters=80, val_every=10,
               dtype=torch.float64)  # a run whose first try the last guard rejects


def test_a_rejected_run_is_learned_again_as_a_warmed_up_run_would_be():
    events = []
    again = s4s.learn(GMM, callback=events.append, **RETRIED)
    warm = s4s.learn(GMM, warmup=0.1, retry_warmup=None, **RETRIED)
    alone = s4s.learn(GMM, retry_warmup=None, **RETRIED)
    assert again.meta["retried"] and not warm.meta["retried"] and not alone.meta["retried"]
    for key in ("sigmas", "model_sigmas", "a", "b"):  # the second try is the warmed-up run, bit for bit
        assert torch.equal(getattr(again, key), getattr(warm, key))
    assert again.meta["metrics"] == warm.meta["metrics"]
    m = alone.meta["metrics"]
    assert m["score_best"] == m["score_start"]  # without it, the start
    assert [e.phase for e in events[79:81]] == ["coef", "coef-retry"] and events[-1].total == 160
    assert events[80].best == alone.meta["metrics"]["score_start"]  # the second try starts afresh


def test_a_second_try_rejected_too_returns_the_start(caplog):
    with caplog.at_level("WARNING", logger="s4s.learn"):
        s = s4s.learn(GMM, **{**RETRIED, "nfe": 3, "seed": 0})
    assert s.meta["retried"] and "keeping the starting solver" in caplog.text
    start = s4s.make_solver(s.meta["base"], 3, s.meta["schedule"], GMM)
    noise = seeded_noise(range(100), (2,), dtype=torch.float64)
    assert torch.allclose(s.sample(GMM, noise), start.sample(GMM, noise), atol=1e-10)


def test_learning_from_two_starts_keeps_the_run_that_scores_best(tmp_path):
    kw = dict(nfe=3, method="s4s_alt", num_samples=48, seed=1, teacher=TEACHER, iters=16, dtype=torch.float64)
    two = s4s.learn(GMM, starts=2, checkpoint=tmp_path / "run.ckpt", **kw)
    assert len(two.meta["starts"]) == 2
    first = s4s.learn(GMM, screen=1, **kw)
    assert f'{first.meta["base"]}/{first.meta["schedule"]}' == next(iter(two.meta["starts"]))  # the usual start
    runs = {key: s4s.learn(GMM, base=key.split("/")[0], schedule=key.split("/")[1], **kw) for key in two.meta["starts"]}
    for key, run in runs.items():  # each is the run with its start fixed, bit for bit
        assert two.meta["starts"][key] == run.meta["metrics"]["score_best"]
    best = min(runs.values(), key=lambda r: r.meta["metrics"]["score_best"])
    for key in ("sigmas", "model_sigmas", "a", "b"):
        assert torch.equal(getattr(two, key), getattr(best, key))
    assert torch.equal(runs[next(iter(runs))].b, first.b)  # the first start's run is the usual run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt.start1", "run.ckpt.start2"]
    again = s4s.load_solver(two.save(tmp_path / "two.json"))
    assert again.meta["starts"] == two.meta["starts"]


def test_a_screen_starts_the_run_from_the_start_whose_probe_scores_best(tmp_path):
    kw = dict(nfe=4, method="s4s_alt", num_samples=48, seed=1, teacher=TEACHER, iters=32, dtype=torch.float64)
    screened = s4s.learn(GMM, checkpoint=tmp_path / "run.ckpt", **kw)  # screen=2 by default
    probes = screened.meta["screen"]
    assert len(probes) == 2
    for key, score in probes.items():  # each is a joint phase of iters/16 steps from that start
        probe = s4s.learn(GMM, **{**kw, "method": "joint", "iters": 2}, base=key.split("/")[0],
                          schedule=key.split("/")[1], retry_warmup=None)
        assert probe.meta["metrics"]["score_best"] == score
    best = min(probes, key=lambda k: probes[k])
    assert best != next(iter(probes))  # here the screen moves the start off the hand-designed leader
    assert f'{screened.meta["base"]}/{screened.meta["schedule"]}' == best
    fixed = s4s.learn(GMM, base=best.split("/")[0], schedule=best.split("/")[1], **kw)
    for key in ("sigmas", "model_sigmas", "a", "b"):  # the run from the winner, bit for bit
        assert torch.equal(getattr(screened, key), getattr(fixed, key))
    assert fixed.meta["screen"] is None  # a given start is not screened
    plain = s4s.learn(GMM, screen=1, **kw)
    assert plain.meta["screen"] is None
    assert f'{plain.meta["base"]}/{plain.meta["schedule"]}' == next(iter(probes))  # the hand-designed leader
    again = s4s.learn(GMM, checkpoint=tmp_path / "run.ckpt", **kw)  # resumes with the screen's outcome
    assert again.meta["screen"] == probes and torch.equal(again.b, screened.b)
    assert s4s.load_solver(screened.save(tmp_path / "s.json")).meta["screen"] == probes


@pytest.mark.parametrize("starts", [0, True, 1.5])
def test_bad_start_counts_are_refused(starts):
    with pytest.raises(ValueError, match="starts"):
        s4s.learn(GMM, nfe=3, num_samples=8, teacher=TEACHER, starts=starts)
    with pytest.raises(ValueError, match="screen"):
        s4s.learn(GMM, nfe=3, num_samples=8, teacher=TEACHER, screen=starts)


def test_starts_are_parsed_or_refused_with_the_valid_names():
    from s4s.learn import parse_start

    assert parse_start("ipndm/time_uniform+zero") == ("ipndm", "time_uniform+zero")
    for bad in ("deis", "deis/", "nope/karras", "deis/lognsr", None):
        with pytest.raises(ValueError, match="BASE/SCHEDULE"):
            parse_start(bad)


def test_the_final_choice_keeps_an_opening_only_when_fresh_pairs_show_it_ahead(monkeypatch):
    kw = dict(num_samples=64, teacher=TEACHER, iters=24, dtype=torch.float64)
    for nfe, seed, chosen in ((4, 1, "ld3@4"), (3, 0, "end")):  # an end overfitted to 64 pairs; an end that holds
        alt = s4s.learn(GMM, nfe=nfe, method="s4s_alt", seed=seed, final_pairs=1024, **kw)
        end = s4s.learn(GMM, nfe=nfe, method="s4s_alt", seed=seed, final_pairs=0, **kw)
        final = alt.meta["metrics"]["final"]
        assert end.meta["metrics"]["final"] is None and final["chosen"] == chosen
        assert final["pairs"] == 1024 and final["seeds"] == [64, 1087]  # the seeds after the learning ones
        # the candidates' distances, measured here on those seeds: the mean over samples of the mean squared error
        noise = seeded_noise(range(64, 1088), (2,), dtype=torch.float64)
        ref = TEACHER.sampler(GMM)(noise, None)
        dist = lambda s: float((s.sample(GMM, noise) - ref).pow(2).mean(1).mean())  # noqa: E731
        ld3 = s4s.learn(GMM, nfe=nfe, method="ld3", seed=seed, **kw)  # what the ld3 opening returns alone
        assert final["distances"]["end"] == pytest.approx(dist(end), rel=1e-9)
        assert final["distances"]["ld3@4"] == pytest.approx(dist(ld3), rel=1e-9)
        each = lambda s: (s.sample(GMM, noise) - ref).pow(2).mean(1)  # noqa: E731
        diff = each(ld3) - each(end)
        z = float(diff.mean() / (diff.std() / 1024 ** 0.5))
        assert final["z"]["ld3@4"] == pytest.approx(z, rel=1e-6) and (z < -final["z_needed"]) == (chosen == "ld3@4")
        kept = ld3 if chosen == "ld3@4" else end
        default = s4s.learn(GMM, nfe=nfe, method="s4s_alt", seed=seed, **kw).meta["metrics"]["final"]
        assert default["pairs"] == 128 and default["seeds"] == [64, 191]  # twice the learning pairs, at most 1,024
        assert all(torch.equal(getattr(alt, k), getattr(kept, k)) for k in ("sigmas", "model_sigmas", "a", "b"))
        assert alt.meta["metrics"]["score_best"] == kept.meta["metrics"]["score_best"] == final["scores"][chosen]
    # at NFE 4 the opening is ahead by about 7 standard errors: asked for 8, the end stays
    monkeypatch.setattr(learner, "FINAL_Z", 8.0)
    strict = s4s.learn(GMM, nfe=4, method="s4s_alt", seed=1, final_pairs=1024, **kw)
    final = strict.meta["metrics"]["final"]
    assert final["chosen"] == "end" and final["distances"]["ld3@4"] < final["distances"]["end"]
    assert -8 < final["z"]["ld3@4"] < -2 and final["z_needed"] == 8.0


def test_paired_z_is_the_mean_difference_over_its_standard_error():
    a, b = torch.tensor([1.0, 2.0, 4.0, 3.0]), torch.tensor([2.0, 2.5, 4.0, 4.5])
    diff = a - b  # -1, -0.5, 0, -1.5: mean -0.75, sample std 0.645
    assert learner.paired_z(a, b) == pytest.approx(-0.75 / (diff.std().item() / 2))
    assert learner.paired_z(b, a) == pytest.approx(0.75 / (diff.std().item() / 2))
    assert learner.paired_z(a, a) == 0.0 and learner.paired_z(a, a + 1) == -math.inf
    assert math.isnan(learner.paired_z(a, torch.tensor([1.0, math.inf, 1.0, 1.0])))


def test_fresh_pairs_follow_the_learning_seeds_and_their_conditions():
    labelled = s4s.Denoiser(lambda x, s, c=None: GMM(x, s), GMM.sigma_min, GMM.sigma_max)  # takes a condition
    data = s4s.generate_teacher(labelled, [3, 9, 4], (2,), TEACHER, cond=torch.tensor([7, 8, 9]), dtype=torch.float64)
    fresh = fresh_pairs(labelled, data, TEACHER, 5, None)
    assert fresh.seeds == [10, 11, 12, 13, 14] and fresh.cond.tolist() == [7, 8, 9, 7, 8]  # rows in turn
    assert torch.equal(fresh.noise, seeded_noise(range(10, 15), (2,), dtype=torch.float64))
    by_seed = fresh_pairs(labelled, data, TEACHER, 2, lambda seeds: torch.tensor(seeds) % 10)
    assert by_seed.cond.tolist() == [0, 1]
    with pytest.raises(ValueError, match="final_pairs"):
        s4s.learn(GMM, nfe=3, num_samples=8, teacher=TEACHER, final_pairs=-1)


def test_cost_is_counted_row_by_row():
    """``meta["cost"]`` agrees with a count made outside the learner: every row through the
    model, 3 units with autograd and 1 without, and the teacher pairs at rows x teacher NFE."""
    rows = {"grad": 0, "nograd": 0}

    def fn(x, sigma):
        rows["grad" if torch.is_grad_enabled() and (x.requires_grad or sigma.requires_grad) else "nograd"] += x.shape[0]
        return GMM(x, sigma)

    model = s4s.Denoiser(fn, GMM.sigma_min, GMM.sigma_max, name="gmm-counted")
    data = s4s.generate_teacher(GMM, range(48), (2,), TEACHER, dtype=torch.float64)
    solver = s4s.learn(model, nfe=3, method="s4s_alt", teacher=TEACHER, teacher_data=data, iters=16, val_every=4,
                       dtype=torch.float64, parallel=False)
    cost = solver.meta["cost"]
    assert rows["grad"] > 0 and rows["nograd"] > 0
    assert cost["rows_grad"] == rows["grad"] and cost["rows_nograd"] == rows["nograd"]
    assert cost["learn_units"] == 3 * rows["grad"] + rows["nograd"]
    final = solver.meta["metrics"]["final"]  # fresh pairs for the final choice are teacher pairs too
    assert cost["teacher_units"] == (48 + (final["pairs"] if final else 0)) * TEACHER.nfe
    assert cost["units"] == cost["learn_units"] + cost["teacher_units"]


def test_cost_charges_an_adaptive_teacher_nothing_up_front():
    from s4s.learn.budget import Cost, counted, cost_of

    cost = Cost()
    model = counted(GMM, cost)
    assert cost_of(model) is cost and cost_of(GMM) is None
    cost.charge_teacher(10, None)
    cost.charge_teacher(10, 7)
    with torch.no_grad():
        model(torch.zeros(5, 2, dtype=torch.float64), torch.ones(5, dtype=torch.float64))
    x = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    model(x, torch.ones(4, dtype=torch.float64)).sum().backward()
    assert (cost.teacher_units, cost.rows_nograd, cost.rows_grad, cost.learn_units) == (70, 5, 4, 17)
