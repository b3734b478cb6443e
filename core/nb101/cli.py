"""`python -m core.nb101 ...`: enumerate the space (and, later, import benchmark files)."""

from __future__ import annotations

import argparse
import sys
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.nb101", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("enumerate", help="enumerate every unique cell into a Parquet file")
    e.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    e.add_argument("--max-vertices", type=int, default=MAX_VERTICES, help="2..7 (default 7)")
    e.add_argument("--max-edges", type=int, default=MAX_EDGES, help="1..9 (default 9)")
    e.set_defaults(func=_enumerate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
