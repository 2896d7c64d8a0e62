"""torch.distributed: 2-process gloo teacher generation and learning (launched by torchrun)
give the same cache, bit for bit, and the same solver as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

import s4s

HERE = Path(__file__).parent


def test_two_gloo_ranks_match_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(HERE / "dist_worker.py"), str(tmp_path / "cache2"), str(tmp_path / "solver2.json")],
        capture_output=True, text=True, env=env, timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]

    sys.path.insert(0, str(HERE))
    try:
        from dist_worker import run
    finally:
        sys.path.remove(str(HERE))
    single = run(str(tmp_path / "cache1"), str(tmp_path / "solver1.json"))

    files1 = sorted(p.relative_to(tmp_path / "cache1") for p in (tmp_path / "cache1").rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(tmp_path / "cache2") for p in (tmp_path / "cache2").rglob("*") if p.is_file())
    assert files1 == files2 and len(files1) == 7  # 6 shards of 16 seeds and the manifest
    for rel in files1:
        assert (tmp_path / "cache1" / rel).read_bytes() == (tmp_path / "cache2" / rel).read_bytes(), rel

    two = s4s.load_solver(tmp_path / "solver2.json")
    for key in ("sigmas", "model_sigmas", "a", "b"):
        assert torch.allclose(getattr(two, key), getattr(single, key), rtol=0, atol=1e-6), key
    assert two.meta["metrics"]["val_best"] == pytest_approx(single.meta["metrics"]["val_best"])


def pytest_approx(value: float):
    import pytest

    return pytest.approx(value, rel=1e-9)
