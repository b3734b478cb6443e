"""The patch manifest loader: labels by IoU, the score filter, formats, and errors naming file/column/row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.patches.manifest import IGNORED, PatchDataError, label_patches, load_manifest


def write_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.full((8, 8), 128, np.uint8)).save(folder / name)


ROWS = [
    # path, study, image, x0, y0, x1, y1, score, iou, split, fracture
    ("p0.png", "S1", "I1", 0, 0, 10, 10, 90.0, 0.8, "train", "F1"),
    ("p1.png", "S1", "I1", 5, 5, 20, 20, 40.0, 0.35, "train", "F1"),
    ("p2.png", "S1", "I2", 0, 0, 10, 10, 10.0, 0.0, "train", ""),  # score 10: dropped (not above)
    ("p3.png", "S2", "I1", 0, 0, 10, 10, 55.0, 0.1, "validation", ""),
    ("p4.png", "S2", "I1", 0, 0, 10, 10, 70.0, 0.5, "val", "F2"),  # 0.5 is not above 0.5
    ("p5.png", "S3", "I1", 0, 0, 10, 10, 10.5, 0.2, "test", ""),  # 0.2: ignored for training
]
COLUMNS = ["path", "study_id", "image_id", "x0", "y0", "x1", "y1", "score", "iou", "split", "fracture_id"]


@pytest.fixture
def csv_manifest(tmp_path):
    write_images(tmp_path / "img", [r[0] for r in ROWS])
    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    path = tmp_path / "patches.csv"
    frame.to_csv(path, index=False)
    return path, tmp_path / "img"


def test_labels_follow_the_thesis_thresholds():
    train, test = label_patches([0.0, 0.19, 0.2, 0.35, 0.5, 0.51, 1.0])
    assert train.tolist() == [0, 0, IGNORED, IGNORED, IGNORED, 1, 1]
    assert test.tolist() == [0, 0, 0, 0, 0, 1, 1]


def test_csv_manifest(csv_manifest):
    path, images = csv_manifest
    ps = load_manifest(path, images)
    f = ps.frame
    assert f["path"].map(lambda p: p.rsplit("/", 1)[1]).tolist() == [
        "p0.png",
        "p1.png",
        "p3.png",
        "p4.png",
        "p5.png",
    ]
    assert ps.n_low_score == 1 and ps.n_rows == 6
    assert f["train_label"].tolist() == [1, IGNORED, 0, IGNORED, IGNORED]
    assert f["test_label"].tolist() == [1, 0, 0, 0, 0]
    assert f["split"].tolist() == ["train", "train", "val", "val", "test"]
    assert f["fracture_id"].tolist() == ["F1", None, None, None, None]  # only positives keep theirs
    assert ps.n_images == {"train": 2, "val": 1, "test": 1}  # counted before the score filter
    counts = ps.counts().set_index("split")
    assert counts.loc["train", "positive"] == 1 and counts.loc["train", "ignored_train"] == 1
    assert "6 boxes, 1 at or below the score threshold" in ps.summary()


def test_parquet_with_box_column_and_renamed_headers(tmp_path):
    write_images(tmp_path, ["a.png", "b.png"])
    frame = pd.DataFrame(
        {
            "file": ["a.png", "b.png"],
            "exam": [1, 2],
            "image_id": [1, 1],
            "box": [[0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 5.0]],
            "det_score": [50.0, 60.0],
            "iou": [0.9, 0.0],
            "split": ["train", "train"],
        }
    )
    frame.to_parquet(tmp_path / "m.parquet")
    ps = load_manifest(
        tmp_path / "m.parquet", columns={"path": "file", "study_id": "exam", "score": "det_score"}
    )
    assert ps.frame[["x0", "y0", "x1", "y1"]].to_numpy().tolist() == [[0, 0, 4, 4], [1, 1, 3, 5]]
    assert ps.frame["study_id"].tolist() == ["1", "2"] and not ps.has_fracture_ids
    # CSV box strings
    csv = frame.assign(box=["0 0 4 4", "[1, 1, 3, 5]"])
    csv.to_csv(tmp_path / "m.csv", index=False)
    ps2 = load_manifest(
        tmp_path / "m.csv", columns={"path": "file", "study_id": "exam", "score": "det_score"}
    )
    assert ps2.frame[["x0", "y0", "x1", "y1"]].to_numpy().tolist() == [[0, 0, 4, 4], [1, 1, 3, 5]]


def test_identity_follows_the_content(csv_manifest, tmp_path):
    path, images = csv_manifest
    a = load_manifest(path, images).identity
    assert load_manifest(path, images).identity == a
    assert load_manifest(path, images, min_score=5).identity != a
    frame = pd.read_csv(path)
    frame.loc[0, "iou"] = 0.7
    frame.to_csv(path, index=False)
    assert load_manifest(path, images).identity != a


def _edit(csv_manifest, change):
    path, images = csv_manifest
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = change(frame)
    frame.to_csv(path, index=False)
    return path, images


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["iou"]), r"missing column\(s\) \['iou'\]"),
        (lambda f: f.drop(columns=["x1"]), r"x0, y0, x1, y1 \(or box\)"),
        (
            lambda f: f.assign(score=["90", "40", "10", "abc", "70", "11"]),
            r"column 'score' line 5 is not a number: 'abc'",
        ),
        (
            lambda f: f.assign(iou=["0.8", "1.5", "0", "0", "0", "0"]),
            r"column 'iou' line 3 is 1.5, outside \[0, 1\]",
        ),
        (
            lambda f: f.assign(split=["train", "train", "train", "dev", "val", "test"]),
            r"column 'split' line 5 is 'dev'",
        ),
        (
            lambda f: f.assign(study_id=["S1", "", "S1", "S2", "S2", "S3"]),
            r"column 'study_id' line 3 is empty",
        ),
        (lambda f: f.assign(x1=["0", "20", "10", "10", "10", "10"]), r"line 2 has an empty box"),
        (
            lambda f: f.assign(split=["train", "val", "train", "val", "val", "test"]),
            r"study 'S1' has patches in several",
        ),
    ],
)
def test_errors_name_the_column_and_line(csv_manifest, change, message):
    path, images = _edit(csv_manifest, change)
    with pytest.raises(PatchDataError, match=message):
        load_manifest(path, images)


def test_missing_files_and_folders(csv_manifest, tmp_path):
    path, images = csv_manifest
    with pytest.raises(PatchDataError, match="patch manifest not found"):
        load_manifest(tmp_path / "nope.csv", images)
    with pytest.raises(PatchDataError, match="image folder"):
        load_manifest(path, tmp_path / "no-images")
    (images / "p3.png").unlink()
    with pytest.raises(PatchDataError, match=r"1 of 5 patch image\(s\) not found, e\.g\. \[.*p3\.png"):
        load_manifest(path, images)
    assert len(load_manifest(path, images, check_files=False).frame) == 5
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(PatchDataError, match="unknown manifest format '.json'"):
        load_manifest(tmp_path / "m.json", images)
    with pytest.raises(PatchDataError, match="lacks"):
        load_manifest(path, images, columns={"score": "det_score"})


def test_usable_splits(csv_manifest):
    path, images = csv_manifest
    ps = load_manifest(path, images)
    with pytest.raises(PatchDataError, match="train split has no negative"):
        ps.check_usable(("train",))
    with pytest.raises(PatchDataError, match="val split has no positive"):
        ps.check_usable(("val",))
