"""Connecting to Ray: an existing cluster (address or RAY_ADDRESS) or a local one on 127.0.0.1."""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext

from core.progress import Progress
from core.security import is_loopback

# Ray replaces a node address of 127.0.0.1 by the machine's interface address and binds its
# daemons to that address or to every interface, unless this is "0": then the node keeps
# 127.0.0.1 and every port Ray opens is on loopback (and no other node can join).
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextmanager
def loopback_only():
    """While a local Ray instance starts in this process: every daemon it starts (they inherit
    the environment) and this driver listen on 127.0.0.1 only. Restored afterwards, so that the
    same process can still join a multi-node cluster later."""
    from ray._private import ray_constants

    saved_env, saved_flag = os.environ.get(LOOPBACK_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOOPBACK_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False  # read at import time; services reads the attribute
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(LOOPBACK_ONLY_ENV, None)
        else:
            os.environ[LOOPBACK_ONLY_ENV] = saved_env


def is_local_address(address: str) -> bool:
    """Whether a Ray address ('host:port', 'ray://host:port', 'http://host:port') is on this
    machine's loopback interface."""
    return is_loopback(address.split("://", 1)[-1].rsplit(":", 1)[0])


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` (or $RAY_ADDRESS, as set by `ray job submit`), else start
    a private local cluster (never one found on the machine) without the dashboard, listening on
    127.0.0.1 only. A cluster joined on 127.0.0.1 is joined there, not on the interface address."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        with loopback_only() if is_local_address(address) else nullcontext():
            ray.init(address=address, log_to_driver=True)
    else:
        with loopback_only():
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=True,
            )


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
