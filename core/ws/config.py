"""The supernet recipe as validated data; defaults are the thesis' (SPEC.md, thesis 4.3.2).

A recipe names its dataset (`digits`, the embedded default, or `cifar10`, the thesis'); the
shapes of both (`DATASETS`) say what one training pass sees, which is what a cost table times
(`timing_recipe`) and what a benchmark must have been trained on for its accuracies to judge the
supernet's proxies (`check_same_data`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from core.config import Config
from core.nb101.params import Macro
from core.nb101.space import SUBSPACES

VARIANTS = ("uniform", "SINGLE-K", "PRO-RATA", "AVG-3", "S-K+P-R")
BN_BATCH = 256  # images a BNS-FT evaluation re-estimates the batch-norm statistics on (thesis 4.3.2)


@dataclass(frozen=True)
class Dataset:
    """The shape of a dataset's splits: what one pass sees and how many batches an epoch has."""

    name: str
    channels: int
    image_size: int
    train: int
    validation: int
    test: int

    def batches(self, split: str, batch_size: int) -> int:
        """Mini-batches to go once through `split` (the last one may be partial)."""
        return math.ceil(getattr(self, split) / batch_size)


DATASETS = {  # digits: core.data.digits.digits_splits(); cifar10: NB-101's split (thesis 4.3.2)
    "digits": Dataset("digits", 1, 8, 1078, 359, 360),
    "cifar10": Dataset("cifar10", 3, 32, 40_000, 10_000, 10_000),
}


def check_same_data(recipe_dataset: str, benchmark_dataset: str | None, benchmark: str) -> None:
    """A supernet's proxies are compared with the benchmark's accuracies: both must come from
    the same data (digits supernets against CIFAR-10 accuracies rank nothing)."""
    if benchmark_dataset is None:
        raise ValueError(
            f"benchmark {benchmark} records no dataset (metadata 'dataset'), so its accuracies "
            f"cannot be checked against supernets trained on {recipe_dataset}"
        )
    if recipe_dataset != benchmark_dataset:
        raise ValueError(
            f"supernets would train on {recipe_dataset} but benchmark {benchmark} holds "
            f"{benchmark_dataset} accuracies; use a preset on {benchmark_dataset} "
            f"(e.g. --preset thesis for cifar10, the default for digits) or set supernet.dataset"
        )


class SupernetConfig(Config):
    space: str = "FULL"
    variant: Literal["uniform", "SINGLE-K", "PRO-RATA", "AVG-3", "S-K+P-R"] = "uniform"
    dataset: Literal["digits", "cifar10"] = "digits"
    cifar10_root: str | None = None
    epochs: int = Field(432, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(0.2, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    rmsprop_eps: float = Field(1.0, gt=0)
    rmsprop_alpha: float = Field(0.9, gt=0, lt=1)
    bn_momentum: float = Field(0.003, gt=0, le=1)
    bn_eps: float = Field(1e-5, gt=0)
    stem_filters: int = Field(16, ge=1)
    num_stacks: int = Field(3, ge=1)
    modules_per_stack: int = Field(3, ge=1)
    augment: bool | None = None  # None: on for CIFAR-10, off for digits
    checkpoint_every: int = Field(10, ge=1)
    seed: int = 0
    amp: bool = True  # bf16 autocast, GPU only
    channels_last: bool = True  # GPU only

    @model_validator(mode="after")
    def _check(self):
        if self.space not in SUBSPACES:
            raise ValueError(f"space: unknown sub-space {self.space!r}; expected one of {list(SUBSPACES)}")
        if self.dataset == "cifar10" and not self.cifar10_root:
            raise ValueError("cifar10_root: required when dataset is cifar10")
        return self

    @property
    def single_kernel(self) -> bool:
        return self.variant in ("SINGLE-K", "S-K+P-R")

    @property
    def pro_rata(self) -> bool:
        return self.variant in ("PRO-RATA", "S-K+P-R")

    @property
    def paths_per_step(self) -> int:
        return 3 if self.variant == "AVG-3" else 1

    @property
    def in_channels(self) -> int:
        return 1 if self.dataset == "digits" else 3

    @property
    def data(self) -> Dataset:
        return DATASETS[self.dataset]

    def timing_recipe(self):
        """What one training pass of this recipe's networks is timed with (a cost table's key)."""
        return timing_recipe(self.model_dump())

    @property
    def macro(self) -> Macro:
        return Macro(self.stem_filters, self.num_stacks, self.modules_per_stack, 10, self.in_channels)

    @property
    def use_augmentation(self) -> bool:
        return self.dataset == "cifar10" if self.augment is None else self.augment


def timing_recipe(recipe: dict):
    """The TimingRecipe of supernet recipe values (missing keys: SupernetConfig's defaults); no
    data folder is needed to time a pass, so a CIFAR-10 recipe without `cifar10_root` is fine."""
    from core.nb101.costs import TimingRecipe

    fields = SupernetConfig.model_fields
    value = {
        k: recipe.get(k, fields[k].default)
        for k in ("dataset", "stem_filters", "num_stacks", "modules_per_stack", "batch_size")
    }
    if value["dataset"] not in DATASETS:
        raise ValueError(
            f"supernet.dataset: unknown dataset {value['dataset']!r}; expected one of {list(DATASETS)}"
        )
    data = DATASETS[value["dataset"]]
    return TimingRecipe(
        int(value["stem_filters"]),
        int(value["num_stacks"]),
        int(value["modules_per_stack"]),
        data.channels,
        data.image_size,
        int(value["batch_size"]),
    )
