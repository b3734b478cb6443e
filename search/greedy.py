"""Greedy local search (thesis 4.3.3): climb to the best neighbour, restart at a fixed point.

From a random cell, every neighbour (core.nb101.neighbours) is evaluated and the search moves
to the best one; when the best neighbour is the cell itself (a fixed point) it restarts from
a new random cell. A cell already evaluated is never paid twice: its score is reused.
Neighbours outside the sub-space are not part of the search; neighbours inside it that the
benchmark does not tabulate (a partial benchmark) are skipped and counted.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.nb101.neighbours import neighbours
from core.nb101.space import cell_spec
from search.base import Proposal, ProposalLog
from search.space_data import SUBSPACE_TESTS, SpaceData


@lru_cache(maxsize=20_000)
def neighbourhood(adj_bits: int, num_vertices: int, ops: tuple) -> tuple[tuple[str, int, bool], ...]:
    """(hash, output fan-in, input->output edge) of a cell's neighbours; cached because
    searches of many seeds climb through the same cells."""
    result = []
    for n in neighbours(cell_spec(adj_bits, num_vertices, ops)):
        result.append((n.hash, int(n.matrix[1:-1, -1].sum()), bool(n.matrix[0, -1])))
    return tuple(result)


class GreedySearch(ProposalLog):
    def __init__(self, space: SpaceData, seed: int):
        super().__init__()
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.scores: dict[str, float] = {}
        self.proposed: set[str] = set()
        self.current: str | None = None
        self.neighbourhood: list[str] = []
        self.counters = {"restarts": 0, "moves": 0, "skipped_untabulated": 0, "reused_scores": 0}
        self._starts = self.rng.permutation(len(space))
        self._next_start = 0
        self._pending_start: str | None = None

    # ---- ask/tell --------------------------------------------------------------------
    def ask(self) -> Proposal[str] | None:
        while True:
            if self.current is None:
                if self._pending_start is not None:
                    return None  # the new start's score must be told first
                start = self._random_start()
                return None if start is None else self._propose(start)
            waiting = [h for h in self.neighbourhood if h not in self.scores]
            fresh = [h for h in waiting if h not in self.proposed]
            if fresh:
                return self._propose(fresh[0])
            if waiting:
                return None  # outstanding evaluations must be told first
            self._move()

    def tell(self, proposal: Proposal | int, score: float) -> None:
        candidate = self._settle(proposal).candidate
        self.scores[candidate] = float(score)
        if candidate == self._pending_start:
            self._pending_start = None
            self._enter(candidate)

    @property
    def finished(self) -> bool:
        return self.current is None and self._pending_start is None and self._next_start >= len(self._starts)

    def stats(self) -> dict:
        return dict(self.counters)

    # ---- the climb -------------------------------------------------------------------
    def _propose(self, cell: str) -> Proposal[str]:
        self.proposed.add(cell)
        return super()._propose(cell)

    def _random_start(self) -> str | None:
        """A random cell not evaluated yet; None when every cell has been evaluated."""
        while self._next_start < len(self._starts):
            cell = str(self.space.hashes[self._starts[self._next_start]])
            self._next_start += 1
            if cell in self.scores or cell in self.proposed:
                continue
            self.counters["restarts"] += 1
            self._pending_start = cell
            return cell
        return None

    def _enter(self, cell: str) -> None:
        """Make `cell` the current cell and list its tabulated in-space neighbours."""
        self.current = cell
        row = self.space.row(cell)
        ops = tuple(self.space.ops[row].tolist())
        belongs = SUBSPACE_TESTS[self.space.name]
        hood = []
        for h, fan_in, residual in neighbourhood(
            int(self.space.adj_bits[row]), int(self.space.num_vertices[row]), ops
        ):
            if self.space.row(h) is not None:
                hood.append(h)
            elif belongs(fan_in, residual):
                self.counters["skipped_untabulated"] += 1
        self.counters["reused_scores"] += sum(1 for h in hood if h in self.scores and h != cell)
        self.neighbourhood = hood

    def _move(self) -> None:
        best = max(self.neighbourhood, key=lambda h: (self.scores[h], h == self.current))
        if best == self.current:  # fixed point: restart
            self.current = None
            self.neighbourhood = []
        else:
            self.counters["moves"] += 1
            self._enter(best)
