"""`ray job submit --working-dir` to a `ray start` cluster: the job's driver and its Ray workers
run from Ray's unpacked copy of the checkout, in the cluster's folders, never from the checkout
(or the folder) that submitted it; the project reaches them through the runtime_env alone."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from core.paths import REPO_ROOT

RAY = str(REPO_ROOT / ".venv" / "bin" / "ray")
JOB = "tests/deploy/where_job.py"


def _where(log: str) -> dict:
    lines = [line for line in log.splitlines() if line.startswith("WHERE ")]
    assert lines, f"the job printed no WHERE line:\n{log[-3000:]}"
    return json.loads(lines[-1].removeprefix("WHERE "))


def test_a_job_submitted_with_its_working_dir_runs_from_rays_unpacked_copy(ray_head, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    submission = f"where-{uuid.uuid4().hex[:8]}"
    command = [RAY, "job", "submit", "--address", ray_head.address, "--submission-id", submission]
    command += ["--working-dir", str(REPO_ROOT), "--", "python", JOB]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # submitted from another folder than the checkout, as a client elsewhere would
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert JobSubmissionClient(ray_head.address).get_job_status(submission) == JobStatus.SUCCEEDED

    where = _where(done.stdout)
    assert where["submitted"] and where["address"], where  # a job's driver joined its cluster
    driver, worker = Path(where["driver"]["cwd"]), Path(where["worker"]["cwd"])
    assert driver.is_relative_to(ray_head.temp) and "runtime_resources" in driver.parts, driver
    assert driver.name.startswith("_ray_pkg_"), driver  # Ray's unpacked working_dir package
    assert not driver.is_relative_to(REPO_ROOT) and not driver.is_relative_to(tmp_path)
    assert where["worker"]["pid"] != where["driver"]["pid"]  # a Ray worker process, not the driver
    assert worker == driver  # the same unpacked copy on this node
    for process in ("driver", "worker"):
        for package in ("core", "cluster"):
            imported = Path(where[process][package])
            assert imported.is_relative_to(driver), f"{process} imported {package} from {imported}"
