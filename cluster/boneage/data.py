"""The sweep's data and plan: every dataset loaded and checked on the driver before anything
starts (`prepare_data`), and one unit per variant keyed by the recipe, the variant and the
content of its data (`plan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.boneage.config import VARIANTS, BoneAgeJobConfig
from cluster.units import Unit
from core.config import ConfigError
from core.keys import stable_key

UNIT_VERSION = 1  # bump when a unit's results would change for the same config


@dataclass
class SweepData:
    """Everything the units need, loaded and checked on the driver before any work starts."""

    train: dict[str, pd.DataFrame]  # dataset -> training records
    val: dict[str, pd.DataFrame]  # dataset -> validation records
    clinical: pd.DataFrame
    note: str  # where the data come from (said in the output and the runs)
    identity: dict[str, str]  # dataset -> content key
    weights: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (dataset, kind) -> w

    def compute_weights(self, variants: list[str], alpha: float) -> None:
        """Sample weights of each (training set, weighting) the variants use, computed once."""
        from core.boneage.weights import sample_weights

        for name in variants:
            v = VARIANTS[name]
            if v.weighting != "none" and (v.dataset, v.weighting) not in self.weights:
                t = self.train[v.dataset]
                self.weights[(v.dataset, v.weighting)] = sample_weights(
                    v.weighting, t["bone_age"], t["chronological_age"], alpha
                )

    def weights_of(self, variant: str) -> np.ndarray | None:
        """The sample weights a variant trains with (None: unweighted)."""
        v = VARIANTS[variant]
        return self.weights[(v.dataset, v.weighting)] if v.weighting != "none" else None


def _identity(frame: pd.DataFrame) -> str:
    """Content key of a record table: labels and the size of every image file."""
    sizes = [Path(p).stat().st_size for p in frame["image"]]
    cols = frame[["id", "hand", "sex", "bone_age", "chronological_age", "reader_bone_age"]]
    return stable_key({"rows": cols.astype(str).values.tolist(), "sizes": sizes})


def prepare_data(config: BoneAgeJobConfig, verbose: bool = True) -> SweepData:
    """Load every dataset the variants need (synthetic ones generated first when embedded);
    raises DataError naming file/line/column before anything is trained."""
    from core.boneage.records import load_clinical, load_rhpe, load_rsna, split_patients
    from core.boneage.synthetic import EMBEDDED_NOTE, ensure_synthetic, synthetic_sources

    if config.model.pretrained and not Path(config.model.pretrained).is_file():
        raise ConfigError(f"model.pretrained: checkpoint file not found: {config.model.pretrained}")
    data = config.data
    if data.embedded:
        root = ensure_synthetic(data.synthetic, verbose=verbose)
        rsna, rhpe, clinical = synthetic_sources(root)
        note = f"{EMBEDDED_NOTE}; in {root}"
    else:
        rsna, rhpe, clinical = data.rsna, data.rhpe, data.clinical
        note = "real data: " + ", ".join(
            f"{k} {getattr(data, k).csv}" for k in ("rsna", "rhpe", "clinical") if getattr(data, k)
        )
    needed = {VARIANTS[v].dataset for v in config.variants}
    loaders = {"rsna": (load_rsna, rsna), "rhpe": (load_rhpe, rhpe)}
    train, val = {}, {}
    for name in sorted(needed):
        load, source = loaders[name]
        frame = load(source)
        if source.val_csv:
            train[name], val[name] = frame, load(source, source.val_csv, source.val_images)
        else:
            train[name], val[name] = split_patients(frame, config.train.val_fraction, config.train.seed)
        if verbose:
            print(f"{name}: {len(train[name])} training and {len(val[name])} validation images")
    evaluation = load_clinical(clinical)
    if verbose:
        print(f"clinical evaluation set: {len(evaluation)} exams")
    identity = {f"{k}_train": _identity(v) for k, v in train.items()}
    identity |= {f"{k}_val": _identity(v) for k, v in val.items()}
    identity["clinical"] = _identity(evaluation)
    data = SweepData(train, val, evaluation, note, identity)
    data.compute_weights(config.variants, config.alpha)
    return data


def result_config(config: BoneAgeJobConfig) -> dict:
    """The parts of the config that decide a unit's result (not workers, paths, caching)."""
    train = config.train.model_dump()
    for key in ("num_workers", "cache_images", "eval_batch_size", "micro_batch_size"):
        train.pop(key)
    return {"model": config.model.model_dump(), "train": train}


def plan(config: BoneAgeJobConfig, data: SweepData) -> list[Unit]:
    """One unit per variant; its key covers the recipe, the variant and the data's content."""
    units = []
    for name in config.variants:
        v = VARIANTS[name]
        params = {
            "kind": "bone-age",
            "version": UNIT_VERSION,
            "variant": v.name,
            "label": v.label,
            "dataset": v.dataset,
            "use_ca": v.use_ca,
            "weighting": v.weighting,
            "alpha": config.alpha if v.weighting in ("DA", "BA_DA") else None,
            "data": {k: data.identity[k] for k in (f"{v.dataset}_train", f"{v.dataset}_val", "clinical")},
            **result_config(config),
        }
        units.append(Unit(stable_key(params), v.name, params))
    return units
