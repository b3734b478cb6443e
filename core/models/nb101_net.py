"""The NB-101 network in PyTorch: stem, stacks of cells with downsampling, pooling, classifier.

Built exactly as NB-101's `model_builder.py` builds it: vertex channels from
`compute_vertex_channels`, interior inputs truncated to the vertex's channels, the cell input
projected by a 1x1 conv-BN-ReLU where it feeds a vertex or the output, outputs of the vertices
feeding the cell output concatenated. With 128 stem filters its parameter count is the
benchmark's `trainable_parameters`. BN momentum/eps follow PyTorch's convention.
"""

from __future__ import annotations

import torch
from torch import nn

from core.nb101.params import DEFAULT_MACRO, Macro, vertex_channels
from core.nb101.spec import CellSpec

BN_MOMENTUM = 0.003  # TF's 0.997 in PyTorch's convention
BN_EPS = 1e-5


class ConvBnRelu(nn.Sequential):
    """Conv (no bias, 'same' padding) + batch norm + ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, bn_momentum=BN_MOMENTUM, bn_eps=BN_EPS):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, momentum=bn_momentum, eps=bn_eps),
            nn.ReLU(inplace=False),
        )


def make_op(name: str, channels: int, **bn) -> nn.Module:
    """One NB-101 vertex operation on `channels` channels (maxpool keeps its input's channels)."""
    if name == "conv3x3-bn-relu":
        return ConvBnRelu(channels, channels, 3, **bn)
    if name == "conv1x1-bn-relu":
        return ConvBnRelu(channels, channels, 1, **bn)
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown op {name!r}")


class Cell(nn.Module):
    """One NB-101 cell (module) for a valid, pruned CellSpec."""

    def __init__(self, spec: CellSpec, c_in: int, c_out: int, **bn):
        super().__init__()
        if not spec.valid:
            raise ValueError(f"cannot build an invalid cell: {spec!r}")
        self.matrix = spec.matrix.astype(bool).tolist()
        self.n = len(self.matrix)
        self.channels = vertex_channels(c_in, c_out, spec.matrix)
        self.ops = nn.ModuleDict()
        self.proj = nn.ModuleDict()
        for t in range(1, self.n - 1):
            if self.matrix[0][t]:
                self.proj[str(t)] = ConvBnRelu(c_in, self.channels[t], 1, **bn)
            self.ops[str(t)] = make_op(spec.ops[t], self.channels[t], **bn)
        if self.matrix[0][self.n - 1]:
            self.proj[str(self.n - 1)] = ConvBnRelu(c_in, c_out, 1, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor | None] = [x]
        last = self.n - 1
        for t in range(1, last):
            c = self.channels[t]
            parts = [outputs[s][:, :c] for s in range(1, t) if self.matrix[s][t]]
            if self.matrix[0][t]:
                parts.append(self.proj[str(t)](x))
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            outputs.append(self.ops[str(t)](total))
        fan_in = [outputs[t] for t in range(1, last) if self.matrix[t][last]]
        out = torch.cat(fan_in, dim=1) if fan_in else None
        if self.matrix[0][last]:
            projected = self.proj[str(last)](x)
            out = projected if out is None else out + projected
        return out


class NB101Network(nn.Module):
    """Stem conv, `num_stacks` stacks of `modules_per_stack` cells (maxpool 2x2 and doubled
    channels between stacks), global average pooling and a linear classifier."""

    def __init__(self, spec: CellSpec, macro: Macro = DEFAULT_MACRO, bn_momentum=BN_MOMENTUM, bn_eps=BN_EPS):
        super().__init__()
        bn = {"bn_momentum": bn_momentum, "bn_eps": bn_eps}
        self.stem = ConvBnRelu(macro.in_channels, macro.stem_filters, 3, **bn)
        layers: list[nn.Module] = []
        per_stack = macro.modules_per_stack
        for i, (c_in, c_out) in enumerate(macro.module_channels()):
            if i > 0 and i % per_stack == 0:
                layers.append(nn.MaxPool2d(2, stride=2))
            layers.append(Cell(spec, c_in, c_out, **bn))
        self.cells = nn.Sequential(*layers)
        self.classifier = nn.Linear(macro.module_channels()[-1][1], macro.num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cells(self.stem(x))
        return self.classifier(x.mean(dim=(2, 3)))


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
