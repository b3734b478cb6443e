"""Enumerate the NB-101 search space and report its sub-spaces (the default `make run` job).

Usage: python jobs/nb101_space.py [--out outputs/nb101_space.parquet] [--max-vertices 7]
The space is computed here (no download, no TensorFlow) and cached under .cache/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from core.nb101.space import enumerate_space, summarize, write_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("outputs/nb101_space.parquet"))
    p.add_argument("--max-vertices", type=int, default=7)
    args = p.parse_args(argv)
    start = time.perf_counter()
    table = enumerate_space(max_vertices=args.max_vertices, verbose=True)
    write_table(table, args.out)
    report = summarize(table)
    print(
        f"NB-101 space (enumerated by this project): {report['cells']:,} unique cells "
        f"in {time.perf_counter() - start:.1f} s -> {args.out}"
    )
    print("by vertex count: " + ", ".join(f"{v}: {n:,}" for v, n in report["by_vertices"].items()))
    for name, size in report["by_subspace"].items():
        print(f"  {name:5s} {size:>9,} cells")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
