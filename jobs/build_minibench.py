"""Build the embedded NB-101 benchmark on digits, fanned out over Ray, resumable.

Usage:
    python jobs/build_minibench.py                       # local Ray on this machine
    ray job submit --working-dir . -- python jobs/build_minibench.py
    python jobs/build_minibench.py --local --limit 20    # no Ray, a few cells (a quick look)

Finished chunks are kept under .cache/minibench/<config key>/; an interrupted build resumes
where it stopped. The result replaces core/nb101/data/minibench_digits.parquet (or --out).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from core.nb101.benchmark import DEFAULT_MINIBENCH, Benchmark  # noqa: E402
from core.nb101.minibench import MinibenchConfig, assemble, train_chunk  # noqa: E402
from core.nb101.space import enumerate_space, write_table  # noqa: E402
from core.paths import cache_dir  # noqa: E402
from core.progress import Progress  # noqa: E402


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_MINIBENCH)
    p.add_argument("--chunk-size", type=int, default=24, help="cells per Ray task")
    p.add_argument("--limit", type=int, default=None, help="only the first N cells (by hash)")
    p.add_argument("--local", action="store_true", help="run in this process, without Ray")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local cluster)")
    p.add_argument("--epochs", type=int, default=MinibenchConfig.epochs)
    p.add_argument("--repeats", type=int, default=MinibenchConfig.repeats)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    config = MinibenchConfig(epochs=args.epochs, repeats=args.repeats)
    rows = enumerate_space(max_vertices=config.max_vertices).to_pylist()[: args.limit]
    key = hashlib.sha256(config.to_json().encode()).hexdigest()[:12]
    work = cache_dir() / "minibench" / key
    work.mkdir(parents=True, exist_ok=True)
    chunks = []
    for i in range(0, len(rows), args.chunk_size):
        part = rows[i : i + args.chunk_size]
        content = hashlib.sha256("".join(r["hash"] for r in part).encode()).hexdigest()[:10]
        chunks.append((i, part, work / f"chunk_{i:05d}_{content}.parquet"))
    todo = [c for c in chunks if not c[2].exists()]
    print(
        f"mini-benchmark: {len(rows):,} cells x {config.repeats} repeats, {len(chunks)} chunks, "
        f"{len(chunks) - len(todo)} already done (resuming from {work})"
    )
    progress = Progress(sum(len(c[1]) for c in todo), "train cells", unit="cells", every=30)
    start = time.perf_counter()
    if args.local:
        for _, chunk_rows, path in todo:
            progress.update(train_chunk(chunk_rows, config, path))
    elif todo:
        import ray

        from cluster.runtime import init_ray, wait_all

        init_ray(args.address)
        task = ray.remote(num_cpus=1, max_retries=3)(train_chunk)
        refs = [task.remote(chunk_rows, config, path) for _, chunk_rows, path in todo]
        wait_all(refs, progress, weights={r: len(c[1]) for r, c in zip(refs, todo)})
    table = assemble([c[2] for c in chunks], config, time.perf_counter() - start)
    write_table(table, args.out)
    bench = Benchmark.open(args.out)
    val = bench.mean("validation_accuracy")
    print(
        f"wrote {args.out}: {table.num_rows:,} cells, {args.out.stat().st_size / 1024:.0f} KiB; "
        f"mean validation accuracy {val.mean():.3f} (min {val.min():.3f}, max {val.max():.3f}); "
        f"{time.perf_counter() - start:.0f} s this run"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
