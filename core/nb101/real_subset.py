"""The real NB-101 cells shipped with the project (`core/nb101/data/real_subset/*.npz`), as numpy arrays.

151,644 cells with all 108-epoch metrics, split in four parts sorted by hash (provenance and
licences in that folder's README). Accuracies are stored as integer counts k over 9,984 test
images: accuracy = float32(k) / float32(9984).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REAL_SUBSET_DIR = Path(__file__).resolve().parent / "data" / "real_subset"
PART_GLOB = "nb101_108_pourchot_part*of4.npz"
ACCURACY_DENOMINATOR = np.float32(9984)


def load_real_subset(root: Path = REAL_SUBSET_DIR) -> dict[str, np.ndarray]:
    """Concatenate the four parts; adds `hash` (hex strings) and float `accuracy` (N, 3, 6)."""
    parts = sorted(Path(root).glob(PART_GLOB))
    if len(parts) != 4:
        raise FileNotFoundError(f"expected 4 files {PART_GLOB} in {root}, found {len(parts)}")
    arrays: dict[str, list] = {}
    meta: dict[str, np.ndarray] = {}
    for part in parts:
        with np.load(part, allow_pickle=False) as data:
            for key in data.files:
                if key.endswith(("_fields", "_names")):
                    meta[key] = data[key]
                else:
                    arrays.setdefault(key, []).append(data[key])
    out = {key: np.concatenate(chunks) for key, chunks in arrays.items()}
    out.update(meta)
    out["hash"] = np.array([row.tobytes().hex() for row in out["hash_bytes"]])
    out["accuracy"] = out["acc_k"].astype(np.float32) / ACCURACY_DENOMINATOR
    return out
