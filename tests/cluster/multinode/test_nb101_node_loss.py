"""The smoke NB-101 sweep on several nodes with a bad day in the middle: a supernet is held after
its first epoch's checkpoint, then its worker node is removed and the tracking server is stopped
and started again. The sweep must finish with every unit exactly once and FINISHED, the numbers
of an uninterrupted sweep, and a re-run must reuse everything. Where each unit ran is in its
run's params: supernet trainers on a whole GPU, evaluators on a share of one."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from cluster.scheduler import FAULT_ENV
from cluster.tracking import KIND, UNIT_KEY, Tracker

HELD = "A2/uniform/supernet0"


def unit_runs(uri: str, experiment: str) -> list:
    tracker = Tracker(uri, experiment)
    return tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")


class Server:
    """This module's own tracking server, started in the background (`ready()` waits for it).
    Units are reused across a server's experiments, so on a shared server this sweep would find
    another test's units finished, or leave its own to the next test."""

    def __init__(self, home, port: int):
        from mlflow_server.server import ServerConfig

        self.config, self.error = ServerConfig(home=home, port=port), None
        self.url = self.config.url
        self.thread = threading.Thread(target=self._start)
        self.thread.start()

    def _start(self) -> None:
        try:
            self.start()
        except Exception as err:  # raised by ready()
            self.error = err

    def ready(self) -> str:
        self.thread.join()
        if self.error:
            raise self.error
        return self.url

    def start(self) -> None:
        from mlflow_server.server import start

        start(self.config)

    def stop(self) -> None:
        from mlflow_server.server import stop

        stop(self.config.home)


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_ports):
    (port,) = free_ports(1)
    server = Server(tmp_path_factory.mktemp("mlflow"), port)
    yield server
    server.thread.join()
    server.stop()


@pytest.fixture(scope="module")
def bad_day(multinode, strike, nb101_reference, nb101_small, server, tmp_path_factory):
    """The uninterrupted reference (while the server starts), then the sweep that loses a node and
    its tracking server, then the same sweep submitted again; what each printed."""
    import jobs.nb101_sweep as job

    multinode.reset()
    clock = time.monotonic()
    reference = nb101_reference(nb101_small)  # run now unless an earlier test ran it
    times = {"reference": time.monotonic() - clock}
    tmp = tmp_path_factory.mktemp("nb101-node-loss")
    marker, events = tmp / "held", {}
    args = [*nb101_small, "--tracking-uri", server.ready(), "--set", "experiment=nb101-node-loss"]

    def lose_node_and_server(where: dict) -> None:
        events["node"], events["nodes_before"] = where["node_id"], multinode.alive()
        server.stop()
        events["server_down"] = time.monotonic()
        multinode.remove(where["node_id"])
        deadline = time.monotonic() + 120
        while "unreachable" not in "".join(out) and time.monotonic() < deadline:
            time.sleep(0.5)  # down until some process has met the outage (the resumed trainer will)
        server.start()  # back after its start-up time (~20 s here)
        events["server_up"] = time.monotonic()

    os.environ[FAULT_ENV] = strike.hold_env(HELD, marker)
    try:
        clock = time.monotonic()
        with strike.recorded() as out, strike.when_held(marker, lose_node_and_server):
            rc = job.main([*args, "--output-dir", str(tmp / "out")])
        times["node and server lost"] = time.monotonic() - clock
    finally:
        os.environ.pop(FAULT_ENV, None)
        if "server_down" in events and "server_up" not in events:
            server.start()  # the re-run needs it
    clock = time.monotonic()
    with strike.recorded() as again:
        rerun = job.main([*args, "--output-dir", str(tmp / "again")])
    times["re-run"] = time.monotonic() - clock
    print(f"NB-101 sweeps (s): {times}; server down for {events['server_up'] - events['server_down']:.0f} s")
    return {
        "rc": rc,
        "rerun": rerun,
        "events": events,
        "out": "".join(out),
        "again": "".join(again),
        "reference": reference,
        "uri": server.url,
        "experiment": "nb101-node-loss",
    }


def test_a_node_lost_mid_sweep_changes_no_number(bad_day, multinode, deterministic):
    assert bad_day["rc"] == 0
    removed = bad_day["events"]["node"]
    assert removed in bad_day["events"]["nodes_before"] and removed not in multinode.alive()
    reference = {r.info.run_name: r for r in unit_runs(*bad_day["reference"])}
    runs = unit_runs(bad_day["uri"], bad_day["experiment"])
    names = [r.info.run_name for r in runs]
    assert sorted(names) == sorted(reference) and len(runs) == 11  # every unit, exactly once
    for run in runs:
        ref = reference[run.info.run_name]
        assert run.info.status == "FINISHED" and run.data.tags[UNIT_KEY] == ref.data.tags[UNIT_KEY]
        numbers = deterministic(run.data.metrics)
        assert numbers == pytest.approx(deterministic(ref.data.metrics)), run.info.run_name
    held = next(r for r in runs if r.info.run_name == HELD)
    # it started on the lost node (the first attempt's params) and finished on another (the tag)
    assert held.data.params["node_id"] == removed and held.data.tags["node_id"] != removed
    assert held.data.metrics["resumed_from_epoch"] == 1
    assert re.search(rf"{HELD}: resumed from its checkpoint at epoch 1 \(run \w+\)", bad_day["out"])


def test_the_tracking_server_restarted_mid_sweep_was_waited_out(bad_day):
    waits = re.findall(
        r"tracking server \S+ unreachable .*?: (\w+) retried in (\d+) s \((\d+) s of at most (\d+) s\)",
        bad_day["out"],
    )
    assert waits, "no client waited for the server"
    assert all(1 <= int(w) <= 30 and int(spent) <= int(most) for _, w, spent, most in waits)
    down = bad_day["events"]["server_up"] - bad_day["events"]["server_down"]
    assert max(int(spent) for _, _, spent, _ in waits) <= down + 30  # nobody waited much past the restart
    keys = [r.data.tags[UNIT_KEY] for r in unit_runs(bad_day["uri"], bad_day["experiment"])]
    assert len(keys) == len(set(keys)) == 11  # no unit lost, none logged twice


def test_the_sweep_submitted_again_reuses_everything(bad_day):
    assert bad_day["rerun"] == 0
    assert "11 units, 11 already finished in MLflow (skipped), 0 to run" in bad_day["again"]
    assert len(unit_runs(bad_day["uri"], bad_day["experiment"])) == 11


def test_trainers_hold_a_whole_gpu_and_evaluators_a_share_on_worker_nodes(bad_day, multinode):
    runs = unit_runs(bad_day["uri"], bad_day["experiment"])
    nodes = bad_day["events"]["nodes_before"] - {multinode.head_id}  # the head has no GPU
    supernets = [r for r in runs if r.data.tags.get("role") == "supernet"]
    evaluations = [r for r in runs if r.data.tags.get("role") == "evaluation"]
    assert len(supernets) == 2 and len(evaluations) == 1
    for run in supernets:
        p = run.data.params
        assert p["gpus"] == "1" and re.fullmatch(r"\d+", p["gpu_ids"]) and p["node_id"] in nodes
    for run in evaluations:
        p = run.data.params
        assert p["gpus"] == "0.5" and re.fullmatch(r"\d+", p["gpu_ids"])
        assert p["node_id"] in nodes | set(multinode.alive())
