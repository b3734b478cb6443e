"""cluster/patch_nas/estimate.py: the thesis' 450 GPU-hours as the anchor, baselines by multiply-adds,
the wall time on N GPUs by hand, and the job's dry run printing them."""

from __future__ import annotations

import math

import pytest

from cluster.patch_nas import estimate
from cluster.patch_nas.config import resolve_config


def test_the_thesis_preset_costs_what_the_thesis_says_and_baselines_by_their_multiply_adds():
    thesis = resolve_config("thesis")
    work = estimate.trainings(thesis, estimate.THESIS_TRAIN_PATCHES)
    by_kind: dict[str, float] = {}
    for t in work:
        by_kind[t.kind] = by_kind.get(t.kind, 0.0) + t.gpu_seconds / estimate.HOUR
    assert by_kind["search candidates"] == pytest.approx(450.0)  # 100 x 5 epochs: the thesis' figure
    # top 3, the OFA reference, two from-scratch rows: 6 x 20 epochs at 0.9 GPU-h an epoch
    assert by_kind["final: OFA networks"] == pytest.approx(6 * 20 * 0.9)
    ratios = {"resnet152": 11_511_582_720 / 511_328_752, "densenet161": 7_725_703_488 / 511_328_752}
    ratios |= {"efficientnet_b0": 1.0, "efficientnet_b1": 568_374_240 / 511_328_752}  # b0: never below 1
    assert by_kind["final: timm baselines"] == pytest.approx(20 * 0.9 * sum(ratios.values()))


def test_wall_time_is_rounds_of_candidates_then_the_final_stage_packed_on_the_gangs():
    config = resolve_config("thesis", overrides={"final.enabled": False})
    work = estimate.trainings(config, estimate.THESIS_TRAIN_PATCHES)
    candidate_h = 4.5 / 4  # 4.5 GPU-hours on a gang of 4 GPUs
    seconds, gangs = estimate.wall_seconds(config, work, 40)  # the thesis' 10 clusters of 4
    assert gangs == 10 and seconds / 3600 == pytest.approx(10 * candidate_h)
    seconds, gangs = estimate.wall_seconds(config, work, 32)
    assert gangs == 8 and seconds / 3600 == pytest.approx(math.ceil(100 / 8) * candidate_h)
    assert estimate.wall_seconds(config, work, 3) == (math.inf, 0)  # no gang of 4 fits
    final = [estimate.Training("final", n, s * 4 * 3600) for n, s in (("a", 5), ("b", 4), ("c", 3), ("d", 3))]
    two = resolve_config("thesis", overrides={"clusters": 2})
    assert estimate.wall_seconds(two, final, 8)[0] / 3600 == pytest.approx(8)  # {5, 3} and {4, 3}


def test_multiply_adds_are_the_networks_own():
    from core.models.ofa_subnet import build_subnet, build_supernet, count_macs
    from core.patches.baselines import build_baseline
    from search.ofa_space import OFA_REFERENCE, decode

    reference = build_subnet(build_supernet(None, 0), decode(OFA_REFERENCE.genome), 2)
    assert count_macs(reference, 224) == estimate.MACS["ofa-reference"]
    for name in ("efficientnet_b0", "efficientnet_b1"):
        assert count_macs(build_baseline(name), 224) == estimate.MACS[name]


def test_the_dry_run_prints_gpu_hours_and_the_wall_time(tmp_path, capsys, monkeypatch):
    import jobs.fracture_nas as job

    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    uri = f"file:{tmp_path / 'mlruns'}"
    assert job.main(["--preset", "thesis", "--dry-run", "--cluster-gpus", "32", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "search candidates          100 trainings      450.0 GPU-h" in out
    assert "wall time on 32 GPU(s): about" in out and "8 worker cluster(s) of 4 GPUs" in out
    assert job.main(["--preset", "smoke", "--dry-run", "--tracking-uri", uri]) == 0
    assert "add --cluster-gpus N" in capsys.readouterr().out
