"""Configs as data: files or environment variables, presets merged under files and flags."""

from __future__ import annotations

import pytest
from pydantic import Field

from core.config import Config, ConfigError, deep_merge, load_config, parse_override


class Recipe(Config):
    epochs: int = Field(10, ge=1)
    lr: float = 0.1


class Job(Config):
    name: str = "job"
    seeds: int = 3
    recipe: dict = Field(default_factory=dict)


def test_preset_then_file_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seeds: 7\nrecipe:\n  lr: 0.5\n")
    config = load_config(
        Job, path, {"recipe.epochs": 4, "name": None}, base={"seeds": 2, "recipe": {"epochs": 1}}
    )
    assert config.seeds == 7 and config.recipe == {"epochs": 4, "lr": 0.5} and config.name == "job"


def test_json_from_an_environment_variable(monkeypatch):
    monkeypatch.setenv("CFG", '{"seeds": 11}')
    assert load_config(Job, "env:CFG").seeds == 11
    with pytest.raises(ConfigError, match="config variable MISSING is not set"):
        load_config(Job, "env:MISSING")
    monkeypatch.setenv("CFG", "[1, 2]")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Job, "env:CFG")


def test_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="seedz: Extra inputs are not permitted"):
        load_config(Job, None, {"seedz": 1})
    with pytest.raises(ConfigError, match="seeds: Input should be a valid integer"):
        load_config(Job, None, {"seeds": "many"})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Job, tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Job, tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="must look like key=value"):
        parse_override("seeds")


def test_deep_merge_keeps_nested_keys():
    assert deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}, "b": 1}
    assert parse_override("lr=0.5") == ("lr", 0.5) and parse_override("spaces=[A1, A2]") == (
        "spaces",
        ["A1", "A2"],
    )


def test_flatten_nested_sections():
    from core.config import flatten

    assert flatten({"train": {"lr": 0.1, "ema": {"decay": 0.99}}, "seed": 0}) == {
        "train.lr": 0.1,
        "train.ema.decay": 0.99,
        "seed": 0,
    }
