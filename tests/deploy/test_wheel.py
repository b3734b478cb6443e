"""The wheel carries the NB-101 kernel compiled (setup.py), and a node that installed it loads that
library, also under a job's uploaded copy of the code, without compiling anything."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile

from cluster.runtime import PROJECT_EXCLUDES
from core.nb101.hashing import reference_hash_module
from core.paths import REPO_ROOT

CELL = [[0, 1, 1], [0, 0, 1], [0, 0, 0]]  # input -> conv3x3 -> output, input -> output
LABELS = [-1, 0, -2]
PROBE = (
    "from core.nb101 import hashing, native; "
    f"print(hashing.hash_module({CELL}, {LABELS})); print(native.source)"
)


def _probe(cwd, path: list) -> list[str]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(map(str, path))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_the_wheel_holds_the_compiled_kernel_which_installed_nodes_load(tmp_path):
    source = tmp_path / "checkout"
    ignore = shutil.ignore_patterns(*PROJECT_EXCLUDES, ".*cache", ".hypothesis", "*.egg-info", "tests")
    shutil.copytree(REPO_ROOT, source, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    subprocess.run(build, check=True)
    (wheel,) = tmp_path.glob("nas_sweeps-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if re.fullmatch(r"core/nb101/_wlhash\.cpython-\d+-.+\.so", n)], names
    assert "core/nb101/_wlhash.c" in names and "core/nb101/data/minibench_digits.parquet" in names

    site = tmp_path / "site"  # a node's environment
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    expected = reference_hash_module(CELL, LABELS)
    node = tmp_path / "node"
    node.mkdir()
    digest, where = _probe(node, [site])
    assert digest == expected and where.startswith(str(site / "core" / "nb101" / "_wlhash.")), where
    assert where.endswith("(installed)")

    # a job's uploaded copy of the code shadows the installed package: the kernel still comes from it
    job = tmp_path / "working_dir"
    shutil.copytree(source / "core", job / "core", ignore=shutil.ignore_patterns("*.so"))
    digest, where = _probe(job, [job, site])
    assert digest == expected and where.startswith(str(site)) and where.endswith("(installed)"), where
    assert not list((job / "core" / "nb101").glob("*.so"))  # nothing compiled into the copy
