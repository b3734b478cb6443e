"""Random search: unique cells of a space drawn uniformly without replacement."""

from __future__ import annotations

import numpy as np


class RandomSearch:
    """Proposes the cells of `hashes` in a seeded random order, each once."""

    def __init__(self, hashes, seed: int):
        self._order = np.random.default_rng(seed).permutation(len(hashes))
        self._hashes = hashes
        self._next = 0

    def ask(self) -> str | None:
        if self._next >= len(self._order):
            return None
        cell = self._hashes[self._order[self._next]]
        self._next += 1
        return str(cell)

    def tell(self, candidate: str, score: float) -> None:
        """Random search ignores scores."""

    @property
    def finished(self) -> bool:
        return self._next >= len(self._order)

    def stats(self) -> dict:
        return {"proposed": self._next}
