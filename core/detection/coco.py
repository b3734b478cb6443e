"""COCO-style detection JSON with studies: reading (validated up front) and writing.

The file is standard COCO (`images`, `annotations`, `categories`) with three extra fields:
`images[].study_id` (required: the exam an image belongs to), `images[].body_part` (optional)
and `annotations[].fracture_id` (optional: regions of the same fracture on several images of a
study share it; by default each annotation is its own fracture). `bbox` is [x, y, width, height];
`segmentation` polygons or RLE (list or compressed counts) or absent (the box is the mask).
Crowd annotations (`iscrowd: 1`) and categories not selected are skipped and counted.

Every problem (bad JSON with its line, a missing key, an annotation on an unknown image, a box
outside its image, a missing image file) is reported naming the file and the entry, before any
training starts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from core.detection.dataset import Annotation, DetectionDataset, ImageRecord
from core.keys import stable_key


class CocoError(ValueError):
    """A COCO file that cannot be used; the message names the file and the entry."""


def _require(entry: dict, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(entry, dict):
        raise CocoError(f"{where}: expected an object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry or entry[k] is None]
    if missing:
        raise CocoError(f"{where}: missing {', '.join(repr(k) for k in missing)}")


def _check_segmentation(seg, where: str) -> None:
    if seg is None or seg == []:
        return
    if isinstance(seg, dict):
        if "counts" not in seg or "size" not in seg:
            raise CocoError(f"{where}: RLE segmentation needs 'counts' and 'size'")
        return
    if not isinstance(seg, list) or not all(isinstance(p, list) and len(p) >= 6 for p in seg):
        raise CocoError(f"{where}: segmentation must be polygons (lists of >= 3 x, y pairs) or an RLE object")
    if not all(isinstance(v, int | float) for p in seg for v in p):
        raise CocoError(f"{where}: polygon coordinates must be numbers")


def load_coco(
    path,
    image_root=None,
    categories: list[str] | None = None,
    check_files: bool = True,
) -> DetectionDataset:
    """Read a COCO-style JSON with `study_id` on every image.

    image_root: folder of the `file_name`s (default: the JSON's folder). categories: names counted
    as fractures (default: all). check_files: every image file must exist (checked now, not
    mid-training); set False for ground truth without pixels (a reader study).
    """
    path = Path(path)
    if not path.exists():
        raise CocoError(f"COCO file not found: {path}")
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CocoError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError as err:
        raise CocoError(f"{path}: not UTF-8 text ({err})") from None
    if not isinstance(doc, dict):
        raise CocoError(f"{path}: the top level must be an object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key not in doc:
            raise CocoError(f"{path}: missing top-level key {key!r}")
        if not isinstance(doc[key], list):
            raise CocoError(f"{path}: {key!r} must be a list")
    root = Path(image_root) if image_root is not None else path.parent

    cat_names = {}
    for i, cat in enumerate(doc.get("categories") or []):
        _require(cat, ("id", "name"), f"{path}: categories[{i}]")
        cat_names[cat["id"]] = str(cat["name"])
    if categories is not None:
        unknown = sorted(set(categories) - set(cat_names.values()))
        if unknown:
            raise CocoError(
                f"{path}: categories {unknown} are not in the file's categories {sorted(cat_names.values())}"
            )
    wanted = None if categories is None else {cid for cid, name in cat_names.items() if name in categories}

    images: dict = {}
    for i, im in enumerate(doc["images"]):
        where = f"{path}: images[{i}]" + (
            f" (id {im['id']!r})" if isinstance(im, dict) and "id" in im else ""
        )
        _require(im, ("id", "file_name", "width", "height", "study_id"), where)
        if im["id"] in images:
            raise CocoError(f"{where}: duplicate image id")
        w, h = im["width"], im["height"]
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            raise CocoError(f"{where}: width and height must be positive integers, got {w!r}, {h!r}")
        if check_files and not (root / im["file_name"]).is_file():
            raise CocoError(f"{where}: image file not found: {root / im['file_name']}")
        images[im["id"]] = {"entry": im, "annotations": []}

    skipped = {"crowd": 0, "category": 0}
    seen_ann = set()
    for i, ann in enumerate(doc["annotations"]):
        where = f"{path}: annotations[{i}]" + (
            f" (id {ann['id']!r})" if isinstance(ann, dict) and "id" in ann else ""
        )
        _require(ann, ("id", "image_id", "bbox"), where)
        if ann["id"] in seen_ann:
            raise CocoError(f"{where}: duplicate annotation id")
        seen_ann.add(ann["id"])
        if ann["image_id"] not in images:
            raise CocoError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        if "category_id" in ann and cat_names and ann["category_id"] not in cat_names:
            raise CocoError(f"{where}: category_id {ann['category_id']!r} is not in 'categories'")
        if ann.get("iscrowd", 0):
            skipped["crowd"] += 1
            continue
        if wanted is not None and ann.get("category_id") not in wanted:
            skipped["category"] += 1
            continue
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            raise CocoError(f"{where}: bbox must be [x, y, width, height] numbers, got {bbox!r}")
        x, y, bw, bh = (float(v) for v in bbox)
        if not (bw > 0 and bh > 0 and np.isfinite([x, y, bw, bh]).all()):
            raise CocoError(f"{where}: bbox {bbox} has no area")
        im = images[ann["image_id"]]["entry"]
        tol = 1.0
        if x < -tol or y < -tol or x + bw > im["width"] + tol or y + bh > im["height"] + tol:
            raise CocoError(f"{where}: bbox {bbox} lies outside its {im['width']}x{im['height']} image")
        _check_segmentation(ann.get("segmentation"), where)
        box = (max(0.0, x), max(0.0, y), min(float(im["width"]), x + bw), min(float(im["height"]), y + bh))
        fracture = ann.get("fracture_id", f"ann-{ann['id']}")
        images[ann["image_id"]]["annotations"].append(Annotation(box, str(fracture), ann.get("segmentation")))

    records = []
    for item in images.values():
        im = item["entry"]
        records.append(
            ImageRecord(
                image_id=str(im["id"]),
                study_id=str(im["study_id"]),
                width=int(im["width"]),
                height=int(im["height"]),
                annotations=tuple(item["annotations"]),
                file=str(root / im["file_name"]),
                body_part=None if im.get("body_part") is None else str(im["body_part"]),
            )
        )
    if not records:
        raise CocoError(f"{path}: no images")
    file = hashlib.sha256(raw).hexdigest()  # the file's bytes; the identity also covers how it was read
    identity = stable_key({"file": file, "image_root": str(root), "categories": categories}, 16)
    notes = [f"{n} {k} annotations skipped" for k, n in skipped.items() if n]
    source = f"{path}" + (f" ({'; '.join(notes)})" if notes else "")
    return DetectionDataset(tuple(records), source, identity, embedded=False)


def write_coco(dataset: DetectionDataset, folder, json_name: str = "annotations.json") -> Path:
    """Write a dataset as PNG files and a COCO JSON with study_id, body_part and fracture_id.
    Images held in memory are saved; file-backed ones are referenced where they are."""
    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for n, im in enumerate(dataset.images):
        if im.pixels is not None:
            name = f"images/{im.study_id}_{im.image_id}.png"
            Image.fromarray(im.pixels).save(folder / name)
        else:
            name = str(Path(im.file).resolve())
        entry = {
            "id": n + 1,
            "file_name": name,
            "width": im.width,
            "height": im.height,
            "study_id": im.study_id,
        }
        if im.body_part is not None:
            entry["body_part"] = im.body_part
        images.append(entry)
        for ann in im.annotations:
            x0, y0, x1, y1 = ann.box
            item = {
                "id": len(annotations) + 1,
                "image_id": n + 1,
                "category_id": 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": 0,
                "fracture_id": ann.fracture_id,
            }
            if ann.segmentation is not None:
                item["segmentation"] = ann.segmentation
            annotations.append(item)
    doc = {
        "info": {"description": dataset.source},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "fracture"}],
    }
    out = folder / json_name
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(out)
    return out
