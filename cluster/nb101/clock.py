"""The clock a chapter-4 study charges its searches on: one device for every method (thesis 4.3.3).

- `calibrated`: a cost table (core/nb101/costs.py) times every cell's forward and backward pass
  on one device under the sweep's recipe. A cell's training = its step cost x the benchmark's
  passes (epochs x batches of the training split) + the forward passes scoring its validation
  and test splits; a supernet = the mean step cost of its space's cells x the supernet's passes
  (x3 for AVG-3: three paths a step); a BNS-FT proxy evaluation = the cell's forward cost x the
  batch-norm batch and the validation batches. The thesis' clock; the default of every preset
  but `smoke`.
- `benchmark`: the benchmark file's own training times (NB-101's: TPU seconds). Only for
  baseline-only studies: a WS search's supernet and proxies cannot be charged on it.
- `modelled`: the file's training times for cells, `supernet_seconds` per supernet and
  `proxy_seconds` per proxy evaluation, stated by the user in the file's units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from core.config import ConfigError
from core.nb101.benchmark import Benchmark
from core.nb101.costs import CostTable, CostTableError, training_steps
from core.ws.config import BN_BATCH, DATASETS, SupernetConfig, timing_recipe
from search.space_data import SpaceData

CLOCKS = ("calibrated", "benchmark", "modelled")
MIXED = (
    "would charge the baselines the benchmark file's training times (NB-101's are TPU seconds) and "
    "the WS searches supernets and proxies timed here: the mix thesis 4.3.3 refuses"
)


def check_clock(clock: str, searches_ws: bool) -> str:
    """A clock name a study may use (`benchmark` only without WS searches), else ValueError naming the fix."""
    if clock == "measured" or (clock == "benchmark" and searches_ws):
        raise ValueError(
            f"clock {clock!r} {MIXED}; use clock: calibrated (one cost table for every method, "
            "built by python jobs/nb101_costs.py) or clock: modelled with supernet_seconds and "
            "proxy_seconds in the file's units (clock: benchmark stays for baselines-only studies)"
        )
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; expected one of {list(CLOCKS)}")
    return clock


@dataclass(frozen=True)
class Clock:
    """What a study charges: `name` (CLOCKS), the cost table of a calibrated clock, and the
    numbers of a modelled one."""

    name: str
    table: CostTable | None = None
    bench: Benchmark | None = None
    supernet_seconds: float | None = None
    proxy_seconds: float | None = None
    _passes_of: dict = field(default_factory=dict, compare=False, repr=False)  # space -> pass costs

    @property
    def cell_identity(self) -> dict:
        """What a baseline search's key must hold: how a cell's training is charged (the
        benchmark and modelled clocks both charge the file's times: no key change)."""
        if self.name == "calibrated":  # without a table (a dry run saying so): no key to match
            return {"clock": "calibrated", "costs": self.table.identity if self.table else None}
        return {}

    @property
    def identity(self) -> dict:
        """What a WS search's key must hold so that results on another clock never collide."""
        if self.name == "calibrated":
            return self.cell_identity
        if self.name == "modelled":
            return {
                "clock": "modelled",
                "supernet_seconds": self.supernet_seconds,
                "proxy_seconds": self.proxy_seconds,
            }
        return {}

    def describe(self) -> str:
        """One line for the output: which clock, on what device, from which table."""
        if self.name == "calibrated":
            kind = "fitted" if self.table.fitted else "timed"
            return f"calibrated clock ({kind}): {_shown(self.table.source)}: {self.table.describe()}"
        if self.name == "modelled":
            return (
                f"modelled clock: the benchmark file's training times, {self.supernet_seconds:,.0f} s a "
                f"supernet, {self.proxy_seconds:g} s a proxy evaluation"
            )
        return "benchmark clock: the benchmark file's training times"

    # ---- seconds of each kind of work -------------------------------------------------------
    def _passes(self, space: SpaceData):
        """(forward_s, step_s, timed) of the space's cells, in its row order (computed once)."""
        if space.name not in self._passes_of:
            cells = self.bench.cells(subspace=space.name)
            if cells["hash"].to_pylist() != list(space.hashes):
                raise ValueError(
                    f"space {space.name}: cells differ from the benchmark's (another benchmark?)"
                )
            self._passes_of[space.name] = self.table.seconds(cells)
        return self._passes_of[space.name]

    def timed(self, space: SpaceData) -> SpaceData:
        """The space with each cell's training charged on this clock (every repeat alike); as it
        is for the benchmark and modelled clocks."""
        if self.name != "calibrated":
            return space
        forward, step, _ = self._passes(space)
        data = DATASETS[self.bench.dataset]
        batch = self.table.recipe.batch_size
        seconds = step * training_steps(self.bench.final_epochs, data.train, batch)
        seconds += forward * (data.batches("validation", batch) + data.batches("test", batch))
        charged = np.where(np.isnan(space.validation), np.nan, seconds[:, None])
        return dataclasses.replace(space, training_time=charged)

    def proxy(self, space: SpaceData) -> np.ndarray:
        """Seconds of one BNS-FT proxy evaluation of each cell of the space (row order)."""
        if self.name != "calibrated":
            return np.full(len(space), float(self.proxy_seconds or 0.0))
        forward, _, _ = self._passes(space)
        data = DATASETS[self.bench.dataset]
        batch = self.table.recipe.batch_size
        return forward * (-(-BN_BATCH // batch) + data.batches("validation", batch))

    def supernet(self, space: SpaceData, recipe: SupernetConfig) -> float:
        """Seconds of one supernet training of `recipe` on `space`."""
        if self.name == "modelled":
            return float(self.supernet_seconds)
        if self.name != "calibrated":
            raise ValueError(f"the {self.name} clock has no supernet time ({MIXED})")
        _, step, _ = self._passes(space)
        passes = training_steps(recipe.epochs, recipe.data.train, recipe.batch_size) * recipe.paths_per_step
        return float(np.mean(step) * passes)


def _shown(path: str) -> str:
    """A path inside the repository as a relative one (the shipped tables), others as they are."""
    from pathlib import Path

    from core.paths import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return path


def preset_recipe(dataset: str) -> dict:
    """The recipe of the preset made for a dataset: the embedded one on digits, the thesis' on CIFAR-10."""
    from cluster.nb101.config import EMBEDDED_RECIPE

    return EMBEDDED_RECIPE if dataset == "digits" else {"dataset": dataset}


def resolve_clock(config, bench: Benchmark, recipe: dict | None = None, required: bool = True) -> Clock:
    """The clock of a config (`clock`, `costs`, `supernet_seconds`, `proxy_seconds`) on `bench`;
    a calibrated clock without a table of the recipe is a ConfigError naming the command that
    builds it (with required=False, a Clock without table: a dry run says what is missing)."""
    from cluster.nb101.costs import build_command, find_cost_table

    if config.clock == "modelled":
        return Clock("modelled", None, bench, config.supernet_seconds, config.proxy_seconds)
    if config.clock != "calibrated":
        return Clock(config.clock, None, bench)
    if bench.dataset not in DATASETS:
        raise ConfigError(f"clock: calibrated needs the benchmark's dataset; {bench.source} records none")
    wanted = timing_recipe(recipe or preset_recipe(bench.dataset))
    try:
        table = find_cost_table(wanted, config.costs)
    except (CostTableError, FileNotFoundError) as err:
        raise ConfigError(f"costs: {err}") from None
    if table is None and required:
        preset = getattr(config, "preset", "default")
        raise ConfigError(
            f"clock: calibrated, but no cost table times {wanted.describe()} (recipe {wanted.key}); "
            f"build it with `{build_command(preset, config.benchmark)}` (add --sample N for a fitted "
            "one), or set costs=PATH"
        )
    return Clock("calibrated", table, bench)
