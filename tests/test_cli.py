"""Every subcommand end to end on the Gaussian mixture, with tiny budgets."""

from __future__ import annotations

import json

import pytest
import torch

import s4s
from s4s.cli import main

TINY = ["--model", "gmm", "--teacher", "unipc:40", "--teacher-schedule", "logsnr"]


def test_learn_sample_eval_teacher_bench(tmp_path, capsys):
    solver_file = tmp_path / "gmm.json"
    assert main(["learn", *TINY, "--nfe", "3", "--num-samples", "24", "--iters", "6", "--out", str(solver_file)]) == 0
    solver = s4s.load_solver(solver_file)
    assert solver.nfe == 3 and solver.meta["method"] == "s4s_alt"
    started = tmp_path / "gmm-start.json"
    assert main(["learn", *TINY, "--nfe", "3", "--num-samples", "24", "--iters", "6", "--start", "ddim/logsnr+zero",
                 "--out", str(started)]) == 0
    meta = s4s.load_solver(started).meta
    assert (meta["base"], meta["schedule"]) == ("ddim", "logsnr+zero")
    budgeted = tmp_path / "gmm-budget.json"
    assert main(["learn", *TINY, "--nfe", "3", "--num-samples", "24", "--budget", "1.5", "--out", str(budgeted)]) == 0
    cost = s4s.load_solver(budgeted).meta["cost"]  # steps bought by the budget: 1.5 times the teacher's cost
    assert cost["teacher_units"] == 24 * 40 and 0.5 * 960 < cost["learn_units"] <= 1.5 * 960
    capsys.readouterr()
    assert main(["learn", *TINY, "--nfe", "3", "--num-samples", "24", "--budget", "0.5", "--cache",
                 str(tmp_path / "fresh-cache"), "--out", str(tmp_path / "short.json")]) == 2
    err = capsys.readouterr().err
    assert "--budget" in err and "buys no step" in err and "at least" in err
    assert not (tmp_path / "fresh-cache").exists() and not (tmp_path / "short.json").exists()  # refused before the teacher
    # never overwritten without --force
    assert main(["learn", *TINY, "--nfe", "3", "--num-samples", "24", "--iters", "6", "--out", str(solver_file)]) == 2
    assert "--force" in capsys.readouterr().err

    samples = tmp_path / "x.safetensors"
    assert main(["sample", "--model", "gmm", "--solver", str(solver_file), "--seeds", "0-4", "--out", str(samples)]) == 0
    from safetensors.torch import load_file

    saved = load_file(str(samples))
    assert saved["samples"].shape == (5, 2) and saved["seeds"].tolist() == [0, 1, 2, 3, 4]

    capsys.readouterr()
    assert main(["eval", *TINY, "--solver", "ddim", "--nfe", "4", "--seeds", "100-131"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert res["nfe"] == 4 and res["rmse"] > 0 and 0 < res["rmse_se"] < res["rmse"]
    assert res["best_hand_designed"]["rmse"] <= res["rmse"] and res["ratio_to_best_hand"] >= 1  # ddim/karras is one
    assert res["teacher_gap_rmse"] >= 0 and "standard error over 32 seeds" in captured.err

    cache = tmp_path / "cache"
    assert main(["teacher", *TINY, "--seeds", "0-7", "--cache", str(cache)]) == 0
    assert len(list(cache.glob("*/*.safetensors"))) == 1 and "2x-finer" in capsys.readouterr().out

    assert main(["bench", *TINY, "--nfe", "3", "--num-samples", "16", "--iters", "4", "--seeds", "200-215"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["nfe"] == 3 and "s4s_alt" in row and row["hand"]["rmse"] > 0


def test_zoo_list(capsys):
    assert main(["zoo", "list"]) == 0
    assert {"gmm", "digits", "digits-flow"} <= set(capsys.readouterr().out.split())


def test_module_factory_models(tmp_path, capsys, monkeypatch):
    (tmp_path / "mymodels.py").write_text(
        "import s4s\ndef gauss():\n    return s4s.zoo.load('gaussian', dim=3)\ndef bad():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "g.safetensors"
    assert main(["sample", "--model", "mymodels:gauss", "--solver", "dpmpp_2m", "--nfe", "4", "--out", str(out)]) == 0
    assert main(["sample", "--model", "mymodels:bad", "--solver", "ddim", "--nfe", "2", "--out", str(tmp_path / "b.safetensors")]) == 2
    assert "expected an s4s.Denoiser" in capsys.readouterr().err


@pytest.mark.parametrize("argv,code,message", [
    (["learn", "--model", "nope", "--nfe", "3", "--out", "x.json"], 2, "unknown model 'nope'"),
    (["sample", "--model", "gmm", "--solver", "ddim", "--out", "x.png"], 2, "needs --nfe"),
    (["sample", "--model", "gmm", "--solver", "ddim", "--nfe", "2", "--seeds", "a-b", "--out", "x.png"], 2, "--seeds must look like"),
    (["sample", "--model", "gmm", "--solver", "missing.json", "--out", "x.png"], 2, "--solver: no solver file"),
    (["sample", "--model", "gmm", "--solver", "ddim", "--nfe", "3", "--out", "x.png"], 2, "a PNG grid needs image samples"),
    (["eval", "--model", "gmm", "--solver", "ddim", "--nfe", "3", "--schedule", "nope"], 2, "--schedule must be one of"),
    (["learn", "--model", "gmm", "--nfe", "3"], 2, "required"),
    (["teacher", "--model", "gmm"], 2, "--cache"),
    (["sample", "--model", "gmm", "--solver", "heun", "--nfe", "3", "--out", "x.safetensors"], 1, "multiple of 2"),
    (["sample", "--model", "gmm", "--solver", "ddim", "--nfe", "2", "--device", "gpu0", "--out", "x.png"], 2,
     "--device must name a torch device"),
    (["eval", "--model", "gmm", "--solver", "ddim", "--nfe", "2", "--device", "cuda:99"], 2, "--device cuda:99"),
    (["learn", "--model", "gmm", "--nfe", "3", "--plan", "grid:0", "--out", "x.json"], 2, "bad plan item 'grid:0'"),
    (["learn", "--model", "gmm", "--nfe", "3", "--budget", "0", "--out", "x.json"], 2, "--budget must be a positive"),
    (["learn", "--model", "gmm", "--nfe", "3", "--start", "deis", "--out", "x.json"], 2, "--start: a start must be BASE/SCHEDULE"),
    (["learn", "--model", "gmm", "--nfe", "3", "--start", "deis/lognsr", "--out", "x.json"], 2, "got 'deis/lognsr'"),
])
def test_usage_and_failure_exit_codes(tmp_path, monkeypatch, capsys, argv, code, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_device_cuda_without_a_gpu_is_refused(capsys):
    assert main(["sample", "--model", "digits", "--solver", "ddim", "--nfe", "2", "--device", "cuda", "--out", "x.png"]) == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err


def test_explicit_cpu_device_gives_the_default_samples(tmp_path):
    args = ["sample", "--model", "digits", "--solver", "dpmpp_2m", "--nfe", "3", "--seeds", "0-3"]
    assert main([*args, "--out", str(tmp_path / "a.safetensors")]) == 0
    assert main([*args, "--device", "cpu", "--out", str(tmp_path / "b.safetensors")]) == 0
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(tmp_path / "a.safetensors"))["samples"],
                       load_file(str(tmp_path / "b.safetensors"))["samples"])


def test_help_for_every_subcommand(capsys):
    for cmd in (["learn"], ["sample"], ["eval"], ["bench"], ["teacher"], ["zoo"], ["zoo", "train"], ["demo"]):
        assert main([*cmd, "--help"]) == 0
        assert "usage: s4s" in capsys.readouterr().out


def test_diffusers_pipeline_folder_as_model(tmp_path):
    pytest.importorskip("diffusers")
    from s4s import zoo

    out = tmp_path / "ddpm.png"
    spec = f"diffusers:{zoo.path('digits-ddpm')}"
    assert main(["sample", "--model", spec, "--solver", "dpmpp_2m", "--nfe", "3", "--seeds", "0-3", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_learn_hands_the_learner_its_config_conditions_and_cache(tmp_path, monkeypatch):
    seen = {}

    def learn(model, nfe, **kw):
        seen.update(kw)
        raise RuntimeError("recorded")

    monkeypatch.setattr(s4s, "learn", learn)
    args = ["learn", "--model", "gmm", "--teacher", "unipc:10", "--nfe", "3", "--num-samples", "8",
            "--budget", "8", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "x.json")]
    with pytest.raises(RuntimeError, match="recorded"):
        main(["--debug", *args])  # --debug shows the traceback: the error propagates
    assert main(args) == 1  # without it, one line and exit 1
    config = seen["config"]
    assert config.budget.multiple == 8 and config.cache_dir == str(tmp_path / "cache") and config.teacher.nfe == 10
    assert seen["cond"]([3, 14]) is None  # no guidance: no conditions


def test_learn_for_image_to_image_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "gmm-img2img.json"
    assert main(["learn", *TINY, "--nfe", "3", "--num-samples", "16", "--iters", "4", "--strength", "0.5",
                 "--out", str(out)]) == 0
    solver = s4s.load_solver(out)
    gmm = s4s.zoo.load("gmm")
    assert solver.meta["strength"] == 0.5
    assert float(solver.sigmas[0]) == pytest.approx(s4s.models.strength_level(gmm, 0.5))
    assert main(["learn", *TINY, "--nfe", "3", "--strength", "1.5", "--out", str(tmp_path / "x.json")]) == 2
    assert "--strength must be in (0, 1]" in capsys.readouterr().err


def test_a_guidance_range_is_learned_once_and_used_at_one_scale(tmp_path, capsys):
    digits = ["--model", "digits", "--teacher", "unipc:16"]
    out = tmp_path / "range.json"
    assert main(["learn", *digits, "--guidance", "1:8", "--nfe", "3", "--num-samples", "16", "--iters", "4",
                 "--out", str(out)]) == 0
    assert "use it with --guidance W" in capsys.readouterr().out
    assert s4s.load_guidance_solver(out).guidance.hi == 8.0
    assert main(["eval", *digits, "--guidance", "3", "--solver", str(out), "--seeds", "0-7"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["nfe"] == 3
    for argv, message in [
        (["eval", *digits, "--solver", str(out), "--seeds", "0-7"], "pass --guidance W"),
        (["eval", *digits, "--guidance", "9", "--solver", str(out), "--seeds", "0-7"], r"outside [1, 8]"),
        (["sample", "--model", "digits", "--guidance", "1:8", "--solver", str(out), "--seeds", "0-3", "--out",
          str(tmp_path / "x.png")], "is for s4s learn"),
        (["learn", "--model", "gmm", "--guidance", "1:8", "--nfe", "3", "--out", str(tmp_path / "g.json")],
         "is for guided models"),
    ]:
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert main(["learn", *digits, "--guidance", "8:1", "--nfe", "3", "--out", str(tmp_path / "bad.json")]) == 2
    assert "a range LO:HI with 0 < LO < HI" in capsys.readouterr().err


def test_a_guidance_range_on_the_latent_flow_model_in_its_pipeline(tmp_path, capsys):
    model = ["--model", "digits-sd3", "--teacher", "unipc:16"]
    out = tmp_path / "range.json"
    assert main(["learn", *model, "--guidance", "1:8", "--nfe", "3", "--num-samples", "16", "--iters", "4",
                 "--out", str(out)]) == 0
    ranged = s4s.load_guidance_solver(out)
    assert ranged.meta["model"]["host"]["guidance_scale"] == [1.0, 8.0]
    assert main(["eval", *model, "--guidance", "3", "--solver", str(out), "--seeds", "0-7"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["nfe"] == 3


def test_the_latent_digits_model_is_judged_on_its_decoded_images(tmp_path, capsys, monkeypatch):
    from s4s import metrics

    seen = []
    fd = metrics.fd_digits
    monkeypatch.setattr(metrics, "fd_digits", lambda x, *a: seen.append(tuple(x.shape[1:])) or fd(x, *a))
    assert main(["eval", "--model", "digits-sd3", "--guidance", "2", "--solver", "ddim", "--nfe", "3",
                 "--seeds", "0-3", "--teacher", "unipc:8"]) == 0
    assert seen == [(1, 8, 8)]  # the VAE's images, not the 4x4x4 latents
    assert "fd_digits" in json.loads(capsys.readouterr().out.splitlines()[0])
    from PIL import Image

    png = tmp_path / "sd3.png"
    assert main(["sample", "--model", "digits-sd3", "--guidance", "2", "--solver", "ddim", "--nfe", "3",
                 "--seeds", "0-3", "--out", str(png)]) == 0
    pixels = tmp_path / "digits.png"
    assert main(["sample", "--model", "digits", "--solver", "ddim", "--nfe", "3", "--seeds", "0-3",
                 "--out", str(pixels)]) == 0
    assert Image.open(png).size == Image.open(pixels).size  # a grid of decoded 8x8 digits, not 4x4 latents
