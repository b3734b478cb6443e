"""The torchvision engine: Mask R-CNN with FPN (`maskrcnn_resnet50_fpn_v2` and its reduced kin).

With the thesis architecture (ResNet-50, 256-channel FPN and heads, 1024-wide box head, default
anchors) the model is torchvision's `maskrcnn_resnet50_fpn_v2` itself, so torchvision's COCO
checkpoints load into it; other settings build the same v2 design (BatchNorm in FPN and heads,
two-conv RPN head, four-conv box and mask heads) with other sizes. Weights come only from local
files, read with torch.load(weights_only=True); nothing is downloaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from core import checkpoint
from core.detection.augment import augment
from core.detection.config import DetectorConfig
from core.detection.dataset import DetectionDataset
from core.detection.trainer import Detector, DetectorTrainer, Prediction

NUM_CLASSES = 2  # background, fracture
TRAINER_FORMAT = "sweeps.detector-trainer/1"  # the checkpoint of a TorchvisionTrainer
DEFAULT_ANCHORS = [32, 64, 128, 256, 512]
FROZEN_ORDER = ["layer4", "layer3", "layer2", "layer1", "conv1"]


def _is_torchvision_v2(c: DetectorConfig) -> bool:
    return (
        c.backbone == "resnet50"
        and c.fpn_channels == 256
        and c.head_channels == 256
        and c.box_fc == 1024
        and list(c.anchor_sizes) == DEFAULT_ANCHORS
    )


def _model_kwargs(c: DetectorConfig) -> dict:
    return {
        "min_size": tuple(c.min_size),
        "max_size": c.max_size,
        "rpn_pre_nms_top_n_train": c.rpn_pre_nms_top_n_train,
        "rpn_pre_nms_top_n_test": c.rpn_pre_nms_top_n_test,
        "rpn_post_nms_top_n_train": c.rpn_post_nms_top_n_train,
        "rpn_post_nms_top_n_test": c.rpn_post_nms_top_n_test,
        "rpn_batch_size_per_image": c.rpn_batch_size_per_image,
        "box_batch_size_per_image": c.box_batch_size_per_image,
        "box_detections_per_img": c.detections_per_image,
        "box_score_thresh": c.box_score_thresh,
    }


def build_maskrcnn(config: DetectorConfig, use_torchvision_builder: bool = True) -> nn.Module:
    """The Mask R-CNN of a config, randomly initialised: torchvision's maskrcnn_resnet50_fpn_v2 for
    the thesis architecture, the same design with other sizes otherwise (use_torchvision_builder
    False builds even the thesis architecture by hand: the tests compare the two)."""
    from torchvision.models import resnet
    from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn_v2
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.models.detection.rpn import RPNHead
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    c = config.resolved()
    if use_torchvision_builder and _is_torchvision_v2(c):
        return maskrcnn_resnet50_fpn_v2(
            weights=None, weights_backbone=None, num_classes=NUM_CLASSES, **_model_kwargs(c)
        )
    body = getattr(resnet, c.backbone)(weights=None)
    stage = [64, 128, 256, 512] if c.backbone in ("resnet18", "resnet34") else [256, 512, 1024, 2048]
    backbone = BackboneWithFPN(
        body,
        {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        stage,
        c.fpn_channels,
        extra_blocks=LastLevelMaxPool(),
        norm_layer=nn.BatchNorm2d,
    )
    anchors = AnchorGenerator(tuple((s,) for s in c.anchor_sizes), ((0.5, 1.0, 2.0),) * 5)
    w, h = c.fpn_channels, c.head_channels
    return MaskRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(w, anchors.num_anchors_per_location()[0], conv_depth=2),
        box_head=FastRCNNConvFCHead((w, 7, 7), [h] * 4, [c.box_fc], norm_layer=nn.BatchNorm2d),
        box_predictor=FastRCNNPredictor(c.box_fc, NUM_CLASSES),
        mask_head=MaskRCNNHeads(w, [h] * 4, 1, norm_layer=nn.BatchNorm2d),
        mask_predictor=MaskRCNNPredictor(h, h, NUM_CLASSES),
        **_model_kwargs(c),
    )


def _state_from_file(path: str) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and state.get("format", "").startswith("sweeps.detector"):
        return state["weights"]
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_matching(module: nn.Module, state: dict, path: str, what: str) -> str:
    """Load the tensors whose names and shapes fit; say how many, fail when almost none do."""
    own = module.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(fitting) < 0.5 * len(own):
        raise ValueError(
            f"{path}: only {len(fitting)} of the {len(own)} tensors of the {what} match by name and "
            "shape: not a checkpoint of this architecture"
        )
    module.load_state_dict(fitting, strict=False)
    skipped = sorted(k for k in state if k in own and k not in fitting)
    note = f"{what} weights from {path} ({len(fitting)}/{len(own)} tensors"
    return note + (f"; shape differs, kept random: {', '.join(skipped[:4])}" if skipped else "") + ")"


class TorchvisionDetector(Detector):
    backend = "torchvision"

    def __init__(self, config: DetectorConfig, device: str = "cpu", load_files: bool = True):
        super().__init__(config)
        self.device = torch.device(device)
        self.model = build_maskrcnn(self.config)
        c = self.config
        notes = []
        if load_files and c.backbone_weights:
            state = {
                k.removeprefix("backbone.body."): v for k, v in _state_from_file(c.backbone_weights).items()
            }
            notes.append(_load_matching(self.model.backbone.body, state, c.backbone_weights, "backbone"))
        if load_files and c.weights:
            notes.append(_load_matching(self.model, _state_from_file(c.weights), c.weights, "Mask R-CNN"))
        if notes:
            self.init_note = "; ".join(notes)
        pretrained = bool(c.weights or c.backbone_weights)
        trainable = c.trainable_backbone_layers
        trainable = (3 if pretrained else 5) if trainable is None else trainable
        train_layers = FROZEN_ORDER[:trainable] + (["bn1"] if trainable == 5 else [])
        for name, param in self.model.backbone.body.named_parameters():
            if not any(name.startswith(layer) for layer in train_layers):
                param.requires_grad_(False)
        self.trainable_backbone_layers = trainable
        self.model.to(self.device)

    @staticmethod
    def to_tensor(image: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        return (
            t.unsqueeze(0).expand(3, -1, -1).contiguous() if t.ndim == 2 else t.permute(2, 0, 1).contiguous()
        )

    @contextlib.contextmanager
    def _without_masks(self, keep: bool):
        heads = self.model.roi_heads
        saved = heads.mask_roi_pool
        if not keep:
            heads.mask_roi_pool = None  # skips the mask branch: boxes are all the metrics need
        try:
            yield
        finally:
            heads.mask_roi_pool = saved

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], masks: bool = False) -> list[Prediction]:
        was_training = self.model.training
        self.model.eval()
        try:
            with self._without_masks(masks):
                outputs = self.model([self.to_tensor(im).to(self.device) for im in images])
        finally:
            self.model.train(was_training)
        result = []
        for out in outputs:
            m = out["masks"][:, 0].float().cpu().numpy() if masks and "masks" in out else None
            result.append(
                Prediction(out["boxes"].float().cpu().numpy(), out["scores"].float().cpu().numpy(), m)
            )
        return result

    def weights(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def load_weights(self, state: dict) -> None:
        self.model.load_state_dict(state)


class TrainSamples(torch.utils.data.Dataset):
    """Sample k of the training stream: epoch k // n shuffled by (seed, epoch), augmented by (seed, k).
    A pure function of k, so that data-loading workers and resumed runs see the same batches."""

    def __init__(self, data: DetectionDataset, config: DetectorConfig):
        self.config = config
        self.images = [im for im in data.images if config.train_on_negatives or im.annotations]
        if not self.images:
            raise ValueError(f"no training images in {data.source}")

    def __len__(self) -> int:  # the stream is endless; the sampler asks for the indices it needs
        return 2**62

    def __getitem__(self, k: int):
        n = len(self.images)
        epoch, pos = divmod(int(k), n)
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        )
        record = self.images[int(order[pos])]
        image = TorchvisionDetector.to_tensor(record.load())
        masks = torch.from_numpy(record.masks().astype(np.uint8))
        boxes = torch.from_numpy(record.boxes)
        gen = torch.Generator().manual_seed(self.config.seed * 7_919 + 104_729 * int(k) + 1)
        image, masks, boxes = augment(image, masks, boxes, self.config, gen)
        target = {"boxes": boxes.float(), "labels": torch.ones(len(boxes), dtype=torch.int64), "masks": masks}
        return image, target


class _Batches:
    """Sample indices of iterations [start, stop): batch i holds samples i*b ... i*b + b - 1."""

    def __init__(self, start: int, stop: int, batch_size: int):
        self.start, self.stop, self.b = start, stop, batch_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        for i in range(self.start, self.stop):
            yield list(range(i * self.b, (i + 1) * self.b))


def _collate(batch):
    return [b[0] for b in batch], [b[1] for b in batch]


def _norm_parameters(model: nn.Module) -> set[int]:
    norms = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
    return {id(p) for m in model.modules() if isinstance(m, norms) for p in m.parameters(recurse=False)}


class TorchvisionTrainer(DetectorTrainer):
    """SGD with momentum, Detectron2's warm-up and step schedule, no weight decay on norm layers."""

    def __init__(self, config: DetectorConfig, data: DetectionDataset, device: str = "cpu"):
        config = config.resolved()
        torch.manual_seed(config.seed)  # initial weights, then RPN / ROI sampling and multi-scale choices
        super().__init__(config, TorchvisionDetector(config, device))
        self.samples = TrainSamples(data, self.config)
        model = self.detector.model
        norm_ids = _norm_parameters(model)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            [
                {"params": [p for p in params if id(p) not in norm_ids], "weight_decay": config.weight_decay},
                {"params": [p for p in params if id(p) in norm_ids], "weight_decay": 0.0},
            ],
            lr=config.lr,
            momentum=config.momentum,
        )
        self._batches = None

    def _loader(self):
        batches = _Batches(self.iteration, self.config.iterations, self.config.batch_size)
        workers = self.config.num_workers
        return iter(
            torch.utils.data.DataLoader(
                self.samples,
                batch_sampler=batches,
                num_workers=workers,
                collate_fn=_collate,
                persistent_workers=False,
                generator=torch.Generator().manual_seed(self.config.seed),  # not the global RNG: exact resume
                pin_memory=self.detector.device.type == "cuda",
            )
        )

    def train_step(self) -> dict:
        if self._batches is None:
            self._batches = self._loader()
        images, targets = next(self._batches)
        device = self.detector.device
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        lr = self.config.lr_at(self.iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        model = self.detector.model
        model.train()
        amp = self.config.amp and device.type == "cuda"
        with torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
            losses = model(images, targets)
        total = sum(losses.values())
        if not torch.isfinite(total.detach()):
            raise FloatingPointError(f"iteration {self.iteration}: loss is {total.item()} ({losses})")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.iteration += 1
        record = {"iteration": self.iteration, "lr": lr, "loss": total.item()}
        record.update({k: v.item() for k, v in losses.items()})
        return record

    def state_dict(self) -> dict:
        return {
            checkpoint.FORMAT_KEY: TRAINER_FORMAT,
            "model": self.detector.weights(),
            "optimizer": self.optimizer.state_dict(),
            "iteration": self.iteration,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        checkpoint.check_format(state, TRAINER_FORMAT)
        self.detector.load_weights(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = int(state["iteration"])
        self.history = list(state["history"])
        torch.set_rng_state(state["torch_rng"].cpu())  # a checkpoint read onto a GPU moved it there
        self._batches = None  # the data stream restarts at the restored iteration
