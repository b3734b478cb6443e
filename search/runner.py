"""Run one search (one optimiser, one seed) on a tabular space: the unit of a baseline sweep."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from search.driver import Driver
from search.greedy import GreedySearch
from search.random_search import RandomSearch
from search.regret import Evaluator, trajectory_table
from search.space_data import SpaceData

METHODS = ("RS", "GS")


def make_optimizer(method: str, space: SpaceData, seed: int):
    """RS or GS over a space, seeded."""
    if method == "RS":
        return RandomSearch(space.hashes, seed)
    if method == "GS":
        return GreedySearch(space, seed)
    raise ValueError(f"unknown method {method!r}; expected one of {list(METHODS)}")


@dataclass
class SearchResult:
    trajectory: pa.Table
    stats: dict


def run_search(
    method: str, space: SpaceData, seed: int, budget: int, validation: str = "sample"
) -> SearchResult:
    """Ask, evaluate on the benchmark, tell, until `budget` evaluations or the space runs out."""
    if budget < 1:
        raise ValueError(f"budget must be positive, got {budget}")
    optimizer = make_optimizer(method, space, seed)
    lookup = Evaluator(space, validation, seed=seed + 1_000_003)  # (validation, test, seconds)
    driver = Driver(optimizer, budget, score=lambda outcome: outcome[0])
    told = driver.run(lambda proposals: [lookup(p.candidate) for p in proposals])
    hashes = [t.proposal.candidate for t in told]
    tests, costs = [t.outcome[1] for t in told], [t.outcome[2] for t in told]
    table = trajectory_table(hashes, [t.score for t in told], tests, costs, space.best_test)
    stats = optimizer.stats() | {
        "evaluations": len(hashes),
        "budget": budget,
        "exhausted": len(hashes) < budget,
        "space_cells": len(space),
    }
    return SearchResult(table, stats)
