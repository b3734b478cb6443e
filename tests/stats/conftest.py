"""Synthetic run results shaped like the thesis' experiments, shared by the table, figure and CLI tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_correlation_cells(seed: int = 0, replicates: int = 5, n: int = 150) -> pd.DataFrame:
    """space, variant, replicate, proxy, target; replicate 1 of (A4, BNS-FT) diverged (NaN proxies)."""
    rng = np.random.default_rng(seed)
    rows = []
    for space in ("A4", "A1"):
        for variant, noise in (("NO-FT", 3.0), ("BNS-FT", 0.7)):
            for r in range(replicates):
                target = rng.normal(0.9, 0.02, n)
                proxy = target + rng.normal(0, 0.02 * noise, n)
                if (space, variant, r) == ("A4", "BNS-FT", 1):
                    proxy[:] = np.nan
                rows.append(
                    pd.DataFrame(
                        {"space": space, "variant": variant, "replicate": r, "proxy": proxy, "target": target}
                    )
                )
    return pd.concat(rows, ignore_index=True)


def make_trajectories(seed: int = 0) -> pd.DataFrame:
    """space, method, run_id, time, regret for RS_bs / GS_bs (30 runs) and RS_ws / GS_ws (10 runs)."""
    rng = np.random.default_rng(seed)
    rows = []
    for space, ws_scale in (("A1", 0.05), ("A4", 3.0)):
        for method in ("RS_bs", "GS_bs", "RS_ws", "GS_ws"):
            baseline = method.endswith("_bs")
            for r in range(30 if baseline else 10):
                if baseline:
                    t = np.cumsum(rng.uniform(0.5, 1.5, 80))
                    regret = np.minimum.accumulate(rng.exponential(0.05, 80))
                else:
                    t = 40 + rng.normal(0, 2) + np.arange(15.0)
                    regret = np.minimum.accumulate(rng.exponential(0.01 * ws_scale, 15))
                rows.append(
                    pd.DataFrame(
                        {
                            "space": space,
                            "method": method,
                            "run_id": f"{space}-{method}-{r}",
                            "time": t,
                            "regret": regret,
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)


def make_bone_age(seed: int = 0, n: int = 194) -> pd.DataFrame:
    """Two models on the same n exams: a good one and a worse one, pathological cases about 27%."""
    rng = np.random.default_rng(seed)
    sex = np.where(np.arange(n) % 2 == 0, "F", "M")
    age = rng.uniform(5, 17, n)
    pathological = rng.random(n) < 0.27
    bone_age = age * 12 + np.where(
        pathological, rng.choice([-1, 1], n) * rng.uniform(24, 40, n), rng.normal(0, 8, n)
    )
    rows = []
    for model, noise, sens in (("BSL", 9.0, 0.75), ("BSL+W", 6.0, 0.85)):
        predicted = bone_age + rng.normal(0, noise, n)
        call = np.where(pathological, rng.random(n) < sens, rng.random(n) < 0.1)
        rows.append(
            pd.DataFrame(
                {
                    "model": model,
                    "patient_id": np.arange(n),
                    "sex": sex,
                    "chronological_age": age,
                    "bone_age": bone_age,
                    "predicted": predicted,
                    "pathological": pathological,
                    "predicted_pathological": call,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def make_readings(seed: int = 0, readers: int = 12) -> pd.DataFrame:
    """reader, metric, condition, value: AI help raises sensitivity, lowers reading time."""
    rng = np.random.default_rng(seed)
    rows = []
    for reader in range(readers):
        se = rng.normal(70.8, 12.5)
        time = rng.normal(67.0, 26.0)
        for condition, se_value, time_value in (
            ("unaided", se, time),
            ("aided", se + rng.normal(8.7, 8.0), time + rng.normal(-10.0, 20.0)),
        ):
            rows.append(
                {"reader": f"R{reader}", "metric": "SE_pw", "condition": condition, "value": se_value}
            )
            rows.append(
                {
                    "reader": f"R{reader}",
                    "metric": "reading_time",
                    "condition": condition,
                    "value": time_value,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def correlation_cells() -> pd.DataFrame:
    return make_correlation_cells()


@pytest.fixture
def trajectories() -> pd.DataFrame:
    return make_trajectories()


@pytest.fixture
def bone_age() -> pd.DataFrame:
    return make_bone_age()


@pytest.fixture
def readings() -> pd.DataFrame:
    return make_readings()


# ----------------------------------------------------------------------------- a real MLflow store


class MlflowStore:
    """A local sqlite MLflow store with artifacts under a temporary folder (never a server)."""

    def __init__(self, root):
        from mlflow import MlflowClient

        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self._files = 0

    def experiment(self, name: str) -> str:
        return self.client.create_experiment(name, artifact_location=str(self.root / "artifacts" / name))

    def run(
        self, experiment_id: str, params=None, metrics=None, parent=None, artifacts=None, status="FINISHED"
    ):
        """A run with params, metrics, Parquet artifacts {path: frame}, optionally a child of `parent`."""
        from mlflow.entities import Metric, Param, RunTag

        tags = {"mlflow.parentRunId": parent} if parent else {}
        run = self.client.create_run(experiment_id, tags=tags)
        run_id = run.info.run_id
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        for name, frame in (artifacts or {}).items():
            self._files += 1
            folder = self.root / "staging" / str(self._files)
            folder.mkdir(parents=True)
            frame.to_parquet(folder / name, index=False)
            self.client.log_artifact(run_id, str(folder / name))
        self.client.set_terminated(run_id, status=status)
        return run_id


def populate(store: MlflowStore) -> dict:
    """One experiment per table kind, each a sweep: a parent run and its children."""
    ids = {}
    exp = store.experiment("correlation")
    parent = store.run(exp, params={"sweep": "table-4.3"})
    ids["correlation_parent"] = parent
    cells = make_correlation_cells(replicates=3, n=60)
    for (space, variant, rep), group in cells.groupby(["space", "variant", "replicate"], sort=False):
        store.run(
            exp,
            params={"space": space, "variant": variant, "replicate": rep},
            parent=parent,
            artifacts={"proxy.parquet": group[["proxy", "target"]]},
        )
    # A run still going must not count; nor must one outside the sweep when --parent-run is given.
    store.run(
        exp,
        params={"space": "A1", "variant": "NO-FT", "replicate": 9},
        parent=parent,
        artifacts={"proxy.parquet": cells.iloc[:60][["proxy", "target"]]},
        status="RUNNING",
    )
    store.run(
        exp,
        params={"space": "ZZ", "variant": "NO-FT", "replicate": 0},
        artifacts={"proxy.parquet": cells.iloc[:60][["proxy", "target"]]},
    )
    ids["correlation_cells"] = cells

    exp = store.experiment("oneshot")
    parent = store.run(exp)
    traj = make_trajectories()
    traj = traj[traj.space == "A4"]
    keep = traj.groupby("method").run_id.unique().apply(lambda r: list(r[:4])).sum()
    traj = traj[traj.run_id.isin(keep)]
    for (space, method, _run), group in traj.groupby(["space", "method", "run_id"], sort=False):
        # Logged as cluster.baselines logs a search: clocks `step` and `sim_time`, no `time` column.
        logged = pd.DataFrame(
            {
                "step": np.arange(1, len(group) + 1),
                "sim_time": group.time.to_numpy(),
                "regret": group.regret.to_numpy(),
            }
        )
        store.run(
            exp,
            params={"space": space, "method": method},
            parent=parent,
            artifacts={"trajectory.parquet": logged},
        )
    ids["trajectories"] = traj

    exp = store.experiment("bone-age")
    predictions = make_bone_age(n=120)
    for model, group in predictions.groupby("model", sort=False):
        store.run(
            exp, params={"model": model}, artifacts={"predictions.parquet": group.drop(columns=["model"])}
        )
    ids["bone_age"] = predictions

    exp = store.experiment("readers")
    readings = make_readings(readers=4)
    for (reader, condition), group in readings.groupby(["reader", "condition"], sort=False):
        store.run(
            exp,
            params={"reader": reader, "condition": condition},
            metrics=dict(zip(group.metric, group.value)),
        )
    ids["readings"] = readings
    return ids


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory):
    """(store, ids): the populated store, shared by the MLflow reader and CLI tests."""
    store = MlflowStore(tmp_path_factory.mktemp("mlflow"))
    return store, populate(store)
