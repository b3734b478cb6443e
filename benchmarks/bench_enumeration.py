"""Full NB-101 enumeration: wall time and peak memory, against the reference approach.

The reference (NB-101's generate_graphs.py) hashes every labelled graph one at a time in
Python. Both approaches enumerate the 5-vertex space in this run (same output required);
the reference's full-space time is extrapolated from its per-graph rate, and our full
enumeration is timed for real.
"""

from __future__ import annotations

import itertools

import numpy as np
from _timing import best_time, peak_rss_mib

from core.nb101.hashing import reference_hash_module
from core.nb101.space import _full_dag_bits, build_space, decode_matrices

FULL_GRAPHS = 1_293_208  # labelled full DAGs up to 7 vertices / 9 edges (NB-101's loop count)


def reference_enumeration(max_vertices: int) -> tuple[set[str], int]:
    """The reference loop: every bit pattern and labeling, hashed one by one in Python."""
    seen, graphs = set(), 0
    for n in range(2, max_vertices + 1):
        for matrix in decode_matrices(_full_dag_bits(n, 9), n).astype(np.int64):
            for labels in itertools.product(range(3), repeat=n - 2):
                graphs += 1
                seen.add(reference_hash_module(matrix, [-1, *labels, -2]))
    return seen, graphs


def main() -> None:
    t_ref5, (ref_hashes, graphs5) = best_time(lambda: reference_enumeration(5), 1)
    t_ours5, small = best_time(lambda: build_space(5, verbose=False))
    assert ref_hashes == set(small["hash"].to_pylist()), "5-vertex spaces differ"
    print(
        f"5-vertex space ({small.num_rows:,} cells, {graphs5:,} graphs): reference {t_ref5:.2f} s, "
        f"ours {t_ours5:.2f} s -> {t_ref5 / t_ours5:.1f}x"
    )
    before = peak_rss_mib()
    t_full, full = best_time(lambda: build_space(7, verbose=True), 1)
    assert full.num_rows == 423_624
    ref_full = t_ref5 / graphs5 * FULL_GRAPHS
    print(
        f"full space: {full.num_rows:,} cells in {t_full:.1f} s (goal < 120 s); "
        f"peak RSS {max(before, peak_rss_mib()):.0f} MiB (goal < 2048)"
    )
    print(f"reference extrapolated to the full space: {ref_full:.0f} s -> ratio {ref_full / t_full:.1f}x")


if __name__ == "__main__":
    main()
