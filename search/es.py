"""The (1+1)-ES of thesis 5.3.4 over the OFA space, through nevergrad's ask/tell, with a safe checkpoint.

Genes are `ng.p.TransitionChoice` parameters (unordered: a mutated gene takes one of its *other*
values uniformly, which is what "each gene mutated with probability p" means; with nevergrad's
default ordered encoding only about half of the mutated genes change). The optimiser is
nevergrad's `DiscreteBSOOnePlusOne`: the child of the current best gets each of the 45 genes
mutated with probability p = max(1, floor(45 - 45 i / budget)) / 45 at ask i, decayed from 1 to
1/45 over the budget, as brainstorm optimisation does (`mutation_probability`). The first ask is
the start genome itself (the best OFA ImageNet network). `num_workers` is the number of
candidates in flight (one per worker cluster); scores are told as `-score` (nevergrad minimises).

Checkpoint: `state()` is plain JSON data (no pickle): the seed, the settings and the ordered log
of asks (genomes) and tells (scores). `OnePlusOneES.from_state` rebuilds the optimiser by
replaying that log into a fresh nevergrad optimiser seeded the same way: nevergrad's state
(current best, archive, random generator, ask counter) is a deterministic function of that
sequence, so the restored optimiser proposes exactly the candidates the uninterrupted one would
have. Every replayed ask is checked against the logged genome; a mismatch (another nevergrad
version, an edited file) is a `CheckpointError` rather than a silently different search. Nothing
is unpickled, so a checkpoint from anywhere is safe to load.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator

from core.config import Config
from search.base import Proposal, ProposalLog
from search.ofa_space import (
    DEPTHS,
    EXPANDS,
    KERNELS,
    N_BLOCKS,
    N_GENES,
    OFA_REFERENCE,
    STAGES,
    Genome,
    validate,
)

CHECKPOINT_FORMAT = "ofa-es-checkpoint/1"
OPTIMIZERS = {"discreteBSO": "DiscreteBSOOnePlusOne", "discrete": "DiscreteOnePlusOne"}


class ESConfig(Config):
    """The search's settings (thesis 5.3.4 defaults)."""

    budget: int = Field(100, ge=1, description="evaluations told to the optimiser")
    parallelism: int | None = Field(
        None, ge=1, description="candidates in flight (nevergrad num_workers); None: one per worker cluster"
    )
    mutation: Literal["discreteBSO", "discrete"] = Field(
        "discreteBSO", description="discreteBSO: p decays from 1 to 1/45; discrete: p = 1/45 throughout"
    )
    seed: int = 0
    start: Literal["ofa-reference"] | list[int] = Field(
        "ofa-reference", description="first candidate: the best OFA ImageNet net, or a 45-gene genome"
    )
    tell_order: Literal["ask", "completion"] = Field(
        "ask",
        description="ask: results are told in the order candidates were asked, so a run is reproducible "
        "whatever the timing; completion: as soon as each finishes (busier clusters, timing-dependent)",
    )

    @field_validator("start")
    @classmethod
    def _start(cls, start):
        if isinstance(start, list):
            validate(start)
        return start

    def start_genome(self) -> Genome:
        return OFA_REFERENCE.genome if self.start == "ofa-reference" else validate(self.start)


class CheckpointError(ValueError):
    """A search checkpoint that cannot be restored exactly; the message says why."""


def mutation_probability(
    index: int, budget: int, mutation: str = "discreteBSO", dimension: int = N_GENES
) -> float:
    """Per-gene mutation probability of ask `index` (nevergrad's schedule; 0 for the start point)."""
    if index == 0:
        return 0.0
    if mutation == "discrete":
        return 1.0 / dimension
    intensity = max(1, int(dimension - index * dimension / budget))
    return intensity / dimension


def _parametrization(start: Genome, seed: int):
    """Three repeated TransitionChoice genes (5 depths, 20 kernels, 20 expands): 45 dimensions, the
    same mutation semantics as 45 separate parameters and ten times less nevergrad overhead."""
    import nevergrad as ng

    groups = [(DEPTHS, 0, STAGES), (KERNELS, STAGES, N_BLOCKS), (EXPANDS, STAGES + N_BLOCKS, N_BLOCKS)]
    param = ng.p.Tuple(*(ng.p.TransitionChoice(list(c), repetitions=n, ordered=False) for c, _, n in groups))
    param.value = tuple(tuple(start[i : i + n]) for _, i, n in groups)
    param.random_state.seed(seed)
    return param


def _genome(value) -> Genome:
    return validate([x for group in value for x in group])


class OnePlusOneES(ProposalLog):
    """Ask/tell (1+1)-ES over OFA genomes; higher scores are better. A proposal's candidate is a
    genome (index 0: the start genome), its `info["mutation_probability"]` the schedule's p."""

    def __init__(
        self,
        budget: int,
        num_workers: int = 1,
        seed: int = 0,
        start: Sequence[int] = OFA_REFERENCE.genome,
        mutation: Literal["discreteBSO", "discrete"] = "discreteBSO",
    ):
        if budget < 1 or num_workers < 1:
            raise ValueError(f"budget and num_workers must be >= 1, got {budget}, {num_workers}")
        if mutation not in OPTIMIZERS:
            raise ValueError(f"mutation must be one of {list(OPTIMIZERS)}, got {mutation!r}")
        super().__init__()
        self.budget, self.num_workers, self.seed, self.mutation = budget, num_workers, seed, mutation
        self.start = validate(start)
        import nevergrad as ng  # here, not at module level: workers import this module without needing it

        optimizer = ng.optimizers.registry[OPTIMIZERS[mutation]]
        self._opt = optimizer(_parametrization(self.start, seed), budget=budget, num_workers=num_workers)
        self._candidates: dict[int, object] = {}  # index -> nevergrad candidate, until told
        self._proposals: list[Proposal] = []
        self._scores: dict[int, float] = {}
        self._events: list[list] = []

    @classmethod
    def from_config(cls, config: ESConfig, num_workers: int) -> OnePlusOneES:
        return cls(config.budget, num_workers, config.seed, config.start_genome(), config.mutation)

    # ---- ask / tell ----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.told >= self.budget

    @property
    def proposals(self) -> list[Proposal]:
        return list(self._proposals)

    @property
    def scores(self) -> dict[int, float]:
        return dict(self._scores)

    @property
    def num_tell(self) -> int:
        """Tells nevergrad itself counted (equals `told`)."""
        return int(self._opt.num_tell)

    def ask(self) -> Proposal[Genome]:
        if self.asked >= self.budget:
            raise RuntimeError(f"the budget of {self.budget} candidates is already asked")
        candidate = self._opt.ask()
        genome = _genome(candidate.value)
        p = mutation_probability(self.asked, self.budget, self.mutation)
        proposal = self._propose(genome, mutation_probability=p)
        self._candidates[proposal.index] = candidate
        self._proposals.append(proposal)
        self._events.append(["ask", proposal.index, list(genome)])
        return proposal

    def tell(self, proposal: Proposal | int, score: float) -> None:
        index = self._pending_proposal(proposal).index
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"candidate {index}: score must be finite, got {score}")
        self._settle(index)
        self._opt.tell(self._candidates.pop(index), -score)
        self._scores[index] = score
        self._events.append(["tell", index, score])

    def stats(self) -> dict:
        return {"asked": self.asked, "told": self.told}

    def best(self) -> tuple[Proposal, float] | None:
        """The told candidate with the highest score (the earliest on ties)."""
        if not self._scores:
            return None
        index = max(self._scores, key=lambda i: (self._scores[i], -i))
        return self._proposals[index], self._scores[index]

    # ---- checkpoint ------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything needed to continue this search, as JSON-compatible data."""
        import nevergrad as ng

        return {
            "format": CHECKPOINT_FORMAT,
            "optimizer": OPTIMIZERS[self.mutation],
            "nevergrad": ng.__version__,
            "budget": self.budget,
            "num_workers": self.num_workers,
            "seed": self.seed,
            "mutation": self.mutation,
            "start": list(self.start),
            "events": [list(e) for e in self._events],
        }

    def to_json(self) -> str:
        return json.dumps(self.state(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> OnePlusOneES:
        try:
            state = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"search checkpoint is not valid JSON ({err})") from None
        return cls.from_state(state)

    @classmethod
    def from_state(cls, state: dict) -> OnePlusOneES:
        """Rebuild by replaying the logged asks and tells; each replayed ask must match its log."""
        import nevergrad as ng

        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(
                f"not a search checkpoint of format {CHECKPOINT_FORMAT!r} (found {found!r})"
            )
        missing = [
            k for k in ("budget", "num_workers", "seed", "mutation", "start", "events") if k not in state
        ]
        if missing:
            raise CheckpointError(f"search checkpoint lacks {missing}")
        try:
            es = cls(state["budget"], state["num_workers"], state["seed"], state["start"], state["mutation"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"search checkpoint has invalid settings ({err})") from None
        for n, event in enumerate(state["events"]):
            if not (isinstance(event, list) and len(event) == 3 and event[0] in ("ask", "tell")):
                raise CheckpointError(f"search checkpoint event {n} is malformed: {event!r}")
            kind, index, value = event
            if kind == "ask":
                if index != es.asked:
                    raise CheckpointError(f"event {n}: ask #{index} logged where ask #{es.asked} was due")
                proposal = es.ask()
                if list(proposal.candidate) != list(value):
                    raise CheckpointError(
                        f"event {n}: replaying ask #{index} proposes {list(proposal.candidate)} but the "
                        f"checkpoint logged {value}; it was written by nevergrad {state.get('nevergrad')} "
                        f"(this is {ng.__version__}) or edited. Start a new search (another sweep name) "
                        "or use the nevergrad version that wrote it."
                    )
            else:
                try:
                    es.tell(index, value)
                except (ValueError, TypeError) as err:
                    raise CheckpointError(
                        f"event {n}: cannot replay tell of candidate {index} ({err})"
                    ) from None
        return es
