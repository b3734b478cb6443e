"""One ask/tell driver for every optimiser: sequential, batched or parallel searches in one loop.

The driver keeps up to `parallelism` proposals in flight and tells the optimiser each result
(`score(outcome)`), until `budget` results are told or the optimiser has nothing left to propose
while nothing is in flight. Results come from either

- `evaluate(proposals) -> outcomes`: a callable run here, in order (a benchmark lookup, a batch
  of proxy scores), or
- `submit(proposals)` and `wait() -> [(index, outcome), ...]`: workers elsewhere (`wait` blocks
  until at least one has finished).

`tell_order="ask"` tells results in the order they were asked, and each tell is followed by the
asks it makes room for, so proposal j is asked right after tell j - P whatever the timing: a
parallel search is then reproducible. `"completion"` tells results as they arrive. With
`batch=True` a whole batch is asked, evaluated and told before the next is asked (one call
scores a greedy neighbourhood). Proposals the optimiser holds as pending when the driver starts
(asked before an interruption, never told) are submitted again first. `after_tell` runs after
each tell and the asks that follow it (where a caller checkpoints the search).

Pure Python: no Ray, no MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from search.base import Optimizer, Proposal


@dataclass(frozen=True)
class Told:
    """One result told to the optimiser: the proposal, what its evaluation returned, its score."""

    proposal: Proposal
    outcome: object
    score: float


def _inline(evaluate: Callable[[list[Proposal]], list]) -> tuple[Callable, Callable]:
    """A submit/wait pair that evaluates each submitted batch at once, in this process."""
    done: list[tuple[int, object]] = []

    def submit(proposals: list[Proposal]) -> None:
        outcomes = list(evaluate(proposals))
        if len(outcomes) != len(proposals):
            raise ValueError(f"evaluate returned {len(outcomes)} outcomes for {len(proposals)} proposals")
        done.extend((p.index, o) for p, o in zip(proposals, outcomes))

    def wait() -> list[tuple[int, object]]:
        out = list(done)
        done.clear()
        return out

    return submit, wait


class Driver:
    """Runs `optimizer` to `budget` told results (see the module docstring)."""

    def __init__(
        self,
        optimizer: Optimizer,
        budget: int,
        parallelism: int = 1,
        *,
        batch: bool = False,
        tell_order: Literal["ask", "completion"] = "ask",
        score: Callable[[object], float] = float,
        after_tell: Callable[[Told], None] | None = None,
    ):
        if budget < 0 or parallelism < 1:
            raise ValueError(f"budget must be >= 0 and parallelism >= 1, got {budget}, {parallelism}")
        if tell_order not in ("ask", "completion"):
            raise ValueError(f"tell_order must be 'ask' or 'completion', got {tell_order!r}")
        self.optimizer, self.budget, self.parallelism = optimizer, budget, parallelism
        self.batch, self.tell_order, self.score, self.after_tell = batch, tell_order, score, after_tell
        self.told: list[Told] = []  # told by this driver, in tell order
        self._flight: dict[int, Proposal] = {}  # submitted, not told (ask order)
        self._ready: dict[int, object] = {}  # index -> outcome, not told (arrival order)
        self._submit: Callable | None = None
        self._wait: Callable | None = None

    @property
    def finished(self) -> bool:
        return self.optimizer.told >= self.budget

    def start(self, evaluate=None, *, submit=None, wait=None) -> None:
        """Submit the optimiser's pending proposals again, then fill the free slots."""
        if (evaluate is None) == (submit is None or wait is None):
            raise ValueError("give either evaluate or both submit and wait")
        self._submit, self._wait = _inline(evaluate) if evaluate is not None else (submit, wait)
        if self.finished:
            return
        again = self.optimizer.pending
        self._flight = {p.index: p for p in again}
        if again:
            self._submit(again)
        self._fill()

    def run(self, evaluate=None, *, submit=None, wait=None) -> list[Told]:
        """Drive the search to its end (starting it unless `start` was called); what was told."""
        if self._submit is None:
            self.start(evaluate, submit=submit, wait=wait)
        while not self.finished:
            self._tell_ready()
            if self.finished or not self._flight:
                break  # done, or nothing in flight and nothing left to ask
            arrived = self._wait()
            if not arrived:
                raise RuntimeError(
                    f"wait() returned nothing while {len(self._flight)} proposals are in flight"
                )
            for index, outcome in arrived:
                if index not in self._flight:
                    raise ValueError(f"wait() returned proposal {index}, which is not in flight")
                self._ready[index] = outcome
        return self.told

    def _fill(self) -> None:
        """Ask until `parallelism` proposals are in flight (batch: only once the last batch is told)."""
        if self.batch and self._flight:
            return
        asked = []
        while self.optimizer.asked < self.budget and len(self._flight) < self.parallelism:
            proposal = self.optimizer.ask()
            if proposal is None:
                break  # the optimiser waits for pending results, or is exhausted
            self._flight[proposal.index] = proposal
            asked.append(proposal)
        if asked:
            self._submit(asked)

    def _tell_ready(self) -> None:
        while self._ready and not self.finished:
            index = min(self._flight) if self.tell_order == "ask" else next(iter(self._ready))
            if index not in self._ready:
                return  # ask order: the oldest proposal in flight is not back yet
            proposal, outcome = self._flight.pop(index), self._ready.pop(index)
            score = float(self.score(outcome))
            self.optimizer.tell(proposal, score)
            told = Told(proposal, outcome, score)
            self.told.append(told)
            self._fill()
            if self.after_tell:
                self.after_tell(told)
