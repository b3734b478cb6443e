"""The (1+1)-ES over OFA genomes: start point, BSO mutation schedule, selection, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search.es import CheckpointError, ESConfig, OnePlusOneES, mutation_probability
from search.ofa_space import OFA_REFERENCE, validate


def fitness(genome) -> float:
    """A deterministic landscape: deeper stages and kernel 7 are good."""
    g = np.asarray(genome)
    return float(g[:5].sum() * 0.01 + (g[5:25] == 7).sum() * 0.004 + (g[25:] == 6).sum() * 0.002)


def distance(a, b) -> int:
    return int(sum(x != y for x, y in zip(a, b)))


def drive(es: OnePlusOneES, stop_after_tells: int | None = None) -> list:
    """The driver's protocol: `num_workers` in flight, tells in ask order, refill after each tell."""
    while es.asked < es.budget and len(es.pending) < es.num_workers:
        es.ask()
    while not es.finished:
        if stop_after_tells is not None and es.told == stop_after_tells:
            return [p.candidate for p in es.proposals]
        p = es.pending[0]
        es.tell(p, fitness(p.candidate))
        while es.asked < es.budget and len(es.pending) < es.num_workers:
            es.ask()
    return [p.candidate for p in es.proposals]


def test_first_candidate_is_the_best_ofa_imagenet_net():
    es = OnePlusOneES(budget=10, num_workers=3, seed=5)
    first = es.ask()
    assert first.index == 0 and first.candidate == OFA_REFERENCE.genome
    assert first.info["mutation_probability"] == 0


def test_mutation_probability_decays_from_1_to_1_over_45():
    p = [mutation_probability(i, 100) for i in range(1, 100)]
    assert p[0] == pytest.approx(44 / 45) and p[-1] == pytest.approx(1 / 45)
    assert all(a >= b for a, b in zip(p, p[1:]))
    assert mutation_probability(50, 100) == pytest.approx(22 / 45)
    assert mutation_probability(7, 100, "discrete") == pytest.approx(1 / 45)


def test_mutated_genes_follow_the_schedule():
    """The start keeps the best score, so every child is a mutation of it: early children differ
    in nearly every gene (p ~ 1: a mutated gene always takes another value), late ones in ~1."""
    es = OnePlusOneES(budget=100, num_workers=1, seed=0)
    start = es.ask()
    es.tell(start.index, 1.0)
    counts = []
    for _ in range(99):
        p = es.ask()
        counts.append(distance(p.candidate, start.candidate))
        es.tell(p.index, 0.0)
    assert np.mean(counts[:5]) >= 38
    assert 15 <= np.mean(counts[45:55]) <= 30  # p = 22/45 halfway
    assert np.mean(counts[-10:]) <= 3 and min(counts) >= 1


def test_a_better_child_becomes_the_parent():
    es = OnePlusOneES(budget=40, num_workers=1, seed=1, mutation="discrete")
    start = es.ask()
    es.tell(start.index, 0.5)
    child = es.ask()
    es.tell(child.index, 0.9)  # better: the search moves there
    nxt = es.ask()
    assert (
        distance(nxt.candidate, child.candidate) < distance(nxt.candidate, start.candidate)
        or distance(child.candidate, start.candidate) <= 2
    )
    assert distance(nxt.candidate, child.candidate) <= 4
    assert es.best()[0].index == child.index and es.best()[1] == 0.9


def test_exactly_the_budget_is_told_and_misuse_is_refused():
    es = OnePlusOneES(budget=6, num_workers=2, seed=0)
    drive(es)
    assert es.told == es.num_tell == 6 and es.finished
    with pytest.raises(RuntimeError, match="budget"):
        es.ask()
    with pytest.raises(ValueError, match="already told"):
        es.tell(0, 0.1)
    fresh = OnePlusOneES(budget=3)
    p = fresh.ask()
    with pytest.raises(ValueError, match="finite"):
        fresh.tell(p.index, float("nan"))
    with pytest.raises(ValueError, match="never asked"):
        fresh.tell(2, 0.1)


@pytest.mark.parametrize("stop", [0, 1, 7, 18, 29])
def test_restored_search_proposes_what_the_uninterrupted_one_would(stop):
    uninterrupted = drive(OnePlusOneES(budget=30, num_workers=3, seed=11))
    es = OnePlusOneES(budget=30, num_workers=3, seed=11)
    drive(es, stop_after_tells=stop)
    text = es.to_json()
    state = json.loads(text)  # plain data: no pickle anywhere
    assert state["format"] == "ofa-es-checkpoint/1" and state["optimizer"] == "DiscreteBSOOnePlusOne"
    restored = OnePlusOneES.from_json(text)
    assert restored.told == stop and restored.num_tell == stop
    assert [p.index for p in restored.pending] == [p.index for p in es.pending]  # relaunched, not re-asked
    assert drive(restored) == uninterrupted
    assert restored.told == 30


def test_another_seed_gives_another_search():
    assert drive(OnePlusOneES(budget=12, num_workers=2, seed=1)) != drive(
        OnePlusOneES(budget=12, num_workers=2, seed=2)
    )


def test_tampered_or_foreign_checkpoints_are_refused():
    es = OnePlusOneES(budget=10, num_workers=2, seed=3)
    drive(es, stop_after_tells=4)
    state = es.state()
    edited = json.loads(json.dumps(state))
    ask = next(e for e in edited["events"] if e[0] == "ask" and e[1] == 3)
    ask[2][0] = 2 if ask[2][0] != 2 else 3
    with pytest.raises(CheckpointError, match="replaying ask #3"):
        OnePlusOneES.from_state(edited)
    with pytest.raises(CheckpointError, match="format"):
        OnePlusOneES.from_state({"format": "pickle"})
    with pytest.raises(CheckpointError, match="JSON"):
        OnePlusOneES.from_json(b"\x80\x04\x95 not json")
    bad_tell = json.loads(json.dumps(state))
    bad_tell["events"].append(["tell", 99, 0.5])
    with pytest.raises(CheckpointError, match="candidate 99"):
        OnePlusOneES.from_state(bad_tell)


def test_config_defaults_are_the_thesis():
    c = ESConfig()
    assert (c.budget, c.mutation, c.start, c.tell_order) == (100, "discreteBSO", "ofa-reference", "ask")
    assert c.start_genome() == OFA_REFERENCE.genome
    custom = ESConfig(start=[2] * 5 + [3] * 40)
    assert custom.start_genome() == validate([2] * 5 + [3] * 40)
    with pytest.raises(ValueError, match="gene 0"):
        ESConfig(start=[5] * 45)
