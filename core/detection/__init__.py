"""Fracture detection (thesis chapter 2): data, Mask R-CNN trainers, operating points, evaluation.

Plain Python and PyTorch, no Ray and no MLflow (those wrap it in cluster.detection). Heavy
modules (torch, torchvision) are imported by the submodules that need them.
"""

from core.detection.coco import CocoError, load_coco, write_coco
from core.detection.config import PRESETS, DetectorConfig
from core.detection.dataset import Annotation, DetectionDataset, ImageRecord
from core.detection.operating_points import OperatingPoint, OperatingPoints, choose_operating_points
from core.detection.synthetic import SyntheticSpec, synthetic_dataset

__all__ = [
    "PRESETS",
    "Annotation",
    "CocoError",
    "DetectionDataset",
    "DetectorConfig",
    "ImageRecord",
    "OperatingPoint",
    "OperatingPoints",
    "SyntheticSpec",
    "choose_operating_points",
    "load_coco",
    "synthetic_dataset",
    "write_coco",
]
