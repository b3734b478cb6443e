"""NB-101 hashing throughput: the C batch kernel against the plain-Python reference algorithm.

Both hash the same 10,000 random cells of the space (uniform over the 423,624 cells) in the
same run; the outputs must be identical. Prints cells/s for each and the speed-up ratio.
"""

from __future__ import annotations

import numpy as np
from _timing import best_time

from core.nb101.hashing import hash_many, hash_module, native, reference_hash_module
from core.nb101.space import decode_matrices, enumerate_space

N_CELLS = 10_000


def random_cells(n: int, seed: int = 0):
    table = enumerate_space()
    rows = np.random.default_rng(seed).choice(table.num_rows, n, replace=False)
    sample = table.take(rows)
    matrices, labelings = [], []
    for bits, nv, ops in zip(
        sample["adj_bits"].to_pylist(), sample["num_vertices"].to_pylist(), sample["ops"].to_pylist()
    ):
        matrices.append(decode_matrices(np.array([bits]), nv)[0].astype(np.int64))
        labelings.append([-1] + ops[: nv - 2] + [-2])
    return matrices, labelings, sample["hash"].to_pylist()


def main() -> None:
    assert native() is not None, "C kernel unavailable: nothing to benchmark"
    matrices, labelings, stored = random_cells(N_CELLS)
    t_ref, ref = best_time(lambda: [reference_hash_module(m, lab) for m, lab in zip(matrices, labelings)], 1)
    t_batch, batch = best_time(lambda: hash_many(matrices, labelings))
    t_single, single = best_time(lambda: [hash_module(m, lab) for m, lab in zip(matrices, labelings)])
    assert ref == batch == single == stored, "hash outputs differ"
    print(f"{N_CELLS:,} random cells, identical output from all three")
    print(f"reference (plain Python): {t_ref:.3f} s  {N_CELLS / t_ref:>10,.0f} cells/s")
    print(f"hash_many (C batch):      {t_batch:.3f} s  {N_CELLS / t_batch:>10,.0f} cells/s")
    print(f"hash_module (C, 1 call/cell): {t_single:.3f} s  {N_CELLS / t_single:>10,.0f} cells/s")
    print(f"ratio batch/reference:  {t_ref / t_batch:.1f}x faster (goal >= 10x)")
    print(f"ratio single/reference: {t_ref / t_single:.1f}x faster")


if __name__ == "__main__":
    main()
