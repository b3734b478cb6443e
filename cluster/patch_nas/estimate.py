"""What a fracture-NAS run costs before it runs: its trainings by kind in GPU-hours, and the wall
time on a cluster of N GPUs. What `--dry-run` prints (with `--cluster-gpus N`).

The one calibrated figure is the thesis' own (5.4): the search's 100 candidates of 5 epochs on
300,000 training patches (60% of 500,000) cost about 450 GPU-hours on K80s, so a candidate
epoch costs `EPOCH_GPU_SECONDS_PER_PATCH` per training patch (validation included). Every OFA
network (candidates, the retrained best ones, the OFA reference, the from-scratch rows) is
charged that; a timm baseline is charged in proportion to its multiply-adds against the OFA
reference, never less (`MACS`: counted by core.models.ofa_subnet.count_macs at 224x224, 2-class
heads). Estimates: data parallelism over a gang's G GPUs is taken as perfect, a search round
lasts as long as one candidate (ask-order telling keeps the gangs busy), the final stage's
trainings are packed longest first onto the gangs.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

HOUR = 3600.0
THESIS_GPU_HOURS, THESIS_CANDIDATES, THESIS_EPOCHS = 450.0, 100, 5
THESIS_TRAIN_PATCHES = 300_000  # 60% of the 500,000 patches the detector's boxes gave (thesis 5.3.1)
THESIS_PATCH_EPOCHS = THESIS_CANDIDATES * THESIS_EPOCHS * THESIS_TRAIN_PATCHES
EPOCH_GPU_SECONDS_PER_PATCH = THESIS_GPU_HOURS * HOUR / THESIS_PATCH_EPOCHS  # 0.0108 s
DEVICE = "K80 GPU-hours, the thesis' device"
MACS = {  # multiply-adds of one 224x224 forward pass, 2-class heads (count_macs)
    "ofa-reference": 511_328_752,
    "resnet152": 11_511_582_720,
    "densenet161": 7_725_703_488,
    "efficientnet_b0": 384_537_312,
    "efficientnet_b1": 568_374_240,
}


@dataclass(frozen=True)
class Training:
    """One training of the run: its kind, its name and its GPU-seconds."""

    kind: str
    name: str
    gpu_seconds: float


def relative_cost(network: str) -> float:
    """A network's cost per patch against the OFA networks' (multiply-adds, at least 1)."""
    return max(1.0, MACS[network] / MACS["ofa-reference"])


def trainings(config, train_patches: int) -> list[Training]:
    """Every training of the run: the search's candidates, then the final stage's."""
    epoch = EPOCH_GPU_SECONDS_PER_PATCH * train_patches
    out = [
        Training("search candidates", f"candidate-{i:03d}", epoch * config.recipe.epochs)
        for i in range(config.search.budget)
    ]
    final = config.final
    if final.enabled:
        ofa = [f"top{i + 1}" for i in range(final.top_k)] + (["ofa-reference"] if final.reference else [])
        ofa += ["scratch/ofa-reference", "scratch/fractnet"] if final.scratch else []
        out += [Training("final: OFA networks", name, epoch * final.epochs) for name in ofa]
        out += [
            Training("final: timm baselines", name, epoch * final.epochs * relative_cost(name))
            for name in final.baselines
        ]
    return out


def wall_seconds(config, work: list[Training], gpus: int) -> tuple[float, int]:
    """(seconds, gangs) on `gpus` GPUs: gangs of G GPUs; the search in rounds of one candidate per
    gang, then the final stage's trainings packed longest first."""
    g = config.workers_per_cluster
    gangs = min(config.clusters, gpus // g)
    if gangs == 0:
        return math.inf, 0
    search = [t.gpu_seconds / g for t in work if t.kind == "search candidates"]
    rounds = math.ceil(len(search) / gangs)
    search_s = rounds * max(search, default=0.0)
    loads = [0.0] * gangs
    for seconds in sorted((t.gpu_seconds / g for t in work if t.kind != "search candidates"), reverse=True):
        heapq.heapreplace(loads, loads[0] + seconds)
    return search_s + max(loads), gangs


def describe(config, train_patches: int, gpus: int | None) -> list[str]:
    """The dry run's cost lines: GPU-hours by kind, and the wall time on `gpus` GPUs."""
    work = trainings(config, train_patches)
    kinds: dict[str, list] = {}
    for t in work:
        kinds.setdefault(t.kind, [0, 0.0])
        kinds[t.kind][0] += 1
        kinds[t.kind][1] += t.gpu_seconds
    lines = [
        f"cost in {DEVICE} (from the thesis' 450 GPU-hours for 100 candidates of 5 epochs on 300,000 "
        f"training patches; this run: {train_patches:,} training patches; baselines by multiply-adds):"
    ]
    for kind, (n, seconds) in kinds.items():
        lines.append(f"  {kind:24s} {n:5d} trainings {seconds / HOUR:10,.1f} GPU-h")
    total = sum(t.gpu_seconds for t in work) / HOUR
    lines.append(f"  {'total':24s} {len(work):5d} trainings {total:10,.1f} GPU-h")
    if gpus:
        seconds, gangs = wall_seconds(config, work, gpus)
        g = config.workers_per_cluster
        if gangs == 0:
            lines.append(f"wall time on {gpus} GPU(s): none, a worker cluster needs {g} GPUs")
        else:
            lines.append(
                f"wall time on {gpus} GPU(s): about {seconds / HOUR:,.1f} h ({gangs} worker cluster(s) of "
                f"{g} GPUs, data parallelism taken as perfect)"
            )
    else:
        lines.append("wall time: add --cluster-gpus N for an estimate on N GPUs")
    return lines
