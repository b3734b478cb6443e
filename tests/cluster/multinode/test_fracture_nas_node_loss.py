"""The fracture-NAS smoke search with K = 2 worker clusters of G = 2 workers, each a placement group
of two GPU bundles on the nodes Ray chose (3 worker nodes of 2 GPUs: one to spare). A candidate is
held at the end of its epoch; removing its node kills that worker cluster (and only that one), the
candidate is trained again on the other cluster and the lost one is rebuilt on the spare node,
where it trains the next candidate. With `tell_order: ask` the search ends identical to the
uninterrupted one: the same asks, tells, scores and training losses."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from cluster.scheduler import FAULT_ENV
from cluster.tracking import KIND, UNIT_KEY, Tracker

SEARCH = [
    "--preset",
    "smoke",
    "--no-final",
    "--clusters",
    "2",
    "--workers-per-cluster",
    "2",
    "--budget",
    "3",
    "--set",
    "search.tell_order=ask",
    "--set",
    "data.synthetic.studies=24",  # half the smoke preset's patches: the same events, in less time
]
HELD = "candidate-000"


def parent_and_units(uri: str) -> tuple:
    tracker = Tracker(uri, "fracture-nas")
    (parent,) = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")
    units = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    state = json.loads(tracker.load_blob(parent.info.run_id, "es/checkpoint.json"))
    return parent, units, state


@pytest.fixture(scope="module")
def lost_gang(multinode, strike, tmp_path_factory):
    """The search uninterrupted, then again with the node of candidate-000's worker cluster removed
    while the candidate finishes its epoch."""
    import jobs.fracture_nas as job

    tmp = tmp_path_factory.mktemp("fracture-node-loss")
    saved = os.environ.get("SWEEPS_CACHE_DIR")
    os.environ["SWEEPS_CACHE_DIR"] = str(tmp / "cache")  # the generated patches, made once here
    multinode.reset()
    times, events = {}, {}

    def search(name: str) -> int:
        start = time.monotonic()
        args = [*SEARCH, "--tracking-uri", f"file:{tmp / name}", "--output-dir", str(tmp / f"{name}-out")]
        try:
            return job.main(args)
        finally:
            times[name] = time.monotonic() - start

    def lose_node(where: dict) -> None:
        events["node"], events["nodes_before"] = where["node_id"], multinode.alive()
        multinode.remove(where["node_id"])

    marker = tmp / "held"
    try:
        reference = search("uninterrupted")
        os.environ[FAULT_ENV] = strike.hold_env(HELD, marker)
        with strike.recorded() as out, strike.when_held(marker, lose_node):
            rc = search("node-lost")
    finally:
        os.environ.pop(FAULT_ENV, None)
        if saved is None:
            os.environ.pop("SWEEPS_CACHE_DIR", None)
        else:
            os.environ["SWEEPS_CACHE_DIR"] = saved
    print(f"fracture-NAS searches: {times}")
    return {
        "rc": (reference, rc),
        "reference": parent_and_units(f"file:{tmp / 'uninterrupted'}"),
        "lost": parent_and_units(f"file:{tmp / 'node-lost'}"),
        "events": events,
        "out": "".join(out),
    }


def test_a_lost_node_kills_one_worker_cluster_rebuilt_where_resources_remain(lost_gang, multinode):
    assert lost_gang["rc"] == (0, 0)
    removed = lost_gang["events"]["node"]
    assert removed not in multinode.alive()
    parent, units, state = lost_gang["lost"]
    died = re.findall(r"worker cluster (\d+) died while training (\S+) \(attempt 1", lost_gang["out"])
    assert len(died) == 1 and died[0][1] == HELD  # one cluster, the one on the removed node
    assert parent.data.metrics["cluster_failures"] == 1
    record = state["records"][0]
    assert record["attempts"] == 2 and record["failed_on"] == [int(died[0][0])]
    held = next(r for r in units if r.info.run_name == HELD)
    first, last = held.data.params["gang_node_ids"].split(","), held.data.tags["gang_node_ids"].split(",")
    assert removed in first  # its first attempt ran (in part) on the removed node
    assert removed not in last and set(last) <= lost_gang["events"]["nodes_before"]  # retried on live nodes
    assert held.data.tags["cluster"] == str(record["cluster"])
    rebuilt = [r for r in units if r.data.tags["cluster"] == died[0][0] and r.info.run_name != HELD]
    assert rebuilt, "the rebuilt worker cluster trained nothing"
    for run in rebuilt:
        nodes = run.data.tags["gang_node_ids"].split(",")
        assert removed not in nodes and set(nodes) <= lost_gang["events"]["nodes_before"]


def test_with_tell_order_ask_the_search_ends_as_the_uninterrupted_one(lost_gang):
    _, ref_units, reference = lost_gang["reference"]
    _, units, state = lost_gang["lost"]
    assert state["es"]["events"] == reference["es"]["events"]  # the same asks and tells, in order
    scores = ("genome", "key", "aufroc_val")
    assert [[r[k] for k in scores] for r in state["records"]] == [
        [r[k] for k in scores] for r in reference["records"]
    ]
    keys = [r.data.tags[UNIT_KEY] for r in units]
    assert len(keys) == len(set(keys)) == len(ref_units) and all(r.info.status == "FINISHED" for r in units)
    # each candidate trained to the same weights, the one retrained on another cluster included:
    # its training loss is a fingerprint finer than a score on a few validation patches
    trained = {r.info.run_name: (r.data.metrics["final_loss"], r.data.metrics["aufroc_val"]) for r in units}
    assert trained == {
        r.info.run_name: pytest.approx((r.data.metrics["final_loss"], r.data.metrics["aufroc_val"]), rel=1e-6)
        for r in ref_units
    }


def test_each_worker_cluster_holds_its_g_gpus_on_nodes_ray_chose(lost_gang, multinode):
    for _, units, _ in (lost_gang["reference"], lost_gang["lost"]):
        for run in units:
            for where in (run.data.params, run.data.tags):
                nodes, gpus = where["gang_node_ids"].split(","), where["gang_gpu_ids"].split(";")
                assert len(nodes) == len(gpus) == 2 and run.data.params["workers"] == "2"
                assert all(re.fullmatch(r"\d+", g) for g in gpus)  # one whole GPU per worker
                assert multinode.head_id not in nodes  # the head has no GPU
