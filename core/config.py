"""Configs are validated data: typed models with defaults, loaded from YAML/JSON plus overrides.

An unknown key, a wrong type or an impossible value is a clear error naming the key, raised
before any work starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class Config(BaseModel):
    """Base of every job config: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the problem."""


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(
            f"  {key}: {e['msg']}"
            + (f" (got {e['input']!r})" if "input" in e and e["type"] != "missing" else "")
        )
    return "\n".join(lines)


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` with value parsed as YAML (numbers, lists `[a, b]`, true/false, null)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"override {key}: cannot parse {raw!r} ({err})") from None


def load_config(model: type[Config], path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Defaults, then the file (YAML or JSON; data only, never code), then overrides."""
    data: dict = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        text = path.read_text()
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text) or {}
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise ConfigError(
                f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({err})"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of keys to values")
        source = str(path)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
            source += f" + {key}"
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None
