"""Profiles and recipes: YAML files under tinyrs/configs/<profile>/, with `key=value` overrides."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .paths import CONFIGS

PROFILES = ("toy", "paper")


class ConfigError(ValueError):
    """A config name, file or override that does not exist."""


def config_path(name: str, kind: str) -> Path:
    """`name` is a profile ('toy', 'paper') or a path to a YAML file."""
    if name in PROFILES:
        return CONFIGS / name / f"{kind}.yaml"
    p = Path(name)
    if not p.is_file():
        raise ConfigError(f"no {kind} config {name!r}: give a profile ({', '.join(PROFILES)}) or a YAML file")
    return p


def parse_value(text: str):
    """A command-line value, read as YAML: 3 -> int, 0.5 -> float, true -> bool, [1, 2] -> list.
    Numbers YAML 1.1 leaves as strings (1e-3) are numbers too."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                pass
    return value


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    """Apply `a.b=value` overrides to a nested dict (returns a copy). Unknown top-level keys are
    an error, so a typo never silently does nothing."""
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = cfg
        for i, part in enumerate(parts[:-1]):
            if part not in node or not isinstance(node[part], dict):
                raise ConfigError(f"override {item!r}: no section {'.'.join(parts[:i + 1])!r}")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r} (known here: {', '.join(sorted(node))})")
        node[parts[-1]] = parse_value(value)
    return cfg


def load_config(name: str, kind: str, overrides: list[str] | None = None) -> dict:
    path = config_path(name, kind)
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    cfg = apply_overrides(cfg, overrides)
    cfg.setdefault("_source", str(path))
    return cfg


def load_prices() -> dict:
    """USD per 1M tokens per model, with the source of each price (tinyrs/configs/prices.yaml)."""
    with open(CONFIGS / "prices.yaml") as f:
        return yaml.safe_load(f)
