"""Conditions that are dicts or tuples of tensors (a text model's embeddings and pooled
embeddings) through the teacher, its cache, learning and guidance."""

from __future__ import annotations

import pytest
import torch

import s4s
from s4s import conds
from s4s.learn import LearnConfig


def gaussian_model() -> s4s.Denoiser:
    """The exact denoiser of data ``N(cond["mean"], cond["scale"]^2 I)``, per sample."""

    def fn(x, sigma, cond):
        mean, scale = cond["mean"], cond["scale"][:, None]
        s = sigma[:, None]
        return (scale**2 * x + s**2 * mean) / (scale**2 + s**2)

    return s4s.Denoiser(fn, 0.002, 80.0, name="dict-gaussian")


def cond_for(seeds, dim=3):
    n = len(seeds)
    gen = torch.Generator().manual_seed(7)
    means = torch.randn(10, dim, generator=gen, dtype=torch.float64)
    idx = torch.tensor([s % 10 for s in seeds])
    return {"mean": means[idx], "scale": 0.2 + 0.1 * (idx % 3).to(torch.float64)} if n else None


def test_rows_take_cat_and_digest_walk_every_tensor():
    c = {"a": torch.arange(6).reshape(3, 2), "b": (torch.ones(3), torch.zeros(3, 4))}
    assert conds.rows(c) == 3
    part = conds.take(c, [2, 0])
    assert part["a"].tolist() == [[4, 5], [0, 1]] and part["b"][1].shape == (2, 4)
    whole = conds.cat([conds.take(c, [0]), conds.take(c, slice(1, 3))])
    assert conds.digest(whole) == conds.digest(c) and conds.digest(part) != conds.digest(c)
    assert conds.digest(torch.ones(2)) != conds.digest({"x": torch.ones(2)})
    with pytest.raises(ValueError, match="same number of rows"):
        conds.check({"a": torch.ones(3), "b": torch.ones(2)})
    with pytest.raises(ValueError, match="has 3 rows for 4 samples"):
        conds.check(c, 4)
    with pytest.raises(ValueError, match="tensors, or tuples or dicts"):
        conds.check({"a": [1, 2]})


def test_a_dict_condition_goes_through_the_teacher_its_cache_and_the_learner(tmp_path):
    model = gaussian_model()
    seeds = list(range(24))
    spec = s4s.TeacherSpec("unipc", 40, "logsnr")
    data = s4s.generate_teacher(model, seeds, (3,), spec, cond=cond_for(seeds), dtype=torch.float64,
                                cache_dir=tmp_path)
    # the exact solution at sigma_min: close to the per-sample mean for these scales
    assert data.cond["mean"].shape == (24, 3) and torch.isfinite(data.samples).all()
    again = s4s.generate_teacher(model, seeds, (3,), spec, cond=cond_for(seeds), dtype=torch.float64,
                                 cache_dir=tmp_path)
    assert torch.equal(again.samples, data.samples) and len(list(tmp_path.iterdir())) == 1  # one cache folder
    other = cond_for(seeds)
    other["scale"] = other["scale"] * 2
    s4s.generate_teacher(model, seeds, (3,), spec, cond=other, dtype=torch.float64, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # another condition: another key
    sub = data.subset([3, 1])
    assert torch.equal(sub.cond["mean"], data.cond["mean"][[3, 1]])

    solver = s4s.learn(model, nfe=3, method="s4s", teacher_data=data, config=LearnConfig(
        teacher=spec, dtype=torch.float64, iters=8, shape=(3,)))
    x = solver.sample(model, data.noise, data.cond)
    assert x.shape == (24, 3) and torch.isfinite(x).all()
    with pytest.raises(ValueError, match="cond has 2 rows for 24"):
        s4s.generate_teacher(model, seeds, (3,), spec, cond=conds.take(data.cond, [0, 1]), dtype=torch.float64)


def test_guidance_pairs_tuple_conditions_with_their_null_in_one_call():
    calls = []

    def fn(x, sigma, cond):
        calls.append(len(x))
        a, b = cond
        return x * 0 + a + b[:, None]

    model = s4s.Denoiser(fn, 0.01, 10.0)
    guided = s4s.models.guided(model, 3.0, (torch.zeros(1, 2), torch.zeros(1)))
    out = guided(torch.zeros(4, 2), torch.ones(4), (torch.ones(4, 2), torch.ones(4)))
    assert calls == [8] and torch.allclose(out, torch.full((4, 2), 6.0))  # 0 + 3 * (2 - 0)
