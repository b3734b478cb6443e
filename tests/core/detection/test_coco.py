"""COCO-style JSON with studies: round trip, masks (polygons, RLE), and errors naming the entry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.detection.coco import CocoError, load_coco, write_coco
from core.detection.dataset import decode_segmentation


def rle_counts(mask: np.ndarray) -> list[int]:
    """COCO run lengths (column-major, starting with a run of zeros), written independently."""
    flat = mask.T.flatten().astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], changes])).tolist()


def rle_string(counts: list[int]) -> str:
    """pycocotools' rleToString (maskApi.c), transcribed."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def test_rle_and_polygon_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((13, 17)) < 0.3
        counts = rle_counts(mask)
        assert sum(counts) == mask.size
        seg = {"size": [13, 17], "counts": counts}
        assert np.array_equal(decode_segmentation(seg, None, 13, 17), mask)
        seg = {"size": [13, 17], "counts": rle_string(counts)}
        assert np.array_equal(decode_segmentation(seg, None, 13, 17), mask)
    square = decode_segmentation([[2, 3, 8, 3, 8, 9, 2, 9]], None, 12, 12)
    assert square[3:9, 2:8].all() and square.sum() in range(36, 50)  # PIL fills the edges too
    box_only = decode_segmentation(None, (1.5, 2.0, 4.0, 5.0), 8, 8)
    assert box_only.sum() == 3 * 3 and box_only[2:5, 1:4].all()


def test_synthetic_set_round_trips_through_coco(tmp_path):
    from core.detection.synthetic import SyntheticSpec, synthetic_dataset

    data = synthetic_dataset(SyntheticSpec(studies=6, image_size=64, seed=3))
    path = write_coco(data, tmp_path)
    loaded = load_coco(path)
    assert len(loaded) == len(data) and not loaded.embedded
    for a, b in zip(data.images, loaded.images):
        assert (a.study_id, a.body_part, a.width) == (b.study_id, b.body_part, b.width)
        assert np.allclose(a.boxes, b.boxes)
        assert [x.fracture_id for x in a.annotations] == [x.fracture_id for x in b.annotations]
        assert np.array_equal(a.masks(), b.masks())
        assert np.allclose(a.load(), b.load())  # PNG is lossless
    assert loaded.ground_truth().n_studies == 6
    assert load_coco(path).identity == loaded.identity  # the same file, the same unit keys


def coco(images=None, annotations=None, categories=None):
    return {
        "images": images
        if images is not None
        else [{"id": 1, "file_name": "a.png", "width": 10, "height": 10, "study_id": "s1"}],
        "annotations": annotations if annotations is not None else [],
        "categories": categories if categories is not None else [{"id": 1, "name": "fracture"}],
    }


def write(tmp_path, doc, name="d.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ('{"images": [\n  {"id": 1,,}]}', "invalid JSON at line 2 column"),
        ({"images": []}, "missing top-level key 'annotations'"),
        (
            coco(images=[{"id": 1, "file_name": "a.png", "width": 10, "height": 10}]),
            r"images\[0\] \(id 1\): missing 'study_id'",
        ),
        (
            coco(images=[{"id": 1, "file_name": "a.png", "width": 0, "height": 10, "study_id": "s"}]),
            r"images\[0\] \(id 1\): width and height must be positive",
        ),
        (
            coco(annotations=[{"id": 5, "image_id": 2, "bbox": [1, 1, 2, 2]}]),
            r"annotations\[0\] \(id 5\): image_id 2",
        ),
        (coco(annotations=[{"id": 5, "image_id": 1, "bbox": [1, 1, 0, 2]}]), "has no area"),
        (coco(annotations=[{"id": 5, "image_id": 1, "bbox": [8, 8, 5, 5]}]), "lies outside its 10x10 image"),
        (
            coco(annotations=[{"id": 5, "image_id": 1, "bbox": [1, 1, 2, 2], "segmentation": [[1, 2]]}]),
            "polygons",
        ),
        (
            coco(annotations=[{"id": 5, "image_id": 1, "bbox": [1, 1, 2, 2], "category_id": 9}]),
            "category_id 9",
        ),
        (
            coco(
                annotations=[
                    {"id": 5, "image_id": 1, "bbox": [1, 1, 2, 2]},
                    {"id": 5, "image_id": 1, "bbox": [1, 1, 2, 2]},
                ]
            ),
            "duplicate annotation id",
        ),
    ],
)
def test_bad_files_are_named(tmp_path, doc, message):
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(CocoError, match=message) as err:
        load_coco(write(tmp_path, doc))
    assert "d.json" in str(err.value)


def test_missing_image_file_categories_and_crowd(tmp_path):
    doc = coco(
        annotations=[
            {"id": 1, "image_id": 1, "bbox": [1, 1, 3, 3], "category_id": 1, "fracture_id": "F"},
            {"id": 2, "image_id": 1, "bbox": [1, 1, 3, 3], "category_id": 2},
            {"id": 3, "image_id": 1, "bbox": [1, 1, 3, 3], "category_id": 1, "iscrowd": 1},
        ],
        categories=[{"id": 1, "name": "fracture"}, {"id": 2, "name": "cast"}],
    )
    path = write(tmp_path, doc)
    with pytest.raises(CocoError, match=r"images\[0\] \(id 1\): image file not found: .*a.png"):
        load_coco(path)
    data = load_coco(path, check_files=False, categories=["fracture"])
    (image,) = data.images
    assert [a.fracture_id for a in image.annotations] == ["F"] and image.annotations[0].box == (1, 1, 4, 4)
    assert "1 crowd annotations skipped" in data.source and "1 category annotations skipped" in data.source
    assert len(load_coco(path, check_files=False).images[0].annotations) == 2  # all categories by default
    with pytest.raises(CocoError, match="categories \\['bone'\\] are not in the file"):
        load_coco(path, check_files=False, categories=["bone"])


def test_sixteen_bit_and_colour_images_are_read(tmp_path):
    from PIL import Image

    from core.detection.dataset import read_image

    raw = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 300 + 1000).astype(np.uint16)  # 12-bit-like values
    Image.fromarray(raw).save(tmp_path / "r16.png")
    img = read_image(tmp_path / "r16.png", (4, 3))
    assert img.dtype == np.float32 and img.min() == 0.0 and img.max() == 1.0
    assert np.allclose(img, (raw - 1000) / (3300.0))
    rgb = np.zeros((3, 4, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert read_image(tmp_path / "rgb.png").shape == (3, 4, 3)
    with pytest.raises(ValueError, match="image is 4x3, the annotations say"):
        read_image(tmp_path / "rgb.png", (5, 3))
