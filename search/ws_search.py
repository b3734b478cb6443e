"""Weight-sharing search (thesis 4.3.3): maximise the supernet's proxy, then train the best cells.

RS_ws / GS_ws drive the same optimisers as the baselines, scored by a proxy (BNS-FT accuracy
from a trained supernet) instead of the benchmark. Candidates are asked in batches (a GS
neighbourhood at once) so one call scores many cells. Afterwards the visited cells are ranked
by proxy and "trained" in that order: each reveals its benchmark accuracy and costs its
benchmark training time. The clock starts with the supernet's training time and counts every
proxy evaluation, so regrets compare with the baselines on the same time axis.
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


def train_ranked(
    found: ProxySearch,
    space: SpaceData,
    start_time: float,
    trained_cells: int,
    seed: int,
    validation: str = "sample",
) -> pa.Table:
    """Train the `trained_cells` best cells by proxy, best first: the WS regret trajectory.

    `sim_time` starts at `start_time` (supernet training + proxy evaluations) and adds each
    trained cell's benchmark training time; regret is eq. 4.1 over the trained cells.
    """
    order = np.argsort(-found.proxies, kind="stable")[:trained_cells]
    evaluate = Evaluator(space, validation, seed=seed + 2_000_003)
    picked = [found.hashes[i] for i in order]
    values = [evaluate(h) for h in picked]
    costs = [v[2] for v in values]
    costs[0] += start_time
    table = trajectory_table(picked, [v[0] for v in values], [v[1] for v in values], costs, space.best_test)
    return table.append_column("proxy", pa.array(found.proxies[order]))
