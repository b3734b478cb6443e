"""The detector learns: the job's trainer actor class, in this process, on the job's embedded
default exactly as `python jobs/fracture_detection.py` runs it (cpu-small preset, 320 iterations,
one CPU per trainer; about 200 s) must beat chance clearly on the test exams.

In this process, without Ray, so that `make test` runs it beside the Ray tests (tests/conftest.py,
IN_PROCESS); the job around the same class (Ray actor, a killed trainer resumed, units reused,
the report) is tested in test_detection_job.py on a tiny recipe."""

from __future__ import annotations

import torch

from cluster.detection.config import FractureDetectionConfig
from cluster.detection.data import data_identity
from cluster.detection.plan import plan
from cluster.detection.trainer import DetectionTrainer
from cluster.scheduler import TrackingTarget
from cluster.tracking import Tracker
from core.detection.config import PRESETS


def test_the_embedded_default_learns_to_detect(tmp_path):
    config = PRESETS.resolve(FractureDetectionConfig, None, {})
    assert config.preset == "cpu-small" and config.iterations == 320  # the job's default on CPUs
    assert config.cpus_per_trainer == 1  # one torch thread, as the other tests of this worker
    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "fracture-detection")
    target = TrackingTarget(tracker.tracking_uri, tracker.experiment, tracker.start_sweep("s", "k", {}))
    threads = torch.get_num_threads()
    try:
        actor = DetectionTrainer(config.model_dump(mode="json"), None)  # sets torch's threads
        pairs = plan(config, data_identity(actor.splits()))
        tested = [actor.evaluate(ev, target, {tr.key: actor.train(tr, target)}) for tr, ev in pairs]
    finally:
        torch.set_num_threads(threads)
    assert len(tested) == len(config.seeds) >= 1
    for result in tested:  # the job's detection_metrics.csv holds these, one row per seed
        m = result.metrics
        print({k: round(v, 3) for k, v in sorted(m.items())})
        assert m["roc_auc"] > 0.75 and m["aufroc_image_0.02_0.5"] > 0.4, m
        assert m["FRACTURE.spe_pw"] > m["DOUBT.spe_pw"] and m["DOUBT.se_pw"] > m["FRACTURE.se_pw"], m
