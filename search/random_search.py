"""Random search: unique cells of a space drawn uniformly without replacement."""

from __future__ import annotations

import numpy as np

from search.base import Proposal, ProposalLog


class RandomSearch(ProposalLog):
    """Proposes the cells of `hashes` in a seeded random order, each once."""

    def __init__(self, hashes, seed: int):
        super().__init__()
        self._order = np.random.default_rng(seed).permutation(len(hashes))
        self._hashes = hashes
        self._next = 0

    def ask(self) -> Proposal[str] | None:
        if self._next >= len(self._order):
            return None
        cell = self._hashes[self._order[self._next]]
        self._next += 1
        return self._propose(str(cell))

    def tell(self, proposal: Proposal | int, score: float) -> None:
        """Random search ignores scores."""
        self._settle(proposal)

    @property
    def finished(self) -> bool:
        return self._next >= len(self._order)

    def stats(self) -> dict:
        return {"proposed": self._next}
