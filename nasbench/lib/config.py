"""NB-101's configuration as plain data: `build_config()` returns the dict `NASBench.config` holds.

The keys and defaults are those of NB-101's `config.py` (its absl flags: the values of the
exhaustive evaluation), plus what `NASBench.evaluate` needs here: `cifar10_dir` (a local
CIFAR-10 folder in torchvision's layout; nothing is downloaded), `device`, `seed` and
`torch_threads` (CPU threads; None keeps torch's default).
"""

from __future__ import annotations

import copy

_DEFAULTS = {
    # data (NB-101 reads TFRecords; this implementation reads the CIFAR-10 folder below)
    "train_data_files": [],
    "valid_data_file": "",
    "test_data_file": "",
    "sample_data_file": "",
    "data_format": "channels_last",
    "num_labels": 10,
    # the search space
    "module_vertices": 7,
    "max_edges": 9,
    "available_ops": ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"],
    # the network and its training, as in the exhaustive evaluation
    "stem_filter_size": 128,
    "num_stacks": 3,
    "num_modules_per_stack": 3,
    "batch_size": 256,
    "train_epochs": 108,
    "train_seconds": 4.0 * 60 * 60,
    "learning_rate": 0.1,
    "lr_decay_method": "COSINE_BY_STEP",
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "max_attempts": 5,
    "intermediate_evaluations": ["0.5"],
    "num_repeats": 3,
    "use_tpu": True,
    "tpu_iterations_per_loop": 100,
    "tpu_num_shards": 2,
    # this implementation's evaluate()
    "cifar10_dir": None,
    "device": "cpu",
    "seed": 0,
    "torch_threads": None,
}


def build_config() -> dict:
    """A fresh copy of the defaults (callers may change their copy freely)."""
    return copy.deepcopy(_DEFAULTS)
