"""Supernet speed: a training step through a sampled path against the standalone network of
the same cell, and BNS-FT cells/s batched against one call per cell. Runs on CPU here and
unchanged on a GPU (`--device cuda`).

    python benchmarks/bench_supernet.py [--device cpu|cuda] [--batch 256] [--cells 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from _timing import best_time

from core.data.digits import digits_splits
from core.data.images import Split
from core.models.supernet import Supernet, extract_standalone
from core.nb101.params import Macro
from core.nb101.space import cell_spec, enumerate_space, subspace
from core.ws.evaluate import CellScorer


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_time(model, forward, x, y, device: str, repeat: int = 3) -> float:
    opt = torch.optim.RMSprop(model.parameters(), lr=0.01, momentum=0.9, eps=1.0)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), y).backward()
        opt.step()
        sync(device)

    step()  # warm-up
    return best_time(step, repeat)[0]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--cells", type=int, default=8)
    p.add_argument("--score-cells", type=int, default=200)
    args = p.parse_args()
    dev = args.device
    torch.manual_seed(0)
    macro = Macro(stem_filters=16)  # the thesis' supernets: 16 filters, 3 stacks of 3 cells, 32x32 input
    space = subspace(enumerate_space(), "FULL")
    rows = space.take(np.random.default_rng(0).choice(space.num_rows, args.cells, replace=False)).to_pylist()
    cells = [cell_spec(r["adj_bits"], r["num_vertices"], r["ops"]) for r in rows]
    supernet = Supernet("FULL", macro).to(dev).train()
    x = torch.randn(args.batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    ratios = []
    for cell in cells:
        standalone = extract_standalone(supernet.cpu(), cell).to(dev).train()
        supernet.to(dev)
        t_super = step_time(supernet, lambda inp, c=cell: supernet(inp, c), x, y, dev)
        t_alone = step_time(standalone, standalone, x, y, dev)
        ratios.append(t_super / t_alone)
    t_mean = step_time(supernet, lambda inp: supernet(inp, cells[0]), x, y, dev)
    print(f"training step, batch {args.batch} at 32x32, 16 filters, {args.cells} sampled cells on {dev}:")
    print(
        f"  supernet path / standalone network: median {np.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}; goal < 1.2x); "
        f"supernet {args.batch / t_mean:,.0f} images/s on one cell"
    )

    data = digits_splits()
    small = Macro(stem_filters=8, num_stacks=2, modules_per_stack=1, in_channels=1)
    net = Supernet("FULL", small).to(dev)
    space5 = enumerate_space(max_vertices=5)
    picked = space5.take(np.random.default_rng(1).choice(space5.num_rows, args.score_cells, replace=False))
    specs = [cell_spec(r["adj_bits"], r["num_vertices"], r["ops"]) for r in picked.to_pylist()]
    for spec in specs:
        net.path(spec)  # both variants start with the paths computed

    def batched():
        CellScorer(net, data, device=dev).score(specs, "BNS-FT")

    def one_by_one():
        for spec in specs:  # what a caller without batching does: data to the device per call
            CellScorer(net, {k: Split(v.x.clone(), v.y.clone()) for k, v in data.items()}, device=dev).score(
                [spec], "BNS-FT"
            )

    t_single, t_batch = float("inf"), float("inf")
    for _ in range(2):  # interleaved, best of two: the machine is noisy
        t_single = min(t_single, best_time(one_by_one, 1)[0])
        t_batch = min(t_batch, best_time(batched, 1)[0])
    n = args.score_cells
    print(
        f"BNS-FT scoring on digits, {n} cells on {dev}: batched {n / t_batch:,.1f} cells/s, "
        f"one call per cell {n / t_single:,.1f} cells/s -> {t_single / t_batch:.2f}x"
    )


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s)")
