"""The units of a fracture-detection sweep and their graph.

Per seed a training unit (train, then choose the operating points on dev) and an evaluation
unit (score the test set), with stable keys covering everything that decides their results:
changing only evaluation settings re-runs only the evaluation.
"""

from __future__ import annotations

from cluster.detection.config import FractureDetectionConfig
from cluster.scheduler import Node, TrackingTarget
from cluster.units import Unit
from core.keys import stable_key

UNIT_VERSION = 1  # bump when a unit's results would change for the same config
# what the units leave in their runs that others read: the training's exported detector
# (weights, architecture keys, operating points) and points, the evaluation's curves
MODEL = "model.pt"
POINTS = "operating_points.json"
CURVES = "curves.parquet"


def plan(config: FractureDetectionConfig, identity: dict) -> list[tuple[Unit, Unit]]:
    """(training unit, evaluation unit) per seed; keys cover everything deciding their results."""
    units = []
    for seed in config.seeds:
        recipe = config.model_copy(update={"seed": seed}).detector_only().resolved().model_dump(mode="json")
        train = {
            "kind": "fracture-detection-train",
            "version": UNIT_VERSION,
            "data": {"train": identity["train"], "dev": identity["dev"]},
            "recipe": recipe,
            "operating_points": {
                "doubt_sensitivity": config.doubt_sensitivity,
                "fracture_specificity": config.fracture_specificity,
                "level": config.operating_point_level,
                "iou_threshold": config.iou_threshold,
            },
        }
        train_key = stable_key(train)
        evaluation = {
            "kind": "fracture-detection-eval",
            "version": UNIT_VERSION,
            "train_unit": train_key,
            "test": identity["test"],
            "iou_threshold": config.iou_threshold,
            "froc_fp_range": list(config.froc_fp_range),
            "froc_fp_per": config.froc_fp_per,
        }
        units.append(
            (
                Unit(train_key, f"train/seed{seed}", {"seed": seed, **train}),
                Unit(stable_key(evaluation), f"eval/seed{seed}", {"seed": seed, **evaluation}),
            )
        )
    return units


def graph(pairs: list[tuple[Unit, Unit]], target: TrackingTarget, pool) -> list[Node]:
    """Nodes for run_graph: each training unit, then its evaluation on the actor that trained it
    (affinity: the training unit's key). A unit whose actor died is relaunched on a fresh one."""

    def train(unit, _deps):
        return pool.call("train", unit, target, affinity=unit.key)

    def evaluate(unit, deps):
        return pool.call("evaluate", unit, target, deps, affinity=unit.params["train_unit"])

    nodes = []
    for training, evaluation in pairs:
        nodes.append(Node(training, train, pool=pool))
        nodes.append(Node(evaluation, evaluate, (training.key,), tables=(CURVES,), pool=pool))
    return nodes
