"""The embedded benchmark: NB-101 cells trained on scikit-learn's digits, same schema as NB-101.

Every cell with at most 5 vertices (2,532 cells; sub-spaces A1-A3, FULL, RES, NRES all
non-empty) is trained 3 times (seeds 0, 1, 2) in a scaled-down NB-101 network: 8 stem
filters, 2 stacks of 1 cell with a 2x2 max-pool between them, global pooling, linear
classifier; SGD with Nesterov momentum, cosine learning rate, 6 epochs, evaluated at the
halfway epoch and at the end. Chosen so that the whole table builds in well under 90 min on
2 CPU cores and accuracies spread widely (validation roughly 0.6 to 0.98).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from core.data.digits import digits_splits
from core.models.nb101_net import NB101Network
from core.nb101.params import Macro
from core.nb101.spec import CellSpec


@dataclass(frozen=True)
class MinibenchConfig:
    """Training recipe of the mini-benchmark; every value is a knob, none is buried in code."""

    max_vertices: int = 5
    repeats: int = 3
    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    stem_filters: int = 8
    num_stacks: int = 2
    modules_per_stack: int = 1
    bn_momentum: float = 0.1
    torch_threads: int = 1

    def __post_init__(self):
        if self.epochs < 2 or self.epochs % 2:
            raise ValueError(f"epochs must be even and >= 2 (halfway is epochs/2), got {self.epochs}")
        if not 2 <= self.max_vertices <= 7:
            raise ValueError(f"max_vertices must be in 2..7, got {self.max_vertices}")
        if self.repeats < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("repeats, batch_size and lr must be positive")

    @property
    def macro(self) -> Macro:
        return Macro(self.stem_filters, self.num_stacks, self.modules_per_stack, num_labels=10, in_channels=1)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        return float((net(x).argmax(dim=1) == y).float().mean())


def train_cell(spec: CellSpec, seed: int, config: MinibenchConfig = MinibenchConfig(), data=None) -> dict:
    """Train one cell once; accuracies and measured training seconds at halfway and at the end."""
    torch.set_num_threads(config.torch_threads)
    data = data or digits_splits()
    train, val, test = data["train"], data["validation"], data["test"]
    torch.manual_seed(seed)
    net = NB101Network(spec, config.macro, bn_momentum=config.bn_momentum)
    opt = torch.optim.SGD(
        net.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=True,
    )
    n = len(train.y)
    steps_per_epoch = (n + config.batch_size - 1) // config.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(seed)
    result, trained = {}, 0.0
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        net.train()
        order = torch.randperm(n, generator=shuffle)
        for i in range(0, n, config.batch_size):
            idx = order[i : i + config.batch_size]
            loss = nn.functional.cross_entropy(net(train.x[idx]), train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        trained += time.perf_counter() - start
        if epoch in (config.epochs // 2, config.epochs):
            stage = "final" if epoch == config.epochs else "halfway"
            result[f"{stage}_train_accuracy"] = _accuracy(net, train.x, train.y)
            result[f"{stage}_validation_accuracy"] = _accuracy(net, val.x, val.y)
            result[f"{stage}_test_accuracy"] = _accuracy(net, test.x, test.y)
            result[f"{stage}_training_time"] = trained
    return result


CHUNK_COLUMNS = ("hash", "repeat", "num_vertices", "adj_bits", "ops", "trainable_parameters")


def train_chunk(rows: list[dict], config: MinibenchConfig, path) -> int:
    """Train every repeat of a list of space rows and write them as one Parquet chunk (atomically).

    A chunk file exists only once all its cells are done, so a resumed build redoes nothing
    finished and counts nothing half-done.
    """
    from core.models.nb101_net import count_trainable
    from core.nb101.space import cell_spec, write_table

    data = digits_splits()
    records = []
    for row in rows:
        spec = cell_spec(row["adj_bits"], row["num_vertices"], row["ops"])
        params = count_trainable(NB101Network(spec, config.macro))
        for repeat in range(config.repeats):
            metrics = train_cell(spec, seed=repeat, config=config, data=data)
            records.append(
                {
                    **{k: row[k] for k in CHUNK_COLUMNS if k in row},
                    "repeat": repeat,
                    "trainable_parameters": params,
                    **metrics,
                }
            )
    table = pa.Table.from_pylist(records)
    table = table.set_column(
        table.schema.get_field_index("ops"),
        "ops",
        pa.FixedSizeListArray.from_arrays(
            pa.array(np.asarray([r["ops"] for r in records], np.uint8).ravel()), 5
        ),
    )
    write_table(table, path)
    return len(rows)


def assemble(chunks: list, config: MinibenchConfig, seconds: float) -> pa.Table:
    """Join chunk files into one benchmark table (schema of benchmark.py)."""
    from core.nb101.benchmark import VALUE_COLUMNS, build_table

    table = pa.concat_tables([pq.read_table(p) for p in chunks]).sort_by(
        [("hash", "ascending"), ("repeat", "ascending")]
    )
    n = table.num_rows // config.repeats
    first = table.take(np.arange(0, table.num_rows, config.repeats))
    cells = {
        "hash": first["hash"].to_numpy(zero_copy_only=False),
        "epochs": np.full(n, config.epochs),
        "num_vertices": first["num_vertices"].to_numpy(),
        "adj_bits": first["adj_bits"].to_numpy(),
        "ops": np.asarray(first["ops"].combine_chunks().flatten()).reshape(n, 5),
        "trainable_parameters": first["trainable_parameters"].to_numpy(),
    }
    values = {name: table[name].to_numpy().reshape(n, config.repeats) for name in VALUE_COLUMNS}
    meta = {
        "source": "jobs/build_minibench.py",
        "source_format": "minibench",
        "records": table.num_rows,
        "corrupt_records": 0,
        "description": f"NB-101 cells (<= {config.max_vertices} vertices) trained on scikit-learn digits; "
        "embedded default",
        "config": config.to_json(),
        "build_seconds": f"{seconds:.0f}",
    }
    return build_table(cells, values, meta)
