"""Seconds of one training pass of NB-101 cells on one device: the clock of thesis 4.3.3.

The thesis does not charge NB-101's own training times (TPUs, "would be biased"): on one common
device it times every cell's network, one forward and one backward pass averaged over three
measures, and multiplies by the passes of a training. A cost table holds, per cell (by hash), the
mean seconds of one forward pass without gradients (`forward_s`: what an evaluation runs) and of
one forward + backward pass (`step_s`: what a training step runs), for one device and one
`TimingRecipe` (network, batch, input size), as Parquet whose metadata names both.

When timing every cell is too much, a stratified sample is timed and `CostModel` (a non-negative
linear model on per-op multiply-adds, activations, layers and parameters) predicts the others;
such a table says it is fitted and carries the model's error on held-out cells.

No Ray and no MLflow here: `cluster/nb101/costs.py` fans the timing out over a cluster.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.keys import stable_key
from core.nb101.params import Macro, vertex_channels
from core.nb101.space import cell_spec, decode_matrices, write_table

MEASURES = 3  # the thesis averages three measures of each pass
COLUMNS = ("hash", "forward_s", "step_s", "step_sd")
FEATURES = (
    "intercept",
    "conv3x3_macs",
    "conv1x1_macs",
    "projection_macs",
    "pool_elements",
    "activations",
    "layers",
    "parameters",
)


class CostTableError(ValueError):
    """A cost table that cannot serve a request (other recipe, cells it does not hold, ...)."""


@dataclass(frozen=True)
class TimingRecipe:
    """The network and batch a pass is timed with: what a cost table is keyed by (with the device)."""

    stem_filters: int
    num_stacks: int
    modules_per_stack: int
    in_channels: int
    image_size: int
    batch_size: int
    num_labels: int = 10

    @property
    def macro(self) -> Macro:
        return Macro(
            self.stem_filters, self.num_stacks, self.modules_per_stack, self.num_labels, self.in_channels
        )

    @property
    def key(self) -> str:
        return stable_key(asdict(self), 12)

    def describe(self) -> str:
        return (
            f"{self.stem_filters} filters, {self.num_stacks} stacks x {self.modules_per_stack} cells, "
            f"batch {self.batch_size} of {self.in_channels}x{self.image_size}x{self.image_size}"
        )

    @classmethod
    def from_json(cls, text: str) -> TimingRecipe:
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def device_name(device: str = "cpu") -> str:
    """The name a cost table records: the GPU's model, or the CPU's model and torch threads."""
    import torch

    if str(device).startswith("cuda"):
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"cpu: {model}, {torch.get_num_threads()} thread(s)"


# --------------------------------------------------------------------------- timing


def timer(device: str = "cpu"):
    """(clock, its name) a pass is measured with: on a CPU with one torch thread, the thread's CPU
    time (other work on the machine does not inflate it); else wall time (CUDA synchronised)."""
    import torch

    if not str(device).startswith("cuda") and torch.get_num_threads() == 1:
        return time.thread_time, "thread CPU time"
    return time.perf_counter, "wall time"


def time_cell(spec, recipe: TimingRecipe, device: str = "cpu", measures: int = MEASURES, seed: int = 0):
    """(forward_s, step_s, step_sd) of one cell's network: the mean of `measures` forward passes
    without gradients and of `measures` forward + backward passes (cross-entropy loss), each after
    one unmeasured warm-up pass, on `timer(device)`; CUDA is synchronised around every measure."""
    import torch
    import torch.nn.functional as F

    from core.models.nb101_net import NB101Network

    torch_device = torch.device(device)
    cuda = torch_device.type == "cuda"
    gen = torch.Generator().manual_seed(seed)
    size = recipe.image_size
    x = torch.randn(recipe.batch_size, recipe.in_channels, size, size, generator=gen).to(torch_device)
    y = torch.randint(0, recipe.num_labels, (recipe.batch_size,), generator=gen).to(torch_device)
    net = NB101Network(spec, recipe.macro).to(torch_device)
    clock, _ = timer(device)

    def timed(fn) -> float:
        if cuda:
            torch.cuda.synchronize(torch_device)
        start = clock()
        fn()
        if cuda:
            torch.cuda.synchronize(torch_device)
        return clock() - start

    def step():
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()

    net.train()
    step()
    steps = [timed(step) for _ in range(measures)]
    net.eval()
    with torch.no_grad():
        net(x)
        forwards = [timed(lambda: net(x)) for _ in range(measures)]
    return (
        float(np.mean(forwards)),
        float(np.mean(steps)),
        float(np.std(steps, ddof=1) if measures > 1 else 0.0),
    )


def time_cells(
    cells: pa.Table, recipe: TimingRecipe, device: str = "cpu", measures: int = MEASURES
) -> pa.Table:
    """Time every row of `cells` (hash, adj_bits, num_vertices, ops): a table of COLUMNS."""
    rows = {name: [] for name in COLUMNS}
    ops = _ops(cells)
    for i, (h, adj, nv) in enumerate(
        zip(cells["hash"].to_pylist(), cells["adj_bits"].to_pylist(), cells["num_vertices"].to_pylist())
    ):
        forward, step, sd = time_cell(cell_spec(adj, nv, ops[i].tolist()), recipe, device, measures)
        for name, value in zip(COLUMNS, (h, forward, step, sd)):
            rows[name].append(value)
    return pa.table(
        rows, schema=pa.schema([("hash", pa.string())] + [(c, pa.float64()) for c in COLUMNS[1:]])
    )


def _ops(cells: pa.Table) -> np.ndarray:
    return np.asarray(cells["ops"].combine_chunks().flatten()).reshape(cells.num_rows, -1)


# --------------------------------------------------------------------------- features and model


def cell_features(cells: pa.Table, recipe: TimingRecipe) -> np.ndarray:
    """(N, len(FEATURES)) per-cell predictors of a pass's cost under `recipe`: multiply-adds of the
    3x3 and 1x1 convolutions and of the input projections, max-pool window elements, activation
    elements, layers and trainable parameters of the whole network (stem and head are the same for
    every cell: the intercept holds them). Computed once per distinct adjacency matrix, then
    gathered by each cell's op labels, so a whole space costs seconds."""
    adj = cells["adj_bits"].to_numpy().astype(np.int64)
    nv = cells["num_vertices"].to_numpy().astype(np.int64)
    ops = _ops(cells).astype(np.int64)
    out = np.zeros((cells.num_rows, len(FEATURES)))
    out[:, 0] = 1.0
    keys = adj * 8 + nv
    uniq, inverse = np.unique(keys, return_inverse=True)
    for g, key in enumerate(uniq):
        rows = np.flatnonzero(inverse == g)
        n = int(key % 8)
        matrix = decode_matrices(np.array([key // 8]), n)[0]
        const, coef = _matrix_coefficients(matrix, recipe)
        labels = ops[rows, : n - 2]
        interior = np.arange(1, n - 1)
        gathered = (
            coef[:, interior, labels].sum(axis=2) if n > 2 else np.zeros((len(FEATURES) - 1, len(rows)))
        )
        out[rows, 1:] = const[:, None].T + gathered.T
    return out


def _matrix_coefficients(matrix: np.ndarray, recipe: TimingRecipe) -> tuple[np.ndarray, np.ndarray]:
    """Features of one matrix as `const + sum_t coef[:, t, label_t]` over its interior vertices."""
    n = matrix.shape[0]
    f = {name: i - 1 for i, name in enumerate(FEATURES) if i}
    const = np.zeros(len(FEATURES) - 1)
    coef = np.zeros((len(FEATURES) - 1, n, 3))
    for index, (c_in, c_out) in enumerate(recipe.macro.module_channels()):
        stack = index // recipe.modules_per_stack
        area = (recipe.image_size // 2**stack) ** 2
        vc = vertex_channels(c_in, c_out, matrix)
        for t in range(1, n - 1):
            if matrix[0, t]:
                const[f["projection_macs"]] += area * c_in * vc[t]
                const[f["activations"]] += area * vc[t]
                const[f["layers"]] += 3
                const[f["parameters"]] += c_in * vc[t] + 2 * vc[t]
            c = vc[t]
            coef[f["conv3x3_macs"], t, 0] += area * 9 * c * c
            coef[f["conv1x1_macs"], t, 1] += area * c * c
            coef[f["pool_elements"], t, 2] += area * 9 * c
            coef[f["activations"], t, :] += area * c
            coef[f["layers"], t, :2] += 3
            coef[f["layers"], t, 2] += 1
            coef[f["parameters"], t, 0] += 9 * c * c + 2 * c
            coef[f["parameters"], t, 1] += c * c + 2 * c
        if matrix[0, n - 1]:
            const[f["projection_macs"]] += area * c_in * c_out
            const[f["layers"]] += 3
            const[f["parameters"]] += c_in * c_out + 2 * c_out
        const[f["activations"]] += area * c_out  # the cell's output
    return const, coef


@dataclass(frozen=True)
class CostModel:
    """Non-negative linear models of `forward_s` and `step_s` on FEATURES, fitted to minimise the
    relative squared error; `holdout` holds its error on cells it was not fitted on."""

    forward: tuple[float, ...]
    step: tuple[float, ...]
    fitted_on: int
    holdout: dict

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return features @ np.asarray(self.forward), features @ np.asarray(self.step)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CostModel:
        data = json.loads(text)
        return cls(tuple(data["forward"]), tuple(data["step"]), data["fitted_on"], data["holdout"])


def _nnls_relative(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    scale = np.maximum(np.abs(features).max(axis=0), 1e-300)
    weighted = features / scale / target[:, None]
    coef, _ = nnls(weighted, np.ones(len(target)))
    return coef / scale


def holdout_errors(predicted: np.ndarray, measured: np.ndarray) -> dict:
    """How far predictions are from measures: mean and 90th-percentile absolute relative error,
    Spearman rank correlation."""
    from scipy.stats import spearmanr

    rel = np.abs(predicted - measured) / measured
    rho = float(spearmanr(predicted, measured).statistic) if len(measured) > 2 else float("nan")
    return {
        "cells": int(len(measured)),
        "mape": float(rel.mean()),
        "p90_ape": float(np.quantile(rel, 0.9)),
        "spearman": rho,
    }


def fit_model(features: np.ndarray, timed: pa.Table, holdout: float = 0.2, seed: int = 0) -> CostModel:
    """Fit on a random (1 - holdout) of the timed cells, measure on the rest, then refit on all."""
    forward, step = timed["forward_s"].to_numpy(), timed["step_s"].to_numpy()
    n = len(step)
    if n < len(FEATURES) + 2:
        raise CostTableError(f"a fitted clock needs at least {len(FEATURES) + 2} timed cells, got {n}")
    rng = np.random.default_rng(seed)
    test = np.zeros(n, dtype=bool)
    test[rng.choice(n, max(2, int(round(holdout * n))), replace=False)] = True
    coef_step = _nnls_relative(features[~test], step[~test])
    errors = holdout_errors(features[test] @ coef_step, step[test])
    return CostModel(
        tuple(_nnls_relative(features, forward)), tuple(_nnls_relative(features, step)), n, errors
    )


def stratified_sample(cells: pa.Table, n: int, seed: int = 0) -> np.ndarray:
    """Rows of `n` cells drawn without replacement, every (vertex count, output fan-in, input->output
    edge) stratum in proportion to its size and with at least one cell: small strata (the
    2-vertex cell, 3-vertex cells) are timed too."""
    from core.nb101.benchmark import structure_columns

    if n >= cells.num_rows:
        return np.arange(cells.num_rows)
    s = structure_columns(cells)
    strata = (
        s["num_vertices"].to_numpy().astype(np.int64) * 100
        + s["output_fan_in"].to_numpy().astype(np.int64) * 10
        + s["input_to_output"].to_numpy().astype(np.int64)
    )
    rng = np.random.default_rng(seed)
    keys, counts = np.unique(strata, return_counts=True)
    share = np.maximum(1, np.floor(n * counts / counts.sum())).astype(int)
    while share.sum() > n:  # the minimum of one per stratum overshot: trim the largest
        share[np.argmax(share)] -= 1
    left = n - share.sum()
    order = np.argsort(-(n * counts / counts.sum() - share))
    share[order[:left]] += 1
    share = np.minimum(share, counts)
    picked = [rng.choice(np.flatnonzero(strata == k), c, replace=False) for k, c in zip(keys, share)]
    return np.sort(np.concatenate(picked))


# --------------------------------------------------------------------------- the table


def make_table(timed: pa.Table, recipe: TimingRecipe, device: str, meta: dict | None = None) -> pa.Table:
    """A cost table: the timed rows sorted by hash, with the recipe, device and `meta` (build time,
    `model`: a CostModel for a fitted table) as Parquet metadata."""
    timed = timed.select(list(COLUMNS)).sort_by("hash")
    info = {
        "recipe": recipe.to_json(),
        "recipe_key": recipe.key,
        "device": device,
        "cells_timed": timed.num_rows,
    }
    info |= meta or {}
    return timed.replace_schema_metadata({k: str(v) for k, v in info.items()})


class CostTable:
    """Per-cell pass costs on one device under one recipe: timed, or predicted by its model."""

    def __init__(self, table: pa.Table, source: str = "<memory>"):
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing or "recipe" not in meta or "device" not in meta:
            raise CostTableError(f"{source}: not a cost table (columns {missing} / recipe, device metadata)")
        self.table, self.source, self.metadata = table, source, meta
        self.recipe = TimingRecipe.from_json(meta["recipe"])
        self.device = meta["device"]
        self.model = CostModel.from_json(meta["model"]) if meta.get("model") else None
        self._index = {h: i for i, h in enumerate(table["hash"].to_pylist())}

    @classmethod
    def open(cls, path) -> CostTable:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"cost table not found: {path}")
        try:
            return cls(pq.read_table(path), str(path))
        except pa.ArrowInvalid as err:
            raise CostTableError(f"{path}: not a Parquet file ({err})") from None

    def save(self, path) -> None:
        write_table(self.table, Path(path))

    @property
    def fitted(self) -> bool:
        return self.model is not None

    @property
    def identity(self) -> str:
        """A key for what the table charges: its recipe, device, rows and model."""
        digest = hashlib.sha256()
        for name in COLUMNS:
            digest.update(_column_bytes(self.table[name]))
        keep = {k: v for k, v in self.metadata.items() if k in ("recipe", "device", "model")}
        return stable_key(keep | {"rows": digest.hexdigest()})

    def describe(self) -> str:
        """One line: device, recipe, cells timed, and for a fitted table its held-out error."""
        timer = self.metadata.get("timer", "wall time")
        text = f"{self.device}; {self.recipe.describe()}; {self.table.num_rows:,} cells timed ({timer})"
        if self.model is not None:
            h = self.model.holdout
            text += (
                f"; FITTED for the others (per-op FLOPs/parameters model, held-out error on "
                f"{h['cells']} cells: mean {100 * h['mape']:.0f}%, 90th pct {100 * h['p90_ape']:.0f}%, "
                f"Spearman {h['spearman']:.2f})"
            )
        return text

    def seconds(self, cells: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(forward_s, step_s, timed) for the rows of `cells` (hash, adj_bits, num_vertices, ops):
        timed values where the table has the cell, else the model's prediction; a cell neither
        timed nor predictable is a CostTableError naming how many."""
        hashes = cells["hash"].to_pylist()
        rows = np.array([self._index.get(h, -1) for h in hashes], dtype=np.int64)
        timed = rows >= 0
        forward = np.full(len(hashes), np.nan)
        step = np.full(len(hashes), np.nan)
        forward[timed] = self.table["forward_s"].to_numpy()[rows[timed]]
        step[timed] = self.table["step_s"].to_numpy()[rows[timed]]
        if not timed.all():
            if self.model is None:
                shown = ", ".join(h for h, t in zip(hashes, timed) if not t)[:200]
                raise CostTableError(
                    f"{self.source}: {int((~timed).sum()):,} of {len(hashes):,} cells are not timed "
                    f"and the table has no model to predict them ({shown} ...)"
                )
            features = cell_features(cells.filter(pa.array(~timed)), self.recipe)
            f, s = self.model.predict(features)
            forward[~timed], step[~timed] = f, s
        return forward, step, timed


def _column_bytes(column) -> bytes:
    values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values).astype(str).tobytes() if values.dtype == object else values.tobytes()


def training_steps(epochs: int, images: int, batch_size: int) -> int:
    """Forward + backward passes of a training: epochs x ceil(images / batch)."""
    return epochs * math.ceil(images / batch_size)
