"""Training jobs: a search candidate or a final-stage network, with the unit key that finds it again.

A unit's key is the `stable_key` of everything that decides its result: the network (canonical
genome and supernet identity, or the timm name and weights), the recipe (not evaluation batch
sizes or loaders), the input size, the splits scored and the data identity. Two genomes of the
same network share one key, so a network proposed twice is trained once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cluster.patch_nas.config import FractureNASConfig
from cluster.units import Unit
from core.keys import stable_key
from core.patches.config import FinetuneRecipe
from search.ofa_space import Genome, canonical, decode, describe, genome_key

UNIT_VERSION = 1  # bump when a unit's result would change for the same config


@dataclass(frozen=True)
class OFAModel:
    """A sub-network cut out of the OFA supernet (checkpoint None: the seeded random supernet)."""

    genome: Genome
    checkpoint: str | None
    seed: int


@dataclass(frozen=True)
class TimmModel:
    """A timm baseline, with its local ImageNet weights when given."""

    name: str
    checkpoint: str | None


@dataclass(frozen=True)
class TrainingJob:
    """One network to fine-tune and score: what a gang of workers trains as one unit."""

    unit: Unit
    model: OFAModel | TimmModel
    recipe: FinetuneRecipe
    splits: tuple[str, ...]
    input_size: int
    macs_reference: int | None  # also count multiply-adds at this input size
    role: str  # search, final-nas, final-reference, final-scratch or baseline
    log_params: dict = field(default_factory=dict)  # the child run's params besides the attempt's own


def recipe_identity(recipe: FinetuneRecipe, epochs: int | None = None) -> dict:
    """The parts of the recipe that decide a result (not batch sizes of evaluation, loaders)."""
    out = recipe.model_dump(exclude={"eval_batch_size", "loader_workers"})
    if epochs is not None:
        out["epochs"] = epochs
    return out


def supernet_id(config: FractureNASConfig, scratch: bool = False) -> str:
    from core.models.ofa_subnet import supernet_identity

    if scratch:
        return f"scratch:seed{config.supernet.seed}"
    return supernet_identity(config.supernet.checkpoint, config.supernet.seed)


def candidate_identity(config: FractureNASConfig, data_identity: str, supernet: str) -> dict:
    return {
        "recipe": recipe_identity(config.recipe),
        "input_size": config.data.input_size,
        "data": data_identity,
        "supernet": supernet,
    }


def ofa_job(
    genome,
    name: str,
    config: FractureNASConfig,
    data_identity: str,
    supernet: str,
    epochs: int,
    splits: tuple[str, ...],
    role: str,
    scratch: bool = False,
) -> TrainingJob:
    """A training job for an OFA sub-network (a search candidate or a final-stage row)."""
    g = canonical(genome)
    params = {
        "kind": "ofa-patch-classifier",
        "version": UNIT_VERSION,
        "genome": list(g),
        "splits": list(splits),
        **candidate_identity(config, data_identity, supernet),
    }
    params["recipe"] = recipe_identity(config.recipe, epochs)
    checkpoint = None if scratch else config.supernet.checkpoint
    return TrainingJob(
        unit=Unit(stable_key(params), name, params),
        model=OFAModel(g, checkpoint, config.supernet.seed),
        recipe=config.recipe.model_copy(update={"epochs": epochs}),
        splits=tuple(splits),
        input_size=config.data.input_size,
        macs_reference=config.final.macs_input_size,
        role=role,
        log_params={
            "arch": describe(g),
            "genome": ",".join(map(str, g)),
            "arch_key": genome_key(g),
            "supernet": supernet,
            "data": data_identity,
            "input_size": config.data.input_size,
            **{f"recipe.{k}": v for k, v in params["recipe"].items()},
            **{k: json.dumps(v) for k, v in decode(g).items()},
        },
    )


def baseline_job(name: str, config: FractureNASConfig, data_identity: str) -> TrainingJob:
    """A training job for a timm baseline of table 5.1 (scored on val and test)."""
    from core.models.ofa_subnet import _file_sha256
    from core.patches.baselines import label

    checkpoint = config.final.baseline_weights.get(name)
    weights = f"sha256:{_file_sha256(Path(checkpoint))}" if checkpoint else "random-init"
    params = {
        "kind": "timm-patch-classifier",
        "version": UNIT_VERSION,
        "model": name,
        "weights": weights,
        "splits": ["val", "test"],
        "recipe": recipe_identity(config.recipe, config.final.epochs),
        "input_size": config.data.input_size,
        "data": data_identity,
    }
    return TrainingJob(
        unit=Unit(stable_key(params), f"final/{name}", params),
        model=TimmModel(name, checkpoint),
        recipe=config.recipe.model_copy(update={"epochs": config.final.epochs}),
        splits=("val", "test"),
        input_size=config.data.input_size,
        macs_reference=config.final.macs_input_size,
        role="baseline",
        log_params={
            "network": label(name),
            "weights": weights,
            "data": data_identity,
            "input_size": config.data.input_size,
            **{f"recipe.{k}": v for k, v in params["recipe"].items()},
        },
    )
