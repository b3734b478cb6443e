"""The one ask/tell driver: parallel ES in ask order whatever the timing, resume from a checkpoint,
completion order, batches, exhaustion, misuse."""

from __future__ import annotations

import random

import numpy as np
import pytest

from search.driver import Driver
from search.es import OnePlusOneES
from search.random_search import RandomSearch


def fitness(genome) -> float:
    g = np.asarray(genome)
    return float(g[:5].sum() * 0.01 + (g[5:25] == 7).sum() * 0.004 + (g[25:] == 6).sum() * 0.002)


class Shuffled:
    """Workers that finish the submitted proposals one at a time, in a seeded random order."""

    def __init__(self, seed: int):
        self.rng, self.running, self.submitted = random.Random(seed), [], []

    def submit(self, proposals) -> None:
        self.running += proposals
        self.submitted += [p.index for p in proposals]

    def wait(self):
        self.rng.shuffle(self.running)
        p = self.running.pop()
        return [(p.index, fitness(p.candidate))]


def in_order(budget: int, workers: int, seed: int) -> list:
    """The search when every result arrives at once, in ask order (evaluated inline)."""
    es = OnePlusOneES(budget=budget, num_workers=workers, seed=seed)
    Driver(es, budget, workers).run(lambda proposals: [fitness(p.candidate) for p in proposals])
    return [p.candidate for p in es.proposals]


def test_parallel_es_in_ask_order_is_the_same_search_whatever_the_timing():
    reference = in_order(24, 4, seed=3)
    for seed in (1, 2):
        es = OnePlusOneES(budget=24, num_workers=4, seed=3)
        workers = Shuffled(seed)
        told = Driver(es, es.budget, parallelism=4).run(submit=workers.submit, wait=workers.wait)
        assert [p.candidate for p in es.proposals] == reference
        assert [t.proposal.index for t in told] == list(range(24))  # told in ask order
        assert workers.submitted == list(range(24)) and es.told == 24


class Stop(Exception):
    pass


def test_a_search_stopped_after_a_tell_resumes_from_its_checkpoint_identically():
    reference = in_order(20, 3, seed=9)
    es = OnePlusOneES(budget=20, num_workers=3, seed=9)
    saved = {}

    def checkpoint(told):
        saved["state"] = es.state()
        if es.told == 7:
            raise Stop

    workers = Shuffled(4)
    with pytest.raises(Stop):
        Driver(es, 20, 3, after_tell=checkpoint).run(submit=workers.submit, wait=workers.wait)
    restored = OnePlusOneES.from_state(saved["state"])
    assert restored.told == 7 and [p.index for p in restored.pending] == [7, 8, 9]  # asked after tell 7
    workers = Shuffled(5)
    told = Driver(restored, 20, 3).run(submit=workers.submit, wait=workers.wait)
    assert workers.submitted[:3] == [7, 8, 9]  # the ones in flight are submitted again first
    assert [t.proposal.index for t in told] == list(range(7, 20))
    assert [p.candidate for p in restored.proposals] == reference


def test_completion_order_tells_results_as_they_arrive():
    es = OnePlusOneES(budget=12, num_workers=3, seed=0)
    workers = Shuffled(0)
    told = Driver(es, 12, 3, tell_order="completion").run(submit=workers.submit, wait=workers.wait)
    assert sorted(t.proposal.index for t in told) == list(range(12)) and es.told == 12
    assert [t.proposal.index for t in told] != list(range(12))  # this seed finishes out of order


def test_batches_are_asked_whole_and_told_before_the_next():
    hashes = np.array([f"{i:032x}" for i in range(10)])
    batches = []

    def evaluate(proposals):
        batches.append([p.index for p in proposals])
        return [float(i) for i in range(len(proposals))]

    told = Driver(RandomSearch(hashes, 0), 8, parallelism=3, batch=True).run(evaluate)
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7]] and len(told) == 8


def test_an_exhausted_optimiser_ends_the_search_before_the_budget():
    hashes = np.array([f"{i:032x}" for i in range(5)])
    rs = RandomSearch(hashes, 1)
    told = Driver(rs, 10).run(lambda proposals: [0.5 for _ in proposals])
    assert len(told) == 5 and rs.finished and rs.told == 5
    assert sorted(t.proposal.candidate for t in told) == sorted(hashes.tolist())


def test_misuse_is_refused_with_a_reason():
    rs = RandomSearch(np.array(["a", "b"]), 0)
    with pytest.raises(ValueError, match="either evaluate or both"):
        Driver(rs, 2).run(lambda ps: [0.0] * len(ps), submit=lambda ps: None, wait=lambda: [])
    with pytest.raises(ValueError, match="1 outcomes for 2"):
        Driver(RandomSearch(np.array(["a", "b"]), 0), 2, parallelism=2).run(lambda ps: [0.0])
    with pytest.raises(RuntimeError, match="returned nothing"):
        Driver(RandomSearch(np.array(["a"]), 0), 1).run(submit=lambda ps: None, wait=lambda: [])
    with pytest.raises(ValueError, match="already told"):
        rs2 = RandomSearch(np.array(["a", "b"]), 0)
        p = rs2.ask()
        rs2.tell(p, 1.0)
        rs2.tell(p.index, 1.0)
