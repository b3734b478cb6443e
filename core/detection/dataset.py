"""Detection data in memory: images grouped into studies (exams), fracture regions with masks.

A `DetectionDataset` is what the trainers, evaluation and metrics share, whether it came from a
COCO-style JSON (`core.detection.coco`) or from the synthetic generator. Pixels are read lazily
from files (or held in memory for synthetic images); masks are decoded on demand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.keys import stable_key
from core.metrics.detection import GroundTruth


@dataclass(frozen=True)
class Annotation:
    """One fracture region on one image: box (x0, y0, x1, y1, pixels), the fracture it belongs to
    (regions of one fracture on several images of a study share `fracture_id`) and its outline:
    COCO polygons (list of flat [x, y, ...] lists), a COCO RLE dict, or None (the box is the mask)."""

    box: tuple[float, float, float, float]
    fracture_id: str
    segmentation: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ImageRecord:
    """One radiograph of a study; `file` for real data, `pixels` (uint8 H x W) for synthetic data."""

    image_id: str
    study_id: str
    width: int
    height: int
    annotations: tuple[Annotation, ...] = ()
    file: str | None = None
    body_part: str | None = None
    pixels: np.ndarray | None = field(default=None, compare=False, repr=False)

    def load(self) -> np.ndarray:
        """Pixels as float32 in [0, 1]: (H, W) for grayscale, (H, W, 3) for colour files."""
        if self.pixels is not None:
            return self.pixels.astype(np.float32) / 255.0
        return read_image(self.file, (self.width, self.height))

    def masks(self) -> np.ndarray:
        """(n, H, W) boolean masks of the annotations, in order."""
        out = np.zeros((len(self.annotations), self.height, self.width), dtype=bool)
        for k, ann in enumerate(self.annotations):
            out[k] = decode_segmentation(ann.segmentation, ann.box, self.height, self.width)
        return out

    @property
    def boxes(self) -> np.ndarray:
        return np.asarray([a.box for a in self.annotations], dtype=np.float32).reshape(-1, 4)


def read_image(path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """A radiograph file as float32 in [0, 1]. 8-bit images are divided by 255; 16-bit and 32-bit
    ones (12- to 16-bit radiographs) are min-max scaled; colour stays (H, W, 3)."""
    from PIL import Image

    with Image.open(path) as img:
        if expected_size is not None and img.size != tuple(expected_size):
            raise ValueError(
                f"{path}: image is {img.size[0]}x{img.size[1]}, the annotations say {expected_size}"
            )
        if img.mode in ("L", "P", "1"):
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        if img.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LA"):
            if img.mode == "LA":
                return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
            return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        arr = np.asarray(img, dtype=np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)


def _rle_counts_from_string(text: str) -> list[int]:
    """COCO's compressed RLE string (maskApi.c rleFrString) to run lengths."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_segmentation(segmentation, box, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, RLE with list or string counts, or None: the box) as an
    (H, W) boolean mask."""
    if segmentation is None or (isinstance(segmentation, list) and not segmentation):
        mask = np.zeros((height, width), dtype=bool)
        x0, y0, x1, y1 = box
        mask[max(0, int(np.floor(y0))) : int(np.ceil(y1)), max(0, int(np.floor(x0))) : int(np.ceil(x1))] = (
            True
        )
        return mask
    if isinstance(segmentation, dict):
        h, w = segmentation["size"]
        counts = segmentation["counts"]
        if isinstance(counts, str):
            counts = _rle_counts_from_string(counts)
        flat = np.zeros(h * w, dtype=bool)
        pos, value = 0, False
        for run in counts:
            if value:
                flat[pos : pos + run] = True
            pos += run
            value = not value
        return flat.reshape(w, h).T.copy()
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in segmentation:
        draw.polygon([(float(poly[i]), float(poly[i + 1])) for i in range(0, len(poly) - 1, 2)], fill=1)
    return np.asarray(canvas, dtype=bool)


@dataclass(frozen=True)
class DetectionDataset:
    """Images of studies with their fracture annotations. `source` says where they came from and
    `embedded` whether they are the project's synthetic set; `identity` keys units on this data."""

    images: tuple[ImageRecord, ...]
    source: str
    identity: str
    embedded: bool = False

    def __len__(self) -> int:
        return len(self.images)

    def studies(self) -> dict[str, list[ImageRecord]]:
        out: dict[str, list[ImageRecord]] = defaultdict(list)
        for image in self.images:
            out[image.study_id].append(image)
        return dict(out)

    def subset(self, study_ids, name: str) -> DetectionDataset:
        wanted = set(study_ids)
        images = tuple(im for im in self.images if im.study_id in wanted)
        key = stable_key([self.identity, sorted(wanted)], 16)
        return DetectionDataset(images, f"{self.source} [{name}]", key, self.embedded)

    def split(self, fractions: dict[str, float], seed: int = 0) -> dict[str, DetectionDataset]:
        """Split by study (all images of an exam stay together), stratified on whether the study has
        a fracture, seeded; sizes by largest remainder so that every study lands somewhere."""
        names = list(fractions)
        weights = np.asarray([fractions[n] for n in names], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"split fractions must be >= 0 with a positive sum, got {fractions}")
        weights = weights / weights.sum()
        rng = np.random.default_rng(seed)
        studies = self.studies()
        assigned: dict[str, list[str]] = {n: [] for n in names}
        for positive in (True, False):
            ids = sorted(s for s, ims in studies.items() if any(im.annotations for im in ims) == positive)
            ids = [ids[i] for i in rng.permutation(len(ids))]
            exact = weights * len(ids)
            sizes = np.floor(exact).astype(int)
            for i in np.argsort(-(exact - sizes), kind="stable")[: len(ids) - sizes.sum()]:
                sizes[i] += 1
            start = 0
            for name, size in zip(names, sizes):
                assigned[name] += ids[start : start + size]
                start += size
        return {name: self.subset(assigned[name], name) for name in names}

    def ground_truth(self) -> GroundTruth:
        """The metrics' view: every image (negatives included) and every region with its fracture."""
        images = pd.DataFrame(
            {
                "study_id": [im.study_id for im in self.images],
                "image_id": [im.image_id for im in self.images],
                "body_part": [im.body_part for im in self.images],
            }
        )
        rows = [
            (im.study_id, im.image_id, a.fracture_id, *a.box) for im in self.images for a in im.annotations
        ]
        regions = pd.DataFrame(rows, columns=["study_id", "image_id", "fracture_id", "x0", "y0", "x1", "y1"])
        return GroundTruth.from_tables(images, regions)

    def summary(self) -> dict:
        studies = self.studies()
        fractures = {(im.study_id, a.fracture_id) for im in self.images for a in im.annotations}
        positive = sum(any(im.annotations for im in ims) for ims in studies.values())
        return {
            "studies": len(studies),
            "studies_with_fracture": positive,
            "images": len(self.images),
            "fractures": len(fractures),
            "regions": sum(len(im.annotations) for im in self.images),
        }

    def describe(self) -> str:
        s = self.summary()
        return (
            f"{s['studies']} studies ({s['studies_with_fracture']} with fractures), {s['images']} images, "
            f"{s['fractures']} fractures in {s['regions']} regions"
        )
