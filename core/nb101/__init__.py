"""NAS-Bench-101 without TensorFlow: cells, hashing, the space, neighbourhoods, the benchmark store."""

from core.nb101.benchmark import Benchmark
from core.nb101.hashing import hash_many, hash_module
from core.nb101.neighbours import neighbours
from core.nb101.params import Macro, count_parameters, vertex_channels
from core.nb101.space import SUBSPACES, cell_spec, encode_matrix, enumerate_space, subspace
from core.nb101.spec import OPS, CellSpec

__all__ = [
    "OPS",
    "SUBSPACES",
    "Benchmark",
    "CellSpec",
    "Macro",
    "cell_spec",
    "count_parameters",
    "encode_matrix",
    "enumerate_space",
    "hash_many",
    "hash_module",
    "neighbours",
    "subspace",
    "vertex_channels",
]
