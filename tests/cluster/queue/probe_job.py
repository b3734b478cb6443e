"""A small resumable job for the queue tests: `units` steps of `seconds` each, each finished
step recorded once (a re-run skips finished steps, like the sweeps), with MLflow runs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pydantic import Field  # noqa: E402

from core.config import Config, load_config  # noqa: E402


class ProbeConfig(Config):
    units: int = Field(3, ge=1)
    seconds: float = Field(0.5, ge=0)
    out_dir: str
    tracking_uri: str | None = None
    fail: bool = False


def main() -> int:
    config = load_config(ProbeConfig, sys.argv[sys.argv.index("--config") + 1])
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "log.txt", "a") as log:
        log.write(f"start {os.environ.get('SWEEPS_QUEUE_JOB_ID')} {time.time():.3f}\n")
    tracker = parent = None
    if config.tracking_uri:
        from cluster.tracking import Tracker

        tracker = Tracker(config.tracking_uri, "queue-probe")
        parent = tracker.start_sweep("probe", f"probe-{config.out_dir}", {"units": config.units})
    for i in range(config.units):
        done = out / f"unit{i}.done"
        if done.exists():
            continue
        run = None
        if tracker:
            run = tracker.open_unit(parent, f"{config.out_dir}-{i}", f"unit{i}", {"i": i})
        time.sleep(config.seconds)
        if config.fail:
            raise SystemExit("probe asked to fail")
        tmp = done.with_suffix(".tmp")
        tmp.write_text(str(time.time()))
        os.replace(tmp, done)
        if tracker:
            tracker.close_unit(run, {"i": i})
        with open(out / "log.txt", "a") as log:
            log.write(f"done {i}\n")
    if tracker:
        tracker.finish_sweep(parent, {"units": config.units})
    print("probe finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
