"""The weight-sharing search (search/ws_search.py) on hand-made proxies: what it visits, the
order it evaluates cells in, when its clock starts and what its regret is."""

from __future__ import annotations

import numpy as np
import pytest

from core.nb101.benchmark import Benchmark
from search.space_data import SpaceData
from search.ws_search import ProxySearch, proxy_order, search_proxy, train_ranked


@pytest.fixture(scope="module")
def space() -> SpaceData:
    return SpaceData.from_benchmark(Benchmark.default(), "A1")


def _perfect(space: SpaceData, seconds_each: float):
    """A proxy that is the benchmark's mean validation accuracy, `seconds_each` a cell."""
    calls = []

    def score(hashes):
        calls.append(len(hashes))
        rows = [space.row(h) for h in hashes]
        return np.nanmean(space.validation[rows], axis=1), seconds_each * len(hashes)

    return score, calls


@pytest.mark.parametrize("method", ["RS", "GS"])
def test_a_search_spends_its_budget_on_distinct_cells_and_charges_each(space, method):
    score, calls = _perfect(space, 2.0)
    found = search_proxy(method, space, seed=4, budget=60, score=score)
    assert len(found.hashes) == 60 == len(set(found.hashes)) == sum(calls)
    assert found.seconds == pytest.approx(120.0) and found.stats["proxy_seconds"] == pytest.approx(120.0)
    truth = np.nanmean(space.validation[[space.row(h) for h in found.hashes]], axis=1)
    np.testing.assert_array_equal(found.proxies, truth)
    if method == "GS":  # neighbourhoods are scored in batches, more than one cell a call
        assert max(calls) > 1


def test_every_visited_cell_is_evaluated_best_proxy_first_on_the_clock(space):
    score, _ = _perfect(space, 2.0)
    found = search_proxy("RS", space, seed=1, budget=50, score=score)
    start = 1000.0 + found.seconds  # a supernet's training, then the proxy evaluations
    trajectory = train_ranked(found, space, start, seed=1, validation="mean")
    assert trajectory.num_rows == 50
    proxies = trajectory["proxy"].to_numpy()
    assert (np.diff(proxies) <= 0).all() and proxies[0] == found.proxies.max()
    rows = [space.row(h) for h in trajectory["hash"].to_pylist()]
    training = np.nanmean(space.training_time[rows], axis=1)
    np.testing.assert_allclose(trajectory["sim_time"].to_numpy(), start + np.cumsum(training))
    # the proxy is the validation accuracy: the first pick stays the incumbent, the regret is its
    regret = trajectory["regret"].to_numpy()
    np.testing.assert_allclose(regret, space.best_test - space.test_mean[rows[0]])
    limited = train_ranked(found, space, start, seed=1, validation="mean", limit=5)
    assert limited["hash"].to_pylist() == trajectory["hash"].to_pylist()[:5]


def test_a_misleading_proxy_meets_a_better_cell_later(space):
    """A proxy ranking cells by their *lowest* validation: the first pick is the worst visited
    cell; then eq. 4.1 over the cells evaluated so far (the incumbent: the best validation yet)."""

    def score(hashes):
        rows = [space.row(h) for h in hashes]
        return -np.nanmean(space.validation[rows], axis=1), 0.0

    found = search_proxy("RS", space, seed=2, budget=40, score=score)
    trajectory = train_ranked(found, space, 0.0, seed=2, validation="mean")
    rows = [space.row(h) for h in trajectory["hash"].to_pylist()]
    validation = [np.nanmean(space.validation[r]) for r in rows]
    assert validation[0] == min(validation)
    best, expected = -1.0, []
    for r, v in zip(rows, validation):  # eq. 4.1 by hand
        if v > best:
            best, incumbent = v, r
        expected.append(space.best_test - space.test_mean[incumbent])
    np.testing.assert_allclose(trajectory["regret"].to_numpy(), expected)
    assert expected[-1] < expected[0]


def test_proxy_order_keeps_the_first_visit_of_a_cell_and_breaks_ties_by_visit():
    found = ProxySearch(["a", "b", "a", "c", "d"], np.array([0.5, 0.9, 0.7, 0.9, 0.1]), 0.0, {})
    assert proxy_order(found).tolist() == [1, 3, 0, 4]  # b and c tie (b first), a's first visit
