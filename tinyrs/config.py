"""Profiles and recipes: YAML files under tinyrs/configs/<profile>/, with `key=value` overrides."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from .paths import CONFIGS

PROFILES = ("toy", "paper")


class ConfigError(ValueError):
    """A config name, file or override that does not exist."""


def config_path(name: str, kind: str) -> Path:
    """`name` is a profile ('toy', 'paper') or a path to a YAML file."""
    if name in PROFILES:
        path = CONFIGS / name / f"{kind}.yaml"
        if not path.is_file():
            raise ConfigError(f"the {name} profile has no {kind} config ({path})")
        return path
    p = Path(name)
    if not p.is_file():
        raise ConfigError(f"no {kind} config {name!r}: give a profile ({', '.join(PROFILES)}) or a YAML file")
    return p


class _Loader(yaml.SafeLoader):
    """YAML as people write it in recipes: `1e-4` is a number (YAML 1.1, and so PyYAML, reads it as a string)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def load_yaml(text_or_file):
    """Every config, recipe and plan file of the package is read with this."""
    return yaml.load(text_or_file, Loader=_Loader)


def load_yaml_file(path: str | Path):
    """A config, recipe or plan file, or an error naming it and the line where it stops being YAML."""
    try:
        return load_yaml(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}): not a config, recipe or plan file") from None


def parse_value(text: str):
    """A command-line value, read as YAML: 3 -> int, 0.5 -> float, 1e-3 -> float, true -> bool, [1, 2] -> list."""
    try:
        return load_yaml(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"a value that is not valid YAML ({getattr(e, 'problem', None) or 'cannot parse'}); quote "
                          "text that holds : # [ ] { } or quotes") from None


def parse_override(item: str, what: str = "override") -> tuple[str, object]:
    """`KEY=VALUE` -> (key, value read by parse_value); `what` names the option in the error."""
    if "=" not in item:
        raise ConfigError(f"{what} {item!r} is not KEY=VALUE")
    key, raw = item.split("=", 1)
    try:
        return key.strip(), parse_value(raw)
    except ConfigError as e:
        raise ConfigError(f"{what} {key.strip()}: {e}") from None


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    """Apply `a.b=value` overrides to a nested dict (returns a copy). Unknown top-level keys are
    an error, so a typo never silently does nothing."""
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        key, new = parse_override(item)
        parts = key.split(".")
        node = cfg
        for i, part in enumerate(parts[:-1]):
            if part not in node or not isinstance(node[part], dict):
                raise ConfigError(f"override {item!r}: no section {'.'.join(parts[:i + 1])!r}")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r} (known here: {', '.join(sorted(node))})")
        if not same_kind(node[parts[-1]], new):
            raise ConfigError(f"override {item!r}: {key} takes {kind_of(node[parts[-1]])}, not {new!r}")
        node[parts[-1]] = new
    return cfg


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # True is an int to Python, not to a config


def is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def kind_of(value) -> str:
    if isinstance(value, bool):
        return "true/false"
    if is_number(value):
        return "a number"
    return {list: "a list", dict: "a mapping"}.get(type(value), "text")


def same_kind(old, new) -> bool:
    """An override keeps the kind of value the config has there (a key the config leaves empty takes anything)."""
    return old is None or new is None or kind_of(old) == kind_of(new) or kind_of(old) == "text"


def load_config(name: str, kind: str, overrides: list[str] | None = None) -> dict:
    path = config_path(name, kind)
    cfg = load_yaml_file(path) or {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: not a {kind} config (a mapping of keys)")
    if name not in PROFILES:
        check_own_file(cfg, kind, path)
    cfg = apply_overrides(cfg, overrides)
    cfg.setdefault("_source", str(path))
    return cfg


# Mappings whose keys the author chooses (benchmark files, sources and their mixes): checked where they are used.
FREE_FORM = {"eval", "sources", "task_sources", "mix"}


def check_own_file(cfg: dict, kind: str, path) -> None:
    """A config file of one's own has the keys of its profile's (tinyrs/configs/<profile>/<kind>.yaml): a typo
    would otherwise be ignored, or fail deep inside a build as a KeyError. An LLM config's sections are roles the
    author names; each takes the keys of the profile's section of that name (else of its judge), all optional."""
    profile = cfg.get("profile", "toy")
    if profile not in PROFILES:
        raise ConfigError(f"{path}: profile is one of {', '.join(PROFILES)}, not {profile!r}")
    reference = load_yaml_file(config_path(profile, kind))
    missing, unknown, wrong = [], [], []
    if kind == "llm":
        for role, section in cfg.items():
            if not isinstance(section, dict):
                raise ConfigError(f"{path}: {role} is not a mapping of LLM settings")
            ref = reference.get(role, reference["judge"])
            unknown += [f"{role}.{k}" for k in section if k not in ref]
            # a mistyped value (timeout: fast) would otherwise fail every request, retried as if transient
            wrong += [f"{role}.{k} takes {kind_of(ref[k])}, not {v!r}" for k, v in section.items()
                      if k in ref and not same_kind(ref[k], v)]
    else:
        _compare(cfg, reference, "", missing, unknown)
    if missing or unknown or wrong:
        said = [f"unknown key(s) {', '.join(unknown)}"] * bool(unknown) + [f"missing {', '.join(missing)}"] * bool(missing)
        said += wrong
        raise ConfigError(f"{path}: {'; '.join(said)} (the keys are those of tinyrs/configs/{profile}/{kind}.yaml)")


def _compare(own: dict, ref: dict, prefix: str, missing: list, unknown: list) -> None:
    missing += [prefix + k for k in ref if k not in own]
    unknown += [prefix + k for k in own if k not in ref]
    for key in ref:
        if key in own and key not in FREE_FORM and isinstance(own[key], dict) and isinstance(ref[key], dict):
            _compare(own[key], ref[key], f"{prefix}{key}.", missing, unknown)


def load_prices() -> dict:
    """USD per 1M tokens per model, with the source of each price (tinyrs/configs/prices.yaml)."""
    return load_yaml_file(CONFIGS / "prices.yaml")
