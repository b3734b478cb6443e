"""Fixtures for every test package: the real NB-101 data shipped with the project, the enumerated
space, a tracking server, a Ray head with its job API."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from cluster.runtime import LOOPBACK_ONLY_ENV
from core.nb101.real_subset import REAL_SUBSET_DIR, load_real_subset
from core.paths import REPO_ROOT

VENV_BIN = REPO_ROOT / ".venv" / "bin"


# `make test` runs `pytest -n 2`: the tests that start Ray clusters, tracking servers or whole jobs
# form one group, which one worker runs in file order at normal priority, as a plain `pytest`
# would; the other worker runs every other test (in-process compute) under SCHED_IDLE on one torch
# thread, so it takes only the CPU time the first leaves idle (about a third: process and server
# start-ups, waits on timeouts) and barely slows the group that sets the suite's time.
SERIAL_FOLDERS = ("benchmarks", "cluster", "deploy", "mlflow_server", "security")
SERIAL_TESTS = ("tests/test_readme.py::test_python_block_with_services_runs",)  # outside them
SERIAL_FIXTURES = {"ray_cluster", "ray_head", "tracking_server", "free_ports", "multinode"}  # only there
# In a serial folder, but they start no Ray, no server and no job on Ray (and no subprocess that a
# timeout bounds: under SCHED_IDLE it runs only when the serial group leaves a core idle). One torch
# thread each: two threads under SCHED_IDLE wait on each other (the detector took 874 s, not 140)
IN_PROCESS = (
    "tests/benchmarks/test_gpu_check.py",
    "tests/cluster/detection/test_detector_learns.py",  # the suite's heaviest compute, 1 thread
    "tests/cluster/detection/test_reader_study_job.py",
    "tests/cluster/nb101/test_headline.py",
    "tests/cluster/patch_nas/test_estimate.py",
    "tests/cluster/test_tracking.py",
    "tests/deploy/test_wheel.py",
)


def _file(nodeid: str) -> str:
    return nodeid.split("::")[0]


def serial(nodeid: str) -> bool:
    """True for a test of the serial group: its file under SERIAL_FOLDERS and not in IN_PROCESS,
    or the test in SERIAL_TESTS (a node id's test name, before its parameters)."""
    path = _file(nodeid)
    parts = path.split("/")
    in_folder = parts[:1] == ["tests"] and parts[1] in SERIAL_FOLDERS and path not in IN_PROCESS
    return in_folder or nodeid.split("[")[0] in SERIAL_TESTS


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduling by scope, with one scope for the whole serial group."""
    from xdist.scheduler import LoadScopeScheduling

    class SerialGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "serial" if serial(nodeid) else nodeid

    return SerialGroupScheduling(config, log)


def pytest_runtest_setup(item):
    """On an xdist worker, the first test outside the serial group lowers the worker's priority
    for good (a worker gets such tests only once its share of the serial group has run)."""
    yielding = os.sched_getscheduler(0) == os.SCHED_IDLE
    if hasattr(item.config, "workerinput") and not yielding and not serial(item.nodeid):
        import torch

        # SCHED_IDLE, not nice 19: Ray runs its workers at nice 15, which nice 19 would still slow
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Every test that starts a Ray cluster or a server must be in the serial group."""
    strays = [i.nodeid for i in items if SERIAL_FIXTURES & set(i.fixturenames) and not serial(i.nodeid)]
    if strays:
        raise pytest.UsageError(f"tests outside the serial group start services: {strays}")


@pytest.fixture(scope="session")
def real_nb101():
    """The 151,644 real NB-101 cells of `core/nb101/data/real_subset/` as numpy arrays."""
    return load_real_subset()


@pytest.fixture(scope="session")
def nb101_dir():
    """The folder of the real NB-101 files (parts, golden values, raw record, NASLib pickle)."""
    return REAL_SUBSET_DIR


@pytest.fixture(scope="session")
def full_space():
    """The whole NB-101 space, built by the current code (not read from a cache)."""
    from core.nb101.space import build_space

    return build_space(verbose=False)


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite backend) for tests where several processes log at
    once, as on a cluster; each test uses its own experiment names."""
    import socket

    from mlflow_server.server import ServerConfig, start, stop

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path_factory.mktemp("mlflow-server")
    url = start(ServerConfig(home=home, port=port))
    yield url
    stop(home)


@pytest.fixture
def experiment(request) -> str:
    """An experiment name unique to the test."""
    import uuid

    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="session")
def free_ports():
    """`free_ports(n)`: n distinct free TCP ports on 127.0.0.1."""
    return _ports


class RayHead:
    """A private Ray head (`ray start --head --block`) that a test can kill and restart."""

    def __init__(self):
        self.gcs, self.dashboard, self.agent, self.client_port = _ports(4)
        self.temp = tempfile.mkdtemp(prefix="rq", dir="/tmp")
        self.address = f"http://127.0.0.1:{self.dashboard}"
        self.proc = None

    def start(self, timeout: float = 180) -> None:
        env = os.environ | {
            "RAY_AUTH_MODE": "disabled",
            LOOPBACK_ONLY_ENV: "0",  # every port on 127.0.0.1, as `make ray-up`
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        }
        cmd = [
            str(VENV_BIN / "ray"),
            "start",
            "--head",
            "--block",
            "--port",
            str(self.gcs),
            "--dashboard-port",
            str(self.dashboard),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-agent-listen-port",
            str(self.agent),
            "--ray-client-server-port",
            str(self.client_port),
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "2",
            "--disable-usage-stats",
            "--temp-dir",
            self.temp,
        ]
        self.proc = subprocess.Popen(
            cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                from ray.job_submission import JobSubmissionClient

                JobSubmissionClient(self.address).list_jobs()
                return
            except Exception:
                time.sleep(2)
        raise RuntimeError("the test Ray head did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        subprocess.run(["pkill", "-9", "-f", self.temp], check=False)  # workers that left the group


@pytest.fixture(scope="module")
def ray_head():
    """A private Ray head on 127.0.0.1 with its job API (`head.address`), for one test module."""
    # The test head runs without token auth; the setting must not outlive this module: a Ray
    # cluster started later in this process would disagree with its driver about auth, and its
    # GCS would take the driver for dead and destroy every actor the driver creates.
    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    h = RayHead()
    try:
        h.start()
        yield h
    finally:
        h.stop()
        shutil.rmtree(h.temp, ignore_errors=True)
        if before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = before
