"""`from nasbench import api` against NB-101's own layout and query path, on the same 423,624 cells.

Data: every cell of the space (enumerate_space(): real hashes, matrices, ops and 128-filter
parameter counts) with synthetic metrics (3 repeats at 108 epochs, float32-rounded like
NB-101's), written by core/nb101/export.py as an official-format `nasbench_only108`-sized
tfrecord (1,270,872 records) and cached in .cache/bench/. No official file is on this machine.

Each side runs in its own process, launched by this run, so that memory is measured alone:
- ours: `api.NASBench(tfrecord)`: the first open (import into the cached store), then later
  opens (best of 3); RSS held; 1,000,000 `query` calls.
- NB-101's layout (`nasbench.reference.DictNASBench`): its loader (JSON, base64, protobuf per
  record into nested dicts); RSS held; its `query` path with its plain-Python hash (timed on
  20,000 calls: 1,000,000 would take minutes) and, to isolate the layout, with our C hash
  (1,000,000 calls).
Both draw repeats with `random` seeded alike, so the first 20,000 answers must agree: a
checksum is compared.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from _timing import best_time, peak_rss_mib

N_QUERIES = 1_000_000
N_PYTHON_HASH = 20_000
N_SPECS = 10_000
CHECK = 20_000


def synthetic_tfrecord() -> Path:
    """The 423,624-cell official-format file (built once, about a minute, then reused)."""
    from core.nb101.benchmark import VALUE_COLUMNS, build_table
    from core.nb101.export import export_tfrecord
    from core.nb101.space import enumerate_space
    from core.paths import cache_dir

    path = cache_dir() / "bench" / "synthetic_nasbench_only108.tfrecord"
    if path.exists():
        return path
    space = enumerate_space()
    n = space.num_rows
    rng = np.random.default_rng(0)
    cells = {
        "hash": space["hash"].to_numpy(zero_copy_only=False),
        "epochs": np.full(n, 108),
        "num_vertices": space["num_vertices"].to_numpy(),
        "adj_bits": space["adj_bits"].to_numpy(),
        "ops": np.asarray(space["ops"].combine_chunks().flatten()).reshape(n, 5),
        "trainable_parameters": space["params_128"].to_numpy(),
    }
    values = {}
    for name in VALUE_COLUMNS:
        scale = 3000.0 if name.endswith("training_time") else 1.0
        values[name] = (rng.uniform(0.1, 0.95, (n, 3)) * scale).astype(np.float32).astype(np.float64)
    table = build_table(cells, values, {"source": "synthetic", "source_format": "synthetic"})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    print(f"building {path} (423,624 cells x 3 repeats, official format) ...", flush=True)
    export_tfrecord(table, tmp)
    os.replace(tmp, path)
    return path


def query_specs():
    """N_SPECS ModelSpecs of random cells of the space (the same in every process)."""
    from core.nb101.space import decode_matrices, enumerate_space
    from core.nb101.spec import INPUT, OPS, OUTPUT
    from nasbench.lib.model_spec import ModelSpec

    space = enumerate_space()
    rows = np.random.default_rng(1).choice(space.num_rows, N_SPECS, replace=False)
    sample = space.take(rows).to_pylist()
    specs = []
    for row in sample:
        n = row["num_vertices"]
        matrix = decode_matrices(np.array([row["adj_bits"]]), n)[0].astype(np.int64)
        specs.append(ModelSpec(matrix, [INPUT, *[OPS[o] for o in row["ops"][: n - 2]], OUTPUT]))
    return specs


def run_queries(bench, specs, n: int) -> tuple[float, float]:
    """Seconds for n queries cycling over specs, and the sum of the first CHECK validation accuracies."""
    random.seed(0)
    checksum, k = 0.0, len(specs)
    start = time.perf_counter()
    for i in range(n):
        data = bench.query(specs[i % k])
        if i < CHECK:
            checksum += data["validation_accuracy"]
    return time.perf_counter() - start, checksum


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def side_import(data: Path) -> dict:
    from nasbench import api

    start = time.perf_counter()
    api.NASBench(data)
    return {"first_open_s": time.perf_counter() - start, "peak_mib": peak_rss_mib()}


def side_ours(data: Path) -> dict:
    from nasbench import api

    specs = query_specs()
    base = rss_mib()
    start = time.perf_counter()
    bench = api.NASBench(data)
    t_first = time.perf_counter() - start
    held = rss_mib() - base
    t_open, _ = best_time(lambda: api.NASBench(data), 2)
    t_query, checksum = run_queries(bench, specs, N_QUERIES)
    return {
        "open_s": min(t_first, t_open),
        "rss_mib": held,
        "peak_mib": peak_rss_mib(),
        "query_s": t_query,
        "checksum": checksum,
    }


def side_official(data: Path) -> dict:
    from core.nb101.hashing import hash_module
    from nasbench.reference import DictNASBench

    specs = query_specs()
    base = rss_mib()
    start = time.perf_counter()
    bench = DictNASBench.from_tfrecord(data)
    t_open = time.perf_counter() - start
    held = rss_mib() - base
    t_python, checksum = run_queries(bench, specs, N_PYTHON_HASH)
    bench._hash_fn = hash_module
    t_chash, checksum_c = run_queries(bench, specs, N_QUERIES)
    assert checksum == checksum_c, "the two hashes disagree"
    return {
        "open_s": t_open,
        "rss_mib": held,
        "peak_mib": peak_rss_mib(),
        "query_python_hash_s": t_python,
        "query_c_hash_s": t_chash,
        "checksum": checksum,
    }


SIDES = {"import": side_import, "ours": side_ours, "official": side_official}


def run_side(side: str, data: Path, cache: Path) -> dict:
    env = os.environ | {"SWEEPS_CACHE_DIR": str(cache)}
    cmd = [sys.executable, __file__, "--side", side, "--data", str(data)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"side {side!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    data = synthetic_tfrecord()
    size = data.stat().st_size / 1e6
    print(f"data: {data.name}, {size:,.0f} MB, 423,624 cells x 3 repeats (synthetic metrics, real cells)")
    with tempfile.TemporaryDirectory() as cache:
        first = run_side("import", data, Path(cache))  # empty cache: imports the file once
        ours = run_side("ours", data, Path(cache)) | {"first_open_s": first["first_open_s"]}
        theirs = run_side("official", data, Path(cache))
    assert ours["checksum"] == theirs["checksum"], "the first 20,000 answers differ"
    print(
        f"open: NB-101's loader {theirs['open_s']:.1f} s; ours first open (import, cached) "
        f"{ours['first_open_s']:.1f} s, later opens {ours['open_s']:.2f} s (goal < 1 s) "
        f"-> {theirs['open_s'] / ours['open_s']:.0f}x"
    )
    per_python = theirs["query_python_hash_s"] / N_PYTHON_HASH
    per_c = theirs["query_c_hash_s"] / N_QUERIES
    per_ours = ours["query_s"] / N_QUERIES
    print(
        f"{N_QUERIES:,} query(spec) calls: ours {ours['query_s']:.1f} s ({per_ours * 1e6:.1f} us/call); "
        f"NB-101's dicts and path {per_python * N_QUERIES:.0f} s (from {N_PYTHON_HASH:,} calls, "
        f"{per_python * 1e6:.0f} us/call) -> {per_python / per_ours:.1f}x; the same dicts with our "
        f"C hash {theirs['query_c_hash_s']:.1f} s -> {per_c / per_ours:.2f}x; first {CHECK:,} answers equal"
    )
    print(
        f"memory held for 423,624 cells: ours {ours['rss_mib']:,.0f} MiB (peak {ours['peak_mib']:,.0f}), "
        f"NB-101's dicts {theirs['rss_mib']:,.0f} MiB (peak {theirs['peak_mib']:,.0f}) "
        f"-> {theirs['rss_mib'] / ours['rss_mib']:.1f}x less"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=list(SIDES))
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.side is None:
        main()
    else:
        print(json.dumps(SIDES[args.side](args.data)))
