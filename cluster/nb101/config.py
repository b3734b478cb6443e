"""The configs of chapter 4's three jobs, with the thesis' defaults, and their presets.

`BaselinesConfig` (jobs/nb101_baselines.py), `WSCorrelationConfig` (jobs/ws_correlation.py),
`SweepConfig` (jobs/nb101_sweep.py, which derives the other two so that its units have the
standalone jobs' keys) and `CostsConfig` (jobs/nb101_costs.py, the cost table of a preset's
recipe: what the calibrated clock charges). Presets resolve through `core.config.Presets`:
model defaults < preset < file < flags; the config records the preset it was resolved from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from cluster.nb101.benchmark import REAL_SUBSET
from cluster.nb101.clock import check_clock
from core.config import Config, ConfigError, Presets
from core.nb101.space import check_subspaces
from core.ws.config import VARIANTS, SupernetConfig, check_same_data
from search.runner import METHODS

Variant = Literal["uniform", "SINGLE-K", "PRO-RATA", "AVG-3", "S-K+P-R"]


class NB101Job(Config):
    """Keys every chapter-4 job has: the benchmark and its sub-spaces, where to track and run."""

    benchmark: str | None = Field(
        None, description=f"None: embedded mini-benchmark; '{REAL_SUBSET}'; or a Parquet path"
    )
    spaces: list[str] | None = Field(None, description="None: every sub-space with cells in the benchmark")
    tracking_uri: str | None = None
    ray_address: str | None = None

    @field_validator("spaces")
    @classmethod
    def _known_spaces(cls, spaces):
        return check_subspaces(spaces)


class WeightSharingJob(NB101Job):
    """Keys of the jobs that train supernets: their recipe and variants, the actors' devices."""

    preset: str = Field("default", description="the preset this config was resolved from")
    variants: list[Variant] = ["uniform"]
    supernet: dict = Field(default_factory=dict, description="SupernetConfig overrides")
    gpus_per_trainer: float = Field(1.0, ge=0)
    gpus_per_evaluator: float = Field(0.5, ge=0)
    evaluators: int = Field(2, ge=1)


class BaselinesConfig(NB101Job):
    experiment: str = "nb101-baselines"
    sweep_name: str = "nb101-baselines"
    methods: list[Literal["RS", "GS"]] = ["RS", "GS"]
    seeds: int = Field(100, ge=1)
    first_seed: int = Field(0, ge=0)
    budget: int = Field(10_000, ge=1, description="evaluations per search")
    validation: Literal["sample", "mean"] = "sample"
    report_steps: list[int] = [100, 1000, 10_000]
    output_dir: str = "outputs/nb101_baselines"
    max_retries: int = Field(3, ge=0)
    clock: Literal["benchmark", "calibrated"] = Field(
        "benchmark", description="benchmark: the file's training times; calibrated: a cost table's"
    )
    costs: str | None = Field(None, description="calibrated clock: the cost table (Parquet path)")
    recipe: dict = Field(
        default_factory=dict,
        description="calibrated clock: the supernet recipe whose network is timed (empty: the "
        "preset recipe of the benchmark's dataset)",
    )

    @field_validator("methods")
    @classmethod
    def _some_method(cls, methods):
        if not methods:
            raise ValueError(f"at least one method is needed ({list(METHODS)})")
        return methods


# Recipes of the presets; the thesis recipe is SupernetConfig's own defaults (docs/thesis.md).
EMBEDDED_RECIPE = {
    "dataset": "digits",
    "epochs": 100,
    "batch_size": 64,
    "lr": 0.05,
    "bn_momentum": 0.1,
    "stem_filters": 8,
    "num_stacks": 2,
    "modules_per_stack": 1,
    "checkpoint_every": 25,
}
SMOKE_RECIPE = EMBEDDED_RECIPE | {"epochs": 3, "checkpoint_every": 1}
NOTES = {
    "smoke": "seconds, for tests",
    "default": "the embedded mini-benchmark and digits on CPU",
    "thesis": "the paper's recipe on CIFAR-10; needs the NB-101 file",
}

CORRELATION_PRESETS = Presets(
    {
        "smoke": {
            "spaces": ["A2"],
            "variants": ["uniform"],
            "supernets": 2,
            "cells": 30,
            "supernet": SMOKE_RECIPE,
        },
        "default": {"variants": ["uniform"], "supernets": 3, "cells": 300, "supernet": EMBEDDED_RECIPE},
        "thesis": {
            "variants": list(VARIANTS),
            "supernets": 5,
            "cells": 1000,
            "supernet": {"dataset": "cifar10"},
        },
    },
    default="default",
    notes=NOTES,
)


class WSCorrelationConfig(WeightSharingJob):
    experiment: str = "nb101-ws-correlation"
    sweep_name: str = "ws-correlation"
    supernets: int = Field(3, ge=1)
    cells: int = Field(300, ge=2)
    output_dir: str = "outputs/ws_correlation"

    def recipe(self, space: str, variant: str, replicate: int) -> SupernetConfig:
        """The full supernet config of one replicate (validated: a bad key fails here)."""
        return SupernetConfig.model_validate(
            self.supernet | {"space": space, "variant": variant, "seed": replicate}
        )


SWEEP_PRESETS = Presets(
    {
        "smoke": {
            "spaces": ["A2"],
            "ws_seeds": 2,
            "baseline_seeds": 3,
            "budget": 60,
            "ws_budget": 40,
            "correlation_supernets": 1,
            "correlation_cells": 20,
            "clock": "modelled",
            "supernet_seconds": 36_000.0,  # a supernet costs hours of GPU time, as in the thesis
            "supernet": SMOKE_RECIPE,
        },
        "default": {
            "ws_seeds": 3,
            "baseline_seeds": 20,
            "budget": 1000,
            "ws_budget": 300,
            "correlation_supernets": 3,
            "correlation_cells": 300,
            "supernet": EMBEDDED_RECIPE,
        },
        "thesis": {
            "ws_seeds": 25,
            "baseline_seeds": 100,
            "budget": 10_000,
            "ws_budget": 10_000,
            "correlation_supernets": 5,
            "correlation_cells": 1000,
            "variants": ["uniform"],
            "supernet": {"dataset": "cifar10"},
        },
    },
    default="default",
    notes=NOTES,
)


class SweepConfig(WeightSharingJob):
    experiment: str = "nb101-sweep"
    sweep_name: str = "nb101-sweep"
    methods: list[Literal["RS", "GS"]] = ["RS", "GS"]
    ws_seeds: int = Field(25, ge=2)
    baseline_seeds: int = Field(100, ge=2)
    budget: int = Field(10_000, ge=1, description="baseline evaluations per search")
    ws_budget: int = Field(10_000, ge=1, description="proxy evaluations per WS search")
    trained_cells: int | None = Field(
        None,
        ge=1,
        description="cells trained after a WS search, best proxy first (None: every visited cell, 4.3.3)",
    )
    correlation_supernets: int = Field(5, ge=0)
    correlation_cells: int = Field(1000, ge=2)
    validation: Literal["sample", "mean"] = "sample"
    clock: str = Field("calibrated", description="calibrated (a cost table, thesis 4.3.3) or modelled")
    costs: str | None = Field(
        None, description="calibrated: the cost table (None: built or shipped for the recipe)"
    )
    supernet_seconds: float | None = Field(None, gt=0, description="modelled clock: seconds per supernet")
    proxy_seconds: float = Field(4.0, ge=0, description="modelled clock: seconds per proxy evaluation")
    cluster_gpus: int | None = Field(
        None, ge=1, description="dry run: the GPUs the wall time is estimated for"
    )
    max_retries: int = Field(3, ge=0)
    output_dir: str = "outputs/nb101_sweep"

    @field_validator("clock")
    @classmethod
    def _one_device(cls, clock):
        return check_clock(clock, searches_ws=True)

    @model_validator(mode="after")
    def _modelled_needs_supernet_seconds(self):
        if self.clock == "modelled" and self.supernet_seconds is None:
            raise ValueError(
                "clock modelled: supernet_seconds is required (seconds one supernet training costs on "
                "the benchmark file's clock; 0 would make supernets free)"
            )
        return self

    def baselines(self) -> BaselinesConfig:
        return BaselinesConfig(
            experiment=self.experiment,
            benchmark=self.benchmark,
            spaces=self.spaces,
            methods=self.methods,
            seeds=self.baseline_seeds,
            budget=self.budget,
            validation=self.validation,
            clock="calibrated" if self.clock == "calibrated" else "benchmark",
            costs=self.costs,
            recipe=self.supernet,
        )

    def correlation(self) -> WSCorrelationConfig:
        return WSCorrelationConfig(
            experiment=self.experiment,
            benchmark=self.benchmark,
            spaces=self.spaces,
            variants=self.variants,
            supernets=self.correlation_supernets or 1,
            cells=self.correlation_cells,
            supernet=self.supernet,
            gpus_per_trainer=self.gpus_per_trainer,
            gpus_per_evaluator=self.gpus_per_evaluator,
            evaluators=self.evaluators,
        )


def check_recipes(config: WSCorrelationConfig | SweepConfig) -> None:
    """Every supernet recipe of the study validates, before anything starts."""
    study = config.correlation() if isinstance(config, SweepConfig) else config
    for space in study.spaces or ["FULL"]:
        for variant in study.variants:
            try:
                study.recipe(space, variant, 0)
            except ValidationError as err:
                lines = [
                    f"  supernet.{'.'.join(map(str, e['loc'])) or '<recipe>'}: {e['msg']}"
                    for e in err.errors()
                ]
                raise ConfigError("invalid supernet recipe:\n" + "\n".join(lines)) from None
            except ValueError as err:
                raise ConfigError(f"supernet: {err}") from None


UNSET_ROOT = "<cifar10_root not set>"


def for_planning(config: SweepConfig) -> str | None:
    """A dry run plans without the data: a CIFAR-10 recipe without `cifar10_root` gets a
    placeholder, and the line returned says so (None when nothing was missing)."""
    if config.supernet.get("dataset") == "cifar10" and not config.supernet.get("cifar10_root"):
        config.supernet = config.supernet | {"cifar10_root": UNSET_ROOT}
        return "note: supernet.cifar10_root is not set: a real run needs it (units are planned without it)"
    return None


def check_data(config: WSCorrelationConfig | SweepConfig, bench) -> None:
    """The supernets train on the benchmark's data, else a ConfigError naming both."""
    study = config.correlation() if isinstance(config, SweepConfig) else config
    dataset = study.supernet.get("dataset", SupernetConfig.model_fields["dataset"].default)
    try:
        check_same_data(dataset, bench.dataset, bench.source)
    except ValueError as err:
        raise ConfigError(f"supernet.dataset: {err}") from None


class CostsConfig(NB101Job):
    """jobs/nb101_costs.py: time the cells of a benchmark under a preset's supernet recipe."""

    preset: str = Field("default", description="the preset this config was resolved from")
    supernet: dict = Field(default_factory=dict, description="the recipe whose network is timed")
    sample: int | None = Field(
        None, ge=10, description="time a stratified sample, fit the others (None: all)"
    )
    measures: int = Field(3, ge=1, description="measures averaged per pass (thesis: 3)")
    chunk_size: int = Field(64, ge=1, description="cells per Ray task")
    threads: int = Field(1, ge=1, description="torch threads of a CPU task")
    gpus_per_task: float = Field(1.0, gt=0, description="GPUs a task holds on a GPU cluster")
    holdout: float = Field(0.2, gt=0, lt=1, description="fitted clock: share of timed cells held out")
    seed: int = 0
    out: str | None = Field(
        None, description="the table's path (None: .cache/nb101-costs/<recipe>/<device>.parquet)"
    )
    local: bool = Field(False, description="time in this process, without Ray")


COSTS_PRESETS = Presets(
    {
        "smoke": {"spaces": ["A2"], "supernet": SMOKE_RECIPE, "sample": 12},
        "default": {"supernet": EMBEDDED_RECIPE},
        "thesis": {"supernet": {"dataset": "cifar10"}},
    },
    default="default",
    notes=NOTES,
)
