"""CIFAR-10 from a local folder in torchvision's format (`cifar-10-batches-py/`), NB-101's split.

NB-101 trains on 40,000 training images and validates on 10,000 held out from the training set;
here data_batch_1-4 are the training split, data_batch_5 the validation split and test_batch
the test split. The batch files are pickles: they are read through the project's restricted
unpickler (plain containers, bytes and numeric arrays only). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.data.images import Split
from core.nb101.importers import RestrictedUnpickler

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
TRAIN_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4")
VALIDATION_FILES = ("data_batch_5",)
TEST_FILES = ("test_batch",)


def _folder(root: Path) -> Path:
    root = Path(root)
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    missing = [f for f in TRAIN_FILES + VALIDATION_FILES + TEST_FILES if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 folder {folder} lacks {missing} (torchvision's cifar-10-batches-py layout)"
        )
    return folder


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        entry = RestrictedUnpickler(f, encoding="bytes").load()
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: expected a dict, got {type(entry).__name__}")
    data = entry.get(b"data", entry.get("data"))
    labels = entry.get(b"labels", entry.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: missing 'data' or 'labels'")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"{path}: data of shape {data.shape} with {len(labels)} labels is not CIFAR-10")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _split(folder: Path, files) -> Split:
    parts = [_read_batch(folder / f) for f in files]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts])).float().div_(255)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return Split((x - mean) / std, torch.from_numpy(np.concatenate([p[1] for p in parts])))


def cifar10_splits(root) -> dict[str, Split]:
    """NB-101's train (40k) / validation (10k) / test (10k) splits, normalised."""
    folder = _folder(root)
    return {
        "train": _split(folder, TRAIN_FILES),
        "validation": _split(folder, VALIDATION_FILES),
        "test": _split(folder, TEST_FILES),
    }
