"""The benchmark scripts' table logic: joining runs and the must-show columns."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from compare_tables import ratios, summary  # noqa: E402
from final_choices import render as render_choices, rows as choice_rows  # noqa: E402
from learn_table import checks, render  # noqa: E402
from merge_tables import merge, use  # noqa: E402
from paired_heldout import paired, worst_share  # noqa: E402


def row(nfe: int, hand: float, **methods: dict) -> dict:
    return {"model": "digits", "nfe": nfe, "fd_teacher": 6.0, "hand": {"solver": "deis/karras", "rmse": hand, "fd": 30.0},
            **methods}


def test_merge_joins_methods_of_separate_runs_and_reports_their_baseline_difference():
    gpu = [row(4, 0.200, s4s_alt={"rmse": 0.08, "fd": 9.0, "seconds": 100.0})]
    cpu = [row(4, 0.202, ld3={"rmse": 0.10}, s4s={"rmse": 0.19, "hand_same_grid": 0.2}), row(5, 0.15, ld3={"rmse": 0.07})]
    rows, worst = merge([("gpu.json", gpu), ("cpu.json", cpu)])
    assert [(r["nfe"], sorted(m for m in ("s4s", "s4s_alt", "ld3") if m in r)) for r in rows] == [
        (4, ["ld3", "s4s", "s4s_alt"]), (5, ["ld3"])]
    assert rows[0]["hand"]["rmse"] == 0.200 and rows[0]["s4s_alt"]["source"] == "gpu.json"
    assert worst == pytest.approx(0.01)
    line = render(rows).splitlines()[2]
    # s4s_alt / hand 0.40, s4s / same-grid hand 0.95, FD gap closed (30 - 9) / (30 - 6)
    assert "| 0.40 | 0.95 |" in line and "| 88% |" in line


def test_checks_count_a_copied_cell_as_no_learn_of_its_own():
    cost = {"units": 250, "teacher_units": 100}
    alt = {"rmse": 0.08, "cost": cost}
    out = checks([row(4, 0.2, s4s_alt=alt, joint={**alt, "same_as": "s4s_alt"}, ld3={"rmse": 0.1, "cost": cost})], None)
    assert "- s4s_alt <= 0.5x the best hand-designed at NFE 4, 5, 6, 8: 1 of 1 cells" in out
    assert "cost at most 3x the teacher's: 2 of 2 learns" in out


def test_use_fills_one_methods_cells_with_anothers():
    rows = use([row(4, 0.2, s4s_alt={"rmse": 0.09}, joint={"rmse": 0.07}), row(5, 0.2, s4s_alt={"rmse": 0.08})],
               "joint", "s4s_alt")
    assert rows[0]["s4s_alt"] == {"rmse": 0.07, "same_as": "joint"} and rows[0]["joint"] == {"rmse": 0.07}
    assert "s4s_alt" not in rows[1]


def test_merge_refuses_a_method_measured_twice():
    a = [row(4, 0.2, ld3={"rmse": 0.1})]
    with pytest.raises(ValueError, match="ld3 is in two inputs"):
        merge([("a.json", a), ("b.json", a)])


def test_merge_can_prefer_the_earlier_input_of_a_method_measured_twice(caplog):
    gpu = [row(8, 0.1, ld3={"rmse": 0.036})]
    cpu = [row(8, 0.1, ld3={"rmse": 0.040}, s4s={"rmse": 0.09})]
    with caplog.at_level("INFO", logger="merge_tables"):
        rows, _ = merge([("gpu.json", gpu), ("cpu.json", cpu)], prefer_first=True)
    assert rows[0]["ld3"] == {"rmse": 0.036, "source": "gpu.json"} and rows[0]["s4s"]["source"] == "cpu.json"
    assert "ld3 0.036 from gpu.json kept, 0.04 from cpu.json not used" in caplog.text


def test_merge_orders_rows_as_the_benchmark_lists_models_then_by_nfe():
    def at(model, nfe):
        return {**row(nfe, 0.2), "model": model}

    rows, _ = merge([("a.json", [at("digits-flow", 10), at("mine", 4), at("digits", 10)]),
                     ("b.json", [at("gmm", 5), at("digits", 3)])])
    assert [(r["model"], r["nfe"]) for r in rows] == [
        ("gmm", 5), ("digits", 3), ("digits", 10), ("digits-flow", 10), ("mine", 4)]


def test_compare_tables_gives_each_cells_ratio_and_the_geometric_means():
    old = [row(4, 0.2, s4s_alt={"rmse": 0.10}, ld3={"rmse": 0.1}), row(5, 0.2, s4s_alt={"rmse": 0.08}),
           row(6, 0.2, s4s_alt={"rmse": 0.05})]
    new = [row(4, 0.2, s4s_alt={"rmse": 0.05}), row(5, 0.2, s4s_alt={"rmse": 0.16}), row(8, 0.2, s4s_alt={"rmse": 0.1})]
    assert ratios(new, old, "s4s_alt") == {("digits", 4): 0.5, ("digits", 5): 2.0}  # only the cells both have
    assert ratios(new, old, "ld3") == {}
    text = summary(new, old, ["s4s_alt", "ld3"], show=1)
    assert text.splitlines() == ["s4s_alt: geometric mean 1.000x over 2 cells; by NFE 4: 0.500, 5: 2.000",
                                 "  best: digits NFE 4 0.50x", "  worst: digits NFE 5 2.00x"]


def test_paired_heldout_reports_the_difference_per_block_and_its_standard_error():
    import torch
    res = paired({"s4s_alt": torch.tensor([1.0, 2.0, 3.0, 4.0]), "ld3": torch.ones(4)}, blocks=2)
    assert res["block_diffs"] == [0.5, 2.5] and res["mse_diff"] == 1.5
    assert res["rmse_first_block"] == {"s4s_alt": pytest.approx(1.5 ** 0.5), "ld3": 1.0}
    assert res["rmse_all"]["s4s_alt"] == pytest.approx(2.5 ** 0.5)
    assert res["mse_diff_se"] == pytest.approx(torch.tensor([0.0, 1.0, 2.0, 3.0]).std().item() / 2)
    assert res["worst_share"] == {"s4s_alt": pytest.approx(0.4), "ld3": pytest.approx(0.25)}  # 1 worst of 4
    outlier = torch.cat([torch.full((199,), 0.01), torch.tensor([98.01])])  # 2 worst of 200 carry 98.02 of 100
    assert worst_share(outlier) == pytest.approx(0.9802)


def test_teacher_pairs_are_the_tables_and_are_cached(tmp_path):
    import torch
    from learn_table import MODELS, teacher_pairs
    from s4s.teacher import TeacherSpec

    gmm = MODELS["gmm"]("cpu")
    data = teacher_pairs("gmm", gmm, [0, 1, 2], str(tmp_path))
    assert data.seeds == [0, 1, 2] and data.noise.dtype == torch.float64 and data.cond is None
    assert torch.equal(data.samples, TeacherSpec().sampler(gmm)(data.noise, None))
    assert torch.equal(teacher_pairs("gmm", gmm, [0, 1, 2], str(tmp_path)).samples, data.samples)
    assert any(tmp_path.iterdir())


def test_final_choices_reads_the_learners_choice_and_joins_the_table_before(tmp_path):
    import json

    cell = tmp_path / "digits-10"
    cell.mkdir()
    (cell / "learn_table.json").write_text(json.dumps([row(10, 0.1, s4s_alt={"rmse": 0.023, "seconds": 9.0})]))
    (tmp_path / "digits-10.log").write_text(
        "noise\nfinal choice on 1024 fresh teacher pairs (seeds 512..1535, 59.4 s): end 0.0004373, ld3@4 0.0003517 -> ld3@4\n")
    before = [row(10, 0.1, s4s_alt={"rmse": 0.024, "seconds": 8.0}, ld3={"rmse": 0.023})]
    (r,) = choice_rows(tmp_path, before)
    assert r["choice"] == {"pairs": 1024, "distances": {"end": 0.0004373, "ld3@4": 0.0003517}, "z": {},
                           "chosen": "ld3@4"}  # a log from before z was logged
    assert (r["before"], r["ld3"], r["now"], r["seconds_before"]) == (0.024, 0.023, 0.023, 8.0)
    assert render_choices([r]).splitlines()[-1] == (
        "| digits | 10 | 0.0004373 | 0.0003517 | — | ld3 opening | 0.024 | 0.023 | 0.023 | 8 | 9 |")
    (tmp_path / "digits-10.log").write_text(
        "final choice on 1024 fresh teacher pairs (seeds 512..1535, 5.1 s): end 0.0004373, ld3@4 0.0003517 (z -3.07)"
        " -> ld3@4\n")
    (r,) = choice_rows(tmp_path, before)
    assert r["choice"]["z"] == {"ld3@4": -3.07} and r["choice"]["distances"]["ld3@4"] == 0.0003517
    assert "| 0.0003517 | -3.07 | ld3 opening |" in render_choices([r])


def test_json_options_become_learn_config_fields():
    from learn_table import config_fields
    from s4s.learn import LearnConfig
    from s4s.learn.policies import RankStarts
    options = {"rank": 128, "lr": 0.05}
    fields = config_fields(options)
    assert fields == {"rank": RankStarts(pairs=128), "lr": 0.05} and options["rank"] == 128  # the input is kept
    assert LearnConfig(**fields).rank.pairs == 128
    assert config_fields({"tolerance": 2}) == {"tolerance": 2}
