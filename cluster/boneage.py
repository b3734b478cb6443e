"""Chapter 6 as a sweep: the table 6.1 variants trained by `BoneAgeTrainer` Ray actors.

`BoneAgeJobConfig` is the job's validated config (recipe, data, variants, evaluation);
`load_job_config` applies the preset under the user's keys; `prepare_data` loads and checks
every dataset before anything starts; `plan` makes one unit per variant with a stable key;
`BoneAgeTrainer` is the actor that owns a device (a GPU when the cluster has some, CPUs
otherwise), trains a unit with a checkpoint per epoch (a restarted actor resumes from the last
one) and evaluates it on the clinical set; `run_sweep` drives the actors through the
scheduler; `report` builds tables 6.1-6.3, the reader comparison, fig. 6.4 and the weight plots.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from cluster.scheduler import Node, TrackingTarget, Unit, fault_hook, maybe_die, run_graph
from cluster.tracking import Tracker
from core.boneage.config import (
    PRESET_NOTES,
    PRESETS,
    DataConfig,
    ModelConfig,
    TrainConfig,
)
from core.config import Config, ConfigError, deep_merge, flatten, load_config, set_dotted
from core.keys import stable_key

UNIT_VERSION = 1  # bump when a unit's results would change for the same config
CHECKPOINT = "checkpoints/last.pt"
REFERENCE_READER = "Radiologist"


@dataclass(frozen=True)
class Variant:
    """One row of table 6.1: training set, chronological-age input, sample weighting."""

    name: str  # run name, CLI value
    label: str  # as in the thesis' tables
    dataset: Literal["rsna", "rhpe"]
    use_ca: bool
    weighting: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("rsna", "BSL_RSNA", "rsna", False, "none"),
        Variant("rsna+w_ba", "BSL_RSNA+W(BA)", "rsna", False, "BA"),
        Variant("rhpe", "BSL_RHPE", "rhpe", False, "none"),
        Variant("rhpe+ca", "+CA", "rhpe", True, "none"),
        Variant("rhpe+ca+w_da", "+CA+W(DA)", "rhpe", True, "DA"),
        Variant("rhpe+ca+w_ba_da", "+CA+W(BA,DA)", "rhpe", True, "BA_DA"),
    )
}


class EvaluationConfig(Config):
    level: float = Field(0.90, gt=0, lt=1, description="bootstrap interval level (90% in the thesis)")
    n_resamples: int = Field(10_000, ge=100)
    method: Literal["bca", "percentile"] = "bca"
    seed: int = 0


class BoneAgeJobConfig(Config):
    experiment: str = "bone-age"
    sweep_name: str = "bone-age"
    preset: Literal["auto", "embedded", "thesis"] = Field(
        "auto", description="auto: embedded when no dataset is given, else thesis"
    )
    variants: list[str] = Field(default_factory=lambda: list(VARIANTS))
    alpha: float = Field(0.5, gt=0, description="dampening exponent of W(DA) and W(BA,DA)")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    tracking_uri: str | None = None
    ray_address: str | None = None
    output_dir: str = "outputs/bone_age"
    checkpoint_dir: str | None = Field(
        None, description="local checkpoints; None: .cache/boneage/checkpoints"
    )
    checkpoint_to_mlflow: bool = Field(True, description="also store each epoch's checkpoint in the run")
    cpus_per_trainer: int = Field(1, ge=1, description="CPUs (and torch threads) of each actor")
    max_trainers: int | None = Field(None, ge=1, description="cap on concurrent actors")
    max_restarts: int = Field(3, ge=0, description="restarts of a dead actor (it resumes its unit)")

    @field_validator("variants")
    @classmethod
    def _known(cls, variants):
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; expected some of {list(VARIANTS)}")
        if not variants:
            raise ValueError(f"at least one variant is needed ({list(VARIANTS)})")
        if len(set(variants)) != len(variants):
            raise ValueError("a variant is listed twice")
        return variants

    @model_validator(mode="after")
    def _data_for_variants(self):
        if self.data.embedded:
            return self
        if self.data.clinical is None:
            raise ValueError("data.clinical: required when real datasets are given (the evaluation set)")
        for name in self.variants:
            dataset = VARIANTS[name].dataset
            if getattr(self.data, dataset) is None:
                raise ValueError(f"data.{dataset}: required by variant {name!r} (or drop it from variants)")
        return self


def load_job_config(path: str | Path | None = None, overrides: dict | None = None) -> BoneAgeJobConfig:
    """Defaults (the thesis recipe) < preset < file < overrides (nested dicts); validated."""
    user: dict = {}
    if path is not None:
        user = load_config(BoneAgeJobConfig, path).model_dump(exclude_unset=True)
    user = deep_merge(user, overrides or {})
    preset = user.get("preset", "auto")
    if preset == "auto":
        data = user.get("data") or {}
        preset = "embedded" if not any(data.get(k) for k in ("rsna", "rhpe", "clinical")) else "thesis"
    base = {k: v for k, v in PRESETS.get(preset, {}).items()}
    return load_config(BoneAgeJobConfig, None, deep_merge(base, user) | {"preset": preset})


def dotted_overrides(pairs: dict[str, object]) -> dict:
    """{'train.epochs': 3} -> {'train': {'epochs': 3}} (None values skipped)."""
    out: dict = {}
    for key, value in pairs.items():
        if value is not None:
            set_dotted(out, key, value)
    return out


def preset_note(config: BoneAgeJobConfig) -> str:
    return PRESET_NOTES.get(config.preset, config.preset)


# ---------------------------------------------------------------------------------- data


@dataclass
class SweepData:
    """Everything the units need, loaded and checked on the driver before any work starts."""

    train: dict[str, pd.DataFrame]  # dataset -> training records
    val: dict[str, pd.DataFrame]  # dataset -> validation records
    clinical: pd.DataFrame
    note: str  # where the data come from (said in the output and the runs)
    identity: dict[str, str]  # dataset -> content key
    weights: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (dataset, kind) -> w

    def compute_weights(self, variants: list[str], alpha: float) -> None:
        """Sample weights of each (training set, weighting) the variants use, computed once."""
        from core.boneage.weights import sample_weights

        for name in variants:
            v = VARIANTS[name]
            if v.weighting != "none" and (v.dataset, v.weighting) not in self.weights:
                t = self.train[v.dataset]
                self.weights[(v.dataset, v.weighting)] = sample_weights(
                    v.weighting, t["bone_age"], t["chronological_age"], alpha
                )


def _identity(frame: pd.DataFrame) -> str:
    """Content key of a record table: labels and the size of every image file."""
    sizes = [Path(p).stat().st_size for p in frame["image"]]
    cols = frame[["id", "hand", "sex", "bone_age", "chronological_age", "reader_bone_age"]]
    return stable_key({"rows": cols.astype(str).values.tolist(), "sizes": sizes})


def prepare_data(config: BoneAgeJobConfig, verbose: bool = True) -> SweepData:
    """Load every dataset the variants need (synthetic ones generated first when embedded);
    raises DataError naming file/line/column before anything is trained."""
    from core.boneage.records import load_clinical, load_rhpe, load_rsna, split_patients
    from core.boneage.synthetic import EMBEDDED_NOTE, ensure_synthetic, synthetic_sources

    if config.model.pretrained and not Path(config.model.pretrained).is_file():
        raise ConfigError(f"model.pretrained: checkpoint file not found: {config.model.pretrained}")
    data = config.data
    if data.embedded:
        root = ensure_synthetic(data.synthetic, verbose=verbose)
        rsna, rhpe, clinical = synthetic_sources(root)
        note = f"{EMBEDDED_NOTE}; in {root}"
    else:
        rsna, rhpe, clinical = data.rsna, data.rhpe, data.clinical
        note = "real data: " + ", ".join(
            f"{k} {getattr(data, k).csv}" for k in ("rsna", "rhpe", "clinical") if getattr(data, k)
        )
    needed = {VARIANTS[v].dataset for v in config.variants}
    loaders = {"rsna": (load_rsna, rsna), "rhpe": (load_rhpe, rhpe)}
    train, val = {}, {}
    for name in sorted(needed):
        load, source = loaders[name]
        frame = load(source)
        if source.val_csv:
            train[name], val[name] = frame, load(source, source.val_csv, source.val_images)
        else:
            train[name], val[name] = split_patients(frame, config.train.val_fraction, config.train.seed)
        if verbose:
            print(f"{name}: {len(train[name])} training and {len(val[name])} validation images")
    evaluation = load_clinical(clinical)
    if verbose:
        print(f"clinical evaluation set: {len(evaluation)} exams")
    identity = {f"{k}_train": _identity(v) for k, v in train.items()}
    identity |= {f"{k}_val": _identity(v) for k, v in val.items()}
    identity["clinical"] = _identity(evaluation)
    data = SweepData(train, val, evaluation, note, identity)
    data.compute_weights(config.variants, config.alpha)
    return data


# ---------------------------------------------------------------------------------- units


def _result_config(config: BoneAgeJobConfig) -> dict:
    """The parts of the config that decide a unit's result (not workers, paths, caching)."""
    train = config.train.model_dump()
    for key in ("num_workers", "cache_images", "eval_batch_size", "micro_batch_size"):
        train.pop(key)
    return {"model": config.model.model_dump(), "train": train}


def plan(config: BoneAgeJobConfig, data: SweepData) -> list[Unit]:
    """One unit per variant; its key covers the recipe, the variant and the data's content."""
    units = []
    for name in config.variants:
        v = VARIANTS[name]
        params = {
            "kind": "bone-age",
            "version": UNIT_VERSION,
            "variant": v.name,
            "label": v.label,
            "dataset": v.dataset,
            "use_ca": v.use_ca,
            "weighting": v.weighting,
            "alpha": config.alpha if v.weighting in ("DA", "BA_DA") else None,
            "data": {k: data.identity[k] for k in (f"{v.dataset}_train", f"{v.dataset}_val", "clinical")},
            **_result_config(config),
        }
        units.append(Unit(stable_key(params), v.name, params))
    return units


def _step_metrics(record: dict) -> list:
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    return [
        Metric(k, float(v), ts, int(record["epoch"]))
        for k, v in sorted(record.items())
        if k != "epoch" and v is not None and np.isfinite(v)
    ]


class BoneAgeTrainer:
    """Ray actor (see `make_trainers`): owns one device, trains and evaluates variant units.

    A unit's run is opened (an unfinished run of the same key is reopened), training resumes
    from the last checkpoint (local file first, else the run's artifact), a checkpoint is written
    after every epoch (atomically on disk, and to MLflow), then the model is evaluated on the
    validation and clinical sets with TTA and the run is closed with its metrics and tables.
    """

    def __init__(self, threads: int = 1):
        import torch

        torch.set_num_threads(threads)
        self.device = "cpu"
        try:
            import ray

            if ray.get_gpu_ids():
                self.device = "cuda"  # Ray made the assigned GPU the only visible one
        except Exception:  # noqa: BLE001 - outside Ray: CPU
            pass

    def device_name(self) -> str:
        return self.device

    def run(self, unit: Unit, target: TrackingTarget, fault: dict | None, job: dict, data: SweepData) -> dict:
        from core.boneage.training import Trainer
        from core.metrics.boneage import evaluation_frame, summary_metrics

        p = unit.params
        v = VARIANTS[p["variant"]]
        model_cfg, train_cfg = ModelConfig(**job["model"]), TrainConfig(**job["train"])
        tracker = target.tracker()
        train, val = data.train[v.dataset], data.val[v.dataset]
        weights = data.weights[(v.dataset, v.weighting)] if v.weighting != "none" else None
        trainer = Trainer(
            model_cfg, train_cfg, train, val, weights, v.use_ca, self.device, name=v.name, log=_log
        )
        params = flatten({k: x for k, x in p.items() if k != "data"}) | {
            "device": self.device,
            "init": trainer.init_note,
            "data_source": data.note,
            "n_train": len(train),
            "n_val": len(val),
            "n_clinical": len(data.clinical),
        }
        run_id = tracker.open_unit(
            target.parent_run_id, unit.key, unit.name, params, tags={"variant": v.name, "label": v.label}
        )
        local = Path(job["checkpoint_dir"]) / unit.key / "last.pt"
        resumed_from = self._resume(trainer, tracker, run_id, local)

        def on_epoch(t: Trainer, record: dict) -> None:
            path = t.save(local)
            if job["checkpoint_to_mlflow"]:
                tracker.save_blob(run_id, CHECKPOINT, path.read_bytes())
            tracker.client.log_batch(run_id, metrics=_step_metrics(record))
            if fault and int(fault.get("after_epoch", 1)) == t.epoch:
                maybe_die(unit, fault)

        if resumed_from == 0 and trainer.history == [] and trainer.val_images is not None:
            trainer.history.append({"epoch": 0, "val_mae": trainer.val_mae(tta=False)})
            tracker.client.log_batch(run_id, metrics=_step_metrics(trainer.history[0]))
        trainer.fit(on_epoch)

        val_pred = trainer.predict_images(trainer.val_images, trainer.val_labels) if len(val) else np.zeros(0)
        clinical_pred = trainer.predict(data.clinical, name="clinical set")
        frame = evaluation_frame(v.label, data.clinical, clinical_pred)
        history = pd.DataFrame(trainer.history)
        metrics = {f"clinical_{k}": x for k, x in summary_metrics(frame).items()}
        metrics |= {"resumed_from_epoch": resumed_from, "epochs": trainer.epoch}
        if len(val):
            truth = val["bone_age"].to_numpy(np.float64)
            metrics["val_mae_tta"] = float(np.mean(np.abs(val_pred - truth)))
            metrics["val_mae_predict_mean"] = float(np.mean(np.abs(truth - train["bone_age"].mean())))
            metrics["val_mae_initial"] = float(history.loc[history["epoch"] == 0, "val_mae"].iloc[0])
        val_table = val[["id", "patient_id", "sex", "bone_age", "chronological_age"]].assign(
            predicted=val_pred
        )
        tracker.close_unit(
            run_id,
            metrics,
            tables={
                "predictions.parquet": pa.Table.from_pandas(frame, preserve_index=False),
                "val_predictions.parquet": pa.Table.from_pandas(val_table, preserve_index=False),
                "history.parquet": pa.Table.from_pandas(history, preserve_index=False),
            },
        )
        if job["checkpoint_to_mlflow"]:  # the run holds the final checkpoint
            local.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                local.parent.rmdir()
        return {
            "key": unit.key,
            "run_id": run_id,
            "metrics": metrics,
            "predictions": frame,
            "history": history,
        }

    @staticmethod
    def _resume(trainer, tracker: Tracker, run_id: str, local: Path) -> int:
        if local.exists():
            trainer.load(local)
            where = str(local)
        else:
            blob = tracker.load_blob(run_id, CHECKPOINT)
            if blob is None:
                return 0
            trainer.restore_bytes(blob)
            where = f"run {run_id}"
        _log(f"{trainer.name}: resumed from the checkpoint of epoch {trainer.epoch} ({where})")
        return trainer.epoch


def _log(text: str) -> None:
    print(text, flush=True)


def trainer_slots(config: BoneAgeJobConfig) -> tuple[int, dict]:
    """How many actors run at once and what each asks Ray for (a GPU each when there are GPUs)."""
    import ray

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        slots, options = gpus, {"num_gpus": 1, "num_cpus": config.cpus_per_trainer}
    else:
        slots = max(1, int(resources.get("CPU", 1) // config.cpus_per_trainer))
        options = {"num_cpus": config.cpus_per_trainer}
    if config.max_trainers:
        slots = min(slots, config.max_trainers)
    return slots, options


def make_trainers(config: BoneAgeJobConfig, count: int) -> list:
    """`count` BoneAgeTrainer actors; a dead one is restarted and its calls retried (resume)."""
    import ray

    _, options = trainer_slots(config)
    cls = ray.remote(BoneAgeTrainer).options(
        max_restarts=config.max_restarts, max_task_retries=config.max_restarts, **options
    )
    return [cls.remote(config.cpus_per_trainer) for _ in range(count)]


def _reuse(tracker: Tracker):
    def reuse(unit: Unit, run_id: str) -> dict:
        run = tracker.client.get_run(run_id)
        return {
            "key": unit.key,
            "run_id": run_id,
            "metrics": dict(run.data.metrics),
            "predictions": tracker.load_table(run_id, "predictions.parquet").to_pandas(),
            "history": tracker.load_table(run_id, "history.parquet").to_pandas(),
        }

    return reuse


def run_sweep(config: BoneAgeJobConfig, units: list[Unit], data: SweepData, target: TrackingTarget):
    """Units on BoneAgeTrainer actors (round-robin over the slots); finished units are reused."""
    import ray

    from cluster.runtime import init_ray

    tracker = target.tracker()
    finished = tracker.finished_units()
    pending = [u for u in units if u.key not in finished]
    actors: list = []
    if pending:  # Ray only when there is work
        init_ray(config.ray_address)
        slots, options = trainer_slots(config)
        actors = make_trainers(config, min(slots, len(pending)))
        where = "1 GPU" if "num_gpus" in options else f"{options['num_cpus']} CPU(s)"
        print(f"{len(actors)} BoneAgeTrainer actor(s), {where} each")
    job = {
        "model": config.model.model_dump(),
        "train": config.train.model_dump(),
        "checkpoint_dir": str(checkpoint_dir(config)),
        "checkpoint_to_mlflow": config.checkpoint_to_mlflow,
    }
    shared = ray.put(data) if pending else None
    fault = fault_hook()
    counter = iter(range(len(units)))

    def launch(unit: Unit, _deps):
        actor = actors[next(counter) % len(actors)]
        return actor.run.remote(unit, target, fault, job, shared)

    nodes = [Node(u, launch, reuse=_reuse(tracker)) for u in units]
    outcome = run_graph(nodes, tracker, label="bone-age variants")
    for actor in actors:
        ray.kill(actor)
    return outcome


def checkpoint_dir(config: BoneAgeJobConfig) -> Path:
    if config.checkpoint_dir:
        return Path(config.checkpoint_dir)
    from core.paths import cache_dir

    return cache_dir() / "boneage" / "checkpoints"


# ---------------------------------------------------------------------------------- report


def _write(table: pd.DataFrame, markdown: str, name: str, out_dir: Path) -> list[Path]:
    from stats.tables import Report

    report = Report(name, pa.Table.from_pandas(table, preserve_index=False), markdown)
    return list(report.write(out_dir).values())


def reader_comparison(frame: pd.DataFrame, config: EvaluationConfig) -> pd.DataFrame:
    """Per model: MAE minus the reference reader's MAE on the same exams, paired bootstrap CI
    (whole patients resampled); negative favours the model."""
    from stats import bootstrap_ci

    reader = frame[frame["model"] == REFERENCE_READER].set_index("id")
    rows = []
    for model, exams in frame[frame["model"] != REFERENCE_READER].groupby("model", sort=False):
        exams = exams.set_index("id").loc[reader.index]
        model_err = np.abs(exams["predicted"] - exams["bone_age"]).to_numpy()
        reader_err = np.abs(reader["predicted"] - reader["bone_age"]).to_numpy()
        r = bootstrap_ci(
            (model_err, reader_err),
            "paired_diff",
            config.level,
            config.method,
            config.n_resamples,
            config.seed,
            groups=reader["patient_id"].to_numpy(),
        )
        rows.append(
            {
                "model": model,
                "n": len(model_err),
                "mae_model": float(model_err.mean()),
                "mae_reader": float(reader_err.mean()),
                "diff": r.estimate,
                "ci_low": r.low,
                "ci_high": r.high,
            }
        )
    return pd.DataFrame(rows)


def report(
    config: BoneAgeJobConfig, units: list[Unit], results: dict, data: SweepData, out_dir: Path
) -> tuple[str, list[Path]]:
    """Tables 6.1-6.3 (+ reference reader), reader comparison, training summary, fig. 6.4 and
    the weight plots, written to `out_dir`; returns the Markdown and the files. Everything is
    built in a temporary folder first, so a failure leaves no half-written report behind."""
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        markdown, built = _build_report(config, units, results, data, tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for path in built:
            os.replace(path, out_dir / path.name)
            files.append(out_dir / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return markdown, files


def _build_report(
    config: BoneAgeJobConfig, units: list[Unit], results: dict, data: SweepData, out_dir: Path
) -> tuple[str, list[Path]]:
    from core.boneage.figures import offset_scatter_figure, weights_figure
    from core.boneage.weights import LABELS
    from core.metrics.boneage import evaluation_frame, offset_correlation
    from stats.figures import save_figure
    from stats.tables import BONE_AGE_COLUMNS, bone_age_report, markdown_table

    out_dir.mkdir(parents=True, exist_ok=True)
    ev = config.evaluation
    frames = [results[u.key]["predictions"] for u in units]
    clinical = data.clinical
    has_reader = bool(np.all(np.isfinite(clinical["reader_bone_age"].to_numpy(np.float64))))
    if has_reader:
        frames.insert(0, evaluation_frame(REFERENCE_READER, clinical, clinical["reader_bone_age"]))
    predictions = pd.concat(frames, ignore_index=True)
    files: list[Path] = []
    tables = bone_age_report(
        predictions[[*BONE_AGE_COLUMNS, "patient_id"]],
        level=ev.level,
        n_resamples=ev.n_resamples,
        seed=ev.seed,
        method=ev.method,
    )
    files += list(tables.write(out_dir).values())
    parts = [
        f"Data: {data.note}.",
        f"Recipe: {preset_note(config)}.",
        "## Tables 6.1-6.3 (clinical evaluation set)",
        tables.markdown,
    ]
    if has_reader:
        comp = reader_comparison(predictions, ev)
        md = markdown_table(
            ["model", "MAE model", "MAE reader", f"model - reader [{ev.level:.0%} CI]"],
            [
                [
                    r.model,
                    f"{r.mae_model:.2f}",
                    f"{r.mae_reader:.2f}",
                    f"{r.diff:+.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]",
                ]
                for r in comp.itertuples()
            ],
        )
        files += _write(comp, md, "reader_comparison", out_dir)
        parts += [f"## Comparison with the reference reader (paired, {ev.level:.0%} bootstrap CI)", md]
    # training summary: validation MAE before and after training vs predicting the train mean
    rows = []
    for u in units:
        m, h = results[u.key]["metrics"], results[u.key]["history"]
        last = h[h["epoch"] == h["epoch"].max()].iloc[0]
        rows.append(
            {
                "variant": u.params["label"],
                "dataset": u.params["dataset"],
                "epochs": int(last["epoch"]),
                "val_mae_initial": m.get("val_mae_initial", float("nan")),
                "val_mae_final": float(last.get("val_mae", float("nan"))),
                "val_mae_tta": m.get("val_mae_tta", float("nan")),
                "val_mae_predict_mean": m.get("val_mae_predict_mean", float("nan")),
                "clinical_mae": m["clinical_mae"],
                "resumed_from_epoch": m.get("resumed_from_epoch", 0),
            }
        )
    summary = pd.DataFrame(rows)
    md = markdown_table(
        ["variant", "epochs", "val MAE before", "val MAE after (TTA)", "predicting the mean", "clinical MAE"],
        [
            [
                r.variant,
                str(r.epochs),
                f"{r.val_mae_initial:.2f}",
                f"{r.val_mae_tta:.2f}",
                f"{r.val_mae_predict_mean:.2f}",
                f"{r.clinical_mae:.2f}",
            ]
            for r in summary.itertuples()
        ],
    )
    files += _write(summary, md, "training_summary", out_dir)
    parts += ["## Training (validation split of each training set, months)", md]
    # fig. 6.4
    panels = []
    for u in units:
        f = results[u.key]["predictions"]
        ba, pred, ca = (
            f["bone_age"].to_numpy(),
            f["predicted"].to_numpy(),
            f["chronological_age_months"].to_numpy(),
        )
        panels.append((u.params["label"], ba - ca, ba - pred, offset_correlation(ba, pred, ca)))
    files.append(save_figure(offset_scatter_figure(panels), out_dir / "offset_scatter.png"))
    # sample weights, once per dataset and weighting
    for dataset, kind in sorted({(u.params["dataset"], u.params["weighting"]) for u in units}):
        if kind == "none":
            continue
        t, w = data.train[dataset], data.weights[(dataset, kind)]
        fig = weights_figure(
            t["bone_age"],
            w,
            kind,
            t["sex"],
            t["chronological_age"],
            title=f"{dataset} training set: {LABELS[kind]} (alpha {config.alpha})",
        )
        files.append(save_figure(fig, out_dir / f"weights_{dataset}_{kind}.png"))
    predictions_path = out_dir / "clinical_predictions.parquet"
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pandas(predictions, preserve_index=False), predictions_path, compression="zstd"
    )
    files.append(predictions_path)
    markdown = "\n\n".join(parts) + "\n"
    (out_dir / "bone_age_report.md").write_text(markdown)
    files.append(out_dir / "bone_age_report.md")
    return markdown, files
