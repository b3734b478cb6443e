"""The evaluation unit of a fracture-detection sweep: the test set scored by a trained model.

Short (one pass over the test split), so it is not checkpointed: a unit whose worker dies runs
again from the start. Its run is written in one go at the end and dated from when the evaluation
started (`timed`): its duration is the evaluation's.
"""

from __future__ import annotations

from cluster.detection.config import FractureDetectionConfig
from cluster.detection.plan import CURVES, MODEL
from cluster.scheduler import TrackingTarget, maybe_die
from cluster.tracking import timed
from cluster.units import Unit, UnitResult
from core.config import flatten


@timed  # the unit's run starts when the evaluation does, not when it is logged
def evaluate_model(
    config: FractureDetectionConfig,
    test,
    unit: Unit,
    target: TrackingTarget,
    fault: dict | None,
    deps: dict[str, UnitResult],
    device: str,
) -> UnitResult:
    """Score the test set with the exported model of the unit's training (its operating points
    included) and log a child run with the metrics, detections, curves and per-study table."""
    from core.detection.backends import load_detector
    from core.detection.evaluate import evaluate, predict_dataset

    maybe_die(unit, fault)
    tracker = target.tracker()
    trained = deps[unit.params["train_unit"]]
    detector = load_detector(tracker.load_blob(trained.run_id, MODEL), device)
    detections = predict_dataset(detector, test, config.eval_batch_size)
    result = evaluate(
        test.ground_truth(),
        detections,
        detector.operating_points,
        config.iou_threshold,
        config.froc_fp_range,
        config.froc_fp_per,
    )
    curves = result.curves.to_arrow()
    run_id = tracker.log_unit(
        target.parent_run_id,
        unit.key,
        unit.name,
        params=flatten(unit.params) | {"test_data": test.source},
        metrics=result.metrics,
        tables={"test_detections.parquet": detections, CURVES: curves, "per_study.parquet": result.per_study},
        tags={"stage": "eval", "train_run": trained.run_id},
    )
    return UnitResult(unit.key, run_id, result.metrics, {CURVES: curves}, info={"device": device})
