"""Bone-age sweep (thesis chapter 6): the table 6.1 variants on Ray, tracked in MLflow.

Usage:
    python jobs/bone_age.py [--config FILE] [--preset embedded|thesis] [--variants rsna,rhpe+ca]
        [--epochs N] [--rsna-csv F --rsna-images D] [--rhpe-csv F --rhpe-images D]
        [--clinical-csv F --clinical-images D] [--pretrained CKPT] [--tracking-uri URI]
        [--set train.lr=1e-4 ...]
    ray job submit --working-dir . -- python jobs/bone_age.py ...

Without datasets it runs on the embedded synthetic set (generated once by this project) with
the small "embedded" recipe preset; with datasets, the thesis recipe (ConvNeXt-Small, 600x600).
Each variant is a child run of the sweep's parent run; re-running the same sweep re-runs
nothing finished, and an interrupted variant resumes from its last epoch checkpoint. Tables
6.1-6.3, the reader comparison, fig. 6.4 and the weight plots go to --output-dir and the parent run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.boneage import VARIANTS, BoneAgeJobConfig, plan, prepare_data, report, run_sweep  # noqa: E402
from cluster.jobkit import Flag, JobCli, csv_list, fail, job_main, open_tracker  # noqa: E402
from cluster.sweep import open_sweep  # noqa: E402
from cluster.tracking import DatasetRef  # noqa: E402
from core.boneage.config import PRESETS  # noqa: E402
from core.config import ConfigError  # noqa: E402
from core.keys import stable_key  # noqa: E402

DATASETS = ("rsna", "rhpe", "clinical")

CLI = JobCli(
    __doc__,
    BoneAgeJobConfig,
    flags=(
        Flag("--variants", "variants", csv_list, help=f"some of {','.join(VARIANTS)}"),
        Flag("--epochs", "train.epochs", int),
        Flag("--register-model", "register_model", help="register the final models under this name (MLflow)"),
        *(Flag(f"--{name}-{part}", f"data.{name}.{part}") for name in DATASETS for part in ("csv", "images")),
        Flag(
            "--pretrained",
            "model.pretrained",
            help="local ImageNet-22k ConvNeXt checkpoint (.safetensors/.pth)",
        ),
    ),
    presets=PRESETS,
)


def check_pairs(args) -> None:
    """A dataset is a CSV and its image folder: one given without the other is an error."""
    for name in DATASETS:
        if (getattr(args, f"{name}_csv") is None) != (getattr(args, f"{name}_images") is None):
            raise ConfigError(f"--{name}-csv and --{name}-images go together")


@job_main()
def main(argv=None) -> int:
    from core.boneage.records import DataError

    args = CLI.parse(argv)
    try:
        check_pairs(args)
        config = CLI.config(args)
        print(f"recipe: {config.recipe_note()}")
        data = prepare_data(config)
    except (ConfigError, DataError, FileNotFoundError) as err:
        return fail(err)
    print(f"data: {data.note}")
    if not config.model.pretrained:
        print("weights: random initialisation (no local ImageNet checkpoint given: --pretrained)")
    units = plan(config, data)
    tracker = open_tracker(config)
    sweep_key = stable_key({"units": sorted(u.key for u in units)})
    tags = {"data": data.note[:5000], "preset": config.preset, "recipe": config.recipe_note()}
    datasets = tuple(DatasetRef(name, key, data.note[:500]) for name, key in sorted(data.identity.items()))
    with open_sweep(tracker, config.sweep_name, sweep_key, config.model_dump(), tags, datasets) as sweep:
        outcome = run_sweep(config, units, data, sweep.target)
        markdown, files = report(config, units, outcome.results, data, Path(config.output_dir))
        return sweep.close(outcome, files, markdown, config.output_dir, noun="variants")


if __name__ == "__main__":
    raise SystemExit(main())
