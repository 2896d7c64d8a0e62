"""The command line under 1,000 random argument lists: every one ends with exit 0, 1 or 2, never
a traceback, and a failed command leaves no file behind."""

from __future__ import annotations

import random

import pytest

from s4s.cli import main

VALUES = {
    "--model": ["gmm", "gaussian", "nope", "os:getcwd", "s4s:Denoiser", "json:loads", "", "diffusers:/nonexistent"],
    "--nfe": ["3", "2", "1", "0", "-3", "x", "4.5", "100000"],
    "--num-samples": ["4", "8", "2", "0", "-1", "many"],
    "--iters": ["1", "2", "0", "-5", "1e3"],
    "--budget": ["2", "0.5", "0", "-1", "nan", "inf", "abc"],
    "--method": ["s4s", "s4s_alt", "ld3", "joint", "magic"],
    "--teacher": ["unipc:8", "ddim:4", "unipc:0", "unipc:200000", "euler9:8", "dopri5x", ":", "unipc:"],
    "--teacher-schedule": ["logsnr", "karras", "linear", ""],
    "--seeds": ["0-3", "5-1", "0-99999999999", "1,2,3", "a-b", "", "-4", "3"],
    "--shape": ["2", "2,2", "0", "a", ""],
    "--radius": ["0", "0.1", "1", "-0.5", "x"],
    "--strength": ["1", "0.5", "0", "1.5", "x"],
    "--plan": ["joint", "grid:1@start,joint:2", "grid:0", "wiggle", "coef:-1", ""],
    "--start": ["ddim/logsnr", "deis", "nope/karras", "deis/lognsr"],
    "--solver": ["ddim", "dpmpp_2m", "heun", "nope", "missing.json", "bad.json", "folder.json"],
    "--schedule": ["karras", "logsnr", "nope"],
    "--labels": ["3", "12", "-1"],
    "--guidance": ["2", "x"],
    "--prompt": ["a cat", ""],
    "--device": ["cpu", "gpu0", "cuda:99"],
    "--distance": ["l2", "l1", "l7"],
    "--out": ["out.json", "out.png", "out.safetensors", "out.txt", "folder", "nofolder/x.json", "file.json/x.json"],
    "--cache": ["cache", "file.json"],
}
FLAGS = ["--force", "--strict", "--checkpointing", "--in-turn", "--debug-not-a-flag"]
COMMANDS = {
    "learn": ["--model", "--nfe", "--num-samples", "--iters", "--budget", "--method", "--teacher", "--teacher-schedule",
              "--shape", "--radius", "--strength", "--plan", "--start", "--device", "--distance", "--out", "--cache", "--guidance",
              "--labels", "--prompt"],
    "sample": ["--model", "--solver", "--nfe", "--schedule", "--seeds", "--out", "--shape", "--device", "--guidance",
               "--labels"],
    "eval": ["--model", "--solver", "--nfe", "--schedule", "--seeds", "--teacher", "--shape", "--cache"],
    "teacher": ["--model", "--seeds", "--teacher", "--cache", "--shape"],
}
GOOD = {"--model": "gmm", "--nfe": "3", "--num-samples": "8", "--iters": "1", "--budget": "2", "--method": "s4s",
        "--teacher": "unipc:8", "--teacher-schedule": "logsnr", "--seeds": "0-3", "--shape": "2", "--radius": "0",
        "--plan": "joint", "--start": "ddim/logsnr", "--solver": "ddim", "--schedule": "karras", "--device": "cpu",
        "--distance": "l2", "--cache": "cache"}
OUT = {"learn": "out.json", "sample": "out.png"}


def case(rng: random.Random) -> list[str]:
    """Mostly valid options (so that many runs get past the checks, cheaply), a few bad ones."""
    command = rng.choice(list(COMMANDS) + ["zoo", "bogus"])
    if command not in COMMANDS:
        return [command] + rng.sample(["list", "train", "--help-me", "x"], 1)
    argv = [command]
    for option in COMMANDS[command]:
        roll = rng.random()
        if roll < 0.12:
            argv += [option, rng.choice(VALUES[option])]
        elif option in GOOD and roll < 0.7 or option == "--out" and roll < 0.9:
            argv += [option, GOOD.get(option, OUT.get(command, "out.json"))]
    for flag in FLAGS:
        if rng.random() < 0.05:
            argv.append(flag)
    return argv


@pytest.mark.parametrize("block", range(10))
def test_random_command_lines_end_cleanly(tmp_path, monkeypatch, capsys, block):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "file.json").write_text("{}")
    (tmp_path / "bad.json").write_text("[" * 1000)
    before = {p.name for p in tmp_path.iterdir()}
    rng = random.Random(block)
    for _ in range(100):
        argv = case(rng)
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own exit for --help and usage errors
            code = e.code
        err = capsys.readouterr().err
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err, (argv, err)
        made = {p.name for p in tmp_path.iterdir()} - before - {"cache", ".cache", "out.json", "out.png",
                                                                 "out.safetensors"}
        assert not made, (argv, code, made)  # no temporary or partial file left
        if code != 0:
            for name in ("out.json", "out.png", "out.safetensors"):
                assert not (tmp_path / name).exists() or name in before, (argv, code, err)
        for name in ("out.json", "out.png", "out.safetensors"):
            (tmp_path / name).unlink(missing_ok=True)
