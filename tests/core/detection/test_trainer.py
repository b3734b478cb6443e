"""The torchvision Mask R-CNN engine: architecture, exact resume, predictions, exports, weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from core import checkpoint
from core.config import ConfigError, load_config
from core.detection.backends import load_detector, make_trainer
from core.detection.config import DetectorConfig
from core.detection.operating_points import OperatingPoint, OperatingPoints
from core.detection.torchvision_backend import TorchvisionDetector, build_maskrcnn


def shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_thesis_architecture_is_torchvision_maskrcnn_resnet50_fpn_v2():
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    config = DetectorConfig(preset="thesis")
    reference = shapes(maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=2))
    # the hand-built family at the thesis sizes is the same network: reduced presets are its kin
    model = build_maskrcnn(config, use_torchvision_builder=False)
    assert shapes(model) == reference
    assert model.transform.min_size == (640, 672, 704, 736, 768, 800) and model.transform.max_size == 1333


def test_training_resumes_exactly_from_a_checkpoint(tiny_data, tiny):
    config = DetectorConfig(**(tiny | {"iterations": 3}))
    straight = make_trainer(config, tiny_data)
    straight.train(progress=False)
    first = make_trainer(config, tiny_data)
    first.train(until=1, progress=False)
    blob = checkpoint.to_bytes(first.state_dict())
    resumed = make_trainer(config, tiny_data)
    resumed.load_state_dict(checkpoint.from_bytes(blob))
    assert resumed.iteration == 1
    resumed.train(progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    a, b = straight.detector.weights(), resumed.detector.weights()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["lr"] for r in straight.history] == [config.resolved().lr_at(i) for i in range(3)]
    with pytest.raises(ValueError, match="checkpoint format"):
        resumed.load_state_dict({"format": "sweeps.ws-trainer/1"})
    # a different seed trains a different model
    other = make_trainer(config.model_copy(update={"seed": 1}), tiny_data)
    other.train(until=1, progress=False)
    assert other.history[0]["loss"] != straight.history[0]["loss"]


def test_a_step_is_a_block_of_iterations_up_to_the_next_checkpoint(tiny_data, tiny):
    config = DetectorConfig(**(tiny | {"iterations": 3, "checkpoint_every": 2}))
    straight = make_trainer(config, tiny_data)
    straight.train(progress=False)
    stepped = make_trainer(config, tiny_data)
    assert (stepped.position, stepped.total) == (0, 3)
    blocks = []
    while stepped.position < stepped.total:
        blocks.append(stepped.step() | {"at": stepped.position})
    losses = [r["loss"] for r in straight.history]
    assert [r["loss"] for r in stepped.history] == losses  # the same training, cut into blocks
    assert [b["at"] for b in blocks] == [2, 3]
    assert blocks[0]["train_loss"] == pytest.approx(np.mean(losses[:2]))
    assert blocks[1]["train_loss"] == losses[2]
    assert [b["lr"] for b in blocks] == [straight.history[1]["lr"], straight.history[2]["lr"]]


def test_predict_export_and_load_round_trip(tiny_data, tmp_path, tiny):
    trainer = make_trainer(DetectorConfig(**tiny, box_score_thresh=0.0), tiny_data)
    trainer.train(until=1, progress=False)
    detector = trainer.detector
    images = [im.load() for im in tiny_data.images[:3]]
    preds = detector.predict(images)
    assert len(preds) == 3
    for p in preds:
        assert p.boxes.shape == (len(p.scores), 4) and p.masks is None
        assert np.all(np.diff(p.scores) <= 0) and np.all((p.scores >= 0) & (p.scores <= 1))
        assert np.all(p.boxes[:, 2] >= p.boxes[:, 0]) and np.all(p.boxes >= 0) and np.all(p.boxes <= 64)
    with_masks = detector.predict(images[:1], masks=True)[0]
    assert with_masks.masks.shape == (len(with_masks.scores), 64, 64)
    assert detector.model.roi_heads.has_mask()  # the mask branch is back after a boxes-only call

    point = OperatingPoint("DOUBT", 0.25, "SE_pw", 0.962, 0.97, 0.5, True)
    detector.operating_points = OperatingPoints(
        point, OperatingPoint("FRACTURE", float("inf"), "SPE_pw", 0.992, 0.0, 1.0, True), "patient", 4
    )
    path = tmp_path / "model.pt"
    path.write_bytes(detector.export_bytes())
    loaded = load_detector(path)
    assert loaded.operating_points == detector.operating_points
    again = loaded.predict(images)
    for p, q in zip(preds, again):
        assert np.allclose(p.boxes, q.boxes) and np.allclose(p.scores, q.scores)


class Payload:  # an arbitrary object: weights_only loading must refuse to unpickle it
    pass


def test_loading_refuses_foreign_files(tmp_path):
    buffer = io.BytesIO()
    torch.save({"format": "sweeps.detector/1", "x": Payload()}, buffer)
    (tmp_path / "evil.pt").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="evil.pt: not a readable detector export"):
        load_detector(tmp_path / "evil.pt")
    torch.save({"a": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a detector export"):
        load_detector(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError):
        load_detector(tmp_path / "missing.pt")


def test_backbone_and_full_weights_from_local_files(tmp_path, tiny):
    from torchvision.models import resnet18

    torch.manual_seed(7)
    reference = resnet18(weights=None).state_dict()
    torch.save(reference, tmp_path / "resnet18.pth")
    config = DetectorConfig(**tiny, backbone_weights=str(tmp_path / "resnet18.pth"))
    det = TorchvisionDetector(config)
    body = det.model.backbone.body.state_dict()
    assert torch.equal(body["layer3.0.conv1.weight"], reference["layer3.0.conv1.weight"])
    assert "backbone weights from" in det.init_note and "resnet18.pth" in det.init_note
    # pretrained: torchvision's default of 3 trainable stages, conv1 and layer1 frozen
    frozen = {n for n, p in det.model.backbone.body.named_parameters() if not p.requires_grad}
    assert any(n.startswith("conv1") for n in frozen) and any(n.startswith("layer1") for n in frozen)
    assert not any(n.startswith("layer2") for n in frozen)

    torch.save(det.weights(), tmp_path / "full.pt")
    full = TorchvisionDetector(DetectorConfig(**tiny, weights=str(tmp_path / "full.pt")))
    assert all(torch.equal(v, det.weights()[k]) for k, v in full.weights().items())

    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth: only 0 of the"):
        TorchvisionDetector(DetectorConfig(**tiny, backbone_weights=str(tmp_path / "other.pth")))
    fresh = TorchvisionDetector(DetectorConfig(**tiny))
    assert fresh.init_note.startswith("random initialisation")


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="iteratons"):
        load_config(DetectorConfig, overrides={"iteratons": 5})
    with pytest.raises(ConfigError, match="backbone_weights: Value error, file not found"):
        load_config(DetectorConfig, overrides={"backbone_weights": str(tmp_path / "none.pth")})
    with pytest.raises(ConfigError, match="backend: detectron2 has no installable release"):
        load_config(DetectorConfig, overrides={"backend": "detectron2"})
    with pytest.raises(ConfigError, match="anchor_sizes"):
        load_config(DetectorConfig, overrides={"anchor_sizes": [8, 16]})
    small = DetectorConfig(preset="cpu-small", iterations=10).resolved()
    assert small.iterations == 10 and small.backbone == "resnet18" and small.lr == 0.02


def test_learning_rate_schedule_by_hand():
    c = DetectorConfig(preset="thesis").resolved()
    assert c.lr_at(0) == pytest.approx(0.005 * 0.001)
    assert c.lr_at(500) == pytest.approx(0.005 * (0.001 * 0.5 + 0.5))
    assert c.lr_at(1000) == pytest.approx(0.005)
    assert c.lr_at(209_999) == pytest.approx(0.005)
    assert c.lr_at(210_000) == pytest.approx(0.0005)  # Detectron2 3x: steps at 210k and 250k
    assert c.lr_at(250_000) == pytest.approx(0.00005)
