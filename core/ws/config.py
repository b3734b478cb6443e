"""The supernet recipe as validated data; defaults are the thesis' (SPEC.md, thesis 4.3.2)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.config import Config
from core.nb101.params import Macro
from core.nb101.space import SUBSPACES

VARIANTS = ("uniform", "SINGLE-K", "PRO-RATA", "AVG-3", "S-K+P-R")


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
    def macro(self) -> Macro:
        return Macro(self.stem_filters, self.num_stacks, self.modules_per_stack, 10, self.in_channels)

    @property
    def use_augmentation(self) -> bool:
        return self.dataset == "cifar10" if self.augment is None else self.augment
