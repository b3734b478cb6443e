"""Cost tables on a cluster: the timing fanned out over its GPUs (or CPUs), resumable, with
progress; and where a sweep finds the table of its recipe.

Cells are timed in chunks, one Ray task each, asking for a GPU when the cluster has them (one
task per GPU: a pass is timed alone on its device) and for one CPU otherwise (one torch thread,
so that tasks on the same machine do not share cores). Each finished chunk is written at once
under `.cache/nb101-costs/work/<build key>/`, so a stopped build resumes where it stopped; the
table is assembled when every chunk is there. A table timed on more than one device model is
refused: a clock is one device.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.keys import stable_key
from core.nb101.costs import (
    CostTable,
    CostTableError,
    TimingRecipe,
    cell_features,
    device_name,
    fit_model,
    make_table,
    time_cells,
)
from core.nb101.space import write_table
from core.paths import cache_dir
from core.progress import Progress

SHIPPED = Path(__file__).resolve().parents[2] / "core" / "nb101" / "data" / "costs"  # embedded tables


def costs_dir() -> Path:
    """Where built cost tables live: `<cache>/nb101-costs/<recipe key>/<device>.parquet`."""
    return cache_dir() / "nb101-costs"


def default_path(recipe: TimingRecipe, device: str, fitted: bool) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")[:60]
    return costs_dir() / recipe.key / f"{slug}{'-fitted' if fitted else ''}.parquet"


def find_cost_table(recipe: TimingRecipe, path: str | None = None) -> CostTable | None:
    """The cost table a sweep charges: `path` when given (its recipe must be `recipe`), else the
    built tables of the recipe (`costs_dir()`), else the ones shipped in `core/nb101/data/costs/`;
    a table timing every cell is preferred to a fitted one, then the one with the most cells."""
    if path is not None:
        table = CostTable.open(path)
        if table.recipe != recipe:
            raise CostTableError(
                f"costs: {path} times {table.recipe.describe()}, the sweep's recipe is {recipe.describe()}"
            )
        return table
    candidates = sorted((costs_dir() / recipe.key).glob("*.parquet")) + sorted(
        SHIPPED.glob(f"{recipe.key}-*.parquet")
    )
    tables = [CostTable.open(p) for p in candidates]
    tables = [t for t in tables if t.recipe == recipe]
    if not tables:
        return None
    return min(tables, key=lambda t: (t.fitted, -t.table.num_rows))


def build_command(preset: str, benchmark: str | None) -> str:
    """The command that builds a missing table (named in errors and dry runs)."""
    return f"python jobs/nb101_costs.py --preset {preset}" + (
        f" --benchmark {benchmark}" if benchmark else ""
    )


# --------------------------------------------------------------------------- the build


@dataclass(frozen=True)
class Chunk:
    start: int
    cells: pa.Table
    path: Path


def time_chunk(cells: pa.Table, recipe_json: str, measures: int, threads: int) -> pa.Table:
    """Ray task: time the chunk's cells on the device Ray assigned; the device's name rides in
    the table's metadata."""
    import torch

    from cluster.devices import assigned_device
    from core.nb101.costs import timer

    device = assigned_device()
    if device == "cpu":
        torch.set_num_threads(threads)
    timed = time_cells(cells, TimingRecipe.from_json(recipe_json), device, measures)
    return timed.replace_schema_metadata({"device": device_name(device), "timer": timer(device)[1]})


def plan_chunks(
    cells: pa.Table, recipe: TimingRecipe, measures: int, chunk_size: int
) -> tuple[Path, list[Chunk]]:
    """The build's folder (its key: recipe, measures, the cells) and its chunks."""
    hashes = cells["hash"].to_pylist()
    work = (
        costs_dir() / "work" / stable_key({"recipe": recipe.key, "measures": measures, "cells": hashes}, 16)
    )
    chunks = []
    for start in range(0, len(hashes), chunk_size):
        part = cells.slice(start, chunk_size)
        content = stable_key(hashes[start : start + chunk_size], 10)
        chunks.append(Chunk(start, part, work / f"chunk_{start:07d}_{content}.parquet"))
    return work, chunks


def run_chunks(
    chunks: list[Chunk], recipe: TimingRecipe, measures: int, threads: int, local: bool, gpus: float
) -> None:
    """Time every chunk not yet on disk, writing each as it finishes (progress on stderr)."""
    todo = [c for c in chunks if not c.path.exists()]
    progress = Progress(sum(c.cells.num_rows for c in todo), "time cells", unit="cells", every=15)
    if local:
        for chunk in todo:
            write_table(time_chunk(chunk.cells, recipe.to_json(), measures, threads), chunk.path)
            progress.update(chunk.cells.num_rows)
        return
    if not todo:
        return
    import ray

    from cluster.devices import cluster_gpus

    options = {"num_gpus": gpus, "num_cpus": 1} if cluster_gpus() > 0 and gpus > 0 else {"num_cpus": 1}
    task = ray.remote(time_chunk).options(max_retries=3, **options)
    pending = {task.remote(c.cells, recipe.to_json(), measures, threads): c for c in todo}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            chunk = pending.pop(ref)
            write_table(ray.get(ref), chunk.path)
            progress.update(chunk.cells.num_rows)


def assemble(chunks: list[Chunk]) -> tuple[pa.Table, str, str]:
    """The timed rows of every chunk, the one device they were timed on and its timer."""
    parts = [pq.read_table(c.path) for c in chunks]
    devices = sorted({p.schema.metadata[b"device"].decode() for p in parts})
    timers = sorted({p.schema.metadata.get(b"timer", b"wall time").decode() for p in parts})
    if len(devices) != 1:
        raise CostTableError(
            f"cells were timed on {len(devices)} devices ({devices}): a clock is one device; time "
            "them on a cluster of one GPU model (or delete the chunks of the others and resume)"
        )
    return pa.concat_tables([p.replace_schema_metadata(None) for p in parts]), devices[0], " + ".join(timers)


def build_cost_table(
    cells: pa.Table,
    recipe: TimingRecipe,
    *,
    sample: int | None = None,
    measures: int = 3,
    chunk_size: int = 64,
    threads: int = 1,
    gpus: float = 1.0,
    local: bool = False,
    holdout: float = 0.2,
    seed: int = 0,
    source: str = "",
) -> CostTable:
    """Time `cells` (or a stratified `sample` of them, the rest fitted) under `recipe`; Ray must
    be running unless `local`."""
    from core.nb101.costs import stratified_sample

    start = time.perf_counter()
    timed_cells = cells.take(stratified_sample(cells, sample, seed)) if sample else cells
    _, chunks = plan_chunks(timed_cells, recipe, measures, chunk_size)
    done = sum(c.path.exists() for c in chunks)
    print(
        f"timing {timed_cells.num_rows:,} of {cells.num_rows:,} cells ({recipe.describe()}), "
        f"{len(chunks)} chunks, {done} already done (folder {chunks[0].path.parent if chunks else '-'})",
        flush=True,
    )
    run_chunks(chunks, recipe, measures, threads, local, gpus)
    timed, device, clock = assemble(chunks)
    meta = {"measures": measures, "timer": clock, "source": source, "cells_total": cells.num_rows}
    if sample and timed.num_rows < cells.num_rows:
        order = {h: i for i, h in enumerate(timed_cells["hash"].to_pylist())}
        rows = np.array([order[h] for h in timed["hash"].to_pylist()])
        features = cell_features(timed_cells, recipe)[rows]
        meta["model"] = fit_model(features, timed, holdout, seed).to_json()
    meta["build_seconds"] = f"{time.perf_counter() - start:.1f}"
    return CostTable(make_table(timed, recipe, device, meta))
