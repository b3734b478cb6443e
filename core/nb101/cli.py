"""`python -m core.nb101 ...`: enumerate the space, import / export benchmark files, describe a benchmark."""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

from core.nb101.space import MAX_EDGES, MAX_VERTICES, summarize, time_enumeration, write_table


def _enumerate(args: argparse.Namespace) -> int:
    table, seconds = time_enumeration(args.max_vertices, args.max_edges)
    write_table(table, args.out)
    report = summarize(table)
    print(f"{report['cells']:,} unique cells in {seconds:.1f} s -> {args.out}")
    print("by vertices: " + ", ".join(f"{v}:{n:,}" for v, n in report["by_vertices"].items()))
    print("sub-spaces:  " + ", ".join(f"{s} {n:,}" for s, n in report["by_subspace"].items()))
    return 0


def _import(args: argparse.Namespace) -> int:
    from core.nb101.benchmark import Benchmark
    from core.nb101.importers import import_any

    start = time.perf_counter()
    table, errors = import_any(args.src, args.format, args.skip_corrupt, verbose=not args.quiet)
    write_table(table, args.out)
    seconds = time.perf_counter() - start
    bench = Benchmark(table, str(args.out))
    records = int(bench.metadata["records"])
    print(
        f"{records:,} records -> {table.num_rows:,} rows (cell x epochs) in {seconds:.1f} s "
        f"({records / seconds:,.0f} records/s) -> {args.out}"
    )
    if errors:
        print(f"skipped {len(errors)} corrupt record(s); first: {errors[0]}")
    best = bench.best()
    print(
        f"epochs {bench.epochs}; best mean validation {best['best_mean_validation_accuracy']:.6f}, "
        f"best mean test {best['best_mean_test_accuracy']:.6f} at {bench.final_epochs} epochs"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    import os

    from core.nb101.benchmark import Benchmark
    from core.nb101.export import export_tfrecord

    start = time.perf_counter()
    table = Benchmark.open(args.bench).table
    if args.epochs is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.equal(table["epochs"], args.epochs))
        if table.num_rows == 0:
            raise ValueError(f"{args.bench} has no rows for {args.epochs} epochs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
    try:
        records = export_tfrecord(table, tmp)
        os.replace(tmp, args.out)
    finally:
        tmp.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    print(f"{table.num_rows:,} rows -> {records:,} official records in {seconds:.1f} s -> {args.out}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from core.nb101.benchmark import Benchmark, describe

    print(describe(Benchmark.open(args.bench)))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.nb101", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("enumerate", help="enumerate every unique cell into a Parquet file")
    e.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    e.add_argument("--max-vertices", type=int, default=MAX_VERTICES, help="2..7 (default 7)")
    e.add_argument("--max-edges", type=int, default=MAX_EDGES, help="1..9 (default 9)")
    e.set_defaults(func=_enumerate)
    i = sub.add_parser("import", help="import an NB-101 tfrecord / NASLib pickle into Parquet")
    i.add_argument(
        "src", type=Path, help="nasbench_only108.tfrecord, nasbench_full.tfrecord, *.pkl, npz folder"
    )
    i.add_argument("--out", type=Path, required=True, help="benchmark Parquet file to write")
    i.add_argument(
        "--format", default="auto", choices=["auto", "tfrecord", "naslib-pickle", "real-subset-npz"]
    )
    i.add_argument("--skip-corrupt", action="store_true", help="skip and count corrupt records")
    i.add_argument("--quiet", action="store_true", help="no progress lines")
    i.set_defaults(func=_import)
    x = sub.add_parser("export", help="write a benchmark Parquet file as an official NB-101 tfrecord")
    x.add_argument("bench", type=Path, help="benchmark Parquet file (from `import`)")
    x.add_argument("--out", type=Path, required=True, help="tfrecord file to write (atomically)")
    x.add_argument("--epochs", type=int, default=None, help="only this budget (default: every budget)")
    x.set_defaults(func=_export)
    d = sub.add_parser("describe", help="sizes and best accuracies of a benchmark file")
    d.add_argument("bench", type=Path)
    d.set_defaults(func=_describe)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, OSError, pickle.UnpicklingError) as err:  # bad input: no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
