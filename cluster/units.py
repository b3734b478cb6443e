"""The currency of a sweep: a unit of work and the result it leaves in MLflow.

A `Unit` is what to run (a stable key, a name, its params); a `UnitResult` is what it produced
(its run, metrics and tables). Every workload returns the same result type, and a unit finished
in an earlier run is read back into the same type, so reports never ask which of the two it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class Unit:
    key: str
    name: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class UnitResult:
    """A finished unit: its run, summary metrics and the tables its report needs.

    `info` holds facts about this attempt only (device, worker cluster, retries): they are not
    read back when the unit is reused, and `reused` says whether it was.
    """

    key: str
    run_id: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    tables: Mapping[str, pa.Table] = field(default_factory=dict)
    info: Mapping[str, object] = field(default_factory=dict)
    reused: bool = False

    def table(self, name: str) -> pa.Table:
        """A table by artifact name; a clear error when the unit does not hold it."""
        if name not in self.tables:
            held = sorted(self.tables)
            raise KeyError(f"unit {self.key} (run {self.run_id}) has no table {name!r}; it holds {held}")
        return self.tables[name]
