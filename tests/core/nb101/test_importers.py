"""Importers: golden values, round trips through the official format, corruption, safe pickles."""

from __future__ import annotations

import csv
import hashlib
import json
import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest

from core.nb101.benchmark import VALUE_COLUMNS, Benchmark
from core.nb101.cli import main
from core.nb101.export import export_tfrecord, official_payloads
from core.nb101.importers import import_naslib_pickle, import_real_subset, import_tfrecord, restricted_load
from core.nb101.tfrecord import CorruptRecordError, frame

README_CELL = "28cfc7874f6d200472e1a9dcd8650aa0"


@pytest.fixture(scope="module")
def shared_bench(real_nb101):
    return Benchmark.real_subset()


@pytest.fixture(scope="module")
def sample_table(shared_bench):
    rows = np.random.default_rng(0).choice(shared_bench.table.num_rows, 1500, replace=False)
    return shared_bench.table.take(np.sort(rows))


def test_golden_readme_cell_to_the_last_bit(shared_bench, nb101_dir):
    golden = json.loads((nb101_dir / "golden_inception_28cfc787.json").read_text())
    repeats = golden["computed_stats"]["108"]
    got = shared_bench.query([README_CELL])
    for r, rep in enumerate(repeats):
        for stage in ("final", "halfway"):
            for metric in ("train_accuracy", "validation_accuracy", "test_accuracy", "training_time"):
                key = metric if stage == "final" else f"halfway_{metric}"
                assert got[key][0, r] == rep[f"{stage}_{metric}"], (stage, metric, r)
    assert got["trainable_parameters"][0] == golden["trainable_parameters"]


def test_golden_first_hash(shared_bench, nb101_dir):
    golden = json.loads((nb101_dir / "golden_00005c14_first_hash.json").read_text())
    got = shared_bench.query([golden["module_hash"]])
    for r, rep in enumerate(golden["epochs108_repeats"]):
        assert got["validation_accuracy"][0, r] == rep["final_validation_accuracy"]
        assert got["test_accuracy"][0, r] == rep["final_test_accuracy"]
        assert got["training_time"][0, r] == rep["final_training_time"]
        assert got["train_accuracy"][0, r] == rep["final_train_accuracy"]
    assert got["validation_accuracy"].mean() == golden["mean_108"]["validation_accuracy"]
    assert got["test_accuracy"].mean() == golden["mean_108"]["test_accuracy"]


def test_whole_space_best_accuracies(shared_bench):
    best = shared_bench.best()
    assert best["best_mean_validation_accuracy"] == 0.9505542318026224
    assert best["best_mean_test_accuracy"] == 0.943175752957662
    assert best["cells"] == 151_644


def test_tfrecord_round_trip_gives_the_same_numbers(sample_table, tmp_path):
    path = tmp_path / "sample.tfrecord"
    n = export_tfrecord(sample_table, path)
    assert n == 3 * sample_table.num_rows
    table, errors = import_tfrecord(path, verbose=False)
    assert errors == []
    for column in ("hash", "epochs", "num_vertices", "adj_bits", "ops", "trainable_parameters", "repeats"):
        assert table[column].equals(sample_table[column]), column
    for column in VALUE_COLUMNS:
        assert np.array_equal(
            np.asarray(table[column].combine_chunks().flatten()),
            np.asarray(sample_table[column].combine_chunks().flatten()),
        ), column
    meta = table.schema.metadata
    assert meta[b"source_sha256"].decode() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert int(meta[b"records"]) == n and meta[b"source_format"] == b"nb101-tfrecord"


def _write_with(path, payloads):
    path.write_bytes(b"".join(frame(p) for p in payloads))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p[:-5], "malformed JSON"),
        (lambda p: p.replace(b'"input,', b'"inptu,', 1), "must start with input"),
        (lambda p: json.dumps(json.loads(p)[:4] + ["AAAA"]).encode(), "ModelMetrics|evaluations"),
    ],
)
def test_corrupt_record_stops_or_is_skipped(sample_table, tmp_path, damage, reason):
    payloads = list(official_payloads(sample_table.slice(0, 4)))
    payloads[4] = damage(payloads[4])
    path = tmp_path / "bad.tfrecord"
    _write_with(path, payloads)
    offset = sum(len(frame(p)) for p in payloads[:4])
    with pytest.raises(CorruptRecordError, match=rf"record 4 at byte offset {offset}: .*({reason})"):
        import_tfrecord(path, verbose=False)
    table, errors = import_tfrecord(path, skip_corrupt=True, verbose=False)
    assert len(errors) == 1
    assert int(table.schema.metadata[b"corrupt_records"]) == 1
    assert int(table.schema.metadata[b"records"]) == len(payloads) - 1


def test_hash_that_does_not_match_its_cell_is_corrupt(sample_table, tmp_path):
    payloads = list(official_payloads(sample_table.slice(0, 2)))
    row = json.loads(payloads[3])
    row[0] = "0" * 32
    payloads[3] = json.dumps(row).encode()
    path = tmp_path / "badhash.tfrecord"
    _write_with(path, payloads)
    with pytest.raises(CorruptRecordError, match="record 3 .*does not match its matrix"):
        import_tfrecord(path, verbose=False)
    table, errors = import_tfrecord(path, skip_corrupt=True, verbose=False)
    assert table.num_rows == 2 and len(errors) == 1


def test_cli_import_failure_writes_nothing(sample_table, tmp_path, capsys):
    payloads = list(official_payloads(sample_table.slice(0, 2)))
    payloads[2] = b"{not json"
    src, out = tmp_path / "bad.tfrecord", tmp_path / "bench.parquet"
    _write_with(src, payloads)
    assert main(["import", str(src), "--out", str(out), "--quiet"]) == 2
    assert "record 2 at byte offset" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".bench.parquet*"))
    assert main(["import", str(src), "--out", str(out), "--quiet", "--skip-corrupt"]) == 0
    assert "skipped 1 corrupt record" in capsys.readouterr().out
    assert pq.read_table(out).num_rows == 2


def test_naslib_pickle_matches_its_csv(nb101_dir):
    table, errors = import_naslib_pickle(nb101_dir / "naslib_nb101_dummy.pkl", verbose=False)
    bench = Benchmark(table)
    assert errors == [] and table.num_rows == 30
    with open(nb101_dir / "naslib_nb101_dummy_108.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 90
    got = bench.query([r["module_hash"] for r in rows])
    for i, r in enumerate(rows):
        rep = int(r["repeat"])
        assert got["validation_accuracy"][i, rep] == float(r["final_validation_accuracy"])
        assert got["halfway_test_accuracy"][i, rep] == float(r["halfway_test_accuracy"])
        assert got["training_time"][i, rep] == float(r["final_training_time"])
        assert got["trainable_parameters"][i] == int(r["trainable_parameters"])


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-pickle",))


def test_restricted_unpickler_refuses_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os)\.system"):
        restricted_load(pickle.dumps({"cell": _Evil()}))
    assert not (tmp_path / "pwned-by-pickle").exists()
    with pytest.raises(pickle.UnpicklingError, match="object"):
        restricted_load(pickle.dumps(np.array([{"a": 1}], dtype=object)))
    # plain data and numeric arrays still load
    data = restricted_load(pickle.dumps({"a": [1, 2.5, "x"], "m": np.eye(3, dtype=np.int64)}))
    assert data["a"] == [1, 2.5, "x"] and data["m"].tolist() == np.eye(3).tolist()


def test_real_subset_table_is_sorted_with_three_repeats(real_nb101):
    table = import_real_subset()
    hashes = table["hash"].to_numpy(zero_copy_only=False)
    assert (hashes[:-1] < hashes[1:]).all()
    assert set(table["repeats"].to_pylist()) == {3}
