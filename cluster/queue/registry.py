"""The jobs a queue may run: named entry points under jobs/ with validated configs.

A queued job is never a shell string: it is a name from this registry and a config mapping
that the job's own config model accepts. The job receives the config as JSON in an
environment variable (`--config env:SWEEPS_JOB_CONFIG`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from core.config import Config, ConfigError, load_config

CONFIG_VARIABLE = "SWEEPS_JOB_CONFIG"


@dataclass(frozen=True)
class JobSpec:
    name: str
    script: str  # path under the repository root
    config_model: str | type  # its Config class, or "module:Class"
    check: Callable[[Config], None] | None = None  # extra checks beyond the model

    def validate(self, config: dict) -> Config:
        """The config as the job will read it; a ConfigError naming the key otherwise."""
        model = self.config_model
        if isinstance(model, str):
            module, cls = model.split(":")
            model = getattr(importlib.import_module(module), cls)
        parsed = load_config(model, None, base=config, label=f"config of job {self.name}")
        if self.check:
            self.check(parsed)
        return parsed

    def entrypoint(self) -> str:
        return f"python {self.script} --config env:{CONFIG_VARIABLE}"


def _check_ws(config) -> None:
    from cluster.nb101.config import check_recipes

    check_recipes(config)


REGISTRY: dict[str, JobSpec] = {}


def register(spec: JobSpec) -> JobSpec:
    REGISTRY[spec.name] = spec
    return spec


register(JobSpec("nb101_sweep", "jobs/nb101_sweep.py", "cluster.nb101.config:SweepConfig", _check_ws))
register(JobSpec("nb101_baselines", "jobs/nb101_baselines.py", "cluster.nb101.config:BaselinesConfig"))
register(
    JobSpec(
        "ws_correlation", "jobs/ws_correlation.py", "cluster.nb101.config:WSCorrelationConfig", _check_ws
    )
)
register(JobSpec("bone_age", "jobs/bone_age.py", "cluster.boneage:BoneAgeJobConfig"))
register(
    JobSpec(
        "fracture_detection", "jobs/fracture_detection.py", "cluster.detection.config:FractureDetectionConfig"
    )
)
register(JobSpec("reader_study", "jobs/reader_study.py", "cluster.detection.reader_study:ReaderStudyConfig"))
register(JobSpec("fracture_nas", "jobs/fracture_nas.py", "cluster.patch_nas.config:FractureNASConfig"))


def lookup(name: str) -> JobSpec:
    if name not in REGISTRY:
        raise ConfigError(f"unknown job {name!r}; known jobs: {sorted(REGISTRY)}")
    return REGISTRY[name]
