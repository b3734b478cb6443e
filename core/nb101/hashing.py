"""NB-101's module hash, fast: a C kernel over batches, and a plain-Python oracle.

`hash_module(matrix, labeling)` has the signature and output of NB-101's
`graph_util.hash_module`. `hash_many` hashes thousands of cells in one C call.
`reference_hash_module` is a plain-Python transcription of the algorithm, kept as the
oracle for tests and as the baseline of `benchmarks/bench_hashing.py`.
"""

from __future__ import annotations

import ctypes
import hashlib
import struct

import numpy as np

from core.nb101.native import library

_MAX_NATIVE_VERTICES = 16


def reference_hash_module(matrix, labeling) -> str:
    """NB-101's hash in plain Python: WL refinement over (out-degree, in-degree, label), md5."""
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    in_degree = matrix.sum(axis=0).tolist()
    out_degree = matrix.sum(axis=1).tolist()
    if not len(in_degree) == len(out_degree) == len(labeling):
        raise ValueError("labeling must have one label per vertex")
    hashes = [
        hashlib.md5(str(triple).encode("utf-8")).hexdigest()
        for triple in zip(out_degree, in_degree, labeling)
    ]
    for _ in range(n):
        updated = []
        for v in range(n):
            ins = sorted(hashes[w] for w in range(n) if matrix[w, v])
            outs = sorted(hashes[w] for w in range(n) if matrix[v, w])
            text = "".join(ins) + "|" + "".join(outs) + "|" + hashes[v]
            updated.append(hashlib.md5(text.encode("utf-8")).hexdigest())
        hashes = updated
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def native():
    """The C library when available, else None (then the plain-Python algorithm is used)."""
    return library()


def _hash_block(matrices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Hash n cells of one vertex count: (n, V, V) matrices, (n, V) labels -> S32 array."""
    n, v = labels.shape
    lib = native()
    fits = v <= _MAX_NATIVE_VERTICES and (n == 0 or (labels.min() >= -128 and labels.max() <= 127))
    if lib is None or not fits:
        out = [reference_hash_module(m, lab.tolist()) for m, lab in zip(matrices, labels)]
        return np.array(out, dtype="S32")
    adj = np.ascontiguousarray(matrices, dtype=np.uint8)
    lab = np.ascontiguousarray(labels, dtype=np.int8)  # range checked above
    out = np.zeros(n, dtype="S32")
    if lib.nb101_hash_batch(n, v, adj.ctypes.data, lab.ctypes.data, out.ctypes.data) != 0:
        raise RuntimeError(f"native hash refused a batch of {v}-vertex cells")
    return out


def hash_many(matrices, labelings) -> list[str]:
    """Hash many cells at once; cells may differ in vertex count. Same output as hash_module."""
    matrices = [np.asarray(m) for m in matrices]
    labelings = [list(lab) for lab in labelings]
    if len(matrices) != len(labelings):
        raise ValueError("one labeling per matrix is needed")
    result = np.empty(len(matrices), dtype="S32")
    sizes = np.array([m.shape[0] for m in matrices], dtype=np.int64)
    for v in np.unique(sizes):
        idx = np.flatnonzero(sizes == v)
        block = np.stack([matrices[i] for i in idx])
        labels = np.array([labelings[i] for i in idx], dtype=np.int64).reshape(len(idx), v)
        result[idx] = _hash_block(block, labels)
    return [h.decode("ascii") for h in result]


def hash_array(matrices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Vectorised form for one vertex count: (n, V, V) and (n, V) arrays -> S32 hex array."""
    if matrices.ndim != 3 or labels.shape != matrices.shape[:2]:
        raise ValueError(f"expected (n, V, V) and (n, V), got {matrices.shape}, {labels.shape}")
    return _hash_block(matrices, labels)


def hash_module(matrix, labeling) -> str:
    """NB-101's `graph_util.hash_module(matrix, labeling)`: same signature, same output.

    One cell goes to the C kernel as bytes, without numpy batches (about 3x less overhead
    than a batch of one): this is the per-query path of `nasbench.api`.
    """
    matrix = np.asarray(matrix)
    labeling = [int(label) for label in labeling]
    n = len(labeling)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != n:
        raise ValueError(f"matrix of shape {matrix.shape} and {n} labels do not match")
    lib = native()
    if lib is None or n > _MAX_NATIVE_VERTICES or not all(-128 <= label <= 127 for label in labeling):
        return reference_hash_module(matrix, labeling)
    adj = (matrix != 0).astype(np.uint8).tobytes() if matrix.dtype != np.uint8 else matrix.tobytes()
    out = ctypes.create_string_buffer(32)
    if lib.nb101_hash_batch(1, n, adj, struct.pack(f"{n}b", *labeling), out) != 0:
        raise RuntimeError(f"native hash refused a {n}-vertex cell")
    return out.raw.decode("ascii")
