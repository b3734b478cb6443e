"""The ask/tell interface every optimiser implements, so one driver (search.driver) runs them all.

`ask()` returns a `Proposal`: a handle that numbers the candidate (0, 1, 2, ... in ask order) and
holds it (an NB-101 cell hash, an OFA genome) with what the optimiser says about it (the ES: its
mutation probability). It returns None when nothing can be proposed until pending candidates are
told, or ever again (`finished`). `tell(proposal or its index, score)` reports a score (higher is
better). Several asks may be outstanding at once, which is how many workers share one search;
`pending` lists them in ask order. `ProposalLog` is the numbering and checking every optimiser
shares: an optimiser inherits it and calls `_propose` and `_settle`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

C = TypeVar("C")


@dataclass(frozen=True)
class Proposal(Generic[C]):
    """One asked candidate: its ask index, the candidate, and the optimiser's notes on it
    (`info`, left out of equality and hashing)."""

    index: int
    candidate: C
    info: Mapping[str, float] = field(default_factory=dict, compare=False)


class Optimizer(Protocol):
    @property
    def asked(self) -> int: ...

    @property
    def told(self) -> int: ...

    @property
    def pending(self) -> list[Proposal]: ...  # asked, not yet told, in ask order

    @property
    def finished(self) -> bool: ...

    def ask(self) -> Proposal | None: ...

    def tell(self, proposal: Proposal | int, score: float) -> None: ...

    def stats(self) -> dict:
        """Counters worth logging with the run (cells skipped, restarts, ...)."""
        ...


class ProposalLog:
    """Numbers proposals in ask order and refuses a tell of one never asked or already told."""

    def __init__(self):
        self._asked = 0
        self._told = 0
        self._open: dict[int, Proposal] = {}  # index -> proposal, until told (ask order)

    @property
    def asked(self) -> int:
        return self._asked

    @property
    def told(self) -> int:
        return self._told

    @property
    def pending(self) -> list[Proposal]:
        """Asked and not yet told, in ask order."""
        return list(self._open.values())

    def _propose(self, candidate, **info: float) -> Proposal:
        proposal = Proposal(self._asked, candidate, info)
        self._open[proposal.index] = proposal
        self._asked += 1
        return proposal

    def _pending_proposal(self, handle: Proposal | int) -> Proposal:
        """The open proposal a tell names (by handle or index); a ValueError saying why not."""
        index = handle.index if isinstance(handle, Proposal) else handle
        if index not in self._open:
            state = "already told" if isinstance(index, int) and 0 <= index < self._asked else "never asked"
            raise ValueError(f"candidate {index} was {state}")
        return self._open[index]

    def _settle(self, handle: Proposal | int) -> Proposal:
        """Close the proposal a tell names; it is no longer pending."""
        proposal = self._pending_proposal(handle)
        del self._open[proposal.index]
        self._told += 1
        return proposal
