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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.boneage import (  # noqa: E402
    VARIANTS,
    dotted_overrides,
    load_job_config,
    plan,
    prepare_data,
    preset_note,
    report,
    run_sweep,
)
from cluster.jobkit import close_sweep, csv_list, fail, job_parser, overrides, tracking_uri  # noqa: E402
from cluster.scheduler import TrackingTarget  # noqa: E402
from cluster.tracking import Tracker  # noqa: E402
from core.config import ConfigError  # noqa: E402
from core.keys import stable_key  # noqa: E402


def parse_args(argv):
    p = job_parser(__doc__, "BoneAgeJobConfig keys")
    p.add_argument("--preset", choices=["auto", "embedded", "thesis"])
    p.add_argument("--variants", type=csv_list, help=f"some of {','.join(VARIANTS)}")
    p.add_argument("--epochs", type=int)
    for name in ("rsna", "rhpe", "clinical"):
        p.add_argument(f"--{name}-csv")
        p.add_argument(f"--{name}-images")
    p.add_argument("--pretrained", help="local ImageNet-22k ConvNeXt checkpoint (.safetensors/.pth)")
    return p.parse_args(argv)


def resolve_config(args):
    pairs = {
        "preset": args.preset,
        "variants": args.variants,
        "train.epochs": args.epochs,
        "model.pretrained": args.pretrained,
    }
    for name in ("rsna", "rhpe", "clinical"):
        csv, images = getattr(args, f"{name}_csv"), getattr(args, f"{name}_images")
        if (csv is None) != (images is None):
            raise ConfigError(f"--{name}-csv and --{name}-images go together")
        pairs[f"data.{name}.csv"], pairs[f"data.{name}.images"] = csv, images
    return load_job_config(args.config, dotted_overrides(overrides(args, **pairs)))


def main(argv=None) -> int:
    from core.boneage.records import DataError

    try:
        config = resolve_config(parse_args(argv))
        print(f"recipe: {preset_note(config)}")
        data = prepare_data(config)
    except (ConfigError, DataError, FileNotFoundError) as err:
        return fail(err)
    start = time.perf_counter()
    print(f"data: {data.note}")
    if not config.model.pretrained:
        print("weights: random initialisation (no local ImageNet checkpoint given: --pretrained)")
    units = plan(config, data)
    uri = tracking_uri(config)
    tracker = Tracker(uri, config.experiment)
    sweep_key = stable_key({"units": sorted(u.key for u in units)})
    parent = tracker.start_sweep(
        config.sweep_name,
        sweep_key,
        config.model_dump(),
        tags={"data": data.note[:5000], "preset": config.preset, "recipe": preset_note(config)},
    )
    target = TrackingTarget(uri, config.experiment, parent)
    try:
        outcome = run_sweep(config, units, data, target)
        out_dir = Path(config.output_dir)
        markdown, files = report(config, units, outcome.results, data, out_dir)
    except BaseException:
        tracker.finish_sweep(parent, {}, status="FAILED")
        raise
    return close_sweep(tracker, parent, outcome, files, markdown, start, uri, config, noun="variants")


if __name__ == "__main__":
    raise SystemExit(main())
