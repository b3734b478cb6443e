"""Weight-sharing correlation study on NB-101 (thesis table 4.3, figs. 4.3/4.4), on Ray.

Usage:
    python jobs/ws_correlation.py [--preset smoke|default|thesis] [--config FILE]
        [--spaces A1,FULL] [--variants uniform,SINGLE-K] [--supernets 5] [--cells 1000]
        [--benchmark PATH|real-subset] [--set supernet.epochs=50] [--tracking-uri URI]
    ray job submit --working-dir . -- python jobs/ws_correlation.py --preset default

`default` (no --preset): the embedded mini-benchmark and digits on CPU, 3 supernets x 300
cells per space, in minutes. `thesis`: 5 supernets x 1,000 cells, every variant, the paper's
recipe; needs the NB-101 file (--benchmark) and CIFAR-10 (--set supernet.cifar10_root=DIR).
Re-submitting the same study reuses every finished supernet and evaluation.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.jobkit import Flag, JobCli, csv_list, fail, job_main, open_tracker  # noqa: E402
from cluster.nb101.benchmark import benchmark_identity, describe, open_benchmark, resolve_spaces  # noqa: E402
from cluster.nb101.config import CORRELATION_PRESETS, WSCorrelationConfig, check_data, check_recipes  # noqa: E402
from cluster.nb101.correlation import Study, opened  # noqa: E402
from cluster.nb101.report import correlation_report  # noqa: E402
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import fault_hook, run_graph  # noqa: E402
from cluster.sweep import open_sweep  # noqa: E402
from cluster.tracking import DatasetRef  # noqa: E402
from core.config import ConfigError  # noqa: E402
from core.keys import stable_key  # noqa: E402
from core.nb101.benchmark import BenchmarkError  # noqa: E402

CLI = JobCli(
    __doc__,
    WSCorrelationConfig,
    flags=(
        Flag("--spaces", "spaces", csv_list),
        Flag("--variants", "variants", csv_list),
        Flag("--supernets", "supernets", int),
        Flag("--cells", "cells", int),
        Flag("--benchmark", "benchmark"),
    ),
    presets=CORRELATION_PRESETS,
)


@job_main(BenchmarkError)
def main(argv=None) -> int:
    try:
        config = CLI.config(CLI.parse(argv))
        check_recipes(config)
        bench = open_benchmark(config.benchmark)
        spaces = resolve_spaces(config, bench)
        check_data(config, bench)
    except (ConfigError, FileNotFoundError) as err:
        return fail(err)
    recipe = config.recipe(spaces[0], "uniform", 0)
    print(
        f"preset {config.preset}; benchmark {describe(bench, config.benchmark)}; "
        f"spaces {spaces}; variants {config.variants}; {config.supernets} supernets x {config.cells} cells; "
        f"recipe: {recipe.dataset}, {recipe.epochs} epochs, {recipe.stem_filters} filters"
    )
    tracker = open_tracker(config)
    study = Study(config, bench, spaces, benchmark_identity(bench), fault_hook())
    key = stable_key({"units": sorted(u.key for u in study.units())})
    params = config.model_dump() | {"spaces": spaces}
    tags = {"benchmark": bench.source, "preset": config.preset}
    data = (DatasetRef("nb101-benchmark", benchmark_identity(bench), bench.source, "benchmark"),)
    with open_sweep(tracker, config.sweep_name, key, params, tags, data) as sweep:
        init_ray(config.ray_address)
        with opened(study, sweep.target) as nodes:
            outcome = run_graph(nodes, tracker, label="supernets and evaluations")
        markdown, files = correlation_report(study, study.proxies(outcome.results), Path(config.output_dir))
        return sweep.close(outcome, files, markdown, config.output_dir)


if __name__ == "__main__":
    raise SystemExit(main())
