"""Hand-built exams shared by the metric tests."""

from __future__ import annotations

import pytest

from core.metrics.detection import GroundTruth

# Four exams. S1: images A and B; fracture F1 seen on both (two regions), F2 on A only.
# S2: image C, fracture F3. S3: images D and E, no fracture. S4: image G, no fracture.
IMAGES = {
    "study_id": ["S1", "S1", "S2", "S3", "S3", "S4"],
    "image_id": ["A", "B", "C", "D", "E", "G"],
    "body_part": ["hand", "hand", "foot", "hand", "hand", "foot"],
}
REGIONS = {
    "study_id": ["S1", "S1", "S1", "S2"],
    "image_id": ["A", "B", "A", "C"],
    "fracture_id": ["F1", "F1", "F2", "F3"],
    "x0": [10, 50, 60, 0],
    "y0": [10, 50, 10, 0],
    "x1": [30, 70, 80, 20],
    "y1": [30, 70, 30, 20],
}


@pytest.fixture
def hand_tables():
    return IMAGES, REGIONS


@pytest.fixture
def truth():
    return GroundTruth.from_tables(IMAGES, REGIONS)
