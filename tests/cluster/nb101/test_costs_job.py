"""jobs/nb101_costs.py: a cost table fanned out over Ray, resumed from its chunks, refused when
its chunks come from two devices."""

from __future__ import annotations

import pyarrow as pa
import pytest

from cluster.nb101.costs import Chunk, assemble
from core.nb101.costs import CostTable, CostTableError
from core.nb101.space import write_table


def test_a_table_is_timed_on_ray_and_a_second_run_resumes_every_chunk(
    ray_cluster, tmp_path, monkeypatch, capsys
):
    import jobs.nb101_costs as job

    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    args = ["--preset", "smoke", "--chunk-size", "6", "--set", "measures=2"]
    assert job.main([*args, "--out", str(tmp_path / "a.parquet")]) == 0
    out = capsys.readouterr()
    assert "timing 12 of 1,254 cells" in out.out and "2 chunks, 0 already done" in out.out
    assert "time cells: 12/12" in out.err  # progress
    first = CostTable.open(tmp_path / "a.parquet")
    assert first.fitted and first.table.num_rows == 12 and first.metadata["measures"] == "2"
    assert "FITTED for the others" in out.out and first.device.startswith("cpu: ")

    assert job.main([*args, "--local", "--out", str(tmp_path / "b.parquet")]) == 0
    assert "2 chunks, 2 already done" in capsys.readouterr().out
    again = CostTable.open(tmp_path / "b.parquet")
    assert again.table.equals(first.table) and again.identity == first.identity


def test_chunks_timed_on_two_devices_are_refused(tmp_path):
    part = pa.table({"hash": ["a"], "forward_s": [0.1], "step_s": [0.2], "step_sd": [0.0]})
    chunks = []
    for i, device in enumerate(("cuda: A100", "cuda: H100")):
        path = tmp_path / f"chunk{i}.parquet"
        write_table(part.replace_schema_metadata({"device": device, "timer": "wall time"}), path)
        chunks.append(Chunk(i, part, path))
    with pytest.raises(CostTableError, match="timed on 2 devices .* a clock is one device"):
        assemble(chunks)
    assert assemble(chunks[:1])[1:] == ("cuda: A100", "wall time")
