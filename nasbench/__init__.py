"""NAS-Bench-101's Python API (`from nasbench import api`), drop-in, without TensorFlow.

A compatible implementation written for this project over `core.nb101`, not Google's code:
the same classes, methods, return values, errors and random draws as google-research/nasbench's
`nasbench/api.py`, so that scripts written for it run unchanged. `api.NASBench` reads the
official tfrecord files (imported once into a cached Parquet store), the project's Parquet
stores, NASLib's pickle (through a restricted unpickler) and the real subset's folder.
`nasbench.naslib.get_dataset_api()` gives NASLib's NB-101 search space the `dataset_api` it
expects from the same store.
"""
