"""Metrics of the clinical tasks: detection (patient-, fracture-wise, ROC/FROC), bone age."""
