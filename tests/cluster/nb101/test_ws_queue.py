"""WS searches queue per evaluator: each is launched with the ref of the search launched
SEARCHES_PER_EVALUATOR before it on the same evaluator, so Ray gives at most that many a worker
process at once (36 at once ran a 24 GB machine out of memory). Checked on the launch arguments,
without Ray: what Ray does with a ref argument (no worker before it is ready) is Ray's contract."""

from __future__ import annotations

import itertools

import pytest

from cluster.nb101 import sweep as sweep_module
from cluster.nb101.benchmark import benchmark_identity, open_benchmark
from cluster.nb101.config import SWEEP_PRESETS, SweepConfig
from cluster.nb101.sweep import SEARCHES_PER_EVALUATOR, Sweep


class _Evaluators:
    """Stands for the study's evaluator pool: `evaluators` members, picked by a stable hash."""

    def __init__(self, evaluators: int):
        self.size = evaluators

    def pick(self, key: str) -> int:
        return sum(map(ord, key)) % self.size

    def get(self, index: int) -> str:
        return f"evaluator-{index}"


class _Task:
    """Stands for `ray.remote(fn).options(...)`: records each launch's arguments, returns a ref."""

    def __init__(self, launches: list):
        self.launches, self.refs = launches, itertools.count()

    def options(self, **_kwargs):
        return self

    def remote(self, *args):
        ref = f"ref-{next(self.refs)}"
        self.launches.append((ref, args))
        return ref


@pytest.mark.parametrize("evaluators", [1, 3])
def test_each_search_queues_behind_the_one_launched_two_before_on_its_evaluator(monkeypatch, evaluators):
    smoke = {"preset": "smoke", "ws_seeds": 4, "spaces": ["A1", "A2"]}  # 8 supernets, 16 WS searches
    config = SWEEP_PRESETS.resolve(SweepConfig, overrides=smoke)
    bench = open_benchmark(config.benchmark)
    plan = Sweep(config, bench, config.spaces, benchmark_identity(bench))
    plan.study.evaluators = _Evaluators(evaluators)
    plan._shared = ("spaces", "steps", "proxies")
    launches: list = []
    task = _Task(launches)
    monkeypatch.setattr(sweep_module.ray, "remote", lambda _fn: task)

    for unit in plan.ws_units:
        plan.launch_ws(unit, {unit.params["supernet"]: "supernet-result"})

    assert len(launches) == len(plan.ws_units) == 16
    by_evaluator: dict[str, list] = {}
    for ref, args in launches:
        evaluator, behind = args[4], args[-1]
        by_evaluator.setdefault(evaluator, []).append((ref, behind))
    assert len(by_evaluator) == min(evaluators, len(plan.study.recipes))
    for queue in by_evaluator.values():
        refs = [ref for ref, _ in queue]
        expected = [None] * SEARCHES_PER_EVALUATOR + refs[:-SEARCHES_PER_EVALUATOR]
        assert [behind for _, behind in queue] == expected[: len(queue)]
