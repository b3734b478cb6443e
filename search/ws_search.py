"""Weight-sharing search (thesis 4.3.3): maximise the supernet's proxy, then evaluate every
visited cell, best proxy first.

RS_ws / GS_ws drive the same optimisers as the baselines, scored by a proxy (BNS-FT accuracy
from a trained supernet) instead of the benchmark. Candidates are asked in batches (a GS
neighbourhood at once) so one call scores many cells; `score` returns the proxies and the
seconds the clock charges for them. Afterwards every visited cell is "trained" in decreasing
proxy order (thesis: "we evaluate the 10,000 intermediate models considered during the WS
searches in order of decreasing proxy accuracy"): each reveals its benchmark accuracy and costs
its training time on the space's clock. The clock starts at `start_time` (the supernet's
training and every proxy evaluation), so the first row is the one-shot pick: its time is what
a WS run spends before its first real evaluation, its regret what it finds then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from search.driver import Driver
from search.regret import Evaluator, trajectory_table
from search.runner import make_optimizer
from search.space_data import SpaceData


@dataclass
class ProxySearch:
    hashes: list[str]  # visited cells, in evaluation order
    proxies: np.ndarray
    seconds: float  # proxy-evaluation time charged to the clock
    stats: dict


def search_proxy(
    method: str,
    space: SpaceData,
    seed: int,
    budget: int,
    score: Callable[[list[str]], tuple[np.ndarray, float]],
    batch: int = 256,
) -> ProxySearch:
    """Run RS or GS on the proxy for `budget` evaluations; `score(hashes) -> (proxies, seconds)`."""
    optimizer = make_optimizer(method, space, seed)
    seconds = 0.0

    def evaluate(proposals) -> list[float]:
        nonlocal seconds
        values, cost = score([p.candidate for p in proposals])
        seconds += cost
        return [float(v) for v in values]

    told = Driver(optimizer, budget, parallelism=batch, batch=True).run(evaluate)
    hashes = [t.proposal.candidate for t in told]
    stats = optimizer.stats() | {"proxy_evaluations": len(hashes), "proxy_seconds": seconds}
    return ProxySearch(hashes, np.asarray([t.score for t in told]), seconds, stats)


def proxy_order(found: ProxySearch) -> np.ndarray:
    """Indices of the distinct visited cells, best proxy first (the first visit on ties)."""
    _, first = np.unique(np.asarray(found.hashes), return_index=True)
    first = np.sort(first)
    return first[np.argsort(-found.proxies[first], kind="stable")]


def train_ranked(
    found: ProxySearch,
    space: SpaceData,
    start_time: float,
    seed: int,
    validation: str = "sample",
    limit: int | None = None,
) -> pa.Table:
    """Evaluate the visited cells on the benchmark, best proxy first: the WS regret trajectory.

    Every distinct visited cell is evaluated (`limit`: only the first ones). `sim_time` starts at
    `start_time` and adds each cell's training time on the space's clock (`space.training_time`);
    regret is eq. 4.1 over the evaluated cells; `proxy` is the cell's proxy.
    """
    order = proxy_order(found)[:limit]
    evaluate = Evaluator(space, validation, seed=seed + 2_000_003)
    picked = [found.hashes[i] for i in order]
    values = [evaluate(h) for h in picked]
    costs = [v[2] for v in values]
    costs[0] += start_time
    table = trajectory_table(picked, [v[0] for v in values], [v[1] for v in values], costs, space.best_test)
    return table.append_column("proxy", pa.array(found.proxies[order]))
