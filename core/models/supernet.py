"""The single-path NB-101 supernet (thesis 4.3.1-4.3.2): one set of weights per vertex position.

Every cell of a search space is a path through the supernet: vertex t of the (pruned) cell uses
the weights of position t for its op (conv3x3, conv1x1; maxpool has none) and for the 1x1
projection of the cell input. Weight banks hold the most channels a vertex can have in the
space (c_out for FULL/RES/NRES, ceil(c_out / i) for A_i) and a cell uses the first n filters
and batch-norm entries that NB-101's `compute_vertex_channels` gives it, so a path computes
exactly the standalone network's function with those weights (`extract_standalone`).
`single_kernel=True` is SINGLE-K (Stamoulis 2019): one 3x3 kernel per position, the 1x1 conv
being its centre; each op keeps its own batch norm.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from core.models.nb101_net import BN_EPS, BN_MOMENTUM, NB101Network
from core.nb101.params import DEFAULT_MACRO, Macro, vertex_channels
from core.nb101.spec import OPS, CellSpec, labeling

MAX_INTERIOR = 5


class SlicedBatchNorm(nn.Module):
    """Batch norm over the first `c` channels of a bank of `size` (affine, running statistics)."""

    def __init__(self, size: int, momentum: float = BN_MOMENTUM, eps: float = BN_EPS):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))
        self.register_buffer("running_mean", torch.zeros(size))
        self.register_buffer("running_var", torch.ones(size))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if self.training and self.momentum is None:
            return self._cumulative(x, c)
        # the running statistics are views: training updates the bank's first c entries in place
        return F.batch_norm(
            x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
            self.training, self.momentum or 0.0, self.eps,
        )  # fmt: skip

    def _cumulative(self, x: torch.Tensor, c: int) -> torch.Tensor:
        """momentum None: running statistics become this batch's (BN re-estimation on one batch)."""
        mean = x.mean(dim=(0, 2, 3))
        var_unbiased = x.var(dim=(0, 2, 3), unbiased=True)
        with torch.no_grad():
            self.running_mean[:c] = mean
            self.running_var[:c] = var_unbiased
        return F.batch_norm(x, None, None, self.weight[:c], self.bias[:c], True, 0.0, self.eps)


def _conv_weight(c_out: int, c_in: int, k: int) -> nn.Parameter:
    w = torch.empty(c_out, c_in, k, k)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # nn.Conv2d's default initialisation
    return nn.Parameter(w)


class SupernetVertex(nn.Module):
    """Weights of one vertex position: projection of the cell input, conv3x3 and conv1x1 banks."""

    def __init__(self, c_in: int, bank: int, single_kernel: bool, momentum, eps):
        super().__init__()
        self.single_kernel = single_kernel
        self.proj_w = _conv_weight(bank, c_in, 1)
        self.proj_bn = SlicedBatchNorm(bank, momentum, eps)
        self.w3 = _conv_weight(bank, bank, 3)
        self.bn3 = SlicedBatchNorm(bank, momentum, eps)
        self.w1 = None if single_kernel else _conv_weight(bank, bank, 1)
        self.bn1 = SlicedBatchNorm(bank, momentum, eps)

    def kernel(self, label: int, c: int) -> torch.Tensor:
        if label == 0:
            return self.w3[:c, :c]
        return self.w3[:c, :c, 1:2, 1:2] if self.single_kernel else self.w1[:c, :c]

    def project(self, x: torch.Tensor, c: int) -> torch.Tensor:
        return F.relu(self.proj_bn(F.conv2d(x, self.proj_w[:c])))

    def op(self, x: torch.Tensor, label: int) -> torch.Tensor:
        if label == 2:
            return F.max_pool2d(x, 3, stride=1, padding=1)
        c = x.shape[1]
        w = self.kernel(label, c)
        return F.relu((self.bn3 if label == 0 else self.bn1)(F.conv2d(x, w, padding=w.shape[-1] // 2)))


class SuperCell(nn.Module):
    """All cells of the space at one module position of the network."""

    def __init__(self, c_in: int, c_out: int, bank: int, single_kernel: bool, momentum, eps):
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.vertices = nn.ModuleList(
            SupernetVertex(c_in, bank, single_kernel, momentum, eps) for _ in range(MAX_INTERIOR)
        )
        self.out_w = _conv_weight(c_out, c_in, 1)
        self.out_bn = SlicedBatchNorm(c_out, momentum, eps)

    def forward(self, x: torch.Tensor, path: tuple) -> torch.Tensor:
        matrix, labels, channels = path
        n = len(labels)
        last = n - 1
        outputs = [x]
        for t in range(1, last):
            vertex = self.vertices[t - 1]
            c = channels[t]
            parts = [outputs[s][:, :c] for s in range(1, t) if matrix[s][t]]
            if matrix[0][t]:
                parts.append(vertex.project(x, c))
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            outputs.append(vertex.op(total, labels[t]))
        fan_in = [outputs[t] for t in range(1, last) if matrix[t][last]]
        out = torch.cat(fan_in, dim=1) if fan_in else None
        if matrix[0][last]:
            projected = F.relu(self.out_bn(F.conv2d(x, self.out_w)))
            out = projected if out is None else out + projected
        return out


def bank_size(space: str, c_out: int) -> int:
    """Most channels a vertex can have in the space: c_out, or ceil(c_out / i) in A_i."""
    if space in ("A1", "A2", "A3", "A4"):
        return -(-c_out // int(space[1]))
    return c_out


class Supernet(nn.Module):
    """NB-101 macro-structure whose cells are SuperCells; `forward(x, cell)` runs one path."""

    def __init__(
        self,
        space: str = "FULL",
        macro: Macro = DEFAULT_MACRO,
        single_kernel: bool = False,
        bn_momentum: float = BN_MOMENTUM,
        bn_eps: float = BN_EPS,
    ):
        super().__init__()
        self.space, self.macro = space, macro
        self.stem_w = _conv_weight(macro.stem_filters, macro.in_channels, 3)
        self.stem_bn = SlicedBatchNorm(macro.stem_filters, bn_momentum, bn_eps)
        self.cells = nn.ModuleList(
            SuperCell(c_in, c_out, bank_size(space, c_out), single_kernel, bn_momentum, bn_eps)
            for c_in, c_out in macro.module_channels()
        )
        self.classifier = nn.Linear(macro.module_channels()[-1][1], macro.num_labels)
        self._paths: dict = {}

    def path(self, cell: CellSpec) -> list[tuple]:
        """Per module: (matrix, labels, vertex channels) of a cell; cached by hash."""
        key = cell.hash
        if key not in self._paths:
            if not cell.valid:
                raise ValueError(f"cannot run an invalid cell: {cell!r}")
            matrix = cell.matrix.astype(bool).tolist()
            labels = labeling(cell.ops)
            self._paths[key] = [
                (matrix, labels, vertex_channels(m.c_in, m.c_out, cell.matrix)) for m in self.cells
            ]
            banks = [m.vertices[0].w3.shape[0] for m in self.cells]
            for (_, _, ch), bank in zip(self._paths[key], banks):
                if max(ch[1:-1], default=0) > bank:
                    raise ValueError(
                        f"cell {key} needs {max(ch[1:-1])} channels, space {self.space} has {bank}"
                    )
        return self._paths[key]

    def forward(self, x: torch.Tensor, cell: CellSpec) -> torch.Tensor:
        x = F.relu(self.stem_bn(F.conv2d(x, self.stem_w, padding=1)))
        per_stack = self.macro.modules_per_stack
        for i, (module, path) in enumerate(zip(self.cells, self.path(cell))):
            if i > 0 and i % per_stack == 0:
                x = F.max_pool2d(x, 2, stride=2)
            x = module(x, path)
        return self.classifier(x.mean(dim=(2, 3)))

    def batch_norms(self):
        return [m for m in self.modules() if isinstance(m, SlicedBatchNorm)]

    @contextmanager
    def recalibrating(self):
        """Inside: BN layers take the statistics of the next training-mode batch exactly
        (BNS-FT); on exit the supernet's own statistics and momenta are restored."""
        bns = self.batch_norms()
        saved = [(bn.momentum, bn.running_mean.clone(), bn.running_var.clone()) for bn in bns]
        for bn in bns:
            bn.momentum = None
        try:
            yield
        finally:
            for bn, (momentum, mean, var) in zip(bns, saved):
                bn.momentum = momentum
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)


def _copy_bn(src: SlicedBatchNorm, dst: nn.BatchNorm2d) -> None:
    c = dst.num_features
    dst.weight.data.copy_(src.weight[:c])
    dst.bias.data.copy_(src.bias[:c])
    dst.running_mean.copy_(src.running_mean[:c])
    dst.running_var.copy_(src.running_var[:c])


def extract_standalone(supernet: Supernet, cell: CellSpec) -> NB101Network:
    """The standalone NB-101 network of `cell` holding the supernet's weights for its path."""
    net = NB101Network(cell, supernet.macro, bn_momentum=supernet.stem_bn.momentum or BN_MOMENTUM)
    conv, bn = net.stem[0], net.stem[1]
    conv.weight.data.copy_(supernet.stem_w)
    _copy_bn(supernet.stem_bn, bn)
    standalone_cells = [m for m in net.cells if not isinstance(m, nn.MaxPool2d)]
    for super_cell, cell_net in zip(supernet.cells, standalone_cells):
        ch = cell_net.channels
        for t in range(1, cell_net.n - 1):
            vertex = super_cell.vertices[t - 1]
            if str(t) in cell_net.proj:
                proj = cell_net.proj[str(t)]
                proj[0].weight.data.copy_(vertex.proj_w[: ch[t]])
                _copy_bn(vertex.proj_bn, proj[1])
            op = cell_net.ops[str(t)]
            label = OPS.index(cell.ops[t])
            if label != 2:
                op[0].weight.data.copy_(vertex.kernel(label, ch[t]))
                _copy_bn(vertex.bn3 if label == 0 else vertex.bn1, op[1])
        if str(cell_net.n - 1) in cell_net.proj:
            out = cell_net.proj[str(cell_net.n - 1)]
            out[0].weight.data.copy_(super_cell.out_w)
            _copy_bn(super_cell.out_bn, out[1])
    net.classifier.load_state_dict(supernet.classifier.state_dict())
    return net
