"""NB-101's module hash, fast: a C kernel over batches, and a plain-Python oracle.

`hash_module(matrix, labeling)` has the signature and output of NB-101's
`graph_util.hash_module`. `hash_many` hashes thousands of cells in one C call.
`reference_hash_module` is a plain-Python transcription of the algorithm, kept as the
oracle for tests and as the baseline of `benchmarks/bench_hashing.py`.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("_wlhash.c")
_LIBRARY = Path(__file__).with_name("_wlhash.so")
_MAX_NATIVE_VERTICES = 16
_lib = None
_lib_tried = False


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


def build_native(force: bool = False) -> Path | None:
    """Compile the C kernel next to its source (atomically); None when no compiler is found."""
    if _LIBRARY.exists() and not force and _LIBRARY.stat().st_mtime >= _SOURCE.stat().st_mtime:
        return _LIBRARY
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=_LIBRARY.parent)
    os.close(fd)
    try:
        subprocess.run(
            [compiler, "-O3", "-shared", "-fPIC", "-o", tmp, str(_SOURCE)],
            check=True,
            capture_output=True,
        )
        os.replace(tmp, _LIBRARY)
    except (OSError, subprocess.CalledProcessError) as err:
        log.warning("could not compile %s (%s): using the Python hash", _SOURCE.name, err)
        Path(tmp).unlink(missing_ok=True)
        return None
    return _LIBRARY


def native():
    """The loaded C kernel, building it on first use; None when unavailable (Python fallback)."""
    global _lib, _lib_tried
    if not _lib_tried:
        _lib_tried = True
        path = build_native()
        if path is not None:
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as err:
                log.warning("could not load %s (%s): using the Python hash", path, err)
            else:
                lib.nb101_hash_batch.argtypes = [
                    ctypes.c_int64,
                    ctypes.c_int,
                    ctypes.c_void_p,
                    ctypes.c_void_p,
                    ctypes.c_void_p,
                ]
                lib.nb101_hash_batch.restype = ctypes.c_int
                _lib = lib
    return _lib


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
    """NB-101's `graph_util.hash_module(matrix, labeling)`: same signature, same output."""
    matrix = np.asarray(matrix)
    labeling = list(labeling)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(labeling):
        raise ValueError(f"matrix of shape {matrix.shape} and {len(labeling)} labels do not match")
    return _hash_block(matrix[None], np.array(labeling, dtype=np.int64)[None])[0].decode("ascii")
