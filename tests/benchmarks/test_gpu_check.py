"""benchmarks/gpu_check.py: without CUDA it says so and exits 0; on the CPU at toy sizes it drives
every actor kind's trainer and prints one line of figures each."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest
import torch

from core.paths import REPO_ROOT


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO_ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_without_cuda_it_says_so_and_exits_0(gpu_check, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    assert capsys.readouterr().out.startswith("no CUDA")
    assert gpu_check.main(["--only", "supernet,warp-drive"]) == 2
    assert "warp-drive" in capsys.readouterr().err


def test_the_cpu_path_runs_every_kind_and_prints_its_figures(gpu_check, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path))
    assert gpu_check.main(["--device", "cpu", "--small", "--steps", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "peak GPU memory" in line]
    units = {"supernet": "images/s", "bns-ft": "cells/s", "patch-ddp": "patches/s", "bone-age": "images/s"}
    units["detection"] = "iterations/s"
    assert [line.split()[0] for line in lines] == list(units)
    for line, (kind, unit) in zip(lines, units.items()):
        rate = re.search(rf"([\d,.]+) {unit}", line)
        assert rate and float(rate.group(1).replace(",", "")) > 0, line
        assert "peak GPU memory 0.00 GiB" in line, kind  # nothing touched a GPU
