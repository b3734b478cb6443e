"""Choosing an engine by name: building trainers and loading exported detectors.

Only "torchvision" exists: Detectron2 (the thesis' engine) has no installable release for the
PyTorch in use. A Detectron2 engine would subclass Detector / DetectorTrainer
(core.detection.trainer) and register here.
"""

from __future__ import annotations

import io
from pathlib import Path

from core.detection.config import DetectorConfig
from core.detection.dataset import DetectionDataset
from core.detection.operating_points import OperatingPoints
from core.detection.trainer import EXPORT_FORMAT, Detector, DetectorTrainer

BACKENDS = ("torchvision",)


def make_trainer(config: DetectorConfig, data: DetectionDataset, device: str = "cpu") -> DetectorTrainer:
    if config.backend == "torchvision":
        from core.detection.torchvision_backend import TorchvisionTrainer

        return TorchvisionTrainer(config, data, device)
    raise ValueError(f"backend {config.backend!r} is not available; available: {BACKENDS}")


def make_detector(config: DetectorConfig, device: str = "cpu") -> Detector:
    if config.backend == "torchvision":
        from core.detection.torchvision_backend import TorchvisionDetector

        return TorchvisionDetector(config, device)
    raise ValueError(f"backend {config.backend!r} is not available; available: {BACKENDS}")


def load_detector(source, device: str = "cpu") -> Detector:
    """An exported detector (bytes or a model.pt path) with its operating points, read with
    torch.load(weights_only=True)."""
    import torch

    where = "model bytes" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes):
        if not Path(source).is_file():
            raise FileNotFoundError(f"model file not found: {source}")
        source = Path(source).read_bytes()
    try:
        state = torch.load(io.BytesIO(source), map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which
        raise ValueError(f"{where}: not a readable detector export ({err})") from None
    if not isinstance(state, dict) or state.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{where}: not a detector export (expected format {EXPORT_FORMAT!r})")
    if state["backend"] not in BACKENDS:
        raise ValueError(f"{where}: backend {state['backend']!r} is not available here ({BACKENDS})")
    keys = {k: v for k, v in state["config"].items() if k not in ("weights", "backbone_weights")}
    config = DetectorConfig.model_validate(keys)
    from core.detection.torchvision_backend import TorchvisionDetector

    detector = TorchvisionDetector(config, device, load_files=False)
    detector.load_weights(state["weights"])
    detector.init_note = f"exported detector ({where})"
    if state.get("operating_points"):
        detector.operating_points = OperatingPoints.from_dict(state["operating_points"])
    return detector
