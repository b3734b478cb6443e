"""cluster/scheduler.py: readiness by dependency counts, and run_graph on a local Ray cluster
(dependencies, reuse of finished units, a unit relaunched when its pool actor dies, cycles)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster.scheduler import Node, Readiness, run_graph
from cluster.tracking import Tracker
from cluster.units import Unit, UnitResult


def _node(key: str, deps: tuple[str, ...] = ()) -> Node:
    return Node(Unit(key, key), launch=lambda *_: None, deps=deps)


def test_readiness_counts_dependencies_and_releases_dependents_once():
    # a -> b, a -> c, (b, c) -> d; d lists b twice: one unmet dependency, not two
    nodes = [_node("d", ("b", "c", "b")), _node("b", ("a",)), _node("c", ("a",)), _node("a"), _node("e")]
    r = Readiness(nodes, results={})
    assert [n.unit.key for n in r.ready] == ["a", "e"] and r.blocked == 3
    r.ready.clear()
    r.resolved("e")  # nobody waits on e
    assert not r.ready
    r.resolved("a")
    assert [n.unit.key for n in r.ready] == ["b", "c"]
    r.ready.clear()
    r.resolved("b")
    assert not r.ready and r.blocked == 1  # d still waits on c
    r.resolved("c")
    assert [n.unit.key for n in r.ready] == ["d"] and r.blocked == 0


def test_readiness_skips_units_with_results_and_their_met_dependencies():
    nodes = [_node("a"), _node("b", ("a",)), _node("c", ("b",))]
    r = Readiness(nodes, results={"a": object()})
    assert [n.unit.key for n in r.ready] == ["b"] and r.blocked == 1


def test_a_long_chain_is_released_one_unit_per_result():
    n = 20_000
    nodes = [_node("u0")] + [_node(f"u{i}", (f"u{i - 1}",)) for i in range(1, n)]
    r = Readiness(nodes, results={})
    order = []
    while r.ready:
        node = r.ready.popleft()
        order.append(node.unit.key)
        r.resolved(node.unit.key)
        assert len(r.ready) <= 1
    assert order == [f"u{i}" for i in range(n)] and r.blocked == 0


def _add(unit: Unit, inputs: dict) -> UnitResult:
    """A unit's value: its own number plus its dependencies' values."""
    value = unit.params["n"] + sum(r.metrics["value"] for r in inputs.values())
    return UnitResult(unit.key, f"run-{unit.key}", {"value": value})


def test_run_graph_passes_results_along_and_reuses_finished_units(ray_cluster, tmp_path):
    import ray

    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "graph")
    parent = tracker.start_sweep("graph", "k", {})
    # "a" finished in an earlier run: read back, not launched
    tracker.log_unit(parent, "a", "a", {}, {"value": 1.0})
    task = ray.remote(_add).options(num_cpus=0)
    launched = []

    def launch(unit, deps):
        launched.append(unit.key)
        return task.remote(unit, deps)

    spec = {"a": ((), 1), "b": (("a",), 10), "c": (("a",), 100), "d": (("b", "c"), 1000), "e": ((), 5)}
    nodes = [Node(Unit(k, k, {"n": n}), launch, deps) for k, (deps, n) in spec.items()]
    outcome = run_graph(nodes, tracker, "graph")
    assert outcome.skipped == {"a": tracker.finished_units()["a"]} and outcome.results["a"].reused
    assert sorted(launched) == ["b", "c", "d", "e"] and launched.index("d") > launched.index("b")
    values = {k: r.metrics["value"] for k, r in outcome.results.items()}
    assert values == {"a": 1, "b": 11, "c": 101, "d": 11 + 101 + 1000, "e": 5}
    assert outcome.ran == {"b", "c", "d", "e"}


def test_run_graph_keeps_at_most_max_in_flight_units_launched_and_unfinished(ray_cluster, tmp_path):
    import ray

    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "capped")
    task = ray.remote(_add).options(num_cpus=0)
    count = {"launched": 0, "done": 0, "most": 0}

    def launch(unit, deps):
        count["launched"] += 1
        count["most"] = max(count["most"], count["launched"] - count["done"])
        return task.remote(unit, deps)

    def done(unit, result):
        count["done"] += 1

    nodes = [Node(Unit(f"u{i}", f"u{i}", {"n": i}), launch, done=done) for i in range(12)]
    outcome = run_graph(nodes, tracker, "capped", max_in_flight=3)
    assert {k: r.metrics["value"] for k, r in outcome.results.items()} == {f"u{i}": i for i in range(12)}
    assert count["launched"] == 12 and count["most"] == 3  # uncapped, all 12 go out before any result
    with pytest.raises(ValueError, match="max_in_flight must be at least 1"):
        run_graph(nodes, tracker, max_in_flight=0)


def test_run_graph_refuses_cycles_and_unknown_dependencies(ray_cluster, tmp_path):
    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "cycle")
    cyclic = [_node("a", ("b",)), _node("b", ("a",))]
    with pytest.raises(RuntimeError, match="2 units can never start"):
        run_graph(cyclic, tracker)
    with pytest.raises(ValueError, match="unknown units"):
        run_graph([_node("a", ("z",))], tracker)


class _Dies:
    """An actor whose first call for a unit kills its process (the marker file says it happened)."""

    def run(self, unit: Unit, marker: str) -> UnitResult:
        if not Path(marker).exists():
            Path(marker).write_text("died")
            os._exit(3)
        return UnitResult(unit.key, "r", {"pid": float(os.getpid())})


def test_a_unit_whose_pool_actor_dies_is_launched_again_on_a_fresh_member(ray_cluster, tmp_path):
    import ray

    from cluster.pools import ActorPool

    pool = ActorPool(ray.remote(_Dies), 1, {"num_cpus": 0, "max_restarts": 0})
    marker = tmp_path / "died"
    try:
        first = pool.get(0)
        node = Node(Unit("x", "x"), lambda unit, _d: pool.call("run", unit, str(marker)), pool=pool)
        outcome = run_graph([node], Tracker(f"file:{tmp_path / 'mlruns'}", "relaunch"))
        assert marker.exists() and outcome.results["x"].metrics["pid"] > 0
        assert pool.get(0) is not first  # replaced by `failed`
    finally:
        pool.close()


def test_an_actor_lost_to_a_crash_or_the_memory_monitor_is_relaunched_a_unit_error_is_not():
    import ray

    from cluster.scheduler import _actor_died

    assert _actor_died(ray.exceptions.ActorDiedError())
    assert _actor_died(ray.exceptions.OutOfMemoryError("the memory monitor killed the worker"))
    assert not _actor_died(ValueError("the unit's own bug"))
    assert not _actor_died(ray.exceptions.RayTaskError("f", "traceback", ValueError("bug")))
