"""CIFAR-10 in torchvision's folder format, read through the restricted unpickler."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from core.data.cifar10 import TEST_FILES, TRAIN_FILES, VALIDATION_FILES, cifar10_splits


def _fake_cifar(root, n=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate(TRAIN_FILES + VALIDATION_FILES + TEST_FILES):
        entry = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [(i + j) % 10 for j in range(n)],
            b"batch_label": b"fake",
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    return folder


def test_reads_the_torchvision_layout_with_nb101_split(tmp_path):
    _fake_cifar(tmp_path)
    splits = cifar10_splits(tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 80, "validation": 20, "test": 20}
    assert splits["train"].x.shape == (80, 3, 32, 32)
    assert splits["validation"].y.tolist()[:3] == [4, 5, 6]  # data_batch_5 is the validation split


def test_missing_files_and_code_in_pickles_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks .*data_batch_1"):
        cifar10_splits(tmp_path)
    folder = _fake_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        cifar10_splits(tmp_path)
