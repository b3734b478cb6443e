"""Reader-study data: readers' markers with and without AI aid, the ground truth, AI boxes.

Markers file (CSV or Parquet), one row per marker: `reader`, `study_id`, `condition` (`unaided` or
`aided`), `image_id`, `x`, `y`; optional `reading_time_s` (seconds for that exam, repeated on
each of its rows) and `group` (e.g. radiologist, emergency doctor). An exam read without any
marker is one row with empty image_id, x and y: every exam a reader read must appear, or its
true negatives and missed fractures would not count.

Ground truth: a COCO JSON with study_id (and body_part) on images (`core.detection.coco`; image
files not needed), or a regions table (study_id, image_id, x0, y0, x1, y1[, fracture_id]) with an
images table (study_id, image_id[, body_part]) listing every image, fracture-free exams included.
AI detections (optional, for the ROC/FROC): study_id, image_id, x0, y0, x1, y1, score.

Problems are reported naming the file and its line (CSV) or row (Parquet) before any analysis.
`example_reader_study()` simulates a small study (the thesis' crossover design) so that the job
runs without data: it is made up by this project, not real readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.metrics.detection import GroundTruth

CONDITIONS = ("unaided", "aided")
EXAMPLE_SOURCE = "embedded example reader study simulated by this project (not real readers or exams)"


class ReaderStudyError(ValueError):
    """Unusable reader-study input; the message names the file and the line or row."""


@dataclass(frozen=True)
class ReaderStudy:
    truth: GroundTruth
    reads: pd.DataFrame  # reader, group, study_id, condition, reading_time_s: one row per exam read
    markers: pd.DataFrame  # reader, study_id, condition, image_id, x, y
    ai_detections: pd.DataFrame | None
    source: str
    embedded: bool = False

    def describe(self) -> str:
        r = self.reads
        groups = r.groupby("group")["reader"].nunique().to_dict() if r["group"].notna().any() else {}
        return (
            f"{r['reader'].nunique()} readers {groups or ''}, {r['study_id'].nunique()} exams, "
            f"{len(r)} reads ({(r['condition'] == 'aided').sum()} aided), {len(self.markers)} markers"
        )


def _where(path: Path, index: int) -> str:
    return f"{path} line {index + 2}" if path.suffix.lower() == ".csv" else f"{path} row {index}"


def read_table(path, required: tuple[str, ...], what: str, ids: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV or Parquet table with the required columns; identifier columns read as strings."""
    path = Path(path)
    if not path.is_file():
        raise ReaderStudyError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype={c: str for c in ids}, keep_default_na=True)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise ReaderStudyError(f"{path}: {what} must be a .csv or .parquet file")
    except (ValueError, OSError) as err:
        if isinstance(err, ReaderStudyError):
            raise
        raise ReaderStudyError(f"{path}: cannot read {what} ({err})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReaderStudyError(f"{path}: {what} lacks column(s) {missing}; has {list(frame.columns)}")
    for column in ids:
        if column in frame.columns:
            frame[column] = frame[column].map(lambda v: None if pd.isna(v) else str(v).strip())
    return frame


def _numbers(frame: pd.DataFrame, columns, path: Path, allow_missing: bool = False) -> None:
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & (frame[column].notna() | (not allow_missing))
        bad |= ~np.isfinite(values.fillna(0.0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ReaderStudyError(
                f"{_where(path, i)}: {column} must be a number, got {frame[column].iloc[i]!r}"
            )
        frame[column] = values


def _nonempty(frame: pd.DataFrame, columns, path: Path) -> None:
    for column in columns:
        empty = frame[column].isna() | (frame[column].astype(str) == "")
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise ReaderStudyError(f"{_where(path, i)}: {column} is empty")


def load_truth(truth_path, images_path=None) -> GroundTruth:
    """Ground truth from a COCO JSON, or from a regions table plus an images table."""
    truth_path = Path(truth_path)
    if truth_path.suffix.lower() == ".json":
        from core.detection.coco import load_coco

        return load_coco(truth_path, check_files=False).ground_truth()
    if images_path is None:
        raise ReaderStudyError(
            f"{truth_path}: a regions table needs an images table too "
            "(every image, exams without fractures included)"
        )
    images_path = Path(images_path)
    images = read_table(images_path, ("study_id", "image_id"), "images", ids=("study_id", "image_id"))
    _nonempty(images, ("study_id", "image_id"), images_path)
    dup = images.duplicated(["study_id", "image_id"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ReaderStudyError(f"{_where(images_path, i)}: image {images['image_id'].iloc[i]!r} listed twice")
    regions = read_table(
        truth_path,
        ("study_id", "image_id", "x0", "y0", "x1", "y1"),
        "regions",
        ids=("study_id", "image_id", "fracture_id"),
    )
    _nonempty(
        regions, ("study_id", "image_id") + (("fracture_id",) if "fracture_id" in regions else ()), truth_path
    )
    _numbers(regions, ("x0", "y0", "x1", "y1"), truth_path)
    empty = (regions["x1"] <= regions["x0"]) | (regions["y1"] <= regions["y0"])
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise ReaderStudyError(f"{_where(truth_path, i)}: empty region (need x1 > x0 and y1 > y0)")
    known = set(zip(images["study_id"], images["image_id"]))
    unknown = [k not in known for k in zip(regions["study_id"], regions["image_id"])]
    if any(unknown):
        i = unknown.index(True)
        raise ReaderStudyError(
            f"{_where(truth_path, i)}: image {regions['image_id'].iloc[i]!r} of study "
            f"{regions['study_id'].iloc[i]!r} is not in {images_path}"
        )
    return GroundTruth.from_tables(images, regions)


def load_markers(path, truth: GroundTruth) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reads, markers) from a markers file, checked against the truth."""
    path = Path(path)
    frame = read_table(
        path,
        ("reader", "study_id", "condition", "image_id", "x", "y"),
        "markers",
        ids=("reader", "study_id", "image_id", "group"),
    )
    if frame.empty:
        raise ReaderStudyError(f"{path}: no rows")
    _nonempty(frame, ("reader", "study_id", "condition"), path)
    frame["condition"] = frame["condition"].astype(str).str.strip().str.lower()
    bad = ~frame["condition"].isin(CONDITIONS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ReaderStudyError(
            f"{_where(path, i)}: condition must be 'unaided' or 'aided', got {frame['condition'].iloc[i]!r}"
        )
    studies = set(truth.study_ids)
    unknown = ~frame["study_id"].isin(studies)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise ReaderStudyError(
            f"{_where(path, i)}: study {frame['study_id'].iloc[i]!r} is not in the ground truth"
        )
    _numbers(frame, ("x", "y"), path, allow_missing=True)
    present = frame[["image_id", "x", "y"]].notna()
    partial = present.any(axis=1) & ~present.all(axis=1)
    if partial.any():
        i = int(np.flatnonzero(partial.to_numpy())[0])
        raise ReaderStudyError(
            f"{_where(path, i)}: a marker needs image_id, x and y "
            "(all three empty: an exam read without any marker)"
        )
    images = set(zip(truth.study_ids[truth.image_study], truth.image_ids))
    has = present.all(axis=1).to_numpy()
    foreign = has & ~np.asarray([k in images for k in zip(frame["study_id"], frame["image_id"])])
    if foreign.any():
        i = int(np.flatnonzero(foreign)[0])
        raise ReaderStudyError(
            f"{_where(path, i)}: image {frame['image_id'].iloc[i]!r} is not an image of study "
            f"{frame['study_id'].iloc[i]!r}"
        )
    for alias, name in (("reading_time", "reading_time_s"), ("reader_group", "group")):
        if alias in frame and name not in frame:
            frame = frame.rename(columns={alias: name})
    if "reading_time_s" in frame:
        _numbers(frame, ("reading_time_s",), path, allow_missing=True)
        negative = frame["reading_time_s"] < 0
        if negative.any():
            i = int(np.flatnonzero(negative.to_numpy())[0])
            raise ReaderStudyError(f"{_where(path, i)}: reading_time_s is negative")
        _consistent(frame, ["reader", "study_id", "condition"], "reading_time_s", path)
    else:
        frame["reading_time_s"] = np.nan
    if "group" in frame:
        _consistent(frame, ["reader"], "group", path)
    else:
        frame["group"] = None
    reads = (
        frame.groupby(["reader", "study_id", "condition"], sort=True, dropna=False)
        .agg(group=("group", "first"), reading_time_s=("reading_time_s", "first"))
        .reset_index()
    )
    markers = frame[has][["reader", "study_id", "condition", "image_id", "x", "y"]].reset_index(drop=True)
    return reads, markers


def _consistent(frame: pd.DataFrame, keys: list[str], column: str, path: Path) -> None:
    counts = frame.groupby(keys, dropna=False)[column].transform(lambda v: v.nunique(dropna=True))
    if (counts > 1).any():
        i = int(np.flatnonzero((counts > 1).to_numpy())[0])
        where = ", ".join(f"{k} {frame[k].iloc[i]!r}" for k in keys)
        raise ReaderStudyError(f"{_where(path, i)}: {column} differs between the rows of {where}")


def load_ai_detections(path, truth: GroundTruth) -> pd.DataFrame:
    path = Path(path)
    frame = read_table(
        path,
        ("study_id", "image_id", "x0", "y0", "x1", "y1", "score"),
        "AI detections",
        ids=("study_id", "image_id"),
    )
    _nonempty(frame, ("study_id", "image_id"), path)
    _numbers(frame, ("x0", "y0", "x1", "y1", "score"), path)
    truth.image_index(frame["study_id"], frame["image_id"], str(path))  # unknown images are errors
    return frame


def load_reader_study(markers, truth, images=None, ai_detections=None) -> ReaderStudy:
    gt = load_truth(truth, images)
    reads, marks = load_markers(markers, gt)
    ai = None if ai_detections is None else load_ai_detections(ai_detections, gt)
    return ReaderStudy(gt, reads, marks, ai, f"markers {markers}; truth {truth}")


# --------------------------------------------------------------------------- embedded example


def example_reader_study(
    seed: int = 0, exams_per_body_part: int = 20, readers_per_group: int = 6
) -> ReaderStudy:
    """A simulated study in the thesis' design: six body parts, half the exams with fractures,
    one to four images per exam; radiologists and emergency doctors; each reader reads one half of
    the exams aided and the other unaided (crossed between readers); markers that pinpoint some
    fractures (sometimes twice), false markers, reading times; and AI boxes with scores."""
    from core.detection.synthetic import BODY_PARTS

    rng = np.random.default_rng(seed)
    size = 512.0
    images, regions, exams = [], [], []
    for part in BODY_PARTS:
        for k in range(exams_per_body_part):
            study = f"{part}-{k:03d}"
            n_images = int(rng.integers(1, 5))
            views = [f"v{i}" for i in range(n_images)]
            images += [(study, v, part) for v in views]
            n_fract = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])) if k % 2 == 0 else 0
            for f in range(n_fract):
                seen = [v for v in views if rng.random() < 0.7] or [views[int(rng.integers(n_images))]]
                for v in seen:
                    x, y = rng.uniform(20, size - 80, 2)
                    w, h = rng.uniform(20, 60, 2)
                    regions.append((study, v, f"f{f}", x, y, x + w, y + h))
            exams.append((study, part, k % 2 == 0))
    images = pd.DataFrame(images, columns=["study_id", "image_id", "body_part"])
    regions = pd.DataFrame(regions, columns=["study_id", "image_id", "fracture_id", "x0", "y0", "x1", "y1"])
    truth = GroundTruth.from_tables(images, regions)
    half = {s: (i // 2) % 2 for i, (s, _, _) in enumerate(exams)}  # stratified halves A / B

    readers = []
    for g, (group, skill, fp_rate) in enumerate(
        (("radiologist", 0.80, 0.10), ("emergency doctor", 0.66, 0.13))
    ):
        for r in range(readers_per_group):
            readers.append((f"{'RAD' if g == 0 else 'ED'}{r + 1:02d}", group, skill, fp_rate, r % 2))
    rows = []
    by_study = {s: regions[regions["study_id"] == s] for s, _, _ in exams}
    views_of = images.groupby("study_id")["image_id"].apply(list).to_dict()
    for name, group, skill, fp_rate, aided_half in readers:
        skill_r = float(np.clip(skill + rng.normal(0, 0.05), 0.3, 0.97))
        speed = rng.normal(1.0, 0.25)
        for study, _part, _positive in exams:
            aided = half[study] == aided_half
            p_find = min(0.98, skill_r + (0.10 if aided else 0.0) * (1.3 if group != "radiologist" else 0.7))
            condition = "aided" if aided else "unaided"
            time_s = max(10.0, rng.normal(67.0 if not aided else 57.0, 12.0) * max(speed, 0.3))
            marks = []
            exam_regions = by_study[study]
            for _, frac in exam_regions.groupby("fracture_id"):
                if rng.random() < p_find:
                    reg = frac.iloc[int(rng.integers(len(frac)))]
                    for _ in range(2 if rng.random() < 0.1 else 1):  # sometimes pinpointed twice
                        marks.append((reg.image_id, rng.uniform(reg.x0, reg.x1), rng.uniform(reg.y0, reg.y1)))
            for _ in range(rng.poisson(fp_rate * (0.6 if aided else 1.0))):
                view = views_of[study][int(rng.integers(len(views_of[study])))]
                on_view = exam_regions[exam_regions["image_id"] == view]
                while True:  # a false marker: outside every region of its image
                    x, y = rng.uniform(0, size, 2)
                    inside = (on_view.x0 <= x) & (x <= on_view.x1) & (on_view.y0 <= y) & (y <= on_view.y1)
                    if not inside.any():
                        break
                marks.append((view, x, y))
            if not marks:
                rows.append((name, group, study, condition, None, np.nan, np.nan, time_s))
            rows += [(name, group, study, condition, v, x, y, time_s) for v, x, y in marks]
    frame = pd.DataFrame(
        rows, columns=["reader", "group", "study_id", "condition", "image_id", "x", "y", "reading_time_s"]
    )
    reads = (
        frame.groupby(["reader", "study_id", "condition"], sort=True)
        .agg(group=("group", "first"), reading_time_s=("reading_time_s", "first"))
        .reset_index()
    )
    markers = frame[frame["image_id"].notna()][["reader", "study_id", "condition", "image_id", "x", "y"]]

    ai = []
    for reg in regions.itertuples():
        if rng.random() < 0.9:
            w, h = reg.x1 - reg.x0, reg.y1 - reg.y0
            dx, dy = rng.normal(0, 0.05, 2) * (w, h)
            ai.append(
                (
                    reg.study_id,
                    reg.image_id,
                    reg.x0 + dx,
                    reg.y0 + dy,
                    reg.x1 + dx,
                    reg.y1 + dy,
                    rng.beta(5, 2),
                )
            )
    for img in images.itertuples():
        for _ in range(rng.poisson(0.35)):
            x, y = rng.uniform(0, size - 60, 2)
            ai.append((img.study_id, img.image_id, x, y, x + 40, y + 40, rng.beta(2, 5)))
    ai = pd.DataFrame(ai, columns=["study_id", "image_id", "x0", "y0", "x1", "y1", "score"])
    return ReaderStudy(truth, reads, markers.reset_index(drop=True), ai, EXAMPLE_SOURCE, embedded=True)


def write_example(study: ReaderStudy, folder) -> dict[str, Path]:
    """The example as the files the job reads (markers.csv, regions.csv, images.csv, ai_detections.csv)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t = study.truth
    images = pd.DataFrame(
        {
            "study_id": t.study_ids[t.image_study],
            "image_id": t.image_ids,
            "body_part": t.study_attributes.get("body_part", [None] * t.n_studies)[t.image_study],
        }
    )
    regions = pd.DataFrame(t.region_boxes, columns=["x0", "y0", "x1", "y1"])
    regions.insert(0, "fracture_id", t.fracture_ids[t.region_fracture])
    regions.insert(0, "image_id", t.image_ids[t.region_image])
    regions.insert(0, "study_id", t.study_ids[t.image_study[t.region_image]])
    marks = study.markers.merge(study.reads, on=["reader", "study_id", "condition"], how="right")
    marks = marks[["reader", "group", "study_id", "condition", "image_id", "x", "y", "reading_time_s"]]
    paths = {
        "markers": folder / "markers.csv",
        "regions": folder / "regions.csv",
        "images": folder / "images.csv",
        "ai_detections": folder / "ai_detections.csv",
    }
    marks.to_csv(paths["markers"], index=False)
    regions.to_csv(paths["regions"], index=False)
    images.to_csv(paths["images"], index=False)
    if study.ai_detections is not None:
        study.ai_detections.to_csv(paths["ai_detections"], index=False)
    return paths
