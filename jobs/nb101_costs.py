"""The cost table of the calibrated clock: every cell's forward and backward pass timed on one device.

Usage:
    python jobs/nb101_costs.py                       # the embedded default's recipe, every embedded cell
    python jobs/nb101_costs.py --preset thesis --benchmark real-subset --sample 2000   # a fitted clock
    ray job submit --working-dir . -- python jobs/nb101_costs.py --preset thesis --benchmark nb101.parquet
    python jobs/nb101_costs.py --preset smoke --local             # seconds, in this process (no Ray)

Thesis 4.3.3 charges every search on one common device: one forward and one backward pass of each
cell's network, averaged over three measures, times the passes of a training. This job times them
under a preset's supernet recipe (filters, stacks, batch, input size: what a sweep with that preset
charges), fanned out over the Ray cluster's GPUs (one task per GPU) or CPUs (one thread each),
and writes a Parquet table keyed by hash, device and recipe (default:
.cache/nb101-costs/<recipe key>/<device>.parquet, where sweeps find it). Finished chunks are kept:
a stopped build resumes where it stopped. With --sample N only a stratified sample is timed and
a per-op FLOPs/parameters model predicts the rest; the output says the clock is then fitted and
gives the model's error on held-out cells.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from cluster.jobkit import Flag, JobCli, csv_list, fail, job_main  # noqa: E402
from cluster.nb101.benchmark import describe, open_benchmark, resolve_spaces  # noqa: E402
from cluster.nb101.config import COSTS_PRESETS, CostsConfig  # noqa: E402
from cluster.nb101.costs import build_cost_table, default_path  # noqa: E402
from core.config import ConfigError  # noqa: E402
from core.nb101.benchmark import BenchmarkError  # noqa: E402
from core.nb101.costs import CostTableError  # noqa: E402
from core.ws.config import timing_recipe  # noqa: E402

CLI = JobCli(
    __doc__,
    CostsConfig,
    flags=(
        Flag("--benchmark", "benchmark"),
        Flag("--spaces", "spaces", csv_list),
        Flag("--sample", "sample", int, help="time a stratified sample of N cells, fit the others"),
        Flag("--out", "out", help="the table's path"),
        Flag("--chunk-size", "chunk_size", int),
        Flag("--local", "local", switch=True, help="time in this process, without Ray"),
    ),
    presets=COSTS_PRESETS,
)


def cells_of(bench, spaces: list[str]) -> pa.Table:
    """The distinct cells of the spaces (rows of the benchmark's final budget), by hash."""
    parts = [bench.cells(subspace=s).select(["hash", "num_vertices", "adj_bits", "ops"]) for s in spaces]
    table = pa.concat_tables(parts)
    _, first = np.unique(table["hash"].to_numpy(zero_copy_only=False), return_index=True)
    return table.take(pa.array(np.sort(first))).sort_by("hash")


@job_main(BenchmarkError, CostTableError)
def main(argv=None) -> int:
    try:
        config = CLI.config(CLI.parse(argv))
        recipe = timing_recipe(config.supernet)
        bench = open_benchmark(config.benchmark)
        spaces = resolve_spaces(config, bench)
    except (ConfigError, FileNotFoundError, BenchmarkError, ValueError) as err:
        return fail(err)
    cells = cells_of(bench, spaces)
    print(
        f"preset {config.preset}; benchmark {describe(bench, config.benchmark)}; spaces {spaces}; "
        f"{cells.num_rows:,} cells; recipe {recipe.describe()} (key {recipe.key}); "
        f"{config.measures} measures per pass"
        + (f"; stratified sample of {config.sample}" if config.sample else "")
    )
    if not config.local:
        from cluster.runtime import init_ray

        init_ray(config.ray_address)
    start = time.perf_counter()
    table = build_cost_table(
        cells,
        recipe,
        sample=config.sample,
        measures=config.measures,
        chunk_size=config.chunk_size,
        threads=config.threads,
        gpus=config.gpus_per_task,
        local=config.local,
        holdout=config.holdout,
        seed=config.seed,
        source=bench.source,
    )
    path = Path(config.out) if config.out else default_path(recipe, table.device, table.fitted)
    table.save(path)
    seconds = time.perf_counter() - start
    step = table.table["step_s"].to_numpy()
    print(
        f"wrote {path}: {table.describe()}\n"
        f"this run: {seconds:,.1f} s ({table.table.num_rows / max(seconds, 1e-9):,.1f} cells/s); "
        f"one step (forward + backward): mean {1000 * step.mean():.2f} ms, "
        f"min {1000 * step.min():.2f} ms, max {1000 * step.max():.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
