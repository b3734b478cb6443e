"""The package's public names, and the layering rule: stats never imports Ray (nor mlflow until asked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import stats

ROOT = Path(__file__).resolve().parents[2]

ISSUE_NAMES = [
    "bootstrap_ci",
    "compare",
    "cohen_d",
    "prob_superiority",
    "d_from_prob_superiority",
    "power",
    "runs_needed",
    "min_detectable_effect",
    "correlation_table",
]


def test_names_other_code_relies_on_are_exported():
    for name in ISSUE_NAMES:
        assert callable(getattr(stats, name)), name
    assert set(ISSUE_NAMES) <= set(stats.__all__)
    assert all(hasattr(stats, name) for name in stats.__all__)


def test_importing_every_module_pulls_in_neither_ray_nor_mlflow():
    code = (
        "import sys; import stats, stats.tables, stats.figures, stats.mlflow_io, stats.cli; "
        "print(sorted(m for m in ('ray', 'mlflow', 'matplotlib.pyplot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
