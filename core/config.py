"""Configs are validated data: typed models with defaults, loaded from YAML/JSON plus overrides.

An unknown key, a wrong type or an impossible value is a clear error naming the key, raised
before any work starts.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
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


def read_mapping(source: str | Path) -> dict:
    """A config mapping from a YAML or JSON file, or from JSON in an environment variable
    (`env:NAME`: how queued jobs receive theirs). Data only: never code."""
    text_source = str(source)
    if text_source.startswith("env:"):
        name = text_source[4:]
        if name not in os.environ:
            raise ConfigError(f"config variable {name} is not set")
        text, what, is_json = os.environ[name], f"environment variable {name}", True
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        text, what, is_json = path.read_text(), str(path), path.suffix == ".json"
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text) or {}
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{what}: not valid {'JSON' if is_json else 'YAML'} ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: a config must be a mapping of keys to values")
    return data


def deep_merge(base: dict, update: dict) -> dict:
    """`update` over `base`; nested mappings are merged key by key, not replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def flatten(mapping: dict, prefix: str = "") -> dict:
    """{'train': {'lr': 1}} -> {'train.lr': 1}: nested config as flat keys (MLflow params)."""
    out = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out |= flatten(value, name) if isinstance(value, dict) else {name: value}
    return out


def set_dotted(data: dict, key: str, value) -> None:
    """Set `a.b.c` in nested mappings, creating the intermediate ones."""
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {part} is not a mapping")
    node[last] = value


def load_config(
    model: type[Config],
    path: str | Path | None = None,
    overrides: dict | None = None,
    base: dict | None = None,
    label: str | None = None,
) -> Config:
    """`base` (a preset), then the file or `env:NAME`, then overrides (keys may be dotted:
    `supernet.epochs`); validated, with errors naming the key."""
    data = deep_merge(base or {}, read_mapping(path) if path is not None else {})
    source = label or ("preset" if base else "defaults")
    if path is not None:
        source += f" + {path}"
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, key, value)
            source += f" + {key}"
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


@dataclass(frozen=True)
class Presets:
    """A workload's named config bases, resolved one way everywhere:
    model defaults < preset < config file < flags and --set.

    The preset is chosen by the `preset` key of the flags or the file, else `default`; `auto`
    (when given) turns the name "auto" into a preset from the user's own keys (e.g. the
    embedded preset when no data set is given). `notes` say in a line what each preset is.
    """

    table: dict[str, dict]
    default: str
    notes: dict[str, str] = field(default_factory=dict)
    auto: Callable[[dict], str] | None = None

    def names(self) -> list[str]:
        return sorted(self.table) + (["auto"] if self.auto else [])

    def resolve(self, model: type[Config], path: str | Path | None = None, overrides: dict | None = None):
        """The validated config; an unknown preset or key is a ConfigError naming it."""
        user = read_mapping(path) if path is not None else {}
        for key, value in (overrides or {}).items():
            if value is not None:
                set_dotted(user, key, value)
        recorded = "preset" in model.model_fields  # else the preset is a choice, not a config key
        name = (user.get("preset") if recorded else user.pop("preset", None)) or self.default
        if name == "auto" and self.auto is not None:
            name = self.auto(user)
        if name not in self.table:
            raise ConfigError(f"preset: unknown preset {name!r}; expected one of {self.names()}")
        base = copy.deepcopy(self.table[name])
        if recorded:
            user = user | {"preset": name}
        label = f"preset {name}" + (f" + {path}" if path is not None else "")
        try:
            return model.model_validate(deep_merge(base, user))
        except ValidationError as err:
            raise ConfigError(_describe(err, label)) from None

    def note(self, name: str) -> str:
        return self.notes.get(name, name)
