"""Import NB-101 benchmark files into the Parquet layout of benchmark.py, without TensorFlow.

Sources: the official `nasbench_only108.tfrecord` / `nasbench_full.tfrecord`, NASLib's
`nasbench_only108.pkl` (through a restricted unpickler), and the real subset shipped in
`core/nb101/data/real_subset/*.npz`. Every importer checks each cell's hash against its matrix and
ops; a corrupt record stops the import with its record number and byte offset (or is
skipped and counted with `skip_corrupt`). Nothing is written here: callers write the
returned table atomically, so a failed import leaves no file behind.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import math
import pickle
from array import array
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.nb101 import metrics_proto
from core.nb101.benchmark import VALUE_COLUMNS, build_table, hash_words
from core.nb101.hashing import hash_array
from core.nb101.real_subset import REAL_SUBSET_DIR, load_real_subset
from core.nb101.space import MAX_INTERIOR, UNUSED_OP, bit_index, decode_matrices
from core.nb101.spec import OPS
from core.nb101.tfrecord import CorruptRecordError, read_records
from core.progress import Progress


def file_facts(path: Path) -> dict:
    """Size and SHA-256 of a source file (streamed), for the table's metadata."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {
        "source": str(Path(path).resolve()),
        "source_size": path.stat().st_size,
        "source_sha256": digest.hexdigest(),
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def parse_cell(raw_adjacency: str, raw_operations) -> tuple[int, int, tuple[int, ...]]:
    """(num_vertices, adj_bits, interior op labels) from a row-major 0/1 string and op names."""
    n = math.isqrt(len(raw_adjacency))
    if n * n != len(raw_adjacency) or not 2 <= n <= MAX_INTERIOR + 2:
        raise ValueError(f"adjacency of length {len(raw_adjacency)} is not an n*n matrix with n in 2..7")
    ops = raw_operations.split(",") if isinstance(raw_operations, str) else list(raw_operations)
    if len(ops) != n:
        raise ValueError(f"{len(ops)} operations for {n} vertices")
    bits = 0
    for k, ch in enumerate(raw_adjacency):
        if ch == "1":
            src, dst = divmod(k, n)
            if src >= dst:
                raise ValueError(f"adjacency entry [{src}, {dst}] is not above the diagonal")
            bits |= 1 << bit_index(src, dst)
        elif ch != "0":
            raise ValueError(f"adjacency has character {ch!r}")
    try:
        labels = tuple(OPS.index(op) for op in ops[1:-1])
    except ValueError:
        raise ValueError(f"unknown operation in {ops}") from None
    if ops[0] != "input" or ops[-1] != "output":
        raise ValueError(f"operations must start with input and end with output: {ops}")
    return n, bits, labels


class _Rows:
    """Accumulates one entry per (cell, epochs, repeat) in compact arrays (8 bytes a value)."""

    def __init__(self):
        self.cells: dict[str, tuple] = {}  # hash -> (n, adj_bits, labels, params, index, offset, raw)
        self.hashes: list[str] = []
        self.epochs = array("H")
        self.index = array("q")
        self.values = array("d")  # len(VALUE_COLUMNS) values per row, in VALUE_COLUMNS order

    def add_cell(self, h: str, cell: tuple, params: int, index: int, offset: int, raw) -> None:
        known = self.cells.get(h)
        if known is None:
            self.cells[h] = (*cell, params, index, offset, raw)
        elif known[6] != raw or known[3] != params:
            raise ValueError(f"cell {h} disagrees with its record {known[4]} (structure or parameters)")

    def add(self, h: str, epochs: int, values, index: int) -> None:
        """One repeat: `values` holds the VALUE_COLUMNS metrics, in that order."""
        self.hashes.append(h)
        self.epochs.append(epochs)
        self.index.append(index)
        self.values.extend(values)

    def bad_hashes(self) -> list[str]:
        """Cells whose stored hash differs from the hash of their matrix and ops."""
        bad = []
        by_n: dict[int, list[str]] = {}
        for h, cell in self.cells.items():
            by_n.setdefault(cell[0], []).append(h)
        for n, hashes in by_n.items():
            bits = np.array([self.cells[h][1] for h in hashes], dtype=np.uint32)
            labels = np.array([[-1, *self.cells[h][2], -2] for h in hashes], dtype=np.int64).reshape(
                len(hashes), n
            )
            got = hash_array(decode_matrices(bits, n), labels).astype("U32")
            bad += [h for h, g in zip(hashes, got) if g != h]
        return bad

    def table(self, metadata: dict) -> pa.Table:
        """Group rows by (epochs, hash) in record order (repeat i = i-th record) and build."""
        if not self.hashes:
            raise ValueError("no records to import")
        hashes = np.array(self.hashes, dtype="U32")
        epochs = np.frombuffer(self.epochs, dtype=np.uint16)
        index = np.frombuffer(self.index, dtype=np.int64)
        words = hash_words(hashes)
        order = np.lexsort((index, words[:, 1], words[:, 0], epochs))
        key_change = np.ones(len(order), dtype=bool)
        key_change[1:] = (epochs[order][1:] != epochs[order][:-1]) | (hashes[order][1:] != hashes[order][:-1])
        group = np.cumsum(key_change) - 1
        starts = np.flatnonzero(key_change)
        repeat = np.arange(len(order)) - starts[group]
        n_groups, n_rep = len(starts), int(repeat.max()) + 1
        flat = np.frombuffer(self.values, dtype=np.float64).reshape(-1, len(VALUE_COLUMNS))[order]
        values = {}
        for k, name in enumerate(VALUE_COLUMNS):
            grid = np.full((n_groups, n_rep), np.nan)
            grid[group, repeat] = flat[:, k]
            values[name] = grid
        first = order[starts]
        cell_hashes = hashes[first]
        info = [self.cells[h] for h in cell_hashes]
        ops = np.full((n_groups, MAX_INTERIOR), UNUSED_OP, dtype=np.uint8)
        for i, cell in enumerate(info):
            ops[i, : len(cell[2])] = cell[2]
        cells = {
            "hash": cell_hashes,
            "epochs": epochs[first],
            "num_vertices": np.array([c[0] for c in info]),
            "adj_bits": np.array([c[1] for c in info], dtype=np.uint32),
            "ops": ops,
            "trainable_parameters": np.array([c[3] for c in info], dtype=np.uint32),
        }
        return build_table(cells, values, metadata)

    def drop(self, hashes: set[str]) -> None:
        """Remove every row of the given cells (used when skipping corrupt cells)."""
        keep = [i for i, h in enumerate(self.hashes) if h not in hashes]
        self.hashes = [self.hashes[i] for i in keep]
        self.epochs = array("H", (self.epochs[i] for i in keep))
        self.index = array("q", (self.index[i] for i in keep))
        width = len(VALUE_COLUMNS)
        values = np.frombuffer(self.values, dtype=np.float64).reshape(-1, width)[keep]
        self.values = array("d", values.tobytes())
        for h in hashes:
            self.cells.pop(h, None)


def _check_hashes(rows: _Rows, path, skip_corrupt: bool, errors: list) -> None:
    bad = rows.bad_hashes()
    for h in bad:
        cell = rows.cells[h]
        error = CorruptRecordError(path, cell[4], cell[5], f"hash {h} does not match its matrix and ops")
        if not skip_corrupt:
            raise error
        errors.append(error)
    if bad:
        rows.drop(set(bad))


def _tfrecord_row(payload: bytes):
    """(hash, epochs, cell, raw, params, values) of one official record; values in VALUE_COLUMNS order."""
    try:
        row = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"malformed JSON ({err})") from None
    if not (isinstance(row, list) and len(row) == 5):
        raise ValueError("JSON payload is not [hash, epochs, adjacency, operations, metrics]")
    h, epochs, adjacency, operations, raw_metrics = row
    if not (isinstance(h, str) and len(h) == 32 and isinstance(epochs, int)):
        raise ValueError(f"bad hash or epochs: {h!r}, {epochs!r}")
    cell = parse_cell(adjacency, operations)
    try:
        metrics = metrics_proto.parse(base64.b64decode(raw_metrics, validate=False))
    except (binascii.Error, ValueError, TypeError) as err:
        raise ValueError(f"malformed ModelMetrics protobuf ({err})") from None
    if len(metrics.evaluation_data) < 3:
        raise ValueError(f"ModelMetrics has {len(metrics.evaluation_data)} evaluations, expected 3")
    final, half = metrics.evaluation_data[2], metrics.evaluation_data[1]
    values = (
        final.train_accuracy,
        final.validation_accuracy,
        final.test_accuracy,
        final.training_time,
        half.train_accuracy,
        half.validation_accuracy,
        half.test_accuracy,
        half.training_time,
    )
    return h, epochs, cell, (adjacency, operations), metrics.trainable_parameters, values


def import_tfrecord(path, skip_corrupt: bool = False, verbose: bool = True) -> tuple[pa.Table, list]:
    """Read an official NB-101 tfrecord into a benchmark table; returns (table, corrupt errors)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    rows, errors = _Rows(), []
    size = path.stat().st_size
    progress = Progress(size, f"import {path.name}", unit="B") if verbose else None
    last = 0
    for record in read_records(path, skip_corrupt=skip_corrupt, errors=errors):
        try:
            h, epochs, cell, raw, params, values = _tfrecord_row(record.payload)
            rows.add_cell(h, cell, params, record.index, record.offset, raw)
        except ValueError as err:
            error = CorruptRecordError(path, record.index, record.offset, str(err))
            if not skip_corrupt:
                raise error from None
            errors.append(error)
            continue
        rows.add(h, epochs, values, record.index)
        if progress and record.index % 20_000 == 0:
            progress.update(record.offset - last)
            last = record.offset
    if progress:
        progress.update(size - last)
    _check_hashes(rows, path, skip_corrupt, errors)
    meta = file_facts(path) | {
        "source_format": "nb101-tfrecord",
        "records": len(rows.hashes),
        "corrupt_records": len(errors),
        "description": "NAS-Bench-101 (Ying et al. 2019), CIFAR-10",
    }
    return rows.table(meta), errors


# ---- NASLib's pickle, through a restricted unpickler ---------------------------------------


def _safe_dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing numpy dtype {dtype}: object arrays can hold code")
    return dtype


def _safe_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing array subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, _safe_dtype(dtype))


def _safe_scalar(dtype, data=None):
    dtype = _safe_dtype(dtype)
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _safe_encode(text, encoding="utf-8"):
    """`_codecs.encode`, which protocol-2 pickles use for bytes: data in, data out."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode(encoding)


_ALLOWED = {
    ("_codecs", "encode"): _safe_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy.core.multiarray", "scalar"): _safe_scalar,
    ("numpy._core.multiarray", "scalar"): _safe_scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers, numbers, strings and numeric numpy arrays; refuses anything else."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only plain containers, numbers, strings and "
                "numeric numpy arrays are allowed"
            ) from None


def restricted_load(data: bytes):
    """`pickle.loads` through RestrictedUnpickler."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def import_naslib_pickle(path, skip_corrupt: bool = False, verbose: bool = True) -> tuple[pa.Table, list]:
    """Read NASLib's `{hash: (fixed_stats, {epochs: [repeat dicts]})}` pickle safely."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    data = restricted_load(path.read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of cells, got {type(data).__name__}")
    rows, errors, index = _Rows(), [], 0
    progress = Progress(len(data), f"import {path.name}", unit="cells") if verbose else None
    for entry, (h, value) in enumerate(data.items()):
        try:
            fixed, computed = value
            adjacency = "".join(str(int(x)) for x in np.asarray(fixed["module_adjacency"]).ravel())
            ops = list(fixed["module_operations"])
            cell = parse_cell(adjacency, ops)
            rows.add_cell(h, cell, int(fixed["trainable_parameters"]), index, -1, (adjacency, tuple(ops)))
            for epochs, repeats in computed.items():
                for rep in repeats:
                    rows.add(h, int(epochs), [float(rep[name]) for name in VALUE_COLUMNS], index)
                    index += 1
        except (KeyError, TypeError, ValueError) as err:
            error = CorruptRecordError(path, entry, -1, f"cell {h!r}: {type(err).__name__} {err}")
            if not skip_corrupt:
                raise error from None
            errors.append(error)
        if progress:
            progress.update()
    _check_hashes(rows, path, skip_corrupt, errors)
    meta = file_facts(path) | {
        "source_format": "naslib-pickle",
        "records": len(rows.hashes),
        "corrupt_records": len(errors),
        "description": "NAS-Bench-101 via NASLib's pickle, CIFAR-10",
    }
    return rows.table(meta), errors


# ---- the real subset shipped with the project ---------------------------------------------------


def import_real_subset(root: Path = REAL_SUBSET_DIR) -> pa.Table:
    """The 151,644 real cells shipped with the project as a benchmark table (108 epochs)."""
    data = load_real_subset(root)
    fields = [str(f) for f in data["acc_fields"]]
    acc = data["accuracy"].astype(np.float64)  # exact: float32(k) / float32(9984)
    times = data["times"].astype(np.float64)
    values = {}
    for stage in ("final", "halfway"):
        for metric in ("train_accuracy", "validation_accuracy", "test_accuracy"):
            values[f"{stage}_{metric}"] = acc[:, :, fields.index(f"{stage}_{metric}")]
        values[f"{stage}_training_time"] = times[
            :, :, [str(f) for f in data["time_fields"]].index(f"{stage}_training_time")
        ]
    cells = {
        "hash": data["hash"],
        "epochs": np.full(len(data["hash"]), 108),
        "num_vertices": data["n_vertices"],
        "adj_bits": data["adj_bits"],
        "ops": data["ops"],
        "trainable_parameters": data["trainable_parameters"],
    }
    meta = {
        "source": str(Path(root).resolve()),
        "source_format": "real-subset-npz",
        "records": int(np.isfinite(values["final_validation_accuracy"]).sum()),
        "corrupt_records": 0,
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "description": "NAS-Bench-101 real subset (151,644 cells, 108 epochs), CIFAR-10",
    }
    return build_table(cells, values, meta)


def detect_format(path: Path) -> str:
    """tfrecord, naslib-pickle or real-subset-npz, from the file name."""
    if path.is_dir():
        return "real-subset-npz"
    suffix = path.suffix.lower()
    if suffix in (".tfrecord", ".tfrecords"):
        return "tfrecord"
    if suffix in (".pkl", ".pickle"):
        return "naslib-pickle"
    raise ValueError(f"cannot tell the format of {path}: use --format tfrecord|naslib-pickle|real-subset-npz")


def import_any(path, fmt: str = "auto", skip_corrupt: bool = False, verbose: bool = True):
    """Import a source of any supported format; returns (table, corrupt errors)."""
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "tfrecord":
        return import_tfrecord(path, skip_corrupt, verbose)
    if fmt == "naslib-pickle":
        return import_naslib_pickle(path, skip_corrupt, verbose)
    if fmt == "real-subset-npz":
        return import_real_subset(path), []
    raise ValueError(f"unknown format {fmt!r}")
