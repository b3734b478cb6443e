"""A job for `ray job submit --working-dir`: says where its driver and one of its Ray workers run
and which copy of the project each imports, as one `WHERE {json}` line in the job's log."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ray  # noqa: E402

from cluster.runtime import JOB_CONFIG_ENV, init_ray  # noqa: E402


def here() -> dict:
    """This process: its pid, working folder and the files of the project it imported."""
    import cluster
    import core

    return {"pid": os.getpid(), "cwd": os.getcwd(), "core": core.__file__, "cluster": cluster.__file__}


@ray.remote(num_cpus=1)
def worker() -> dict:
    return here()


def main() -> int:
    init_ray()  # joins the cluster the job was submitted to ($RAY_ADDRESS), ships nothing more
    report = {
        "driver": here(),
        "worker": ray.get(worker.remote()),
        "submitted": JOB_CONFIG_ENV in os.environ,
        "address": os.environ.get("RAY_ADDRESS"),
    }
    print("WHERE " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
