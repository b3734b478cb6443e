"""NASLib's `dataset_api` for its NB-101 search space, from the project's store.

NASLib's `get_dataset_api("nasbench101")` returns `{"api": <module with ModelSpec>,
"nb101_data": <NASBench>}`, and `NasBench101SearchSpace` calls `api.ModelSpec(matrix, ops)`,
`nb101_data.is_valid`, `.query`, `.get_metrics_from_hash` and `.hash_iterator` on it. The
same dict, built here from any file `nasbench.api.NASBench` reads (NASLib's own
`nasbench_only108.pkl` included, unpickled safely), plugs into NASLib unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

from nasbench import api

DATA_ENV = "NASBENCH101_DATA"


def get_nasbench101_api(dataset=None, dataset_file=None, seed=None) -> dict:
    """`{"api": nasbench.api, "nb101_data": NASBench(dataset_file)}`; file default: $NASBENCH101_DATA."""
    if dataset not in (None, "cifar10"):
        raise ValueError(f"NAS-Bench-101 has CIFAR-10 only, got dataset {dataset!r}")
    path = dataset_file or os.environ.get(DATA_ENV)
    if not path:
        raise ValueError(
            f"no NB-101 data: pass dataset_file= or set ${DATA_ENV} to nasbench_only108.tfrecord, "
            "nasbench_only108.pkl, a Parquet store or the real subset's folder"
        )
    return {"api": api, "nb101_data": api.NASBench(Path(path), seed=seed)}


def get_dataset_api(search_space=None, dataset=None, dataset_file=None, seed=None) -> dict:
    """NASLib's entry point, for NB-101 only (other spaces are not this package's business)."""
    if search_space != "nasbench101":
        raise NotImplementedError(f"this dataset_api serves nasbench101 only, not {search_space!r}")
    return get_nasbench101_api(dataset, dataset_file, seed)
