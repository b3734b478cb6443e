"""Every port the project's local services open is on loopback, read from the machine's listening
sockets (psutil) of exactly the processes each service started:

- the Ray cluster of `make ray-up` (the Makefile's own recipe, on free ports), with a job, its
  supervisor and an actor running on it; its job API refuses a request without the token;
- the private Ray instance a job starts without --ray-address (`cluster.runtime.init_ray`);
- the tracking server of `python -m mlflow_server start`.

README "Security" says what listens where; nothing local is exposed by design.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from core.paths import REPO_ROOT

RAY = str(Path(sys.executable).parent / "ray")
LOOPBACK = ("127.", "::1", "::ffff:127.")  # this test's own idea of loopback, not the code's


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and every descendant still alive."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def role(name: str) -> str:
    """A process name without the method a Ray worker is running: Ray titles an actor's process
    `ray::Class` when idle and `ray::Class.method` while a call runs (a fresh-clone run met
    `ray::JobSupervisor.<method>` and failed on it)."""
    return name.split(".", 1)[0] if name.startswith("ray::") else name


def listening(procs: list[psutil.Process]) -> list[tuple[str, int, str]]:
    """(address, port, process role) of every TCP socket these processes listen on."""
    names = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            names[p.pid] = role(p.name())
    return sorted(
        {
            (c.laddr.ip, c.laddr.port, names[c.pid])
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in names
        }
    )


def exposed(listeners: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    return [each for each in listeners if not each[0].startswith(LOOPBACK)]


def kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(procs, timeout=30)


def wait_for(check, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1.0)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} within {timeout:.0f} s\n{tail}")


def http_status(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


PROBE = """
import pathlib, sys, time
sys.path.insert(0, {repo!r})
import ray
from cluster.runtime import init_ray

init_ray({init})  # a job on a cluster: RAY_ADDRESS, set by `ray job submit`; else its own instance


@ray.remote
class Probe:
    def ping(self):
        return 1


probe = Probe.remote()
ray.get(probe.ping.remote())
pathlib.Path({ready!r}).write_text("ready")
while not pathlib.Path({done!r}).exists():  # measured from outside meanwhile
    time.sleep(0.5)
ray.shutdown()
"""


def probe_script(tmp_path: Path, init: str = "") -> tuple[Path, Path, Path]:
    """(script, ready, done): a driver with an actor that writes `ready`, then waits for `done`."""
    script, ready, done = tmp_path / "probe.py", tmp_path / "ready", tmp_path / "done"
    script.write_text(PROBE.format(repo=str(REPO_ROOT), init=init, ready=str(ready), done=str(done)))
    return script, ready, done


def test_ray_up_cluster_and_a_job_on_it_listen_on_loopback_only(tmp_path, free_ports):
    gcs, dashboard, agent, client = free_ports(4)
    temp = tempfile.mkdtemp(prefix="rsec", dir="/tmp")  # short: Ray's socket paths have a limit
    token = secrets.token_hex(32)  # found by the recipe's token step: nothing written to ~/.ray
    env = os.environ | {"RAY_AUTH_TOKEN": token}
    flags = (
        f"--block --port {gcs} --dashboard-port {dashboard} --dashboard-agent-listen-port {agent} "
        f"--ray-client-server-port {client} --num-cpus 1 --temp-dir {temp}"
    )
    log = tmp_path / "ray-up.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(
            ["make", "-s", "-o", "setup", "ray-up", f"RAY_ARGS={flags}"],
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api = f"http://127.0.0.1:{dashboard}"
    try:
        wait_for(lambda: http_status(f"{api}/api/version", token) == 200, 240, "no Ray head", log)
        assert http_status(f"{api}/api/jobs/") == 401  # token authentication: none, no answer
        script, ready, done = probe_script(tmp_path)
        submitted = subprocess.run(
            [RAY, "job", "submit", "--address", api, "--no-wait", "--", "python", str(script)],
            env=env | {"RAY_AUTH_MODE": "token"},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        wait_for(ready.exists, 240, "the job's actor did not answer", log)
        listeners = listening(process_tree(make.pid))
        done.touch()
    finally:
        kill(process_tree(make.pid))
        shutil.rmtree(temp, ignore_errors=True)
    names = {name for _, _, name in listeners}
    ports = {port for _, port, _ in listeners}
    assert {gcs, dashboard, agent, client} <= ports, listeners  # the measurement sees the cluster
    assert {"gcs_server", "raylet", "ray::Probe", "ray::JobSupervisor"} <= names, listeners
    assert not exposed(listeners), f"listening beyond loopback: {exposed(listeners)}"


def test_the_private_ray_instance_of_a_job_listens_on_loopback_only(tmp_path):
    script, ready, done = probe_script(tmp_path, init="num_cpus=1")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    try:
        wait_for(lambda: ready.exists() or driver.poll() is not None, 240, "the driver did not start")
        assert driver.poll() is None, f"the driver exited with {driver.returncode}"
        listeners = listening(process_tree(driver.pid))
        done.touch()
        driver.wait(120)
    finally:
        kill(process_tree(driver.pid))
    names = {name for _, _, name in listeners}
    assert {"gcs_server", "raylet", "ray::Probe"} <= names, listeners
    assert not exposed(listeners), f"listening beyond loopback: {exposed(listeners)}"


def test_the_tracking_server_listens_on_loopback_only(tmp_path, free_ports):
    """As `make mlflow-start` starts it (the authenticated one: tests/mlflow_server/test_auth.py)."""
    (port,) = free_ports(1)
    home = tmp_path / "mlflow"
    env = os.environ | {"MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_hex(8)}  # if it asked for one
    cli = [sys.executable, "-m", "mlflow_server"]
    started = subprocess.run(
        [*cli, "start", "--home", str(home), "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        pid = json.loads((home / "server.json").read_text())["pid"]
        listeners = listening(process_tree(pid))
    finally:
        subprocess.run([*cli, "stop", "--home", str(home)], cwd=REPO_ROOT, timeout=120, check=True)
    assert port in {p for _, p, _ in listeners}, listeners
    assert not exposed(listeners), f"listening beyond loopback: {exposed(listeners)}"


def test_role_drops_the_method_of_a_ray_worker_title_only():
    assert role("ray::JobSupervisor.run") == role("ray::JobSupervisor") == "ray::JobSupervisor"
    assert role("python3.11") == "python3.11" and role("gcs_server") == "gcs_server"
