"""Reader-study files: the example written and read back, and errors naming file and line."""

from __future__ import annotations

import pandas as pd
import pytest

from core.detection.reader_study import (
    ReaderStudyError,
    example_reader_study,
    load_reader_study,
    write_example,
)
from core.metrics.readers import reader_metrics_table


@pytest.fixture(scope="module")
def example():
    return example_reader_study(seed=0, exams_per_body_part=4, readers_per_group=2)


def test_example_follows_the_crossover_design(example):
    assert example.embedded and "simulated by this project" in example.source
    reads = example.reads
    assert reads.groupby("reader")["study_id"].nunique().eq(24).all()  # every reader reads every exam once
    assert (reads.groupby(["reader", "condition"]).size() == 12).all()  # half aided, half not
    assert set(reads["group"]) == {"radiologist", "emergency doctor"}
    # exams read without a marker are reads too (their TN / FN count)
    with_marker = example.markers.groupby(["reader", "study_id"]).size()
    assert len(with_marker) < len(reads)


def test_files_round_trip_csv_and_parquet(example, tmp_path):
    paths = write_example(example, tmp_path)
    loaded = load_reader_study(paths["markers"], paths["regions"], paths["images"], paths["ai_detections"])
    a = reader_metrics_table(example.truth, example.reads, example.markers)
    b = reader_metrics_table(loaded.truth, loaded.reads, loaded.markers)
    pd.testing.assert_frame_equal(a, b)
    assert len(loaded.ai_detections) == len(example.ai_detections)
    pd.read_csv(paths["markers"]).to_parquet(tmp_path / "markers.parquet")
    again = load_reader_study(tmp_path / "markers.parquet", paths["regions"], paths["images"])
    pd.testing.assert_frame_equal(a, reader_metrics_table(again.truth, again.reads, again.markers))


def edit_and_load(example, tmp_path, change, file="markers"):
    paths = write_example(example, tmp_path)
    frame = pd.read_csv(paths[file], dtype=str)
    change(frame)
    frame.to_csv(paths[file], index=False)
    return load_reader_study(paths["markers"], paths["regions"], paths["images"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.loc.__setitem__((3, "condition"), "with AI"), "markers.csv line 5: condition must be"),
        (lambda f: f.loc.__setitem__((0, "study_id"), "nope"), "markers.csv line 2: study 'nope' is not in"),
        (lambda f: f.loc.__setitem__((1, "y"), "left"), "markers.csv line 3: y must be a number, got 'left'"),
        (lambda f: f.loc.__setitem__((0, "reader"), None), "markers.csv line 2: reader is empty"),
        (lambda f: f.__delitem__("condition"), r"markers.csv: markers lacks column\(s\) \['condition'\]"),
    ],
)
def test_marker_errors_name_the_line(example, tmp_path, change, message):
    with pytest.raises(ReaderStudyError, match=message):
        edit_and_load(example, tmp_path, change)


def test_inconsistent_and_foreign_rows(example, tmp_path):
    def two_times(f):
        first = f[f.duplicated(["reader", "study_id", "condition"], keep=False)].index[:2]
        f.loc[first[0], "reading_time_s"] = "10"
        f.loc[first[1], "reading_time_s"] = "99"

    with pytest.raises(ReaderStudyError, match="reading_time_s differs between the rows of reader"):
        edit_and_load(example, tmp_path, two_times)

    def half_marker(f):
        f.loc[f["image_id"].notna().idxmax(), "x"] = None

    marker_row = pd.read_csv(write_example(example, tmp_path)["markers"])["image_id"].notna().idxmax()
    with pytest.raises(ReaderStudyError, match=f"line {marker_row + 2}: a marker needs image_id, x and y"):
        edit_and_load(example, tmp_path, half_marker)

    def other_image(f):
        i = f["image_id"].notna().idxmax()
        f.loc[i, "image_id"] = "v9"

    with pytest.raises(ReaderStudyError, match="image 'v9' is not an image of study"):
        edit_and_load(example, tmp_path, other_image)

    def empty_region(f):
        f.loc[0, "x1"] = f.loc[0, "x0"]

    with pytest.raises(ReaderStudyError, match="regions.csv line 2: empty region"):
        edit_and_load(example, tmp_path, empty_region, file="regions")
    paths = write_example(example, tmp_path)
    with pytest.raises(ReaderStudyError, match="needs an images table"):
        load_reader_study(paths["markers"], paths["regions"])
