"""Connecting to Ray: an existing cluster (address or RAY_ADDRESS) or a local one on 127.0.0.1."""

from __future__ import annotations

import os

from core.progress import Progress


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` (or $RAY_ADDRESS, as set by `ray job submit`), else start
    a private local cluster bound to 127.0.0.1 without the dashboard."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=True)


def wait_all(refs: list, progress: Progress | None = None, weights: dict | None = None) -> list:
    """Results of Ray object refs in completion order, advancing `progress` as each finishes."""
    import ray

    pending, results = list(refs), []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            results.append(ray.get(ref))
            if progress:
                progress.update(weights.get(ref, 1) if weights else 1)
    return results
