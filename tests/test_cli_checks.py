"""The command line checks what it can before any work: a bad option exits 2 at once with a
message naming it; a user's model or file that fails is one line, never a traceback."""

from __future__ import annotations

import os
import time

import pytest

import s4s
from s4s.cli import main

LEARN = ["learn", "--model", "gmm", "--nfe", "3"]


@pytest.mark.parametrize("argv,message", [
    (["learn", "--model", "gmm", "--nfe", "0", "--out", "x.json"], "--nfe must be at least 2"),
    (["learn", "--model", "gmm", "--nfe", "1", "--out", "x.json"], "--nfe must be at least 2"),
    (["learn", "--model", "gmm", "--nfe", "-3", "--out", "x.json"], "--nfe must be at least 2"),
    (LEARN + ["--num-samples", "2", "--out", "x.json"], "--num-samples must be at least 4"),
    (LEARN + ["--iters", "0", "--out", "x.json"], "--iters must be at least 1"),
    (LEARN + ["--radius", "1.5", "--out", "x.json"], "--radius must be in [0, 1)"),
    (LEARN + ["--labels", "3", "--out", "x.json"], "--labels chooses the class of a guided model"),
    (["learn", "--model", "digits", "--guidance", "2", "--labels", "12", "--nfe", "3", "--out", "x.json"],
     "--labels must be a digit class 0..9"),
    (LEARN + ["--teacher-schedule", "linear", "--out", "x.json"], "--teacher-schedule must be one of"),
    (LEARN + ["--teacher", "unipc:x", "--out", "x.json"], "--teacher must be SOLVER:NFE"),
    (LEARN + ["--shape", "0,3", "--out", "x.json"], "--shape must be comma-separated positive ints"),
    (LEARN + ["--out", "x.txt"], "--out must end in .json"),
    (LEARN + ["--out", "missing/x.json"], "the folder missing does not exist"),
    (["teacher", "--model", "gmm", "--cache", "c", "--seeds", "5-1"], "the range 5-1 is empty"),
    (["teacher", "--model", "gmm", "--cache", "c", "--seeds", "0-99999999999"], "at most 10,000,000"),
    (["sample", "--model", "gmm", "--solver", "ddim", "--nfe", "2", "--out", "x.jpg"], "--out must end in .png or"),
])
def test_bad_options_exit_2_at_once_naming_the_option(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - started < 2.0  # before any teacher or learning work
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == []  # nothing written: no cache, no solver file


def test_out_naming_a_folder_or_under_a_file_is_refused_before_learning(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(LEARN + ["--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(LEARN + ["--out", str(tmp_path / "afile" / "x.json")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_model_factories_that_fail_are_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "usermodels.py").write_text("def broken():\n    raise RuntimeError('weights missing')\nNUMBER = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = str(tmp_path / "x.png")
    assert main(["sample", "--model", "usermodels:broken", "--solver", "ddim", "--nfe", "2", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "the model factory usermodels:broken raised RuntimeError: weights missing" in err and "Traceback" not in err
    assert main(["sample", "--model", "usermodels:NUMBER", "--solver", "ddim", "--nfe", "2", "--out", out]) == 2
    assert "is a int, not a factory" in capsys.readouterr().err


@pytest.mark.parametrize("content,message", [
    ("[" * 100_000, "nested more than 64 levels"),
    ('{"a":' * 70 + "1" + "}" * 70, "nested more than 64 levels"),
    ("[" * (17 << 20), "larger than 16 MiB"),
])
def test_hostile_solver_files_are_value_errors_naming_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "hostile.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        s4s.load_solver(path)
    assert str(path) in str(err.value)
    assert main(["sample", "--model", "gmm", "--solver", str(path), "--out", str(tmp_path / "x.png")]) == 1
    assert message in capsys.readouterr().err


def test_a_solver_path_that_is_not_a_file_says_so(tmp_path, capsys):
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        s4s.load_solver(link)
    with pytest.raises(FileNotFoundError, match="no solver file"):
        s4s.load_solver(tmp_path / "none.json")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(s4s, "learn", boom)
    argv = ["learn", "--model", "gmm", "--teacher", "unipc:4", "--nfe", "3", "--num-samples", "4", "--iters", "2",
            "--out", str(tmp_path / "x.json")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "s4s: error: RuntimeError: out of memory (--debug shows the traceback)" in err and "Traceback" not in err
    with pytest.raises(RuntimeError, match="out of memory"):
        main(["--debug", *argv])


def test_ctrl_c_exits_130_and_says_how_to_keep_the_work(tmp_path, monkeypatch, capsys):
    import signal

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(s4s, "learn", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    try:
        assert main(["learn", "--model", "gmm", "--teacher", "unipc:4", "--nfe", "3", "--num-samples", "4", "--iters", "2",
                     "--out", str(tmp_path / "x.json")]) == 130
    finally:
        signal.signal(signal.SIGINT, handler)
    assert "--checkpoint" in capsys.readouterr().err


def test_files_get_the_users_umask_and_sample_files_say_what_made_them(tmp_path):
    from safetensors import safe_open

    out = tmp_path / "x.safetensors"
    old = os.umask(0o022)
    try:
        assert main(["sample", "--model", "gmm", "--solver", "ddim", "--nfe", "2", "--seeds", "0-3",
                     "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644  # safetensors alone writes 0600
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["solver"] == "ddim" and meta["nfe"] == "2" and meta["model"] == "gmm" and meta["seeds"] == "0-3"


@pytest.mark.parametrize("command,options", [
    ("learn", ["--nfe", "--num-samples", "--iters", "--seed", "--method"]),
    ("sample", ["--seeds", "--nfe"]), ("eval", ["--seeds"]), ("teacher", ["--seeds"])])
def test_every_option_named_in_the_issue_has_help(command, options):
    from s4s.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    helps = {s: a.help for a in sub._actions for s in a.option_strings}
    for option in options:
        assert helps[option], f"{command} {option} has no help"


def test_a_solver_file_for_another_model_is_named_and_refused_with_strict(tmp_path, capsys, caplog):
    import s4s
    from s4s.fingerprint import mismatches

    gmm = s4s.zoo.load("gmm", dim=2)
    solver = s4s.learn(gmm, nfe=3, method="s4s", num_samples=16,
                       config=s4s.LearnConfig(teacher=s4s.TeacherSpec("unipc", 20, "logsnr"), iters=2))
    path = solver.save(tmp_path / "gmm.json")
    assert mismatches(s4s.load_solver(path).meta["model"], gmm, (2,)) == []
    other = s4s.Denoiser(lambda x, s: 0.5 * gmm(x, s), gmm.sigma_min, gmm.sigma_max, name=gmm.name)
    assert mismatches(solver.meta["model"], other, (2,)) == [
        "other outputs on the same inputs (another model or other weights under this name)"]
    shifted = s4s.Denoiser(gmm, gmm.sigma_min, 2 * gmm.sigma_max, name="mine")
    found = mismatches(solver.meta["model"], shifted, (3,))
    assert found[0] == f"model {gmm.name!r}, not 'mine'" and "noise range" in found[1] and "(2,), not (3,)" in found[2]

    args = ["eval", "--model", "gmm", "--teacher", "unipc:20", "--solver", str(path), "--seeds", "0-7"]
    with caplog.at_level("WARNING", logger="s4s"):
        assert main(args) == 0
    assert "learned for" not in caplog.text  # its own model: no word
    assert main(["sample", "--model", "digits", "--solver", str(path), "--strict", "--seeds", "0-3",
                 "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert f"gmm.json was learned for model {gmm.name!r}, not 'digits'" in err and "(--strict)" in err
    assert not (tmp_path / "x.png").exists()


def test_a_second_ctrl_c_while_teacher_shards_run_side_by_side_exits_130_not_an_abort(tmp_path):
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "s4s.cli", "teacher", "--model", "digits", "--seeds", "0-4095",
                             "--cache", str(tmp_path / "cache")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(6)  # importing, then shards on two threads
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "terminate called" not in err
