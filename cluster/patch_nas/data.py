"""The patch set of a fracture-NAS run: loaded and checked before anything starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cluster.patch_nas.config import FractureNASConfig


@dataclass(frozen=True)
class PreparedData:
    patches: object  # core.patches.manifest.PatchSet
    data: object  # core.patches.dataset.PatchData
    note: str  # where the patches come from (said in the output and on the parent run)
    embedded: bool


def prepare_data(config: FractureNASConfig, verbose: bool = True) -> PreparedData:
    """Load and check the manifest (generating the embedded set first); raises PatchDataError
    naming the file/column/row before anything starts."""
    from core.patches.dataset import prepare
    from core.patches.manifest import load_manifest
    from core.patches.synthetic import SOURCE, ensure_synthetic

    d = config.data
    embedded = d.embedded
    manifest = ensure_synthetic(d.synthetic, verbose=verbose) if embedded else Path(d.manifest)
    patches = load_manifest(
        manifest,
        None if embedded else d.images,
        d.columns,
        d.min_score,
        d.positive_iou,
        d.negative_iou,
        d.check_files,
    )
    splits = ("train", "val", "test") if config.final.enabled else ("train", "val")
    patches.check_usable(splits)
    note = f"{SOURCE}; {manifest}" if embedded else f"patch manifest {manifest}"
    data = prepare(patches, d.input_size, d.in_memory, verbose=verbose)
    return PreparedData(patches, data, note, embedded)
