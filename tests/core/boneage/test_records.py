"""RSNA / RHPE / clinical loaders: records, and errors naming file, line and column."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.boneage.config import ClinicalSource, RhpeSource, RsnaSource
from core.boneage.records import DataError, load_clinical, load_rhpe, load_rsna, split_patients


def _image(path, width=20, height=24):
    Image.fromarray(np.full((height, width), 100, dtype=np.uint8)).save(path)


def _dataset(tmp_path, header, rows, ids=None):
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    for ident in ids if ids is not None else [r[0] for r in rows]:
        _image(folder / f"{ident}.png")
    csv = tmp_path / "labels.csv"
    csv.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return csv, folder


def test_rsna_layout(tmp_path):
    csv, folder = _dataset(tmp_path, ["id", "boneage", "male"], [(1377, 180, "False"), (1378, 12, "True")])
    frame = load_rsna(RsnaSource(csv=str(csv), images=str(folder)))
    assert frame["id"].tolist() == ["1377", "1378"]
    assert frame["sex"].tolist() == ["F", "M"]
    assert frame["bone_age"].tolist() == [180.0, 12.0]
    assert frame["chronological_age"].isna().all()
    assert frame["line"].tolist() == [2, 3]
    assert frame["hand"].tolist() == ["full", "full"]


def test_missing_column_names_it_and_the_header(tmp_path):
    csv, folder = _dataset(tmp_path, ["id", "bone_age", "male"], [(1, 100, "True")])
    with pytest.raises(DataError, match=r"labels.csv:1: missing column\(s\) \['boneage'\]"):
        load_rsna(RsnaSource(csv=str(csv), images=str(folder)))
    # a mapping to the real header name fixes it
    frame = load_rsna(RsnaSource(csv=str(csv), images=str(folder), columns={"bone_age": "bone_age"}))
    assert frame["bone_age"].tolist() == [100.0]


def test_bad_values_name_line_and_column(tmp_path):
    csv, folder = _dataset(tmp_path, ["id", "boneage", "male"], [(1, 100, "True"), (2, "ten", "False")])
    with pytest.raises(DataError, match=r"labels.csv:3: column 'boneage': 'ten' is not a number"):
        load_rsna(RsnaSource(csv=str(csv), images=str(folder)))
    csv, folder = _dataset(tmp_path, ["id", "boneage", "male"], [(1, 100, "True"), (2, 300, "False")])
    with pytest.raises(DataError, match=r"labels.csv:3: column 'boneage': 300 months is out of range"):
        load_rsna(RsnaSource(csv=str(csv), images=str(folder)))
    csv, folder = _dataset(tmp_path, ["id", "boneage", "male"], [(1, 100, "maybe")])
    with pytest.raises(DataError, match=r"labels.csv:2: column 'male': 'maybe' is not True/False"):
        load_rsna(RsnaSource(csv=str(csv), images=str(folder)))
    csv, folder = _dataset(tmp_path, ["id", "boneage", "male"], [(1, 100, "True"), (1, 90, "True")])
    with pytest.raises(DataError, match=r"labels.csv:3: column 'id': id '1' already on line 2"):
        load_rsna(RsnaSource(csv=str(csv), images=str(folder)))


def test_missing_images_are_all_reported_with_lines(tmp_path):
    rows = [(i, 100, "True") for i in range(8)]
    csv, folder = _dataset(tmp_path, ["id", "boneage", "male"], rows, ids=[0, 1])
    with pytest.raises(DataError) as err:
        load_rsna(RsnaSource(csv=str(csv), images=str(folder)))
    text = str(err.value)
    assert "6 image(s) missing" in text and "line 4 id '2'" in text and "and 1 more" in text


def test_unreadable_image_is_an_error(tmp_path):
    csv, folder = _dataset(tmp_path, ["id", "boneage", "male"], [(1, 100, "True")])
    (folder / "1.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"labels.csv:2: image .*1.png cannot be read"):
        load_rsna(RsnaSource(csv=str(csv), images=str(folder)))


def test_rhpe_layout_gives_two_hands_per_radiograph(tmp_path):
    csv, folder = _dataset(
        tmp_path, ["ID", "Male", "Boneage", "Chronological"], [(7, "True", 120, 118.5), (8, "False", 60, 80)]
    )
    frame = load_rhpe(RhpeSource(csv=str(csv), images=str(folder)))
    assert frame["id"].tolist() == ["7:left", "7:right", "8:left", "8:right"]
    assert frame["patient_id"].tolist() == ["7", "7", "8", "8"]
    assert frame["chronological_age"].tolist() == [118.5, 118.5, 80.0, 80.0]
    one = load_rhpe(RhpeSource(csv=str(csv), images=str(folder), split_hands=False))
    assert one["hand"].tolist() == ["full", "full"]
    csv.write_text("ID,Male,Boneage,Chronological\n7,True,10,9.5\n8,False,5,6\n")
    years = load_rhpe(RhpeSource(csv=str(csv), images=str(folder), age_unit="years", split_hands=False))
    assert years["bone_age"].tolist() == [120.0, 60.0]


def test_clinical_two_readers_are_averaged(tmp_path):
    header = ["id", "sex", "chronological_age", "bone_age_1", "bone_age_2", "reference_bone_age"]
    csv, folder = _dataset(tmp_path, header, [("a", "F", 100, 110, 120, 90), ("b", "M", 150, 150, 160, "")])
    frame = load_clinical(ClinicalSource(csv=str(csv), images=str(folder)))
    assert frame["bone_age"].tolist() == [115.0, 155.0]
    assert frame["reader_bone_age"].iloc[0] == 90.0 and np.isnan(frame["reader_bone_age"].iloc[1])
    assert frame["sex"].tolist() == ["F", "M"]


def test_clinical_errors(tmp_path):
    csv, folder = _dataset(tmp_path, ["id", "sex", "chronological_age"], [("a", "F", 100)])
    with pytest.raises(DataError, match="missing bone-age column"):
        load_clinical(ClinicalSource(csv=str(csv), images=str(folder)))
    csv, folder = _dataset(tmp_path, ["id", "sex", "chronological_age", "bone_age"], [("a", "X", 100, 90)])
    with pytest.raises(DataError, match=r"labels.csv:2: column 'sex': 'X' is not M/F"):
        load_clinical(ClinicalSource(csv=str(csv), images=str(folder)))
    csv, folder = _dataset(tmp_path, ["id", "sex", "chronological_age", "bone_age"], [("a", "F", -3, 90)])
    with pytest.raises(DataError, match=r"column 'chronological_age': -3 months is out of range"):
        load_clinical(ClinicalSource(csv=str(csv), images=str(folder)))
    with pytest.raises(DataError, match="CSV file not found"):
        load_clinical(ClinicalSource(csv=str(tmp_path / "nope.csv"), images=str(folder)))
    with pytest.raises(DataError, match="unknown logical column"):
        load_clinical(ClinicalSource(csv=str(csv), images=str(folder), columns={"age": "x"}))


def test_split_keeps_patients_together(tiny_synthetic):
    _, _, rhpe, _ = tiny_synthetic
    frame = load_rhpe(rhpe)
    train, val = split_patients(frame, 0.25, seed=0)
    assert set(train["patient_id"]).isdisjoint(val["patient_id"])
    assert len(train) + len(val) == len(frame)
    assert len(set(val["patient_id"])) == 3  # 25% of 12 radiographs
    again, _ = split_patients(frame, 0.25, seed=0)
    assert again["id"].tolist() == train["id"].tolist()
