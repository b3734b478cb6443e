"""One checkpoint format for every trainer: a dict of plain tensors and values.

Written with `torch.save` and read with `torch.load(weights_only=True)`, so loading a checkpoint
never runs code from the file. Files are written atomically (a temporary file, then a rename)
and readable by their owner only: a crash leaves the previous checkpoint, never half of one.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

FORMAT_KEY = "format"


def to_bytes(state: dict) -> bytes:
    """A state dict as checkpoint bytes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def from_bytes(blob: bytes, device: str | torch.device = "cpu") -> dict:
    """Checkpoint bytes back to a state dict, tensors on `device` (no arbitrary unpickling)."""
    return torch.load(io.BytesIO(blob), map_location=device, weights_only=True)


def save(path: str | Path, state: dict) -> Path:
    """Write a state dict to `path` atomically, mode 0600."""
    return write_private(path, to_bytes(state))


def load(path: str | Path, device: str | torch.device = "cpu") -> dict:
    return from_bytes(Path(path).read_bytes(), device)


def write_private(path: str | Path, blob: bytes) -> Path:
    """Bytes to `path` through a temporary file and a rename; the file is readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    return path


def check_format(state: dict, expected: str) -> None:
    """A checkpoint written by another trainer or version is refused, naming both formats."""
    found = state.get(FORMAT_KEY)
    if found != expected:
        raise ValueError(f"checkpoint format {found!r}, expected {expected!r}")
