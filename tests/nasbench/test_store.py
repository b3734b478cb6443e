"""What `api.NASBench(dataset_file)` reads: official tfrecords (imported once, cached), the raw
official record, NASLib's pickle (safely), and what happens with corrupt or changed files."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pytest

import core.nb101.importers as importers
from core.nb101.benchmark import VALUE_COLUMNS, Benchmark, build_table
from core.nb101.cli import main
from core.nb101.export import official_payloads
from core.nb101.tfrecord import CorruptRecordError, frame
from nasbench import api

README_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
RECORD = "nasbench_rs_test_record_00005c14_epochs4"


@pytest.fixture(scope="module")
def full_format_table(real_store, nb101_dir):
    """200 real cells at 108 epochs and the README cell at 4, 12, 36 and 108 (its golden values)."""
    real = Benchmark.open(real_store).table
    hashes = real["hash"].to_numpy(zero_copy_only=False)
    readme = int(np.flatnonzero(hashes == README_HASH)[0])
    rows = np.unique(np.r_[np.arange(0, 151_644, 758), readme])
    sample = real.take(rows)
    golden = json.loads((nb101_dir / "golden_inception_28cfc787.json").read_text())
    extra = [4, 12, 36]
    cells = {
        name: np.r_[sample[name].to_numpy(zero_copy_only=False), [real[name][readme].as_py()] * len(extra)]
        for name in ("hash", "num_vertices", "adj_bits", "trainable_parameters")
    }
    cells["epochs"] = np.r_[sample["epochs"].to_numpy(), extra]
    ops = np.asarray(sample["ops"].combine_chunks().flatten()).reshape(-1, 5)
    cells["ops"] = np.r_[ops, [real["ops"][readme].as_py()] * len(extra)]
    values = {}
    for name in VALUE_COLUMNS:
        own = np.asarray(sample[name].combine_chunks().flatten()).reshape(-1, 3)
        golden_rows = [[rep[name] for rep in golden["computed_stats"][str(e)]] for e in extra]
        values[name] = np.r_[own, golden_rows]
    return build_table(cells, values, {"source": "test", "source_format": "test"})


@pytest.fixture(scope="module")
def full_tfrecord(full_format_table, tmp_path_factory):
    """The table above, written by `python -m core.nb101 export` as an official tfrecord."""
    folder = tmp_path_factory.mktemp("tfrecord")
    store = folder / "mini.parquet"
    Benchmark(full_format_table).save(store)
    out = folder / "nasbench_mini_full.tfrecord"
    assert main(["export", str(store), "--out", str(out)]) == 0
    return out


def test_export_command_writes_official_records(full_format_table, full_tfrecord, tmp_path):
    assert full_tfrecord.read_bytes() == b"".join(frame(p) for p in official_payloads(full_format_table))
    only4 = tmp_path / "only4.tfrecord"
    store = full_tfrecord.with_name("mini.parquet")
    assert main(["export", str(store), "--out", str(only4), "--epochs", "4"]) == 0
    assert only4.read_bytes() == b"".join(frame(p) for p in official_payloads(full_format_table.slice(0, 1)))
    assert main(["export", str(store), "--out", str(tmp_path / "x.tfrecord"), "--epochs", "5"]) == 2
    assert not list(tmp_path.glob(".x.tfrecord*")) and not (tmp_path / "x.tfrecord").exists()


def test_tfrecord_is_imported_once_then_read_from_the_cache(
    full_format_table, full_tfrecord, cache_here, nb101_dir, capsys
):
    first = api.NASBench(full_tfrecord, seed=0)
    assert "importing" in capsys.readouterr().err
    stores = list(cache_here.glob("nb101-stores/*.parquet"))
    assert len(stores) == 1 and first.store == stores[0]
    assert first.valid_epochs == {4, 12, 36, 108}
    assert set(first.hash_iterator()) == set(full_format_table["hash"].to_pylist())

    def no_import(*args, **kwargs):
        raise AssertionError("the cached store should have been used")

    original = importers.import_any
    importers.import_any = no_import
    try:
        again = api.NASBench(full_tfrecord, seed=0)
    finally:
        importers.import_any = original
    assert "importing" not in capsys.readouterr().err
    golden = json.loads((nb101_dir / "golden_inception_28cfc787.json").read_text())
    fixed, computed = again.get_metrics_from_hash(README_HASH)
    assert computed == {int(e): reps for e, reps in golden["computed_stats"].items()}
    assert list(computed) == [4, 12, 36, 108]
    spec = api.ModelSpec(**golden["spec_as_in_nasbench_README"])
    data = again.query(spec, epochs=12, stop_halfway=True)
    assert data["test_accuracy"] in [rep["halfway_test_accuracy"] for rep in golden["computed_stats"]["12"]]
    assert again.get_budget_counters()[1] == 6
    other = next(h for h in again.hash_iterator() if h != README_HASH)
    f, _ = again.get_metrics_from_hash(other)
    with pytest.raises(KeyError):  # NB-101 raises KeyError for a budget a cell was not trained for
        again.query(api.ModelSpec(f["module_adjacency"], f["module_operations"]), epochs=4)


def test_a_changed_file_is_imported_again(full_format_table, tmp_path, cache_here):
    path = tmp_path / "nasbench_only108.tfrecord"
    payloads = list(official_payloads(full_format_table.slice(3, 20)))
    path.write_bytes(b"".join(frame(p) for p in payloads))
    assert len(api.NASBench(path).hash_iterator()) == 20
    path.write_bytes(
        path.read_bytes() + b"".join(frame(p) for p in official_payloads(full_format_table.slice(0, 1)))
    )
    assert len(api.NASBench(path).hash_iterator()) == 21
    assert len(list(cache_here.glob("nb101-stores/*.parquet"))) == 2


def test_corrupt_tfrecord_names_the_record_and_caches_nothing(full_format_table, tmp_path, cache_here):
    payloads = list(official_payloads(full_format_table.slice(0, 5)))
    data = bytearray(b"".join(frame(p) for p in payloads))
    offset = sum(len(frame(p)) for p in payloads[:7])
    data[offset + 40] ^= 0x20  # inside the 8th record's payload
    path = tmp_path / "broken.tfrecord"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match=rf"record 7 at byte offset {offset}: payload CRC mismatch"):
        api.NASBench(path)
    assert not cache_here.exists() or not [p for p in cache_here.rglob("*") if p.is_file()]


def test_the_raw_official_record(nb101_dir, cache_here):
    expected = json.loads((nb101_dir / f"{RECORD}.json").read_text())
    nb = api.NASBench(nb101_dir / f"{RECORD}.tfrecord")
    module_hash, epochs, adjacency, operations, _ = expected["json_row"]
    assert nb.valid_epochs == {4} and list(nb.hash_iterator()) == [module_hash]
    fixed, computed = nb.get_metrics_from_hash(module_hash)
    assert "".join(str(x) for x in fixed["module_adjacency"].ravel()) == adjacency
    assert fixed["module_operations"] == operations.split(",")
    decoded = expected["decoded_ModelMetrics"]
    assert fixed["trainable_parameters"] == decoded["trainable_parameters"]
    half, final = decoded["evaluation_data"][1], decoded["evaluation_data"][2]
    assert computed == {
        4: [
            {
                "halfway_training_time": half["training_time"],
                "halfway_train_accuracy": half["train_accuracy"],
                "halfway_validation_accuracy": half["validation_accuracy"],
                "halfway_test_accuracy": half["test_accuracy"],
                "final_training_time": final["training_time"],
                "final_train_accuracy": final["train_accuracy"],
                "final_validation_accuracy": final["validation_accuracy"],
                "final_test_accuracy": final["test_accuracy"],
            }
        ]
    }


def test_naslib_pickle_through_the_restricted_unpickler(nb101_dir, cache_here, tmp_path, monkeypatch):
    nb = api.NASBench(nb101_dir / "naslib_nb101_dummy.pkl")
    with open(nb101_dir / "naslib_nb101_dummy_108.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(nb.hash_iterator()) == 30 and len(rows) == 90
    for r in rows:
        fixed, computed = nb.get_metrics_from_hash(r["module_hash"])
        rep = computed[108][int(r["repeat"])]
        for key in rep:
            assert rep[key] == float(r[key]), key
        assert fixed["trainable_parameters"] == int(r["trainable_parameters"])
        assert fixed["module_operations"] == r["ops"].split("|")

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("touch pwned-by-pickle",))

    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"f" * 32: Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        api.NASBench(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.tfrecord"):
        api.NASBench(tmp_path / "nowhere.tfrecord")


def test_every_cell_at_every_budget(real_store, tmp_path):
    """The layout of nasbench_full: the same cells at each budget (rows found by offset, not search)."""
    sample = Benchmark.open(real_store).table.slice(1000, 50)
    columns = ("hash", "num_vertices", "adj_bits", "trainable_parameters")
    cells = {name: np.tile(sample[name].to_numpy(zero_copy_only=False), 2) for name in columns}
    cells["epochs"] = np.r_[np.full(50, 108), np.full(50, 36)]
    ops = np.asarray(sample["ops"].combine_chunks().flatten()).reshape(-1, 5)
    cells["ops"] = np.r_[ops, ops]
    values = {}
    for name in VALUE_COLUMNS:
        own = np.asarray(sample[name].combine_chunks().flatten()).reshape(-1, 3)
        values[name] = np.r_[own, own / 2]  # the 36-epoch rows: half of the 108-epoch values
    path = tmp_path / "two_budgets.parquet"
    Benchmark(build_table(cells, values, {"source": "test"})).save(path)
    nb = api.NASBench(path)
    assert nb.valid_epochs == {36, 108} and len(nb.hash_iterator()) == 50
    for h in sample["hash"].to_pylist()[::7]:
        _, computed = nb.get_metrics_from_hash(h)
        assert list(computed) == [36, 108]
        for r in range(3):
            for key, value in computed[108][r].items():
                assert computed[36][r][key] == value / 2
