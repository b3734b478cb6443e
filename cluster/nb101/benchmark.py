"""The benchmark a chapter-4 sweep searches: opened from the config, identified by its content,
and the sub-spaces it holds cells of."""

from __future__ import annotations

from pathlib import Path

from core.config import ConfigError
from core.keys import stable_key
from core.nb101.benchmark import Benchmark
from core.nb101.space import SUBSPACES

REAL_SUBSET = "real-subset"  # --benchmark value: the 151,644 real NB-101 cells shipped with the project
EMBEDDED = " (embedded default: NB-101 cells on digits, built by this project)"


def open_benchmark(spec: str | None) -> Benchmark:
    """None: the embedded mini-benchmark; 'real-subset': the real NB-101 cells shipped with the
    project; else a Parquet path."""
    if spec is None:
        return Benchmark.default()
    if spec == REAL_SUBSET:
        return Benchmark.real_subset()
    if not Path(spec).exists():
        raise ConfigError(f"benchmark: file not found: {spec}")
    return Benchmark.open(spec)


def describe(bench: Benchmark, spec: str | None) -> str:
    """The benchmark's source, saying so when it is the embedded default."""
    return f"{bench.source}{EMBEDDED if spec is None else ''}"


def benchmark_identity(bench: Benchmark) -> str:
    """A key for the benchmark's content, so units on different data never collide (`dataset`
    follows from `source_format`, already in the key: files written before it was recorded keep
    their key)."""
    skip = ("imported_at", "source", "build_seconds", "dataset")
    meta = {k: v for k, v in bench.metadata.items() if k not in skip}
    return stable_key(meta | {"rows": bench.table.num_rows, "epochs": bench.epochs})


def resolve_spaces(config, bench: Benchmark) -> list[str]:
    """The sub-spaces to search (`config.spaces`, else every one with cells); an explicitly
    requested empty one is an error."""
    sizes = {name: bench.best(name)["cells"] if _has(bench, name) else 0 for name in SUBSPACES}
    if config.spaces is None:
        return [name for name in SUBSPACES if sizes[name] > 0]
    empty = [s for s in config.spaces if sizes[s] == 0]
    if empty:
        raise ConfigError(f"spaces: {empty} have no cells in {bench.source}")
    return list(config.spaces)


def _has(bench: Benchmark, name: str) -> bool:
    try:
        bench.best(name)
        return True
    except ValueError:
        return False
