"""Fracture-patch classification (thesis chapter 5): the patch manifest and its labels, the embedded
synthetic set, inputs, the fine-tuning recipe and the NAS report. No Ray, no MLflow."""
