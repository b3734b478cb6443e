"""The patch manifest: one row per detector box turned into a patch image (thesis 5.3.1).

Columns (other names are mapped with `columns={logical: header}`):

    path        patch image file (PNG/JPEG/...), relative to the image folder or absolute
    study_id    the exam the box comes from (patients never cross splits)
    image_id    the radiograph of the study (unique within its study)
    x0 y0 x1 y1 the detector box in the radiograph's pixels (or one `box` column: a list of four
                numbers in Parquet, "x0 y0 x1 y1" / "[x0, y0, x1, y1]" in CSV)
    score       the detector's confidence, 0 to 100
    iou         IoU of the box with its best-matching ground-truth fracture box (0 when none)
    split       train, val (or validation/valid) or test
    fracture_id optional: the ground-truth fracture that best-matching box belongs to (unique within
                its study; one id across the views of a study). Without it, the fractures of a
                study count as one in the FROC (see core.metrics.froc).

Rules: only boxes scored above `min_score` (10) are kept; a box is positive when IoU > 0.5,
negative for training when IoU < 0.2, ignored for training in between and negative for
evaluation (validation and test). Every problem (missing file or column, bad value, unknown
split, missing patch image) is a `PatchDataError` naming the file, column and row, raised before
any work.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.keys import stable_key

REQUIRED = ("path", "study_id", "image_id", "score", "iou", "split")
BOX = ("x0", "y0", "x1", "y1")
OPTIONAL = ("fracture_id",)
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}
SPLITS = ("train", "val", "test")
IGNORED = -1  # train_label of a box between the IoU thresholds


class PatchDataError(ValueError):
    """A patch dataset that cannot be used; the message names the file, column and row."""


@dataclass(frozen=True)
class PatchSet:
    """The kept patches (score above the threshold) with their labels, ready for training.

    `frame` columns: path (absolute), study_id, image_id (strings), x0, y0, x1, y1, score, iou,
    split, fracture_id (None for negatives or when the manifest has none), train_label (1, 0 or
    -1 ignored), test_label (1 or 0). `n_images[split]` counts the images of the split before the
    score filter (the FP-per-image denominator).
    """

    frame: pd.DataFrame
    source: str
    n_rows: int
    n_low_score: int
    n_images: dict[str, int]
    identity: str
    has_fracture_ids: bool

    def split(self, name: str) -> pd.DataFrame:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.frame[self.frame["split"] == name].reset_index(drop=True)

    def counts(self) -> pd.DataFrame:
        """Patches per split: kept, positive, negative, ignored for training."""
        f = self.frame
        rows = []
        for name in SPLITS:
            s = f[f["split"] == name]
            rows.append(
                {
                    "split": name,
                    "patches": len(s),
                    "positive": int((s["test_label"] == 1).sum()),
                    "negative_train": int((s["train_label"] == 0).sum()),
                    "ignored_train": int((s["train_label"] == IGNORED).sum()),
                    "studies": s["study_id"].nunique(),
                    "images": self.n_images.get(name, 0),
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> str:
        c = self.counts()
        parts = [
            f"{r.split} {r.patches} ({r.positive} positive, {r.ignored_train} between IoU thresholds, "
            f"{r.studies} studies, {r.images} images)"
            for r in c.itertuples()
        ]
        return f"{self.source}: {self.n_rows} boxes, {self.n_low_score} at or below the score threshold; " + (
            "; ".join(parts)
        )

    def check_usable(self, splits: tuple[str, ...] = SPLITS) -> None:
        """Training needs both classes; an evaluation split needs positives (else AUFROC is undefined)."""
        for name in splits:
            s = self.frame[self.frame["split"] == name]
            if name == "train":
                for label, what in ((1, "positive"), (0, "negative")):
                    if not (s["train_label"] == label).any():
                        raise PatchDataError(
                            f"{self.source}: the train split has no {what} patch after filtering"
                        )
            elif not (s["test_label"] == 1).any():
                raise PatchDataError(
                    f"{self.source}: the {name} split has no positive patch after filtering "
                    "(AUFROC is undefined)"
                )


def label_patches(iou, positive_iou: float = 0.5, negative_iou: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(train_label, test_label): 1 above positive_iou; for training 0 below negative_iou and -1
    (ignored) in between; for evaluation everything not positive is 0."""
    iou = np.asarray(iou, dtype=np.float64)
    positive = iou > positive_iou
    train = np.where(positive, 1, np.where(iou < negative_iou, 0, IGNORED)).astype(np.int8)
    return train, positive.astype(np.int8)


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    except Exception as err:  # noqa: BLE001 - any reader failure is a data error naming the file
        raise PatchDataError(f"{path}: cannot read the manifest ({type(err).__name__}: {err})") from None
    raise PatchDataError(f"{path}: unknown manifest format {suffix!r}; expected .parquet/.pq or .csv/.tsv")


def _row(frame: pd.DataFrame, i: int, csv: bool) -> str:
    return f"line {i + 2}" if csv else f"row {i}"


def _numbers(frame: pd.DataFrame, column: str, path: Path, csv: bool) -> np.ndarray:
    values = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PatchDataError(
            f"{path}: column {column!r} {_row(frame, i, csv)} is not a number: {frame[column].iloc[i]!r}"
        )
    return values


def _boxes(frame: pd.DataFrame, path: Path, csv: bool) -> np.ndarray:
    if all(c in frame.columns for c in BOX):
        return np.stack([_numbers(frame, c, path, csv) for c in BOX], axis=1)
    out = np.zeros((len(frame), 4))
    for i, value in enumerate(frame["box"]):
        numbers = (
            re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", value)
            if isinstance(value, str)
            else list(value)
            if value is not None
            else []
        )
        if len(numbers) != 4:
            raise PatchDataError(f"{path}: column 'box' {_row(frame, i, csv)} is not 4 numbers: {value!r}")
        out[i] = [float(v) for v in numbers]
    return out


def _ids(frame: pd.DataFrame, column: str, path: Path, csv: bool) -> np.ndarray:
    values = frame[column]
    empty = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise PatchDataError(f"{path}: column {column!r} {_row(frame, i, csv)} is empty")
    return values.astype(str).str.strip().to_numpy(dtype=object)


def load_manifest(
    path: str | Path,
    images: str | Path | None = None,
    columns: dict[str, str] | None = None,
    min_score: float = 10.0,
    positive_iou: float = 0.5,
    negative_iou: float = 0.2,
    check_files: bool = True,
) -> PatchSet:
    """Read and check a manifest (see the module docstring); keep boxes scored above min_score."""
    path = Path(path)
    if not path.is_file():
        raise PatchDataError(f"{path}: patch manifest not found")
    root = Path(images) if images is not None else path.parent
    if not root.is_dir():
        raise PatchDataError(f"{root}: image folder of the manifest {path} not found")
    raw = _read_table(path)
    csv = path.suffix.lower() in (".csv", ".tsv")
    rename = {header: logical for logical, header in (columns or {}).items()}
    absent = [h for h in rename if h not in raw.columns]
    if absent:
        raise PatchDataError(f"{path}: columns mapping names header(s) {absent} the manifest lacks")
    frame = raw.rename(columns=rename)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if not (all(c in frame.columns for c in BOX) or "box" in frame.columns):
        missing.append("x0, y0, x1, y1 (or box)")
    if missing:
        raise PatchDataError(
            f"{path}: missing column(s) {missing}; the manifest has {list(raw.columns)} "
            "(map other names with data.columns, e.g. {'score': 'det_score'})"
        )
    if len(frame) == 0:
        raise PatchDataError(f"{path}: the manifest has no rows")

    study = _ids(frame, "study_id", path, csv)
    image = _ids(frame, "image_id", path, csv)
    boxes = _boxes(frame, path, csv)
    bad_box = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if bad_box.any():
        i = int(np.flatnonzero(bad_box)[0])
        raise PatchDataError(
            f"{path}: {_row(frame, i, csv)} has an empty box {boxes[i].tolist()} (need x1 > x0, y1 > y0)"
        )
    score = _numbers(frame, "score", path, csv)
    iou = _numbers(frame, "iou", path, csv)
    out_of_range = (iou < 0) | (iou > 1)
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise PatchDataError(f"{path}: column 'iou' {_row(frame, i, csv)} is {iou[i]}, outside [0, 1]")
    split_raw = frame["split"].astype(str).str.strip().str.lower()
    split = split_raw.map(SPLIT_NAMES)
    if split.isna().any():
        i = int(np.flatnonzero(split.isna().to_numpy())[0])
        raise PatchDataError(
            f"{path}: column 'split' {_row(frame, i, csv)} is {frame['split'].iloc[i]!r}; "
            f"expected one of {sorted(SPLIT_NAMES)}"
        )
    split = split.to_numpy(dtype=object)
    mixed = pd.DataFrame({"s": study, "p": split}).groupby("s")["p"].nunique()
    if (mixed > 1).any():
        raise PatchDataError(f"{path}: study {mixed[mixed > 1].index[0]!r} has patches in several splits")
    has_fracture_ids = "fracture_id" in frame.columns
    if has_fracture_ids:
        fid = frame["fracture_id"].astype(object).where(frame["fracture_id"].notna(), None)
        fid = np.asarray(
            [None if v is None or str(v).strip() == "" else str(v).strip() for v in fid], dtype=object
        )
    else:
        fid = np.full(len(frame), None, dtype=object)
    paths = frame["path"].astype(str).str.strip().to_numpy(dtype=object)
    empty_path = paths == ""
    if empty_path.any():
        raise PatchDataError(
            f"{path}: column 'path' {_row(frame, int(np.flatnonzero(empty_path)[0]), csv)} is empty"
        )

    n_images = {
        name: len(set(zip(study[split == name].tolist(), image[split == name].tolist()))) for name in SPLITS
    }
    keep = score > min_score
    train_label, test_label = label_patches(iou, positive_iou, negative_iou)
    absolute = np.asarray([p if os.path.isabs(p) else str(root / p) for p in paths], dtype=object)
    fid = np.where(test_label == 1, fid, None)
    kept = pd.DataFrame(
        {
            "path": absolute,
            "study_id": study,
            "image_id": image,
            "x0": boxes[:, 0],
            "y0": boxes[:, 1],
            "x1": boxes[:, 2],
            "y1": boxes[:, 3],
            "score": score,
            "iou": iou,
            "split": split,
            "fracture_id": pd.Series(fid, dtype=object),  # None stays None (pandas 3 infers strings)
            "train_label": train_label,
            "test_label": test_label,
        }
    )[keep].reset_index(drop=True)
    sizes = _check_files(kept["path"].tolist(), path) if check_files else []
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    identity = stable_key(
        {
            "manifest_sha256": digest,
            "min_score": min_score,
            "positive_iou": positive_iou,
            "negative_iou": negative_iou,
            "image_sizes": sizes,
            "columns": rename,
        },
        length=20,
    )
    return PatchSet(
        frame=kept,
        source=str(path),
        n_rows=len(frame),
        n_low_score=int((~keep).sum()),
        n_images=n_images,
        identity=identity,
        has_fracture_ids=has_fracture_ids,
    )


def _check_files(paths: list[str], manifest: Path) -> list[int]:
    """Size of every patch image; missing ones are one error listing the first few."""
    sizes, missing = [], []
    for p in paths:
        try:
            sizes.append(os.stat(p).st_size)
        except OSError:
            missing.append(p)
    if missing:
        raise PatchDataError(
            f"{manifest}: {len(missing)} of {len(paths)} patch image(s) not found, e.g. {missing[:3]}"
        )
    return sizes
