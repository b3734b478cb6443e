"""The ask/tell interface every optimiser implements, so one scheduler can drive them all.

`ask()` proposes a candidate (an NB-101 cell hash) or returns None when nothing can be
proposed until pending candidates are told; `tell(candidate, score)` reports a score (higher
is better). Several asks may be outstanding at once, which is how many workers share one
search. `finished` is True when the optimiser has nothing left to propose.
"""

from __future__ import annotations

from typing import Protocol


class Optimizer(Protocol):
    def ask(self) -> str | None: ...

    def tell(self, candidate: str, score: float) -> None: ...

    @property
    def finished(self) -> bool: ...

    def stats(self) -> dict:
        """Counters worth logging with the run (cells skipped, restarts, ...)."""
        ...
