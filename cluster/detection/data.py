"""The train / dev / test splits of a fracture-detection config, checked before any work."""

from __future__ import annotations

from cluster.detection.config import FractureDetectionConfig

SPLITS = ("train", "dev", "test")


def load_splits(config: FractureDetectionConfig) -> dict:
    """train / dev / test datasets of the config (checked: files, boxes, study ids, images)."""
    from core.detection.coco import load_coco
    from core.detection.synthetic import SyntheticSpec, synthetic_dataset

    if config.train_json:
        return {
            name: load_coco(getattr(config, f"{name}_json"), config.image_root, config.categories)
            for name in SPLITS
        }
    if config.coco:
        data = load_coco(config.coco, config.image_root, config.categories)
    else:
        data = synthetic_dataset(
            SyntheticSpec(config.synthetic_studies, config.synthetic_image_size, seed=config.synthetic_seed)
        )
    splits = data.split(dict(zip(SPLITS, config.split_fractions)), seed=config.split_seed)
    for name in ("dev", "test"):
        s = splits[name].summary()
        if s["studies_with_fracture"] == 0 or s["studies_with_fracture"] == s["studies"]:
            raise ValueError(
                f"the {name} split ({splits[name].describe()}) needs studies with and without fractures; "
                "use more data or larger split_fractions"
            )
    return splits


def data_identity(splits: dict) -> dict:
    """Each split's content identity: what the unit keys hash."""
    return {name: splits[name].identity for name in SPLITS}
