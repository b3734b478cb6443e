"""Benchmark queries: shapes, order, unknown hashes, epochs, sub-space facts, bad files."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from core.nb101.benchmark import Benchmark, BenchmarkError, hash_words, structure_columns
from core.nb101.space import subspace


@pytest.fixture(scope="module")
def bench(real_nb101):
    return Benchmark.real_subset()


def test_query_returns_repeat_arrays_in_request_order(bench, real_nb101):
    rng = np.random.default_rng(1)
    idx = rng.choice(len(real_nb101["hash"]), 1000, replace=False)
    got = bench.query(real_nb101["hash"][idx])
    assert got["validation_accuracy"].shape == (1000, 3)
    assert got["trainable_parameters"].shape == (1000,)
    acc = real_nb101["accuracy"].astype(np.float64)
    assert np.array_equal(got["validation_accuracy"], acc[idx, :, 1])
    assert np.array_equal(got["test_accuracy"], acc[idx, :, 2])
    assert np.array_equal(got["halfway_validation_accuracy"], acc[idx, :, 4])
    assert np.array_equal(got["training_time"], real_nb101["times"][idx, :, 0].astype(np.float64))
    assert np.array_equal(got["trainable_parameters"], real_nb101["trainable_parameters"][idx])


def test_unknown_hashes_raise_or_mask(bench, real_nb101):
    known = real_nb101["hash"][:2]
    unknown = "f" * 32
    with pytest.raises(KeyError, match=f"1 hash\\(es\\) not in .* {unknown}"):
        bench.query([known[0], unknown, known[1]])
    got = bench.query([known[0], unknown, known[1]], missing="mask")
    assert got["found"].tolist() == [True, False, True]
    assert np.isnan(got["test_accuracy"][1]).all() and not np.isnan(got["test_accuracy"][0]).any()
    with pytest.raises(ValueError, match="not a 32-character hex hash"):
        bench.query(["xyz"])


def test_hash_words_order_is_hex_order():
    hexes = np.array(sorted(f"{i:032x}" for i in [0, 1, 255, 2**64, 2**127, 2**128 - 1]))
    words = hash_words(hexes)
    assert [tuple(w) for w in words] == sorted(tuple(w) for w in words)
    assert words[2].tolist() == [0, 255]


def test_subspace_facts_equal_a_brute_force_join(bench, full_space):
    """Best accuracies per sub-space, recomputed by joining with the enumerated space."""
    structure = structure_columns(bench.table)
    joined = bench.table.select(["hash"]).join(
        full_space.select(["hash", "output_fan_in", "input_to_output"]), "hash"
    )
    joined = joined.sort_by("hash")
    assert joined.num_rows == bench.table.num_rows
    for column in ("output_fan_in", "input_to_output"):
        assert np.array_equal(structure[column].to_numpy(), joined[column].to_numpy()), column
    mean_test = bench.mean("test_accuracy")
    for name in ("A2", "RES", "NRES"):
        allowed = set(subspace(full_space, name)["hash"].to_pylist())
        mask = np.array([h in allowed for h in bench.table["hash"].to_pylist()])
        assert bench.best(name)["best_mean_test_accuracy"] == mean_test[mask].max()
        assert bench.best(name)["cells"] == int(mask.sum())


def test_cells_of_a_subspace(bench):
    a3 = bench.cells(subspace="A3")
    assert a3.num_rows == bench.best("A3")["cells"]
    assert pc.all(pc.equal(structure_columns(a3)["output_fan_in"], 3)).as_py()


def test_several_budgets(bench, real_nb101):
    part = bench.table.slice(0, 10)
    early = part.set_column(1, "epochs", pa.array(np.full(10, 4, np.uint16)))
    table = pa.concat_tables([early, part]).replace_schema_metadata(bench.table.schema.metadata)
    multi = Benchmark(table)
    assert multi.epochs == [4, 108] and multi.final_epochs == 108
    hashes = real_nb101["hash"][:10]
    assert np.array_equal(
        multi.query(hashes, epochs=4)["test_accuracy"], multi.query(hashes)["test_accuracy"]
    )
    with pytest.raises(KeyError, match=r"no rows for 12 epochs; available: \[4, 108\]"):
        multi.query(hashes, epochs=12)


def test_bad_files_are_clear_errors(tmp_path, bench):
    with pytest.raises(FileNotFoundError, match="benchmark file not found"):
        Benchmark.open(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(BenchmarkError, match="not a Parquet file"):
        Benchmark.open(tmp_path / "junk.parquet")
    with pytest.raises(BenchmarkError, match=r"missing columns \[.*'final_test_accuracy'"):
        Benchmark(bench.table.drop_columns(["final_test_accuracy"]))
    old = bench.table.replace_schema_metadata({"schema_version": "0"})
    with pytest.raises(BenchmarkError, match="schema version '0'"):
        Benchmark(old)


def test_open_round_trip(tmp_path, bench):
    path = tmp_path / "b.parquet"
    bench.save(path)
    again = Benchmark.open(path)
    assert again.table.num_rows == bench.table.num_rows
    assert again.best() == bench.best()
