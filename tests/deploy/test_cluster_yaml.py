"""deploy/cluster.yaml is a config Ray's cluster launcher accepts (its schema, then the preparation
`ray up` runs for the local provider), its commands are shell that parses, and the node
environment it sources (deploy/node-env.sh) gives every node the tracking server, the token mode
and the project's environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml

from core.paths import REPO_ROOT

CLUSTER_YAML = REPO_ROOT / "deploy" / "cluster.yaml"
NODE_ENV = REPO_ROOT / "deploy" / "node-env.sh"
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _commands(config: dict) -> list[str]:
    keys = ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands")
    return [command for key in keys for command in config.get(key, [])]


def test_it_validates_against_the_launcher_schema_ray_ships(config):
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)  # the file as written: no key the launcher does not know
    assert config["provider"]["type"] == "local"
    assert {"head_ip", "worker_ips"} <= set(config["provider"]), "a manual cluster names its machines"


def test_ray_up_prepares_it_with_every_worker_joining(config):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(config)  # what `ray up` does before anything else, then validates
    validate_config(prepared)
    (node_type,) = prepared["available_node_types"].values()
    workers = len(config["provider"]["worker_ips"])
    assert node_type["min_workers"] == node_type["max_workers"] == workers


def test_the_head_address_is_the_same_everywhere_and_the_job_api_stays_on_loopback(config):
    head = config["provider"]["head_ip"]
    head_commands = " ".join(config["head_start_ray_commands"])
    assert set(IPV4.findall(head_commands)) - {"127.0.0.1", "0.0.0.0"} == {head}
    start = next(c for c in config["head_start_ray_commands"] if "ray start" in c)
    flags = ("--head", f"--node-ip-address={head}", "--dashboard-host=127.0.0.1", "--disable-usage-stats")
    for flag in flags:
        assert flag in start, flag
    assert "mlflow_server start" in head_commands and "--admin-password-file" in head_commands
    worker = next(c for c in config["worker_start_ray_commands"] if "ray start" in c)
    assert "--address=$RAY_HEAD_IP:6379" in worker and not IPV4.findall(worker)
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert command.startswith(". ~/nas-sweeps/node-env.sh "), f"not in the node's environment: {command}"


def test_what_it_copies_to_the_nodes_is_what_the_repository_makes(config):
    mounts = config["file_mounts"]
    assert mounts["~/nas-sweeps/node-env.sh"] == "./deploy/node-env.sh" and NODE_ENV.is_file()
    assert mounts["~/nas-sweeps/dist"] == "./dist"
    wheel = re.search(r"^wheel:.*\n((?:\t.*\n)+)", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert wheel and "-w dist" in wheel.group(1) and "cp requirements.txt dist/" in wheel.group(1)
    name = re.search(r'^name = "(.+)"', (REPO_ROOT / "pyproject.toml").read_text(), re.M).group(1)
    install = " ".join(config["setup_commands"])
    assert f"dist/{name.replace('-', '_')}-*.whl" in install and "dist/requirements.txt" in install
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert "chmod 600 ~/.ray/auth_token ~/nas-sweeps/mlflow-password" in install  # secrets: owner only


def test_every_command_is_shell_that_parses(config):
    for command in _commands(config):
        done = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        assert done.returncode == 0, f"{command}: {done.stderr}"


def _source(home: Path, shared: Path, *args: str) -> subprocess.CompletedProcess:
    script = f". {NODE_ENV} {' '.join(args)} && env"
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "SWEEPS_SHARED": str(shared)}
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)


def test_the_node_environment_points_every_node_at_the_head_and_the_shared_cache(tmp_path):
    home, shared = tmp_path / "home", tmp_path / "shared"
    (home / "nas-sweeps").mkdir(parents=True)
    (home / "nas-sweeps" / "mlflow-password").write_text("a long enough secret\n")
    done = _source(home, shared, "10.0.0.1")
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert env["MLFLOW_TRACKING_URI"] == "http://10.0.0.1:5000"
    assert env["MLFLOW_TRACKING_USERNAME"] == "admin"
    assert env["MLFLOW_TRACKING_PASSWORD"] == "a long enough secret"
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["PATH"].startswith(f"{home}/nas-sweeps/venv/bin:")
    cache = shared / "nas-sweeps" / "cache"
    assert env["SWEEPS_CACHE_DIR"] == str(cache) and cache.stat().st_mode & 0o777 == 0o700

    missing = _source(home, shared)
    assert missing.returncode == 2 and "head node's address" in missing.stderr
    (tmp_path / "not-a-mount").write_text("")
    unmounted = _source(home, tmp_path / "not-a-mount", "10.0.0.1")
    assert unmounted.returncode == 1 and "is the shared mount there" in unmounted.stderr
