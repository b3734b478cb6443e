"""Patches as network inputs: decoding, resizing, batches for training and evaluation.

`PatchData` holds, per split, the rows a worker needs (labels, study/image ids for the FROC)
and, when in memory, every patch decoded once as uint8 (N, 3, S, S): small sets (the embedded
one, or anything under `MEMORY_LIMIT`) go through Ray's object store once and are shared by all
workers. Larger sets stay on disk and are decoded on the fly by a torch DataLoader (the paths
must then be readable from every node). Inputs are RGB (grayscale patches are replicated),
resized to the network's input size and normalised with ImageNet's statistics (those of the
pre-trained supernet).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from PIL import Image

from core.patches.manifest import SPLITS, PatchSet
from core.progress import Progress

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MEMORY_LIMIT = 2 * 1024**3  # bytes of decoded patches kept in memory when in_memory is None
COLUMNS = ("path", "study_id", "image_id", "fracture_id", "train_label", "test_label", "score")


def read_patch(path: str, size: int) -> np.ndarray:
    """A patch file as uint8 (3, size, size)."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy()


def decode_patches(paths: list[str], size: int, desc: str = "decoding patches") -> np.ndarray:
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    progress = Progress(len(paths), desc, unit="patches", every=10.0) if len(paths) > 5000 else None
    for i, p in enumerate(paths):
        out[i] = read_patch(p, size)
        if progress:
            progress.update()
    return out


@dataclass
class PatchSplit:
    name: str
    frame: pd.DataFrame  # COLUMNS
    n_images: int  # FP-per-image denominator
    images: np.ndarray | None = None  # uint8 (N, 3, S, S) when in memory

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def train_index(self) -> np.ndarray:
        """Rows used for training (IoU between the thresholds are left out)."""
        return np.flatnonzero(self.frame["train_label"].to_numpy() >= 0)


@dataclass
class PatchData:
    """Everything a fine-tuner needs about the patches; picklable, shared through the object store."""

    splits: dict[str, PatchSplit]
    input_size: int
    source: str
    identity: str
    in_memory: bool
    counts: dict = field(default_factory=dict)

    def split(self, name: str) -> PatchSplit:
        if name not in self.splits:
            raise ValueError(f"no {name!r} split; have {sorted(self.splits)}")
        return self.splits[name]


def prepare(
    patches: PatchSet, input_size: int, in_memory: bool | None = None, verbose: bool = True
) -> PatchData:
    """Per-split rows, decoded into memory when asked (None: when they fit in MEMORY_LIMIT)."""
    n = len(patches.frame)
    if in_memory is None:
        in_memory = n * 3 * input_size * input_size <= MEMORY_LIMIT
    splits = {}
    for name in SPLITS:
        frame = patches.split(name)[list(COLUMNS)].copy()
        split = PatchSplit(name, frame, patches.n_images.get(name, 0))
        if in_memory and len(frame):
            split.images = decode_patches(frame["path"].tolist(), input_size, f"decoding {name} patches")
        splits[name] = split
    if verbose and in_memory:
        size = sum(s.images.nbytes for s in splits.values() if s.images is not None)
        print(f"patches decoded in memory at {input_size}x{input_size}: {size / 2**20:.1f} MiB", flush=True)
    counts = {r["split"]: r for r in patches.counts().to_dict("records")}
    return PatchData(splits, input_size, patches.source, patches.identity, in_memory, counts)


def normalise(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float normalised with ImageNet's mean and std."""
    mean = torch.tensor(MEAN, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=batch.device).view(1, 3, 1, 1)
    return (batch.float() / 255.0 - mean) / std


def random_flips(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each patch flipped horizontally and/or vertically with probability 1/2 each."""
    n = batch.shape[0]
    h = torch.rand(n, generator=generator) < 0.5
    v = torch.rand(n, generator=generator) < 0.5
    batch = batch.clone()
    batch[h] = batch[h].flip(-1)
    batch[v] = batch[v].flip(-2)
    return batch


class _Files(torch.utils.data.Dataset):
    def __init__(self, paths: list[str], size: int):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(read_patch(self.paths[i], self.size))


def iterate_batches(split: PatchSplit, batches: list[np.ndarray], size: int, workers: int = 0):
    """uint8 (B, 3, S, S) tensors of the given row batches, in order: sliced from memory, else
    decoded from their files by a DataLoader (`workers` processes, one set per call). Workers
    start from a fork server, not by forking this process: a Ray worker or a driver holds gRPC
    threads, and a forked copy of them can die at random."""
    if split.images is not None:
        for rows in batches:
            yield torch.from_numpy(split.images[rows])
        return
    dataset = _Files(split.frame["path"].tolist(), size)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=[list(map(int, rows)) for rows in batches],
        num_workers=workers,
        multiprocessing_context="forkserver" if workers else None,
        collate_fn=torch.stack,
    )
    yield from loader
