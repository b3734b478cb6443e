"""Cost tables (core/nb101/costs.py): features against the network PyTorch builds, the fitted
model on known costs, lookups and refusals, and the table shipped for the embedded default."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
from scipy.stats import spearmanr

from core.models.nb101_net import NB101Network, count_trainable
from core.nb101.benchmark import Benchmark, structure_columns
from core.nb101.costs import (
    FEATURES,
    CostTable,
    CostTableError,
    TimingRecipe,
    cell_features,
    fit_model,
    make_table,
    stratified_sample,
    time_cells,
    training_steps,
)
from core.nb101.params import count_parameters
from core.nb101.space import cell_spec
from core.ws.config import DATASETS

EMBEDDED = TimingRecipe(8, 2, 1, 1, 8, 64)  # the embedded default's network, batch and digits
THESIS = TimingRecipe(16, 3, 3, 3, 32, 256)


@pytest.fixture(scope="module")
def bench():
    return Benchmark.default()


def _measured(spec, recipe: TimingRecipe) -> dict:
    """Multiply-adds, pool window elements and parameters of the cells of the network PyTorch
    builds, counted with forward hooks (an independent count of what cell_features computes)."""
    net = NB101Network(spec, recipe.macro).eval()
    counts = dict.fromkeys(FEATURES[1:], 0.0)

    def conv_hook(kind):
        def hook(module, inputs, output):
            k = module.kernel_size[0]
            counts[kind] += output[0].numel() * module.in_channels * k * k

        return hook

    def pool_hook(module, inputs, output):
        counts["pool_elements"] += output[0].numel() * 9

    for cell in net.cells:
        if not hasattr(cell, "ops"):
            continue  # the 2x2 max-pool between stacks: the same in every network
        for conv in (m for m in cell.proj.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.register_forward_hook(conv_hook("projection_macs"))
        for op in cell.ops.values():
            if isinstance(op, torch.nn.MaxPool2d):
                op.register_forward_hook(pool_hook)
            else:
                conv = op[0]
                conv.register_forward_hook(conv_hook(f"conv{conv.kernel_size[0]}x{conv.kernel_size[0]}_macs"))
    with torch.no_grad():
        net(torch.zeros(1, recipe.in_channels, recipe.image_size, recipe.image_size))
    counts["parameters"] = count_trainable(net)
    return counts


@pytest.mark.parametrize("recipe", [EMBEDDED, THESIS], ids=["embedded", "thesis"])
def test_features_count_what_the_network_computes(bench, recipe):
    cells = bench.cells()
    ops = np.asarray(cells["ops"].combine_chunks().flatten()).reshape(cells.num_rows, -1)
    nv = cells["num_vertices"].to_numpy()
    rows = [int(np.flatnonzero(nv == n)[0]) for n in (2, 3, 4, 5)]  # every size
    rows += [int(np.flatnonzero((nv == 5) & (ops[:, :3] == op).all(axis=1))[0]) for op in (0, 1, 2)]
    features = cell_features(cells.take(rows), recipe)
    intercept_params = None
    for i, row in enumerate(rows):
        r = cells.slice(row, 1).to_pylist()[0]
        spec = cell_spec(r["adj_bits"], r["num_vertices"], ops[row].tolist())
        measured = _measured(spec, recipe)
        for name in ("conv3x3_macs", "conv1x1_macs", "projection_macs", "pool_elements"):
            assert features[i, FEATURES.index(name)] == measured[name], (row, name)
        # cell parameters + the same stem and classifier for every cell = the network's count
        stem_head = measured["parameters"] - features[i, FEATURES.index("parameters")]
        labels = [-1, *ops[row][: r["num_vertices"] - 2].tolist(), -2]
        assert measured["parameters"] == count_parameters(spec.matrix, labels, recipe.macro)
        intercept_params = stem_head if intercept_params is None else intercept_params
        assert stem_head == intercept_params
    assert (features[:, 0] == 1).all()


def test_stratified_sample_covers_every_stratum(bench):
    cells = bench.cells()
    picked = stratified_sample(cells, 60, seed=3)
    assert len(picked) == 60 and len(set(picked.tolist())) == 60
    np.testing.assert_array_equal(picked, stratified_sample(cells, 60, seed=3))
    s = structure_columns(cells).to_pandas()
    strata = set(zip(s.num_vertices, s.output_fan_in, s.input_to_output))
    assert set(zip(*(s.iloc[picked][c] for c in s.columns))) == strata  # the one 2-vertex cell too
    assert len(stratified_sample(cells, 10_000)) == cells.num_rows


def test_fitted_model_recovers_known_costs_and_reports_its_error(bench):
    cells = bench.cells()
    features = cell_features(cells, EMBEDDED)
    true_step = features @ np.array([2e-3, 3e-8, 5e-8, 1e-8, 0, 0, 1e-4, 0])
    true_forward = true_step / 3
    rows = stratified_sample(cells, 40, seed=0)
    timed = pa.table(
        {"hash": cells["hash"].take(rows), "forward_s": true_forward[rows], "step_s": true_step[rows]}
    ).append_column("step_sd", pa.array(np.zeros(40)))
    model = fit_model(features[rows], timed, holdout=0.25, seed=0)
    assert model.holdout["cells"] == 10 and model.holdout["mape"] < 1e-6 and model.holdout["spearman"] > 0.99
    forward, step = model.predict(features)
    np.testing.assert_allclose(step, true_step, rtol=1e-6)
    np.testing.assert_allclose(forward, true_forward, rtol=1e-6)

    noisy = timed.set_column(
        2, "step_s", pa.array(true_step[rows] * np.random.default_rng(0).uniform(0.5, 1.5, 40))
    )
    assert fit_model(features[rows], noisy, holdout=0.25).holdout["mape"] > 0.05  # noise shows up
    with pytest.raises(CostTableError, match="at least 10 timed cells"):
        fit_model(features[rows[:5]], timed.slice(0, 5))


def test_a_table_serves_timed_cells_and_refuses_or_predicts_the_others(bench, tmp_path):
    cells = bench.cells(subspace="A1")
    timed = pa.table(
        {
            "hash": cells["hash"],
            "forward_s": np.full(cells.num_rows, 0.002),
            "step_s": np.linspace(0.01, 0.02, cells.num_rows),
            "step_sd": np.zeros(cells.num_rows),
        }
    )
    table = CostTable(make_table(timed.slice(0, 300), EMBEDDED, "cpu: test"))
    forward, step, was_timed = table.seconds(cells.slice(0, 300))
    assert was_timed.all() and (forward == 0.002).all()
    np.testing.assert_array_equal(step, timed["step_s"].to_numpy()[:300])
    with pytest.raises(CostTableError, match="246 of 546 cells are not timed"):
        table.seconds(cells)
    features = cell_features(cells.slice(0, 300), EMBEDDED)
    model = fit_model(features, timed.slice(0, 300))
    fitted = CostTable(make_table(timed.slice(0, 300), EMBEDDED, "cpu: test", {"model": model.to_json()}))
    fitted.save(tmp_path / "c.parquet")
    again = CostTable.open(tmp_path / "c.parquet")
    assert again.fitted and again.recipe == EMBEDDED and again.identity == fitted.identity
    assert "FITTED" in again.describe() and "cpu: test" in again.describe()
    _, step, was_timed = again.seconds(cells)
    assert was_timed.sum() == 300 and np.isfinite(step).all() and (step > 0).all()
    changed = timed.slice(0, 300).set_column(2, "step_s", pa.array(np.full(300, 0.01)))
    assert CostTable(make_table(changed, EMBEDDED, "cpu: test")).identity != table.identity
    with pytest.raises(CostTableError, match="not a cost table"):
        CostTable(timed)


def test_timing_a_cell_measures_its_passes(bench):
    cells = bench.cells().slice(0, 2)
    table = time_cells(cells, EMBEDDED, "cpu", measures=2)
    assert table.column_names == ["hash", "forward_s", "step_s", "step_sd"]
    assert table["hash"].to_pylist() == cells["hash"].to_pylist()
    assert (table["forward_s"].to_numpy() > 0).all() and (table["step_s"].to_numpy() > 0).all()


def test_the_shipped_table_times_every_embedded_cell_as_long_as_its_training_took(bench):
    """The embedded default's calibrated clock: every cell timed on this project's CPU. Its cells'
    trainings take on average what the mini-benchmark's own trainings took on the same CPU
    (measured apart, with the optimiser and data loading: within 25%), and the more layers a
    network has, the longer its pass (a per-cell check the file's times cannot give: each cell's
    three repeats were trained back to back, so they share the machine's load of the moment)."""
    from cluster.nb101.config import EMBEDDED_RECIPE
    from cluster.nb101.costs import find_cost_table
    from core.ws.config import timing_recipe

    recipe = timing_recipe(EMBEDDED_RECIPE)
    assert recipe == EMBEDDED
    table = find_cost_table(recipe)
    cells = bench.cells()
    forward, step, timed = table.seconds(cells)
    assert timed.all() and not table.fitted and table.device.startswith("cpu: ")
    assert table.metadata["timer"] == "thread CPU time" and table.metadata["measures"] == "3"
    digits = DATASETS["digits"]
    training = step * training_steps(bench.final_epochs, digits.train, 64)
    training += forward * (digits.batches("validation", 64) + digits.batches("test", 64))
    measured = np.nanmean(bench.query(cells["hash"].to_pylist())["training_time"], axis=1)
    assert 0.75 < training.mean() / measured.mean() < 1.25
    layers = cell_features(cells, EMBEDDED)[:, FEATURES.index("layers")]
    assert spearmanr(layers, step).statistic > 0.4
