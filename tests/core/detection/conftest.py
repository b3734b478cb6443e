"""A tiny detector recipe and data for fast tests (64-pixel images, narrow heads, few iterations)."""

from __future__ import annotations

import pytest

TINY = {
    "preset": "cpu-small",
    "backbone": "resnet18",
    "fpn_channels": 16,
    "head_channels": 16,
    "box_fc": 32,
    "min_size": [64],
    "max_size": 64,
    "rpn_pre_nms_top_n_train": 100,
    "rpn_post_nms_top_n_train": 50,
    "rpn_pre_nms_top_n_test": 50,
    "rpn_post_nms_top_n_test": 20,
    "rpn_batch_size_per_image": 32,
    "box_batch_size_per_image": 16,
    "detections_per_image": 10,
    "batch_size": 2,
    "iterations": 4,
    "warmup_iterations": 2,
    "checkpoint_every": 2,
}


@pytest.fixture
def tiny():
    """The tiny recipe's keys (a copy, free to change)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_data():
    from core.detection.synthetic import SyntheticSpec, synthetic_dataset

    return synthetic_dataset(SyntheticSpec(studies=8, image_size=64, seed=1))

