"""The fracture-NAS search driver alone: a driver process killed mid-search resumes the same search."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# The search driver alone, with a stand-in pool that finishes candidates in a shuffled order (the
# seed differs between runs) and a fitness computed from the genome: fast enough for every test run.
DRIVER = r"""
import json, random, sys
from pathlib import Path
from types import SimpleNamespace
from cluster.patch_nas.driver import CandidateSearch
from cluster.units import Unit, UnitResult
from core.keys import stable_key
from search.es import OnePlusOneES
from search.ofa_space import canonical


def fitness(g):
    return sum(g[:5]) / 20 + sum(v == 7 for v in g[5:25]) / 40 + sum(v == 6 for v in g[25:]) / 80


class ShuffledPool:
    def __init__(self, seed):
        self.rng, self.running, self.trained = random.Random(seed), [], []

    def submit(self, task):
        self.running.append(task)

    def wait(self):
        self.rng.shuffle(self.running)
        task = self.running.pop()
        self.trained.append(task.key)
        m = {"aufroc_val": fitness(task.job.genome), "params": 1e6, "macs": 1e6, "seconds": 1.0}
        result = UnitResult(task.key, "r-" + task.key, m, info={"cluster": 0, "attempts": 1})
        return [(task, result)]


def make_job(p):
    g = canonical(p.candidate)
    return SimpleNamespace(unit=Unit(stable_key({"genome": list(g)}), f"candidate-{p.index:03d}"), genome=g)


def search(path, order_seed, fault=None):
    path = Path(path)
    if path.exists():
        state = json.loads(path.read_text())
        es, records = OnePlusOneES.from_state(state["es"]), state["records"]
    else:
        es, records = OnePlusOneES(budget=14, num_workers=3, seed=7), []

    def save(es_, records_):
        path.write_text(json.dumps({"es": es_.state(), "records": records_}))

    pool = ShuffledPool(order_seed)
    CandidateSearch(es, records, pool, make_job, None, {}, save, fault, 3).run()
    return es, pool
"""


def test_search_driver_killed_mid_search_continues_identically(tmp_path):
    """A driver process killed after its 5th tell (os._exit, nothing flushed), restarted from its
    checkpoint, tells exactly what an uninterrupted run tells: the same candidates in the same
    order, whatever the order in which candidates finish (ask-order telling)."""
    uninterrupted = {}
    exec(DRIVER, uninterrupted)
    es_ref, _ = uninterrupted["search"](tmp_path / "ref.json", order_seed=1)
    assert es_ref.told == 14

    path = tmp_path / "state.json"
    fault = {"unit": "driver/tell-5", "marker": str(tmp_path / "killed")}
    code = DRIVER + f"\nsearch({str(path)!r}, order_seed=2, fault={fault!r})\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 17, proc.stderr[-2000:]
    state = json.loads(path.read_text())
    assert sum(e[0] == "tell" for e in state["es"]["events"]) == 5
    asked_before = sum(e[0] == "ask" for e in state["es"]["events"])
    assert asked_before == 8  # 5 told + 3 in flight

    resumed = {}
    exec(DRIVER, resumed)
    es, pool = resumed["search"](path, order_seed=3)
    assert es.told == es.num_tell == 14
    assert es.state()["events"] == es_ref.state()["events"]
    assert len(pool.trained) == len(set(pool.trained))  # the 3 in flight re-run once, nothing told twice
    in_flight = {r["key"] for r in state["records"][5:8]}
    assert in_flight <= set(pool.trained)
