"""The enumerated space: NB-101's counts, its stored cells, sub-spaces, cache and CLI."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from core.nb101 import space
from core.nb101.cli import main
from core.nb101.hashing import hash_array
from core.nb101.params import Macro, count_parameters
from core.nb101.space import SUBSPACES, cell_spec, decode_matrices, encode_matrix, enumerate_space, subspace

NB101_COUNTS = {2: 1, 3: 6, 4: 84, 5: 2441, 6: 62010, 7: 359082}


def test_full_space_has_nb101_counts(full_space):
    assert full_space.num_rows == 423_624
    nv = full_space["num_vertices"].to_numpy()
    assert {v: int((nv == v).sum()) for v in NB101_COUNTS} == NB101_COUNTS
    hashes = full_space["hash"].to_numpy(zero_copy_only=False)
    assert len(set(hashes)) == len(hashes)
    assert (hashes[:-1] < hashes[1:]).all()  # sorted for binary search
    assert full_space["num_edges"].to_numpy().max() == 9


def test_subspaces_partition_the_space(full_space):
    sizes = {name: subspace(full_space, name).num_rows for name in SUBSPACES}
    assert sizes["FULL"] == 423_624
    assert sizes["RES"] + sizes["NRES"] == sizes["FULL"]
    # every cell but the 2-vertex one has 1..4 interior vertices feeding the output... or 5
    fan_in = full_space["output_fan_in"].to_numpy()
    assert sum(sizes[f"A{i}"] for i in range(1, 5)) == sizes["FULL"] - int((fan_in == 0).sum()) - int(
        (fan_in == 5).sum()
    )
    assert all(sizes[name] > 0 for name in SUBSPACES)
    a2 = subspace(full_space, "A2")
    assert set(a2["output_fan_in"].to_pylist()) == {2}
    assert all(subspace(full_space, "RES")["input_to_output"].to_pylist())


def test_unknown_subspace_is_a_clear_error(full_space):
    with pytest.raises(ValueError, match="unknown sub-space 'A9'"):
        subspace(full_space, "A9")


def test_rows_decode_to_cells_with_their_hash_and_parameters(full_space):
    rng = np.random.default_rng(0)
    for row in full_space.take(rng.choice(full_space.num_rows, 500, replace=False)).to_pylist():
        cell = cell_spec(row["adj_bits"], row["num_vertices"], row["ops"])
        assert cell.hash == row["hash"]
        assert cell.num_edges == row["num_edges"]
        assert encode_matrix(cell.matrix) == row["adj_bits"]
        labels = [-1] + row["ops"][: row["num_vertices"] - 2] + [-2]
        assert count_parameters(cell.matrix, labels, Macro(stem_filters=16)) == row["params_16"]
        assert int(cell.matrix[1:-1, -1].sum()) == row["output_fan_in"]
        assert bool(cell.matrix[0, -1]) == row["input_to_output"]


def test_every_real_cell_hashes_to_its_stored_hash(real_nb101):
    """All 151,644 real cells: stored matrix + ops recompute to the stored hash."""
    nv = real_nb101["n_vertices"]
    for n in np.unique(nv):
        idx = np.flatnonzero(nv == n)
        matrices = decode_matrices(real_nb101["adj_bits"][idx], int(n))
        labels = np.concatenate(
            [
                np.full((len(idx), 1), -1),
                real_nb101["ops"][idx, : n - 2].astype(int),
                np.full((len(idx), 1), -2),
            ],
            axis=1,
        )
        got = hash_array(matrices, labels).astype("U32")
        assert (got == real_nb101["hash"][idx]).all(), f"{(got != real_nb101['hash'][idx]).sum()} differ"


def test_enumeration_stores_the_benchmark_matrix_and_parameters(full_space, real_nb101):
    """The first-found representative is the one NB-101 stores; parameter counts agree."""
    hashes = full_space["hash"].to_numpy(zero_copy_only=False)
    idx = np.searchsorted(hashes, real_nb101["hash"])
    assert (hashes[idx] == real_nb101["hash"]).all()
    assert (full_space["adj_bits"].to_numpy()[idx] == real_nb101["adj_bits"]).all()
    ops = np.asarray(full_space["ops"].combine_chunks().flatten()).reshape(-1, 5)[idx]
    assert (ops == real_nb101["ops"]).all()
    assert (full_space["params_128"].to_numpy()[idx] == real_nb101["trainable_parameters"]).all()


def test_small_space_counts_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path))
    table = enumerate_space(max_vertices=5)
    assert table.num_rows == 1 + 6 + 84 + 2441
    cached = list(tmp_path.glob("nb101_space_v5_e9_*.parquet"))
    assert len(cached) == 1
    monkeypatch.setattr(space, "build_space", lambda *a, **k: pytest.fail("cache not used"))
    assert enumerate_space(max_vertices=5).equals(table)


def test_bad_limits_are_clear_errors():
    with pytest.raises(ValueError, match="max_vertices must be in 2..7, got 8"):
        space.build_space(max_vertices=8)
    with pytest.raises(ValueError, match="max_edges"):
        space.build_space(max_edges=0)


def test_cli_enumerate_writes_parquet_and_reports(tmp_path, capsys):
    out = tmp_path / "space4.parquet"
    assert main(["enumerate", "--out", str(out), "--max-vertices", "4"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 91
    assert table.schema.metadata[b"max_vertices"] == b"4"
    printed = capsys.readouterr().out
    assert "91 unique cells" in printed and "4:84" in printed


def test_cli_rejects_bad_limits_without_writing(tmp_path, capsys):
    out = tmp_path / "never.parquet"
    assert main(["enumerate", "--out", str(out), "--max-vertices", "9"]) == 2
    assert "max_vertices must be in 2..7" in capsys.readouterr().err
    assert not out.exists()
