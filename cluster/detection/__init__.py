"""Chapter 2 on Ray and MLflow: the fracture-detection sweep and the reader study.

- config: `FractureDetectionConfig`, the job as validated data (presets: core.detection.config);
- data: the train / dev / test splits, checked before any work, and their identities;
- plan: two units per seed (training, evaluation) with stable keys, and their graph;
- trainer: the training unit (a `Resumable`), the `DetectionTrainer` actor and its pool;
- evaluate: the evaluation unit; report: the metrics table, ROC/FROC figure, models;
- reader_study: `ReaderStudyConfig` and the analysis of table 2.1 and fig. 2.3.
"""
