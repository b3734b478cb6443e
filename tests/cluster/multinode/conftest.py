"""Fixtures of the multi-node tests: one Ray cluster of several nodes on 127.0.0.1 for the whole
package (`ray.cluster_utils.Cluster`), worker nodes declaring logical GPUs (torch stays on the
CPU), and a unit held at a known point while a test removes its node or stops the tracking server.

Every node listens on loopback only (cluster.runtime.loopback_only while a node starts and while
the driver joins). The GCS checks the nodes' health every second and takes a node for dead after
3 missed checks: a removed node is noticed in seconds, not in the default half minute.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

HEALTH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}
WORKER = (2, 2)  # CPUs and logical GPUs of a worker node


class MultiNode:
    """A head (the driver's node: 1 CPU, no GPU, so every GPU actor lands on a worker node) and
    worker nodes of `WORKER` shape; tests remove nodes by Ray node id and `reset` puts the
    package's shape back."""

    def __init__(self, workers: int = 3):
        import ray
        from ray.cluster_utils import Cluster

        from cluster.runtime import loopback_only

        self.size = workers
        head = {"num_cpus": 1, "num_gpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False}
        with loopback_only():
            self.cluster = Cluster(initialize_head=True, head_node_args=head | {"_system_config": HEALTH})
        try:
            self.reset()
            if ray.is_initialized():
                ray.shutdown()  # a local instance some earlier test left behind
            with loopback_only():
                ray.init(address=self.cluster.address)
        except BaseException:
            self.shutdown()
            raise
        self.head_id = self.cluster.head_node.node_id

    def add(self):
        from cluster.runtime import loopback_only

        cpus, gpus = WORKER
        with loopback_only():
            return self.cluster.add_node(num_cpus=cpus, num_gpus=gpus, node_ip_address="127.0.0.1")

    def reset(self) -> None:
        """Back to `size` live worker nodes (a test removed some)."""
        while len(self.cluster.worker_nodes) < self.size:
            self.add()
        self.cluster.wait_for_nodes()

    def alive(self) -> set[str]:
        import ray

        return {n["NodeID"] for n in ray.nodes() if n["Alive"]}

    def remove(self, node_id: str) -> None:
        """Kill a worker node's raylet and everything on it (no graceful drain), as a lost machine."""
        if node_id == self.head_id:
            raise ValueError("the head runs the driver: remove a worker node")
        found = [n for n in self.cluster.worker_nodes if n.node_id == node_id]
        if not found:
            raise ValueError(f"node {node_id} is not a live worker node of the test cluster")
        self.cluster.remove_node(found[0], allow_graceful=False)

    def shutdown(self) -> None:
        import ray

        ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="package")
def multinode():
    """The package's Ray cluster (see `MultiNode`), joined by this process; each test starts
    with `MultiNode.size` worker nodes."""
    cluster = MultiNode()
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture
def nodes(multinode):
    """The package's cluster with all its worker nodes (those an earlier test removed are replaced)."""
    multinode.reset()
    return multinode


class Recorded:
    """sys.stdout and sys.stderr, also kept in `text`: the driver's prints and its workers' (Ray's
    log monitor writes them to whatever sys.stdout / sys.stderr is at that moment)."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextmanager
def recorded() -> Iterator[list[str]]:
    """What this process prints in the block (a module fixture has no capfd), as a list of parts."""
    out, err = Recorded(sys.stdout), Recorded(sys.stderr)
    sys.stdout, sys.stderr = out, err
    parts = out.parts
    err.parts = parts
    try:
        yield parts
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream


def hold_env(unit: str, marker: Path, **extra) -> str:
    """The fault hook (FAULT_ENV) holding `unit` at its fault point (cluster.scheduler.maybe_die):
    its worker writes where it runs into `marker` and waits for `<marker>.release`."""
    return json.dumps({"unit": unit, "marker": str(marker), "hold": True} | extra)


def _where(marker: Path) -> dict | None:
    try:
        return json.loads(marker.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not yet, or half written
        return None


@contextmanager
def when_held(marker: Path, action: Callable[[dict], None], timeout: float = 600):
    """Run `action(where)` in a thread once the held unit wrote `marker` (where: its pid, node
    id, GPU ids); the block is the sweep. An error of the action (or no hold within `timeout`)
    is raised when the block ends; the held unit is then released, so that the sweep ends."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def watch():
        deadline = time.monotonic() + timeout
        try:
            while (where := _where(marker)) is None:
                if stop.is_set():
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no unit was held at {marker} within {timeout:.0f} s")
                time.sleep(0.2)
            action(where)
        except BaseException as err:  # re-raised in the test's thread
            errors.append(err)
            Path(f"{marker}.release").touch()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout)
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def strike():
    """The helpers of a test that strikes a held unit: `hold_env`, `when_held`, `recorded`."""
    return SimpleNamespace(hold_env=hold_env, when_held=when_held, recorded=recorded)
