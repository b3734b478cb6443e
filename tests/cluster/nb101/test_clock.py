"""The one clock of a chapter-4 study (cluster/nb101/clock.py) on a hand-made cost table, the
refusals that keep a comparison on one device and one dataset, and the power report."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from cluster.nb101.clock import Clock, resolve_clock
from cluster.nb101.config import EMBEDDED_RECIPE, SMOKE_RECIPE, SweepConfig, check_data
from core.config import ConfigError
from core.nb101.benchmark import Benchmark
from core.nb101.costs import CostTable, make_table
from core.ws.config import SupernetConfig, timing_recipe
from search.space_data import SpaceData


@pytest.fixture(scope="module")
def bench():
    return Benchmark.default()


@pytest.fixture(scope="module")
def hand_made(bench, tmp_path_factory):
    """Every embedded cell: a forward pass 2 ms; a step 10 ms, 20 ms, 30 ms, ... (row order)."""
    cells = bench.cells()
    n = cells.num_rows
    timed = pa.table(
        {
            "hash": cells["hash"],
            "forward_s": np.full(n, 0.002),
            "step_s": 0.01 * (1 + np.arange(n)),
            "step_sd": np.zeros(n),
        }
    )
    path = tmp_path_factory.mktemp("costs") / "hand.parquet"
    CostTable(make_table(timed, timing_recipe(EMBEDDED_RECIPE), "cpu: hand-made")).save(path)
    return path


def test_the_calibrated_clock_charges_every_kind_of_work_from_one_table(bench, hand_made):
    config = SweepConfig(supernet=EMBEDDED_RECIPE, costs=str(hand_made))
    clock = resolve_clock(config, bench, config.supernet)
    assert clock.name == "calibrated" and "cpu: hand-made" in clock.describe()
    space = SpaceData.from_benchmark(bench, "A1")
    step = 0.01 * (1 + bench.lookup(list(space.hashes))[0])  # the table's step of each A1 cell
    timed = clock.timed(space)
    # a cell's training: 6 epochs x ceil(1078 / 64) = 102 steps, then 6 + 6 batches of
    # validation and test images through the forward pass
    expected = step * 102 + 0.002 * 12
    np.testing.assert_allclose(timed.training_time[:, 0], expected)
    assert (timed.training_time == timed.training_time[:, :1]).all()  # every repeat alike
    np.testing.assert_array_equal(timed.validation, space.validation)
    # a BNS-FT proxy: one batch of 256 images (4 batches of 64) + 6 validation batches
    np.testing.assert_allclose(clock.proxy(space), 0.002 * 10)
    # a supernet: the mean step of the space's cells x 100 epochs x 17 steps; AVG-3: 3 paths a step
    recipe = SupernetConfig(**EMBEDDED_RECIPE, space="A1")
    assert clock.supernet(space, recipe) == pytest.approx(step.mean() * 1700)
    avg3 = SupernetConfig(**EMBEDDED_RECIPE, space="A1", variant="AVG-3")
    assert clock.supernet(space, avg3) == pytest.approx(3 * step.mean() * 1700)
    assert clock.identity == clock.cell_identity == {"clock": "calibrated", "costs": clock.table.identity}


def test_the_modelled_and_benchmark_clocks(bench):
    space = SpaceData.from_benchmark(bench, "A2")
    modelled = Clock("modelled", None, bench, 3600.0, 4.0)
    assert modelled.timed(space) is space and modelled.supernet(space, None) == 3600.0
    np.testing.assert_array_equal(modelled.proxy(space), np.full(len(space), 4.0))
    assert modelled.cell_identity == {}  # a baseline's cells cost the file's times, as on the benchmark clock
    with pytest.raises(ValueError, match="the mix thesis 4.3.3 refuses"):
        Clock("benchmark", None, bench).supernet(space, None)


def test_a_sweep_never_mixes_clocks_and_never_has_free_supernets():
    for clock in ("benchmark", "measured"):
        with pytest.raises(
            ValidationError, match="the mix thesis 4.3.3 refuses.*clock: calibrated.*modelled"
        ):
            SweepConfig(clock=clock)
    with pytest.raises(ValidationError, match="supernet_seconds is required"):
        SweepConfig(clock="modelled")
    with pytest.raises(ValidationError, match="greater than 0"):
        SweepConfig(clock="modelled", supernet_seconds=0)
    assert SweepConfig(clock="modelled", supernet_seconds=60).baselines().clock == "benchmark"
    assert SweepConfig().baselines().clock == "calibrated"


def test_a_calibrated_clock_without_a_table_names_the_command_that_builds_it(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path))
    config = SweepConfig(supernet=EMBEDDED_RECIPE | {"stem_filters": 5}, preset="default")
    with pytest.raises(
        ConfigError, match="no cost table times 5 filters.*python jobs/nb101_costs.py --preset default"
    ):
        resolve_clock(config, bench, config.supernet)
    assert resolve_clock(config, bench, config.supernet, required=False).table is None
    other = SweepConfig(costs=str(tmp_path / "none.parquet"))
    with pytest.raises(ConfigError, match="cost table not found"):
        resolve_clock(other, bench, EMBEDDED_RECIPE)


def test_supernets_and_benchmark_on_other_data_are_refused_naming_both(bench):
    real = Benchmark.real_subset()
    with pytest.raises(ConfigError, match="supernets would train on digits but benchmark .* holds cifar10"):
        check_data(SweepConfig(supernet=SMOKE_RECIPE), real)
    check_data(SweepConfig(supernet=SMOKE_RECIPE), bench)
    assert bench.dataset == "digits" and real.dataset == "cifar10"


def test_power_report_says_how_many_ws_seeds_each_difference_needs():
    from cluster.nb101.report import power_report
    from stats import runs_needed

    oneshot = pa.table(
        {"space": ["A1", "A1", "A2", "A2"], "pair": ["x", "y", "x", "y"], "cohen_d": [-0.5, 1.2, 0.0, 0.1]}
    )
    rows = power_report(oneshot, ws_seeds=25, baseline_seeds=100).to_pylist()
    assert rows[0]["ws_seeds_needed"] == runs_needed(0.5, n_other=100) == 47 and rows[0]["enough"] is False
    assert rows[1]["ws_seeds_needed"] == runs_needed(1.2, n_other=100) and rows[1]["enough"] is True
    assert rows[2]["ws_seeds_needed"] is None and rows[2]["enough"] is False  # no effect to detect
    assert rows[3]["ws_seeds_needed"] is None  # d = 0.1 is out of reach against 100 baseline runs
