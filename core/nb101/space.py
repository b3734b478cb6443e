"""The NB-101 search space as an Arrow table: every unique cell once, plus named sub-spaces.

Enumeration follows NB-101's `generate_graphs.py`: for each vertex count, every upper-triangular
bit pattern (bit `x + y*(y-1)/2` = edge x->y) with no dangling vertex and at most `max_edges`
edges, every labeling of the interior vertices, keep the first cell of each hash. The kept
(first) matrix is the one NB-101 stores, so `adj_bits`/`ops` equal the benchmark's own.
Hashing is one C call per block of cells (see hashing.py); the loop over cells never runs in
Python.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.nb101.hashing import hash_array
from core.nb101.params import Macro, network_coefficients
from core.nb101.spec import INPUT, INPUT_LABEL, MAX_EDGES, MAX_VERTICES, OPS, OUTPUT, OUTPUT_LABEL, CellSpec
from core.paths import cache_dir
from core.progress import Progress

SCHEMA_VERSION = 1
MAX_INTERIOR = MAX_VERTICES - 2
UNUSED_OP = 255
SUBSPACES = ("A1", "A2", "A3", "A4", "FULL", "RES", "NRES")
NUM_CELLS = 423_624  # unique cells of the whole space (7 vertices, 9 edges, 3 ops)
_CHUNK = 65_536

SCHEMA = pa.schema(
    [
        ("hash", pa.string()),
        ("num_vertices", pa.uint8()),
        ("num_edges", pa.uint8()),
        ("adj_bits", pa.uint32()),
        ("ops", pa.list_(pa.uint8(), MAX_INTERIOR)),
        ("output_fan_in", pa.uint8()),
        ("input_to_output", pa.bool_()),
        ("params_16", pa.uint32()),
        ("params_128", pa.uint32()),
    ]
)


def bit_index(src: int, dst: int) -> int:
    """Bit of edge src->dst (src < dst) in `adj_bits`, NB-101's column-major order."""
    return src + dst * (dst - 1) // 2


def encode_matrix(matrix) -> int:
    """Adjacency matrix -> `adj_bits` integer."""
    matrix = np.asarray(matrix)
    src, dst = np.nonzero(matrix)
    return int(sum(1 << bit_index(int(s), int(d)) for s, d in zip(src, dst)))


def decode_matrices(bits: np.ndarray, n: int) -> np.ndarray:
    """`adj_bits` values -> (len(bits), n, n) uint8 adjacency matrices."""
    bits = np.asarray(bits, dtype=np.uint32)
    out = np.zeros((len(bits), n, n), dtype=np.uint8)
    for dst in range(1, n):
        for src in range(dst):
            out[:, src, dst] = (bits >> bit_index(src, dst)) & 1
    return out


def cell_spec(adj_bits: int, num_vertices: int, ops) -> CellSpec:
    """A table row (adj_bits, num_vertices, ops) as a CellSpec."""
    matrix = decode_matrices(np.array([adj_bits]), num_vertices)[0]
    names = [INPUT] + [OPS[o] for o in list(ops)[: num_vertices - 2]] + [OUTPUT]
    return CellSpec(matrix, names)


def _full_dag_bits(n: int, max_edges: int) -> np.ndarray:
    """Bit patterns of n-vertex DAGs with every vertex on an input->output path, in order."""
    bits = np.arange(2 ** (n * (n - 1) // 2), dtype=np.uint32)
    popcount = np.zeros_like(bits)
    for i in range(n * (n - 1) // 2):
        popcount += (bits >> i) & 1
    keep = popcount <= max_edges
    for v in range(n - 1):  # every vertex but the output has an out-edge
        mask = sum(1 << bit_index(v, d) for d in range(v + 1, n))
        keep &= (bits & mask) != 0
    for v in range(1, n):  # every vertex but the input has an in-edge
        mask = sum(1 << bit_index(s, v) for s in range(v))
        keep &= (bits & mask) != 0
    return bits[keep]


def _interior_labelings(n: int, num_ops: int) -> np.ndarray:
    """All labelings of the n-2 interior vertices, in itertools.product order."""
    rows = list(itertools.product(range(num_ops), repeat=n - 2))
    return np.array(rows, dtype=np.int8).reshape(len(rows), n - 2)


def _cells_of_size(n: int, max_edges: int, progress: Progress | None) -> pa.Table:
    """Unique cells with exactly n vertices (first representative of each hash)."""
    bits = _full_dag_bits(n, max_edges)
    matrices = decode_matrices(bits, n)
    interior = _interior_labelings(n, len(OPS))
    labels = np.concatenate(
        [
            np.full((len(interior), 1), INPUT_LABEL, np.int8),
            interior,
            np.full((len(interior), 1), OUTPUT_LABEL, np.int8),
        ],
        axis=1,
    )
    total = len(bits) * len(interior)
    hashes = np.empty(total, dtype="S32")
    for start in range(0, total, _CHUNK):
        stop = min(start + _CHUNK, total)
        graph = np.arange(start, stop)
        m_idx, l_idx = np.divmod(graph, len(interior))
        hashes[start:stop] = hash_array(matrices[m_idx], labels[l_idx])
        if progress:
            progress.update(stop - start)
    _, first = np.unique(hashes, return_index=True)  # sorted by hash, first occurrence kept
    m_idx, l_idx = np.divmod(first, len(interior))
    return _rows(n, bits, matrices, interior, hashes[first], m_idx, l_idx)


def _rows(n, bits, matrices, interior, hashes, m_idx, l_idx) -> pa.Table:
    """Columns of the kept cells: structure, ops and the 16/128-filter parameter counts."""
    chosen = matrices[m_idx]
    ops = np.full((len(m_idx), MAX_INTERIOR), UNUSED_OP, dtype=np.uint8)
    ops[:, : n - 2] = interior[l_idx]
    params = {}
    for filters in (16, 128):
        coefs = [network_coefficients(m, Macro(stem_filters=filters)) for m in matrices]
        const = np.array([c for c, _ in coefs], dtype=np.int64)
        coef = np.stack([c for _, c in coefs])  # (M, n, 3)
        total = const[m_idx]
        for t in range(1, n - 1):
            total = total + coef[m_idx, t, interior[l_idx, t - 1]]
        params[filters] = total.astype(np.uint32)
    return pa.table(
        {
            "hash": pa.array(hashes.astype("U32")),
            "num_vertices": pa.array(np.full(len(m_idx), n, np.uint8)),
            "num_edges": pa.array(chosen.sum(axis=(1, 2)).astype(np.uint8)),
            "adj_bits": pa.array(bits[m_idx]),
            "ops": pa.FixedSizeListArray.from_arrays(pa.array(ops.ravel()), MAX_INTERIOR),
            "output_fan_in": pa.array(chosen[:, 1 : n - 1, n - 1].sum(axis=1).astype(np.uint8)),
            "input_to_output": pa.array(chosen[:, 0, n - 1].astype(bool)),
            "params_16": pa.array(params[16]),
            "params_128": pa.array(params[128]),
        },
        schema=SCHEMA,
    )


def build_space(
    max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES, verbose: bool = True
) -> pa.Table:
    """Enumerate every unique cell (no cache); rows sorted by hash."""
    if not 2 <= max_vertices <= MAX_VERTICES:
        raise ValueError(f"max_vertices must be in 2..{MAX_VERTICES}, got {max_vertices}")
    if not 1 <= max_edges <= MAX_EDGES:
        raise ValueError(f"max_edges must be in 1..{MAX_EDGES}, got {max_edges}")
    sizes = range(2, max_vertices + 1)
    total = sum(len(_full_dag_bits(n, max_edges)) * len(OPS) ** (n - 2) for n in sizes)
    progress = Progress(total, "enumerate NB-101 cells", unit="cells") if verbose else None
    parts = [_cells_of_size(n, max_edges, progress) for n in sizes]
    table = pa.concat_tables(parts)
    table = table.take(pc.sort_indices(table, [("hash", "ascending")]))
    meta = {
        "schema_version": str(SCHEMA_VERSION),
        "max_vertices": str(max_vertices),
        "max_edges": str(max_edges),
        "ops": ",".join(OPS),
    }
    return table.replace_schema_metadata(meta)


def _cache_path(max_vertices: int, max_edges: int) -> Path:
    return cache_dir() / f"nb101_space_v{max_vertices}_e{max_edges}_s{SCHEMA_VERSION}.parquet"


def write_table(table: pa.Table, path: Path, compression: str = "zstd", use_dictionary: bool = True) -> None:
    """Write Parquet atomically (zstd by default): a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression=compression, use_dictionary=use_dictionary)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def enumerate_space(
    max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES, cache: bool = True, verbose: bool = False
) -> pa.Table:
    """Every unique NB-101 cell once (423,624 for 7 vertices, 9 edges), cached as Parquet.

    Columns: hash, num_vertices, num_edges, adj_bits, ops (5 interior op labels, 255 unused),
    output_fan_in (interior vertices feeding the output), input_to_output, params_16 and
    params_128 (trainable parameters of the NB-101 network with 16 / 128 initial filters).
    """
    path = _cache_path(max_vertices, max_edges)
    if cache and path.exists():
        return pq.read_table(path)
    table = build_space(max_vertices, max_edges, verbose=verbose)
    if cache:
        write_table(table, path)
    return table


def check_subspaces(names: list[str] | None) -> list[str] | None:
    """Config validation: None (every sub-space) or a non-empty list of known names."""
    if names is None:
        return None
    unknown = [s for s in names if s not in SUBSPACES]
    if unknown:
        raise ValueError(f"unknown sub-space(s) {unknown}; expected some of {list(SUBSPACES)}")
    if not names:
        raise ValueError("at least one sub-space is needed")
    return names


def subspace_mask(table: pa.Table, name: str) -> pa.ChunkedArray:
    """Boolean mask of the rows in sub-space `name` (A1..A4, FULL, RES, NRES)."""
    if name == "FULL":
        return pc.greater_equal(table["num_vertices"], 0)
    if name == "RES":
        return table["input_to_output"]
    if name == "NRES":
        return pc.invert(table["input_to_output"])
    if name in ("A1", "A2", "A3", "A4"):
        return pc.equal(table["output_fan_in"], int(name[1]))
    raise ValueError(f"unknown sub-space {name!r}; expected one of {list(SUBSPACES)}")


def subspace(table: pa.Table, name: str) -> pa.Table:
    """The rows of `table` in sub-space `name`: A_i (exactly i interior vertices feed the
    output), FULL (all), RES / NRES (input->output edge present / absent)."""
    return table.filter(subspace_mask(table, name))


def summarize(table: pa.Table) -> dict:
    """Counts by vertex number and by sub-space, for reports."""
    nv = table["num_vertices"].to_numpy()
    by_vertices = {int(v): int((nv == v).sum()) for v in np.unique(nv)}
    by_subspace = {
        name: int(pc.sum(subspace_mask(table, name).cast(pa.int64())).as_py() or 0) for name in SUBSPACES
    }
    return {"cells": table.num_rows, "by_vertices": by_vertices, "by_subspace": by_subspace}


def time_enumeration(max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES) -> tuple[pa.Table, float]:
    """Build the space without the cache and return it with the seconds it took."""
    start = time.perf_counter()
    table = build_space(max_vertices, max_edges, verbose=True)
    return table, time.perf_counter() - start
