"""The fracture detector as MLflow loads it: this file is stored in the model and run at load time
(MLflow's "models from code"); nothing imports it.

Why not `mlflow.pytorch` like the other trainers: torch.export cannot capture torchvision's Mask
R-CNN (its box filtering and NMS have data-dependent shapes: GuardOnDataDependentSymNode in
`batched_nms`), and mlflow.pytorch's other format pickles the whole module, so loading it would
run arbitrary code. The logged model is therefore this file plus the artifact `detector`: the
detector's export (`model.pt`: backend, architecture keys, weights and operating points), read
back by `core.detection.backends.load_detector` with torch.load(weights_only=True). Loading needs
this project's code importable (its wheel installed, or a checkout on sys.path):

    model = mlflow.pyfunc.load_model("models:/<name>/<version>")   # or runs:/<run id>/model
    frame = model.predict(images)   # float32 (N, H, W) grey levels in [0, 1], any H and W

One row per box: image (its index in the batch), x0, y0, x1, y1 (pixels), score, finding
("FRACTURE" / "DOUBT" by the operating points chosen on the development split, else "").
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class FractureDetector(PythonModel):
    """The pyfunc around a detector export (`core.detection.evaluate.findings` does the work)."""

    def load_context(self, context) -> None:
        from core.detection.backends import load_detector

        self.detector = load_detector(context.artifacts["detector"])

    def predict(self, context, model_input: np.ndarray, params=None) -> pd.DataFrame:
        from core.detection.evaluate import findings

        return findings(self.detector, model_input)


mlflow.models.set_model(FractureDetector())
