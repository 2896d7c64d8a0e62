"""Hostile input, property-based (hypothesis): malformed and extreme solver files, grids,
builder options, teacher specs, caches and weight files. Each case must end in a clear error
(ValueError/TypeError/FileNotFoundError naming the problem) or in a correct result; never a
crash, a hang or a silently wrong solver. About 1,500 generated cases in all."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import s4s
from s4s.io import solver_from_dict, solver_to_dict
from s4s.learn.checkpoint import load_checkpoint
from s4s.solvers import SOLVERS
from s4s.teacher import generate_teacher
from s4s.zoo.neural import load_module

CASES = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MODEL = s4s.zoo.load("gmm", dim=2)
CLEAR = (ValueError, TypeError, FileNotFoundError)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
extreme_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e-300, 1e300, -1.0]))


def _base_dict(name: str, nfe: int, schedule: str) -> dict:
    return json.loads(json.dumps(solver_to_dict(s4s.make_solver(name, nfe, schedule, MODEL))))


def _assert_clear(err: BaseException) -> None:
    assert isinstance(err, CLEAR), f"unclear {type(err).__name__}: {err}"
    assert len(str(err)) > 10


def _same(solver: s4s.Solver, data: dict) -> bool:
    ref = solver_from_dict(data)
    return all(torch.equal(getattr(solver, k), getattr(ref, k)) for k in ("sigmas", "model_sigmas", "a", "b"))


@st.composite
def mutated_solver_files(draw):
    name = draw(st.sampled_from(["ddim", "dpmpp_2m", "unipc", "ipndm", "deis"]))
    nfe = draw(st.integers(1, 5))
    original = _base_dict(name, nfe, draw(st.sampled_from(["karras", "logsnr"])))
    data = copy.deepcopy(original)
    op = draw(st.sampled_from(["drop", "replace", "number", "row", "nfe", "checksum"]))
    if op == "drop":
        data.pop(draw(st.sampled_from(sorted(data))))
    elif op == "replace":
        data[draw(st.sampled_from(sorted(data)))] = draw(json_values)
    elif op == "number":
        key = draw(st.sampled_from(["sigmas", "model_sigmas", "a", "b"]))
        arr = data[key]
        i = draw(st.integers(0, len(arr) - 1))
        if isinstance(arr[i], list):
            arr[i][draw(st.integers(0, len(arr[i]) - 1))] = draw(extreme_floats)
        else:
            arr[i] = draw(extreme_floats)
    elif op == "row":
        key = draw(st.sampled_from(["sigmas", "model_sigmas", "a", "b"]))
        data[key] = data[key][: draw(st.integers(0, len(data[key])))] + draw(st.lists(json_values, max_size=2))
    elif op == "nfe":
        data["nfe"] = draw(st.one_of(st.integers(-5, 10**9), json_values))
    else:
        data["sha256"] = draw(st.one_of(st.text(max_size=64), json_values))
    return original, data


@CASES
@given(mutated_solver_files())
def test_mutated_solver_files_are_refused_or_unchanged(case):
    original, data = case
    try:
        solver = solver_from_dict(json.loads(json.dumps(data, allow_nan=True)))
    except Exception as e:  # noqa: BLE001 - the property is about which exceptions occur
        _assert_clear(e)
        assert "not a valid s4s solver file" in str(e)
    else:  # accepted only if the numbers are exactly the original ones
        assert _same(solver, original)
        event("accepted")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@CASES
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode), st.floats(0, 1)))
def test_arbitrary_or_truncated_files_get_clear_errors(files, content):
    good = (json.dumps(_base_dict("dpmpp_2m", 3, "karras"), indent=1) + "\n").encode()
    if isinstance(content, float):  # truncation of a valid file
        content = good[: int(content * len(good))]
    path = Path(files) / "solver.json"
    path.write_bytes(content)
    try:
        solver = s4s.load_solver(path)
    except Exception as e:  # noqa: BLE001
        _assert_clear(e)
    else:
        assert _same(solver, json.loads(good))
    for loader in (lambda p: load_checkpoint(p, "x"), lambda p: load_module(p, "unet")):
        with pytest.raises(ValueError, match=str(path.name)):
            loader(path)


@st.composite
def grids(draw):
    if draw(st.booleans()):  # a plausible grid, maybe ending at 0
        levels = draw(st.lists(st.floats(1e-4, 1e4), min_size=2, max_size=8, unique=True))
        grid = sorted(levels, reverse=True)
        if draw(st.booleans()):
            grid.append(0.0)
        return grid
    return draw(st.lists(extreme_floats, max_size=8))


builder_options = st.fixed_dictionaries({}, optional={
    "order": st.one_of(st.integers(-2, 6), json_values),
    "variant": st.one_of(st.sampled_from(["bh1", "bh2"]), st.text(max_size=4)),
    "corrector": st.one_of(st.booleans(), json_values),
    "lower_order_final": st.one_of(st.booleans(), st.integers(0, 2)),
    "bogus": json_values,
})


@CASES
@given(st.sampled_from(sorted(SOLVERS)), grids(), st.one_of(st.just({}), builder_options), st.one_of(st.none(), st.integers(0, 12)))
def test_grids_and_builder_options_are_refused_or_exact(name, grid, options, nfe):
    if nfe is None:  # the count the grid implies, so that plausible grids get accepted
        per_step = SOLVERS[name].evals_per_step
        nfe = per_step * (len(grid) - 1) - (per_step - 1) * int(bool(grid) and grid[-1] == 0)
    try:
        solver = s4s.make_solver(name, nfe, grid, MODEL, **options)
    except Exception as e:  # noqa: BLE001
        _assert_clear(e)
        event("refused")
        return
    event("accepted")
    # accepted: the grid is the one asked for (Heun adds stage levels), the NFE is as asked, and a
    # constant denoiser c is integrated exactly from x = sigma_0 z: x_end = c + sigma_end (z - c / sigma_0)
    asked = torch.tensor(grid, dtype=torch.float64)
    assert solver.nfe == nfe and bool(torch.isin(asked, solver.sigmas).all())
    assert solver.sigmas[0] == asked[0] and solver.sigmas[-1] == asked[-1]
    c = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    z = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    const = s4s.Denoiser(lambda x, s: c.expand_as(x), MODEL.sigma_min, MODEL.sigma_max)
    out = solver.sample(const, z)
    want = c + grid[-1] * (z - c / grid[0])
    assert torch.allclose(out, want, rtol=1e-6, atol=1e-9)


@CASES
@given(st.one_of(st.sampled_from(["unipc", "ddim", "dopri5", "heun"]), st.text(max_size=6)),
       st.one_of(st.integers(-3, 10**6), json_values), st.one_of(st.sampled_from(["karras", "logsnr"]), json_values),
       st.one_of(st.floats(1e-6, 1e-2), extreme_floats))
def test_teacher_specs_are_refused_or_work(solver, nfe, schedule, rtol):
    try:
        spec = s4s.TeacherSpec(solver, nfe, schedule, rtol=rtol, atol=rtol)
    except Exception as e:  # noqa: BLE001
        _assert_clear(e)
        return
    if spec.solver != "dopri5" and spec.nfe > 400:  # valid; too slow to run for every case
        return
    noise = torch.randn(3, 2, dtype=torch.float64)
    try:
        out = spec.sampler(MODEL)(noise, None)
    except Exception as e:  # noqa: BLE001 - e.g. heun with an odd nfe
        _assert_clear(e)
        return
    assert out.shape == noise.shape and torch.isfinite(out).all()


@pytest.fixture(scope="module")
def cached_teacher(tmp_path_factory):
    cache = tmp_path_factory.mktemp("teacher-cache")
    spec = s4s.TeacherSpec("dpmpp_2m", 12, "logsnr")
    clean = generate_teacher(MODEL, range(8), (2,), spec, batch_size=4, dtype=torch.float64, cache_dir=cache)
    return cache, spec, clean


@CASES
@given(st.one_of(json_values, st.binary(max_size=64)), st.booleans())
def test_hostile_manifests_and_shards_never_give_wrong_samples(cached_teacher, manifest, damage_shard):
    cache, spec, clean = cached_teacher
    folder = next(p for p in Path(cache).iterdir() if p.is_dir())
    path = folder / "manifest.json"
    path.write_bytes(manifest if isinstance(manifest, bytes) else json.dumps(manifest, allow_nan=True).encode())
    if damage_shard:
        shard = sorted(folder.glob("*.safetensors"))[0]
        shard.write_bytes(shard.read_bytes()[:40])
    again = generate_teacher(MODEL, range(8), (2,), spec, batch_size=4, dtype=torch.float64, cache_dir=cache)
    assert torch.equal(again.samples, clean.samples)
    assert json.loads(path.read_text())["shards"]  # a valid manifest was written back
