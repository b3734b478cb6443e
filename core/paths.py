"""Where the project keeps derived files: the repository root and its cache folder."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Cache folder (`$SWEEPS_CACHE_DIR`, default `.cache/` at the repository root), created."""
    path = Path(os.environ.get("SWEEPS_CACHE_DIR", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
