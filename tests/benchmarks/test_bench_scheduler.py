"""benchmarks/bench_scheduler.py at a tiny size: every side finishes every unit (each unit a
FINISHED run on the tracking server), each prints a positive rate, and the summary gives both
ratios against Ray Tune; a bad --sizes or --sides is refused naming the flag."""

from __future__ import annotations

import re
import subprocess
import sys

from core.paths import REPO_ROOT

BENCH = str(REPO_ROOT / "benchmarks" / "bench_scheduler.py")
N = 8
SIDES = (("scheduler", "units"), (r"\+Tracker", "units"), ("Tune", "trials"), (r"Tune\+MLflow", "trials"))


def _bench(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, BENCH, *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_every_side_runs_every_unit_and_the_summary_has_both_ratios(tracking_server):
    done = _bench("--sizes", str(N), "--limit-s", "240", "--tracking-uri", tracking_server)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert f"tracking server {tracking_server} (SQLite)" in out
    for side, what in SIDES:
        line = re.search(rf"^\s+{N} {what}\s+{side}\s+([\d,.]+) {what}/s\s+([\d.]+) s(.*)$", out, re.M)
        assert line, f"no line for {side}:\n{out}"
        assert float(line.group(1).replace(",", "")) > 0 and "stopped" not in line.group(3), line.group(0)
    assert f"({N} FINISHED runs on the server; load " in out
    row = re.search(rf"^\s+{N}\s+(.+)$", out.split("units (trials) per second")[1], re.M)
    assert row and len(re.findall(r"\d+\.\d+x", row.group(1))) == 2, out  # against Tune+MLflow, Tune


def test_bad_sizes_and_sides_are_refused_naming_the_flag():
    done = _bench("--sizes", "1k")
    assert done.returncode == 2 and "--sizes" in done.stderr and "1k" in done.stderr
    done = _bench("--sides", "scheduler,Optuna")
    assert done.returncode == 2 and "--sides" in done.stderr and "Optuna" in done.stderr
