"""Devices as Ray resources: what an actor asks for, what it got, how many fit.

An actor asks Ray for a GPU (or a fraction) when the cluster has GPUs and for CPUs otherwise;
inside the actor the device is what Ray assigned, never `cuda:0` by habit (Ray makes an
assigned GPU the only one visible to the actor, so it is then `cuda`). Falling back to the CPU
is said once per process, not silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)
_said: set[str] = set()


def say_once(message: str) -> None:
    """Print a note about devices once per process (job logs show every actor's first note)."""
    if message not in _said:
        _said.add(message)
        print(message, flush=True)


def assigned_device() -> str:
    """'cuda' when Ray gave this process a GPU and CUDA works here, else 'cpu' (said once)."""
    import ray
    import torch

    gpus = ray.get_gpu_ids() if ray.is_initialized() else []
    if not gpus:
        return "cpu"
    if not torch.cuda.is_available():
        say_once(f"warning: Ray assigned GPU(s) {gpus} but torch sees no CUDA device: running on CPU")
        return "cpu"
    return "cuda"


def placement() -> dict[str, str]:
    """Where this worker runs, as run params: Ray's node id, the GPU ids Ray assigned and the
    GPU share it asked for ('0' outside a GPU actor); empty outside a Ray worker."""
    import ray

    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return {}
    context = ray.get_runtime_context()
    gpu_ids = ",".join(str(g) for g in ray.get_gpu_ids())
    share = context.get_assigned_resources().get("GPU", 0.0)
    return {"node_id": context.get_node_id(), "gpu_ids": gpu_ids or "none", "gpus": f"{share:g}"}


def cluster_gpus() -> float:
    """GPUs in the Ray cluster (0 on a CPU-only cluster)."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0.0))


@dataclass(frozen=True)
class Slots:
    """How many actors of one kind run at once, and the Ray options each asks for."""

    count: int
    options: dict

    def describe(self) -> str:
        if self.options.get("num_gpus"):
            return f"{self.count} x ({self.options['num_gpus']:g} GPU, {self.options['num_cpus']} CPU)"
        return f"{self.count} x {self.options['num_cpus']} CPU (no GPU in the Ray cluster)"


def slots(gpus_per_actor: float = 1.0, cpus_per_actor: int = 1, reserve_gpus: float = 0.0) -> Slots:
    """Actors that fit in the cluster: by GPUs when it has some (keeping `reserve_gpus` free for
    other actors), else by CPUs. Always at least one: Ray queues what does not fit yet."""
    import ray

    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0.0))
    if gpus > 0 and gpus_per_actor > 0:
        count = int((gpus - reserve_gpus) // gpus_per_actor)
        options = {"num_gpus": gpus_per_actor, "num_cpus": cpus_per_actor}
    else:
        count = int(resources.get("CPU", 1) // cpus_per_actor)
        options = {"num_cpus": cpus_per_actor}
    return Slots(max(1, count), options)
